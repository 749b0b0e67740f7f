//! The published snapshot: everything the interfaces (HTTP API, status page, metrics, SNMP)
//! show, as one agent sees the group at one moment. Built by the agent after every change and
//! read, never changed, by the interfaces. Also the version string and the time format every
//! interface prints. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::command::Event;
use crate::group::{Alarm, Maintenance, MemberRecord, Millis, OpKind, OperState};

/// This build's version, shown by every interface.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A time (milliseconds since the epoch) as RFC 3339 with milliseconds, UTC.
pub fn rfc3339(ms: Millis) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// One member as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub record: MemberRecord,
    /// The operational state shown: `unknown` when this agent cannot reach the member.
    pub state: OperState,
    /// Per heartbeat path: is the member answering on it? (Always true for the local member.)
    pub paths: Vec<(String, bool)>,
    /// The lease under which the member holds its current address, as last known (the local
    /// member's own; a peer's as its last heartbeat reported it). `None`: it holds no address
    /// under a lease (no address, a backend without leases, or the lease ran out).
    pub lease: Option<LeaseView>,
}

/// A member's lease on its current address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// When the lease runs out unless it is renewed (wall clock).
    pub until: Millis,
    /// Who removes the address when it runs out: `kernel` (linux backend: the address has a
    /// finite lifetime) or `agent` (hooks backend: the agent runs `on_lease_lost`).
    pub enforced_by: &'static str,
}

/// The quorum source (`[coordination]`) as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinationView {
    /// `etcd`.
    pub backend: &'static str,
    /// Reachable now (the agent's etcd lease was renewed within its TTL).
    pub up: bool,
    /// Since when it has been up / down (wall clock).
    pub since: Millis,
    /// Why it is down (the last error), while it is.
    pub error: Option<String>,
    /// Until when this agent's etcd lease is known to be valid (wall clock), if it has one.
    pub session_until: Option<Millis>,
    /// Service address → the member whose key holds it in etcd, as last read.
    pub holders: BTreeMap<String, String>,
}

/// How one fence command run ended (`understudy_fencing_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FenceOutcome {
    Success,
    Failed,
    Timeout,
}

impl FenceOutcome {
    pub const ALL: [FenceOutcome; 3] = [
        FenceOutcome::Success,
        FenceOutcome::Failed,
        FenceOutcome::Timeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FenceOutcome::Success => "success",
            FenceOutcome::Failed => "failed",
            FenceOutcome::Timeout => "timeout",
        }
    }
}

/// One run of the fence command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceRun {
    /// The Main it fenced.
    pub target: String,
    pub outcome: FenceOutcome,
    /// When it ended (wall clock).
    pub at: Millis,
    pub duration_ms: u64,
    /// Exit status and the end of its standard error, or the time-out.
    pub detail: String,
}

/// The fence command's record on this agent (`None` in the snapshot without `[fencing]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FencingView {
    /// Runs by outcome since the agent started (every outcome listed, zeros included).
    pub runs: BTreeMap<FenceOutcome, u64>,
    pub last: Option<FenceRun>,
}

/// The no-redundancy alarm as this agent sees it: the group is redundant while no alarm is
/// raised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redundancy {
    pub alarms: Vec<Alarm>,
}

impl Redundancy {
    pub fn redundant(&self) -> bool {
        self.alarms.is_empty()
    }

    /// When the oldest alarm still raised was raised.
    pub fn since(&self) -> Option<Millis> {
        self.alarms.iter().map(|a| a.raised_at).min()
    }
}

/// SNMP notifications this agent's notifier handled: (type, outcome) → count, every pair
/// that can happen listed from the start (zeros included).
pub type NotificationCounts = BTreeMap<(&'static str, &'static str), u64>;

/// Everything the interfaces show, published after every change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub group: String,
    pub local: String,
    pub members: Vec<MemberSnapshot>,
    pub redundancy: Redundancy,
    pub takeovers: BTreeMap<OpKind, u64>,
    /// Newest first.
    pub events: Arc<Vec<Event>>,
    pub replication_failures: u64,
    /// `None` when this agent sends no SNMP notifications.
    pub notifications: Option<NotificationCounts>,
    /// Why this agent's state cannot be written, while it cannot (it then takes part in no
    /// operation).
    pub state_error: Option<String>,
    /// The peers whose group definitions differ from this agent's: no operation involving one
    /// is carried out (the alarm says how they differ).
    pub mismatched: BTreeSet<String>,
    pub boots: u32,
    pub started_at: Millis,
    /// The quorum source; `None` without a `[coordination]` section.
    pub coordination: Option<CoordinationView>,
    /// The fence command's runs; `None` without a `[fencing]` section.
    pub fencing: Option<FencingView>,
    /// The group's maintenance mode (no automatic failover anywhere while on).
    pub maintenance: Maintenance,
    /// `[maintenance] alert_after`: how long maintenance mode may last before the alert
    /// `UnderstudyMaintenanceModeTooLong` fires (milliseconds).
    pub maintenance_alert_after: Millis,
}

impl Snapshot {
    pub fn member(&self, name: &str) -> Option<&MemberSnapshot> {
        self.members.iter().find(|m| m.record.name == name)
    }

    /// 1-based index in configuration order (`rgMemberIndex`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.record.name == name)
            .map(|i| i + 1)
    }

    /// Is `m` this agent's own member?
    pub fn is_local(&self, m: &MemberSnapshot) -> bool {
        m.record.name == self.local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
