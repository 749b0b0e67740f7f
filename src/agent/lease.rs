//! The lease on the address this member holds (`group::lease` decides): every address change
//! goes through [`Agent::change_address`], which records the lease it was given; the lease
//! loop renews it while the agent runs and, when it could not be renewed in time (the agent
//! was paused or starved, or the quorum source stopped vouching), takes it for lost: the
//! address is removed, `on_lease_lost` runs, and the address is taken again only after a
//! heartbeat round started later has ended (the agent has re-learned the group, as at
//! start-up). Network and process I/O through the address backend.

use super::*;
use crate::group::lease::{self, Lease, Renewal};

/// The lease this agent holds, and whether it lost one.
#[derive(Debug, Default)]
pub(super) struct LeaseState {
    pub(super) held: Option<Lease>,
    /// When a lease was lost without a renewal (monotonic); the address is taken again after
    /// a heartbeat round that started later.
    pub(super) lost_at: Option<Mono>,
}

impl Agent {
    fn lease_ms(&self) -> Millis {
        self.inner.cfg.file.address.lease.as_millis() as Millis
    }

    /// The lifetime to give `address` when it is taken now (None: a backend without leases).
    pub(super) fn lease_lifetime(&self, address: Option<std::net::IpAddr>) -> Option<u32> {
        let a = address?;
        self.inner.address.lease_enforced_by()?;
        let vouched = self.vouched(a).unwrap_or(None);
        // Without a quorum source the configured lease; with one, never past what it vouches
        // for. A new address's key is acquired after this is computed (`change_address`), so
        // a first take gets the shortest lifetime, 1 s; the renewals then follow the session.
        Some(lease::lifetime(self.mono_now(), self.lease_ms(), vouched).unwrap_or(1))
    }

    /// Moves the address as `t` says and records the lease it now holds, then runs the hooks.
    /// Renewals wait while the address moves (they must never add an address just released).
    pub(super) async fn change_address(&self, t: &Transition) -> Result<(), AddressError> {
        // A new address is taken only with its key in the quorum source (or in failsafe).
        if let Some(a) = t.address {
            if t.previous_state.is_none() || t.previous_address != Some(a) {
                self.may_take(a).await?;
            }
        }
        let mut state = self.inner.lease.lock().await;
        let granted_at = self.mono_now();
        let moved = self.inner.address.move_address(t).await;
        let held = match (&moved, t.address, t.lifetime) {
            (Ok(()), Some(address), Some(seconds)) => Some(Lease {
                address,
                granted_at,
                lifetime: u64::from(seconds) * 1000,
            }),
            // No address, a backend without leases, or a move that failed half-way: nothing
            // to renew (an address a failed move left behind runs out by itself).
            _ => None,
        };
        self.set_held(&mut state, held);
        if moved.is_ok() {
            state.lost_at = None;
        }
        drop(state);
        moved?;
        // Every view follows the address at once, not after the hooks (which may run up to
        // hooks.timeout): the record was committed before the move. Without this a peer's
        // record adopted through gossip showed the old state for as long as on_offline ran
        // (tests/partition.rs read it in that window).
        self.publish().await;
        if let Some(released) = t.release() {
            self.gave_up(released).await;
        }
        self.inner.address.run_hooks(t).await;
        Ok(())
    }

    /// How long a member that did not answer may still hold an address under a lease it
    /// renewed up to now (`group::lease::unconfirmed_release_wait`); `None` without leases.
    pub(super) fn unconfirmed_release_wait(&self) -> Option<Duration> {
        self.inner.address.lease_enforced_by()?;
        Some(Duration::from_millis(lease::unconfirmed_release_wait(
            self.lease_ms(),
        )))
    }

    /// Records the lease now held (and the copy the snapshot reads without waiting).
    fn set_held(&self, state: &mut LeaseState, held: Option<Lease>) {
        state.held = held;
        *self
            .inner
            .lease_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = held;
    }

