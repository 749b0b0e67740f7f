//! Address leases: a member holds a service address only while it keeps renewing a lease on
//! it. The linux backend gives the address a finite lifetime in the kernel, so an agent that
//! crashes, hangs or is paused stops renewing and the kernel removes the address by itself;
//! the hooks backend cannot be enforced by the kernel and runs `on_lease_lost` instead. Here
//! the decisions: when to renew, with which lifetime (never past what the quorum source
//! vouches for), and when a lease must be taken for lost. Pure; time is an argument.
//!
//! The safety argument (validated in `config`): a Main stopped at time T renewed last at or
//! before T, so its address is gone by T + lease + [`KERNEL_SLACK`]; a Backup has heard it
//! within a heartbeat interval of T and fails it over no earlier than that plus
//! `failover_after`. `failover_after ≥ lease + heartbeat_interval + KERNEL_SLACK` puts the end
//! of the old lease before the earliest failover.

use std::net::IpAddr;

use super::{Millis, Mono};

/// How late the kernel removes an address after its valid lifetime ran out: its lifetime
/// check runs on a timer rounded up to whole seconds with a quarter-second fuzz (IPv4
/// `check_lifetime`, IPv6 `addrconf_verify`); 0.31 s was the largest delay measured.
pub const KERNEL_SLACK: Millis = 400;

/// The kernel removes an address as soon as its age, rounded with a 20 ms fuzz, reaches its
/// valid lifetime: a lease counts as possibly gone this long before its nominal end.
pub const KERNEL_EARLY: Millis = 20;

/// A renewal is not attempted this close to the lease's end: the netlink request must reach
/// the kernel while the address is certainly still there (a request that arrives after the
/// kernel removed it would add it again).
pub const RENEW_SAFETY: Millis = 150;

/// How much of the quorum source's vouched time is never handed to the kernel: the kernel may
/// keep an expired address [`KERNEL_SLACK`] longer, and the quorum source may free the key as
/// soon as the session's TTL has run out.
pub const QUORUM_MARGIN: Millis = 500;

/// The lease this member holds on one address, as the agent last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub address: IpAddr,
    /// When the request that set it was sent (monotonic): the kernel's clock for it starts
    /// no earlier.
    pub granted_at: Mono,
    /// The lifetime the request gave, in milliseconds (whole seconds: the kernel's unit).
    pub lifetime: Millis,
}

impl Lease {
    /// When the address may be gone at the earliest.
    pub fn ends(&self) -> Mono {
        (self.granted_at + self.lifetime).saturating_sub(KERNEL_EARLY)
    }

    /// When the address is gone at the latest (if not renewed).
    pub fn gone_by(&self) -> Mono {
        self.granted_at + self.lifetime + KERNEL_SLACK
    }
}

/// What to do with a held lease now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Renew it with this lifetime (whole seconds).
    Renew { seconds: u32 },
    /// Not yet due.
    Wait,
    /// It is too late to renew safely (the agent did not run for a while): the address is or
    /// will be gone. It is never renewed or added again before the agent has re-learned the
    /// group (a heartbeat round started after now has ended).
    Lapsed,
    /// The quorum source no longer vouches for this member's hold on the address: let the
    /// lease run out (it is not renewed).
    Withheld,
}

/// The lifetime (whole seconds) to give an address taken or renewed at `now`: the configured
/// lease, shortened so it never reaches past `vouched_until` minus [`QUORUM_MARGIN`] when a
/// quorum source vouches for this member until then. `None`: no lifetime of at least a second
/// fits (take nothing, renew nothing).
pub fn lifetime(now: Mono, lease: Millis, vouched_until: Option<Mono>) -> Option<u32> {
    let cap = match vouched_until {
        Some(until) => until.saturating_sub(now).saturating_sub(QUORUM_MARGIN),
        None => u64::MAX,
    };
    let ms = lease.min(cap);
    let seconds = u32::try_from(ms / 1000).unwrap_or(u32::MAX);
    (seconds >= 1).then_some(seconds)
}

/// Whether to renew `held` at `now`, every `every` ms, with a configured lease of `lease` ms.
/// `vouched`: `None` when no quorum source is configured; `Some(None)` when one is configured
/// and does not vouch for this member's hold on the address now (lost session, key not
/// held); `Some(Some(t))` when it does until `t`.
pub fn renewal(
    held: &Lease,
    now: Mono,
    every: Millis,
    lease: Millis,
    vouched: Option<Option<Mono>>,
) -> Renewal {
    if now + RENEW_SAFETY >= held.ends() {
        return Renewal::Lapsed;
    }
    if now < held.granted_at + every {
        return Renewal::Wait;
    }
    let until = match vouched {
        None => None,
        Some(None) => return Renewal::Withheld,
        Some(Some(t)) => Some(t),
    };
    match lifetime(now, lease, until) {
        Some(seconds) => Renewal::Renew { seconds },
        None => Renewal::Withheld,
    }
}

/// After a renewal request sent at `sent` was answered at `answered`: could the kernel have
/// received it after the old lease ended (and so added the address again)? Then the agent
/// removes the address at once and takes the lease for lapsed.
pub fn renewal_too_late(old: &Lease, answered: Mono) -> bool {
    answered >= old.ends()
}

/// The quorum source's failsafe (Patroni's term): while it cannot be reached but every peer
/// can, a member keeps renewing the address it holds, as long as it heard every peer within
/// this window (ms). A member cut off from its peers too stops renewing at most this long
/// after it last heard them, so its address is gone (lease and kernel slack included) before
/// a Backup that heard it last at about the same time may fail it over.
pub fn failsafe_window(failover_after: Millis, lease: Millis, heartbeat: Millis) -> Millis {
    failover_after.saturating_sub(lease + KERNEL_SLACK + heartbeat)
}

