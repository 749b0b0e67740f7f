//! Snapshots built by hand for the views of leases, the quorum source and fencing (nothing
//! in the agent fills them yet): a group of main-1 and backup-1 seen from backup-1, plain, and
//! with a lease on each member, the quorum source down and a fence run that timed out. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use understudy::group::{MemberRecord, OperState, Role};
use understudy::snapshot::{
    CoordinationView, FenceOutcome, FenceRun, FencingView, LeaseView, MemberSnapshot, Redundancy,
    Snapshot,
};

/// 2023-11-14T22:13:20.000Z, the snapshots' "now".
pub const NOW: u64 = 1_700_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn member(name: &str, role: Role, address: &str, extra: &str) -> MemberSnapshot {
    let record = MemberRecord::initial(name, role, ip(address), ip(extra), role == Role::Main);
    MemberSnapshot {
        state: record.state,
        record,
        paths: vec![("lan".into(), true)],
        lease: None,
    }
}

/// main-1 (online) and backup-1 (standby), redundant, nothing configured for safety.
pub fn plain() -> Snapshot {
    Snapshot {
        group: "demo".into(),
        local: "backup-1".into(),
        members: vec![
            member("main-1", Role::Main, "192.0.2.11", "10.0.3.6"),
            member("backup-1", Role::Backup, "198.51.100.11", "10.0.4.6"),
        ],
        redundancy: Redundancy::default(),
        takeovers: BTreeMap::new(),
        events: Arc::new(Vec::new()),
        replication_failures: 0,
        notifications: None,
        state_error: None,
        mismatched: Default::default(),
        boots: 1,
        started_at: NOW,
        coordination: None,
        fencing: None,
        maintenance: Default::default(),
        maintenance_alert_after: 4 * 3600 * 1000,
    }
}

/// The same group with a quorum source that is up and a fence command that never ran; each
/// member holds its address under a kernel lease.
pub fn with_safety() -> Snapshot {
    let mut s = plain();
    s.members[0].lease = Some(LeaseView {
        until: NOW + 30_000,
        enforced_by: "kernel",
    });
    s.members[1].lease = Some(LeaseView {
        until: NOW + 29_500,
        enforced_by: "kernel",
    });
    s.coordination = Some(CoordinationView {
        backend: "etcd",
        up: true,
        since: NOW - 60_000,
        error: None,
        session_until: Some(NOW + 10_000),
        holders: BTreeMap::from([
            ("192.0.2.11".to_string(), "main-1".to_string()),
            ("198.51.100.11".to_string(), "backup-1".to_string()),
        ]),
    });
    s.fencing = Some(FencingView {
        runs: FenceOutcome::ALL.into_iter().map(|o| (o, 0)).collect(),
        last: None,
    });
    s
}

/// [`with_safety`] after things went wrong: the quorum source is down since `NOW + 5 s`
/// ("connection refused"), main-1 is unknown and holds no lease any more, and backup-1's fence
/// command against main-1 timed out at `NOW + 8 s`.
pub fn troubled() -> Snapshot {
    let mut s = with_safety();
    s.members[0].state = OperState::Unknown;
    s.members[0].lease = None;
    if let Some(c) = s.coordination.as_mut() {
        c.up = false;
        c.since = NOW + 5_000;
        c.error = Some("connection refused".into());
        c.session_until = None;
    }
    s.fencing = Some(FencingView {
        runs: BTreeMap::from([
            (FenceOutcome::Success, 1),
            (FenceOutcome::Failed, 0),
            (FenceOutcome::Timeout, 1),
        ]),
        last: Some(FenceRun {
            target: "main-1".into(),
            outcome: FenceOutcome::Timeout,
            at: NOW + 8_000,
            duration_ms: 5_000,
            detail: "no answer within 5s".into(),
        }),
    });
    s
}