    /// The lease as the snapshot shows it (wall clock), while one is held.
    pub(super) fn lease_view(&self) -> Option<crate::snapshot::LeaseView> {
        let enforced_by = self.inner.address.lease_enforced_by()?;
        let held = (*self
            .inner
            .lease_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        let left = held.ends().saturating_sub(self.mono_now());
        Some(crate::snapshot::LeaseView {
            until: now_ms() + left,
            enforced_by,
        })
    }

    /// This member's lease as its heartbeats report it.
    pub(super) fn lease_wire(&self) -> Option<crate::peer::LeaseWire> {
        self.lease_view().map(|v| crate::peer::LeaseWire {
            until: v.until,
            enforced_by: v.enforced_by.to_string(),
        })
    }

    /// Notes the lease `peer` reported (the snapshot shows it as last heard).
    pub(super) fn note_peer_lease(&self, peer: &str, lease: Option<&crate::peer::LeaseWire>) {
        let view = lease.map(|l| crate::snapshot::LeaseView {
            until: l.until,
            enforced_by: if l.enforced_by == "kernel" {
                "kernel"
            } else {
                "agent"
            },
        });
        let mut leases = self
            .inner
            .peer_leases
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match view {
            Some(v) => leases.insert(peer.to_string(), v),
            None => leases.remove(peer),
        };
    }

    /// A member's lease as the snapshot shows it: this member's own, a peer's as last heard.
    pub(super) fn member_lease(&self, member: &str) -> Option<crate::snapshot::LeaseView> {
        if member == self.inner.name {
            return self.lease_view();
        }
        self.inner
            .peer_leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(member)
            .cloned()
    }

    /// Renews the lease while this agent runs (every `group::lease::renew_every`).
    pub(super) async fn lease_loop(&self, stop: CancellationToken) {
        if self.inner.address.lease_enforced_by().is_none() {
            return;
        }
        let every = lease::renew_every(
            self.lease_ms(),
            self.inner.cfg.file.heartbeat_interval.as_millis() as Millis,
        );
        let mut tick = tokio::time::interval(Duration::from_millis(every.min(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            self.renew_lease(every).await;
        }
    }

    async fn renew_lease(&self, every: Millis) {
        let mut state = self.inner.lease.lock().await;
        let Some(held) = state.held else {
            return;
        };
        let now = self.mono_now();
        match lease::renewal(
            &held,
            now,
            every,
            self.lease_ms(),
            self.vouched(held.address),
        ) {
            Renewal::Wait | Renewal::Withheld => {}
            Renewal::Renew { seconds } => {
                match self.inner.address.renew(held.address, seconds).await {
                    Ok(()) if !lease::renewal_too_late(&held, self.mono_now()) => {
                        let renewed = Lease {
                            granted_at: now,
                            lifetime: u64::from(seconds) * 1000,
                            ..held
                        };
                        self.set_held(&mut state, Some(renewed));
                    }
                    Ok(()) => {
                        // Answered after the lease could have ended: the request may have
                        // added the address again. It is removed at once.
                        warn!(member = %self.inner.name, address = %held.address,
                            "a lease renewal was answered too late; the address is given up");
                        drop(state);
                        self.lease_lapsed(held).await;
                    }
                    Err(e) => {
                        // Tried again on the next tick while the lease lasts.
                        warn!(member = %self.inner.name, error = %e, "cannot renew the lease");
                    }
                }
            }
            Renewal::Lapsed => {
                drop(state);
                self.lease_lapsed(held).await;
            }
        }
    }

    /// The lease on `held` ran out (or may have): the address is removed if the kernel has
    /// not done so, `on_lease_lost` runs, and the address is taken again only after a
    /// heartbeat round that starts later (`retake_after_lapse`).
    async fn lease_lapsed(&self, held: Lease) {
        let mut state = self.inner.lease.lock().await;
        if state.held != Some(held) {
            return; // an address change came first
        }
        self.set_held(&mut state, None);
        state.lost_at = Some(self.mono_now());
        self.inner.address.remove_lapsed(held.address).await;
        drop(state);
        self.gave_up(held.address).await;
        error!(member = %self.inner.name, address = %held.address,
            "the lease on the address ran out before it could be renewed (the agent did not \
             run, or the quorum source stopped vouching for it); the address is given up until \
             this agent has heard its peers again");
        let own = self
            .inner
            .state
            .lock()
            .await
            .view
            .member(&self.inner.name)
            .cloned();
        if let Some(own) = own {
            let mut t = self.transition(Some(&own), &own);
            // UNDERSTUDY_ADDRESS is the address lost.
            t.previous_address = Some(held.address);
            t.address = Some(held.address);
            t.lifetime = None;
            self.inner.address.lease_lost_hook(&t).await;
        }
        self.inner.gossip_now.notify_one();
    }

    /// After a heartbeat round that started at `round_started`: an address whose lease was
    /// lost before that is taken again as this member's record names it now.
    pub(super) async fn retake_after_lapse(&self, round_started: Mono) {
        let lost = self.inner.lease.lock().await.lost_at;
        match lost {
            Some(at) if at < round_started => {
                info!(member = %self.inner.name,
                    "heard the peers since the lease ran out; taking the address the record names");
                self.take_own_address().await;
            }
            _ => {}
        }
    }
}