/// The shortest `failover_after` with a quorum source: the failsafe window must span two
/// heartbeat intervals, or one lost heartbeat would stop a healthy Main from renewing.
pub fn shortest_failover_after_with_quorum(lease: Millis, heartbeat: Millis) -> Millis {
    lease + KERNEL_SLACK + 3 * heartbeat
}

/// How long a member that stopped answering just now may still hold an address under a
/// lease of `lease` ms it renewed up to the moment it stopped (ms): the whole lease and the
/// kernel's slack. A takeover that proceeds without such a Main's release waits this long
/// before the Backup takes the address.
pub fn unconfirmed_release_wait(lease: Millis) -> Millis {
    lease + KERNEL_SLACK
}

/// How often to renew a lease of `lease` ms: four times per lease, at least every heartbeat
/// interval, never more often than every 100 ms.
pub fn renew_every(lease: Millis, heartbeat: Millis) -> Millis {
    (lease / 4).min(heartbeat).max(100)
}

/// Is `failover_after` long enough for leases of `lease` with heartbeats every `heartbeat`?
/// (all in ms) The shortest `failover_after` that is.
pub fn shortest_failover_after(lease: Millis, heartbeat: Millis) -> Millis {
    lease + heartbeat + KERNEL_SLACK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(at: Mono, secs: u64) -> Lease {
        Lease {
            address: "192.0.2.10".parse().expect("ip"),
            granted_at: at,
            lifetime: secs * 1000,
        }
    }

    #[test]
    fn renews_on_schedule_with_the_configured_lifetime() {
        let l = held(10_000, 1);
        assert_eq!(renewal(&l, 10_100, 250, 1000, None), Renewal::Wait);
        assert_eq!(
            renewal(&l, 10_250, 250, 1000, None),
            Renewal::Renew { seconds: 1 }
        );
        assert_eq!(
            renewal(&l, 10_800, 250, 1000, None),
            Renewal::Renew { seconds: 1 }
        );
    }

    #[test]
    fn a_lease_near_or_past_its_end_is_lapsed_never_renewed() {
        let l = held(10_000, 1);
        // ends at 10_980; no renewal within RENEW_SAFETY of that.
        assert_eq!(
            renewal(&l, 10_829, 250, 1000, None),
            Renewal::Renew { seconds: 1 }
        );
        assert_eq!(renewal(&l, 10_830, 250, 1000, None), Renewal::Lapsed);
        // An agent resumed after a pause of several seconds.
        assert_eq!(renewal(&l, 16_000, 250, 1000, None), Renewal::Lapsed);
        assert_eq!(
            renewal(&l, 16_000, 250, 1000, Some(Some(99_000))),
            Renewal::Lapsed
        );
    }

    #[test]
    fn the_quorum_source_bounds_the_lifetime() {
        let l = held(10_000, 1);
        // Vouched for 2 s more: 2000 - 500 = 1500 ms → 1 s, the configured lease anyway.
        assert_eq!(
            renewal(&l, 10_300, 250, 3000, Some(Some(12_300))),
            Renewal::Renew { seconds: 1 }
        );
        // Vouched for 1.4 s: 0.9 s fits no whole second: withheld.
        assert_eq!(
            renewal(&l, 10_300, 250, 3000, Some(Some(11_700))),
            Renewal::Withheld
        );
        // Not vouched for at all.
        assert_eq!(
            renewal(&l, 10_300, 250, 3000, Some(None)),
            Renewal::Withheld
        );
        // A long lease is cut to what is vouched for.
        assert_eq!(lifetime(0, 10_000, Some(3_600)), Some(3));
        assert_eq!(lifetime(0, 10_000, None), Some(10));
        assert_eq!(lifetime(0, 10_000, Some(1_400)), None);
    }

    #[test]
    fn the_lifetime_never_reaches_past_the_vouched_time_minus_the_margin() {
        for now in (0..5_000).step_by(37) {
            for until in (now..now + 6_000).step_by(53) {
                if let Some(s) = lifetime(now, 4_000, Some(until)) {
                    assert!(now + u64::from(s) * 1000 + QUORUM_MARGIN <= until);
                }
            }
        }
    }

    #[test]
    fn a_renewal_answered_after_the_end_is_too_late() {
        let l = held(10_000, 1);
        assert!(!renewal_too_late(&l, 10_900));
        assert!(renewal_too_late(&l, 10_980));
        assert!(renewal_too_late(&l, 14_000));
    }

    #[test]
    fn a_member_in_failsafe_loses_its_address_before_a_failover() {
        // failover_after 3 s, lease 1 s, heartbeat 500 ms: renewals stop 1.1 s after the
        // peers were last heard; the address is gone by 1.1 + 1 + 0.4 = 2.5 s, before the
        // earliest failover (3 s after the Backup last heard it, which is at most a heartbeat
        // interval before the Main last heard the Backup).
        let w = failsafe_window(3000, 1000, 500);
        assert_eq!(w, 1100);
        assert!(w + 1000 + KERNEL_SLACK < 3000 - 500 + 1);
        assert!(shortest_failover_after_with_quorum(1000, 500) <= 3000);
        assert!(failsafe_window(shortest_failover_after_with_quorum(1000, 500), 1000, 500) >= 1000);
    }

    #[test]
    fn the_default_lease_fits_the_default_timings() {
        // lease 1 s, heartbeat 500 ms: failover_after 2 s is enough.
        assert!(shortest_failover_after(1000, 500) <= 2000);
        assert!(shortest_failover_after(2000, 500) > 2000);
        assert_eq!(renew_every(1000, 500), 250);
        assert_eq!(renew_every(10_000, 500), 500);
    }
}
