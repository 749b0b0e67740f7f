//! Which notifications a change of the published snapshot calls for: `coldStart` when the
//! agent starts, `rgTakeover` or `rgFailover` when a Main is taken over, `rgNoRedundancy` when
//! an alarm is raised and again every `alarm_repeat` while it stays raised ([`Repeater`]),
//! `rgRedundancyRestored` when the last alarm clears, `rgReplicationFailed` when a Backup's
//! replication fails, `rgFencingFailed` when a run of this agent's fence command fails or times
//! out, `rgCoordinationLost` / `rgCoordinationRestored` when this agent's quorum source goes
//! down / comes back, `rgMaintenanceModeChanged` when the group's maintenance mode is switched
//! on or off (set here or learned from a peer). Every agent reports the group as it sees it; each notification also
//! carries `sysName.0`, the member whose agent sent it. Pure: no I/O, time is a value.
//!
//! Trap volume: `rgReplicationFailed` is about this agent's own member only, sent when its
//! replication starts failing and again every `alarm_repeat` while it keeps failing
//! ([`Repeater`]), not at every failed attempt. A group-level notification ([`Scope::Group`]:
//! takeover, failover, the alarm of either or of a missing standby, the restore) is sent by
//! one agent of the group by default ([`sends`]): the lowest-index member this agent hears, so
//! a dead Main's Backup sends it when the Main cannot. Each group-level one carries
//! `rgNotifyEventId`, the same on every agent, to deduplicate on.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::command::{Event, OutcomeKind};
use crate::group::{Alarm, Millis, OpKind, Operation, ReplicationResult, Requester, TakeoverMark};
use crate::group::{AlarmKind, OperState};
use crate::snapshot::FenceOutcome;
use crate::snapshot::Snapshot;
use crate::snmp::config::GroupNotifications;
use crate::snmp::mib::{
    self, alarm_col, coordination_arc, fencing_arc, maintenance_arc, member_col,
    notification_arc as na, notify_arc, scalar_arc, Oid, Value,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ColdStart,
    Takeover,
    Failover,
    NoRedundancy,
    RedundancyRestored,
    ReplicationFailed,
    FencingFailed,
    CoordinationLost,
    CoordinationRestored,
    MaintenanceModeChanged,
}

impl Kind {
    /// The notification's name in its MIB.
    pub fn name(self) -> &'static str {
        match self {
            Kind::ColdStart => "coldStart",
            Kind::Takeover => "rgTakeover",
            Kind::Failover => "rgFailover",
            Kind::NoRedundancy => "rgNoRedundancy",
            Kind::RedundancyRestored => "rgRedundancyRestored",
            Kind::ReplicationFailed => "rgReplicationFailed",
            Kind::FencingFailed => "rgFencingFailed",
            Kind::CoordinationLost => "rgCoordinationLost",
            Kind::CoordinationRestored => "rgCoordinationRestored",
            Kind::MaintenanceModeChanged => "rgMaintenanceModeChanged",
        }
    }

    /// Its OID (`snmpTrapOID.0`) with UNDERSTUDY-MIB rooted at `root`; `coldStart` is
    /// SNMPv2-MIB's wherever the root is.
    pub fn trap_oid(self, root: &[u32]) -> Oid {
        let arc = match self {
            Kind::ColdStart => return mib::COLD_START.to_vec(),
            Kind::Takeover => na::TAKEOVER,
            Kind::Failover => na::FAILOVER,
            Kind::NoRedundancy => na::NO_REDUNDANCY,
            Kind::RedundancyRestored => na::REDUNDANCY_RESTORED,
            Kind::ReplicationFailed => na::REPLICATION_FAILED,
            Kind::FencingFailed => na::FENCING_FAILED,
            Kind::CoordinationLost => na::COORDINATION_LOST,
            Kind::CoordinationRestored => na::COORDINATION_RESTORED,
            Kind::MaintenanceModeChanged => na::MAINTENANCE_MODE_CHANGED,
        };
        mib::notification(root, arc)
    }
}

/// Whom a notification is about: the group (every agent sees it alike, one agent reports it
/// by default) or this agent's own member or quorum source or fence runs (only it reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Group,
    Agent,
}

/// One notification: its OID (`snmpTrapOID.0`) and varbinds, in MIB order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: Kind,
    pub scope: Scope,
    pub trap_oid: Oid,
    pub varbinds: Vec<(Oid, Value)>,
}

/// The member whose agent sends the group-level notifications as `snap` shows the group: the
/// lowest-index member this agent hears (itself at the latest).
pub fn group_sender(snap: &Snapshot) -> Option<&str> {
    snap.members
        .iter()
        .find(|m| m.state != OperState::Unknown || snap.is_local(m))
        .map(|m| m.record.name.as_str())
}

/// Whether this agent (`snap.local`) sends `n`: always its own (agent-level) notifications;
/// a group-level one with `every`, or when it is the [`group_sender`].
pub fn sends(n: &Notification, snap: &Snapshot, mode: GroupNotifications) -> bool {
    n.scope == Scope::Agent
        || mode == GroupNotifications::Every
        || group_sender(snap) == Some(snap.local.as_str())
}

/// `n` with `rgNotifyEventId` = `id`, before `sysName.0` (the last varbind).
fn with_event_id(mut n: Notification, root: &[u32], id: String) -> Notification {
    let at = n.varbinds.len().saturating_sub(1);
    n.varbinds.insert(
        at,
        (
            mib::notify_object(root, notify_arc::EVENT_ID),
            Value::display(&id),
        ),
    );
    n
}

/// A notification of `kind` (UNDERSTUDY-MIB rooted at `root`) with `varbinds` and, last,
/// `sysName.0`: the member whose agent sends it.
fn note(
    kind: Kind,
    snap: &Snapshot,
    root: &[u32],
    mut varbinds: Vec<(Oid, Value)>,
) -> Notification {
    varbinds.push((mib::SYS_NAME_0.to_vec(), Value::text(&snap.local)));
    let scope = match kind {
        Kind::Takeover
        | Kind::Failover
        | Kind::NoRedundancy
        | Kind::RedundancyRestored
        | Kind::MaintenanceModeChanged => Scope::Group,
        _ => Scope::Agent,
    };
    Notification {
        kind,
        scope,
        trap_oid: kind.trap_oid(root),
        varbinds,
    }
}

/// `rgGroupName.0`.
fn group_name(snap: &Snapshot, root: &[u32]) -> (Oid, Value) {
    (
        mib::scalar(root, scalar_arc::GROUP_NAME),
        Value::text(&snap.group),
    )
}

/// `rgRedundancyStatus.0`.
fn redundancy_status(snap: &Snapshot, root: &[u32]) -> (Oid, Value) {
    (
        mib::scalar(root, scalar_arc::REDUNDANCY_STATUS),
        mib::redundancy_status(snap),
    )
}

/// An accessible-for-notify object (`rgNotifyMainName.0`, ...) with its text.
fn notify_text(root: &[u32], arc: u32, text: &str) -> (Oid, Value) {
    (mib::notify_object(root, arc), Value::text(text))
}

/// `coldStart`.
pub fn cold_start(snap: &Snapshot) -> Notification {
    note(Kind::ColdStart, snap, &[], Vec::new())
}

/// The newest successful event of one of `kinds` whose operation names `member`.
fn newest_done<'a>(
    snap: &'a Snapshot,
    kinds: &[OpKind],
    member: Option<&str>,
) -> Option<&'a Event> {
    snap.events.iter().find(|e| {
        e.outcome == OutcomeKind::Done
            && kinds.contains(&e.kind)
            && member.is_none_or(|m| e.members.iter().any(|n| n == m))
    })
}

/// `rgTakeover` / `rgFailover` for the takeover of `main` by `backup`.
pub fn takeover(
    snap: &Snapshot,
    root: &[u32],
    kind: OpKind,
    main: &str,
    backup: &str,
) -> Notification {
    let failover = kind == OpKind::Failover;
    let event = newest_done(snap, &[kind], Some(main)).filter(|e| {
        matches!(&e.operation, Operation::Takeover { backup: b, .. } | Operation::Failover { backup: b, .. } if b == backup)
    });
    let requested_by = match event {
        Some(e) => e.requested_by.to_string(),
        None if failover => Requester {
            interface: "detector".into(),
            identity: backup.to_string(),
        }
        .to_string(),
        None => String::new(),
    };
    let reason = event.and_then(|e| e.reason.clone()).unwrap_or_default();
    let b = mib::member_index(snap, backup);
    let m = mib::member_index(snap, main);
    let current = snap
        .member(backup)
        .and_then(|r| r.record.current_address)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let extra = snap
        .member(main)
        .map(|r| r.record.extra_address.to_string())
        .unwrap_or_default();
    let varbinds = vec![
        group_name(snap, root),
        notify_text(root, notify_arc::MAIN_NAME, main),
        notify_text(root, notify_arc::BACKUP_NAME, backup),
        (
            mib::member_cell(root, member_col::CURRENT_ADDRESS, b),
            Value::text(&current),
        ),
        (
            mib::member_cell(root, member_col::EXTRA_ADDRESS, m),
            Value::text(&extra),
        ),
        notify_text(root, notify_arc::REQUESTED_BY, &requested_by),
        notify_text(root, notify_arc::REASON, &reason),
        redundancy_status(snap, root),
    ];
    let kind = if failover {
        Kind::Failover
    } else {
        Kind::Takeover
    };
    let at = snap
        .member(main)
        .and_then(|r| r.record.takeover.as_ref())
        .map_or(0, |t| t.at);
    let id = format!(
        "{}/{main}/{backup}/{at}",
        if failover { "failover" } else { "takeover" }
    );
    with_event_id(note(kind, snap, root, varbinds), root, id)
}

/// `rgNoRedundancy` for one alarm (its row in `rgAlarmTable`).
pub fn no_redundancy(snap: &Snapshot, root: &[u32], alarm: &Alarm) -> Notification {
    let idx = mib::alarm_index(snap, alarm);
    let varbinds = vec![
        group_name(snap, root),
        redundancy_status(snap, root),
        (
            mib::scalar(root, scalar_arc::NO_REDUNDANCY_SINCE),
            mib::no_redundancy_since(snap),
        ),
        (
            mib::alarm_cell(root, alarm_col::TYPE, idx),
            Value::Integer(mib::alarm_type_value(alarm.kind)),
        ),
        (
            mib::alarm_cell(root, alarm_col::REASON, idx),
            Value::display(&alarm.reason),
        ),
    ];
    let mut n = note(Kind::NoRedundancy, snap, root, varbinds);
    // An alarm about this agent (its state, its quorum source, its fence runs, a peer that
    // lists another group) is its own to report.
    if !matches!(
        alarm.kind,
        AlarmKind::Takeover | AlarmKind::Failover | AlarmKind::NoStandbyBackup
    ) {
        n.scope = Scope::Agent;
    }
    with_event_id(n, root, alarm_event_id(alarm))
}

/// `rgNotifyEventId` of an alarm: its type, Main and Backup, and its raise time unless each
/// agent keeps its own (`no_standby_backup`: when that agent first saw the shortfall).
pub fn alarm_event_id(alarm: &Alarm) -> String {
    let kind = serde_json::to_value(alarm.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let main = alarm.main.as_deref().unwrap_or("-");
    let backup = alarm.backup.as_deref().unwrap_or("-");
    match alarm.kind {
        AlarmKind::NoStandbyBackup => format!("{kind}/{main}/{backup}"),
        _ => format!("{kind}/{main}/{backup}/{}", alarm.raised_at),
    }
}

/// `rgRedundancyRestored`; `raised` is when the alarm that cleared was raised.
pub fn restored(snap: &Snapshot, root: &[u32], raised: Option<Millis>) -> Notification {
    let event = newest_done(
        snap,
        &[OpKind::Reverse, OpKind::Reconfigure, OpKind::Replace],
        None,
    )
    .filter(|e| raised.is_none_or(|r| e.at >= r));
    let (requested_by, reason) = match event {
        Some(e) => (
            e.requested_by.to_string(),
            match &e.reason {
                Some(r) if !r.is_empty() => format!("{} ({r})", e.message),
                _ => e.message.clone(),
            },
        ),
        None => (String::new(), "a backup is in standby again".to_string()),
    };
    let varbinds = vec![
        group_name(snap, root),
        redundancy_status(snap, root),
        notify_text(root, notify_arc::REQUESTED_BY, &requested_by),
        notify_text(root, notify_arc::REASON, &reason),
    ];
    // The operation that restored the group, as its records (the same on every agent) name it.
    let restoring = snap
        .members
        .iter()
        .filter_map(|m| m.record.last_op.as_ref())
        .filter(|op| {
            matches!(
                op.kind,
                OpKind::Reverse | OpKind::Reconfigure | OpKind::Replace
            ) && raised.is_none_or(|r| op.at >= r)
        })
        .max_by_key(|op| op.at);
    let id = match restoring {
        Some(op) => format!("restored/{}", op.id),
        None => format!("restored/{}", raised.unwrap_or(0)),
    };
    with_event_id(
        note(Kind::RedundancyRestored, snap, root, varbinds),
        root,
        id,
    )
}

/// `rgReplicationFailed` for the Backup `backup` (its last replication failed).
pub fn replication_failed(snap: &Snapshot, root: &[u32], backup: &str) -> Option<Notification> {
    let b = snap.member(backup)?;
    let rep = b.record.replication.as_ref()?;
    let idx = mib::member_index(snap, backup);
    let varbinds = vec![
        group_name(snap, root),
        notify_text(root, notify_arc::MAIN_NAME, &rep.main),
        notify_text(root, notify_arc::BACKUP_NAME, backup),
        (
            mib::member_cell(root, member_col::LAST_REPLICATION_TIME, idx),
            Value::Octets(mib::date_and_time(rep.at)),
        ),
        (
            mib::member_cell(root, member_col::LAST_REPLICATION_RESULT, idx),
            Value::Integer(mib::replication_value(rep.result)),
        ),
        notify_text(root, notify_arc::REASON, rep.error.as_deref().unwrap_or("")),
    ];
    Some(note(Kind::ReplicationFailed, snap, root, varbinds))
}

/// `rgFencingFailed` for this agent's last fence run, if it failed or timed out.
pub fn fencing_failed(snap: &Snapshot, root: &[u32]) -> Option<Notification> {
    let run = snap.fencing.as_ref()?.last.as_ref()?;
    if run.outcome == FenceOutcome::Success {
        return None;
    }
    let f = |arc| mib::fencing_scalar(root, arc);
    let varbinds = vec![
        group_name(snap, root),
        notify_text(root, notify_arc::MAIN_NAME, &run.target),
        notify_text(root, notify_arc::BACKUP_NAME, &snap.local),
        (
            f(fencing_arc::LAST_OUTCOME),
            Value::Integer(mib::fence_outcome_value(Some(run.outcome))),
        ),
        (
            f(fencing_arc::LAST_TIME),
            Value::Octets(mib::date_and_time(run.at)),
        ),
        (f(fencing_arc::LAST_DETAIL), Value::display(&run.detail)),
    ];
    Some(note(Kind::FencingFailed, snap, root, varbinds))
}

/// `rgCoordinationLost` (the quorum source is down) or `rgCoordinationRestored` (it is up), as
/// `snap` shows it; `None` without a quorum source.
pub fn coordination(snap: &Snapshot, root: &[u32]) -> Option<Notification> {
    let c = snap.coordination.as_ref()?;
    let o = |arc| mib::coordination_scalar(root, arc);
    let mut varbinds = vec![
        group_name(snap, root),
        (
            o(coordination_arc::STATUS),
            Value::Integer(mib::coordination_status(snap)),
        ),
        (o(coordination_arc::BACKEND), Value::text(c.backend)),
        (
            o(coordination_arc::SINCE),
            Value::Octets(mib::date_and_time(c.since)),
        ),
    ];
    let kind = if c.up {
        Kind::CoordinationRestored
    } else {
        varbinds.push((
            o(coordination_arc::ERROR),
            Value::display(c.error.as_deref().unwrap_or("")),
        ));
        Kind::CoordinationLost
    };
    Some(note(kind, snap, root, varbinds))
}

/// `rgMaintenanceModeChanged`: the group's maintenance mode as `snap` shows it, with when, by
/// whom and why it was last changed (the same values from every agent, so a manager that
/// hears several agents can tell one change by `rgMaintenanceChangedTime`).
pub fn maintenance_changed(snap: &Snapshot, root: &[u32]) -> Notification {
    let m = &snap.maintenance;
    let o = |arc| mib::maintenance_scalar(root, arc);
    let varbinds = vec![
        group_name(snap, root),
        (o(maintenance_arc::MODE), mib::truth(m.enabled)),
        (
            o(maintenance_arc::CHANGED_TIME),
            Value::Octets(
                m.changed_at
                    .map_or_else(mib::no_date_and_time, mib::date_and_time),
            ),
        ),
        (
            o(maintenance_arc::CHANGED_BY),
            Value::display(
                &m.changed_by
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
            ),
        ),
        (
            o(maintenance_arc::REASON),
            Value::display(m.reason.as_deref().unwrap_or("")),
        ),
    ];
    // The same id on every agent: the setting's stamp.
    let id = format!("maintenance/{}/{}", m.version, m.writer);
    with_event_id(
        note(Kind::MaintenanceModeChanged, snap, root, varbinds),
        root,
        id,
    )
}

/// Identifies a fence run across snapshots.
fn fence_key(snap: &Snapshot) -> Option<(Millis, &str, FenceOutcome)> {
    let run = snap.fencing.as_ref()?.last.as_ref()?;
    Some((run.at, run.target.as_str(), run.outcome))
}

/// The quorum source's state across snapshots: (up, since).
fn coordination_key(snap: &Snapshot) -> Option<(bool, Millis)> {
    snap.coordination.as_ref().map(|c| (c.up, c.since))
}

/// Identifies an alarm across snapshots.
fn alarm_key(snap: &Snapshot, a: &Alarm) -> (u32, Millis) {
    (mib::alarm_index(snap, a), a.raised_at)
}

/// The takeover of Main `name` as `snap` shows it once both records of the pair carry it
/// (the Main taken over, its Backup acting for it): (kind, main, backup, when).
fn completed_takeover<'a>(snap: &'a Snapshot, name: &str) -> Option<&'a TakeoverMark> {
    let r = &snap.member(name)?.record;
    let mark = r.takeover.as_ref().filter(|_| r.is_taken_over())?;
    let b = &snap.member(&mark.backup)?.record;
    let same = b.acting_for.as_deref() == Some(name)
        && b.takeover.as_ref().is_some_and(|t| t.at == mark.at);
    same.then_some(mark)
}

/// The notifications that going from `old` to `new` calls for, in the order to send them.
/// While the agent is `settling` (just started, peers not all heard from yet) the alarm's
/// raising and clearing are left out: they are judged once it has settled.
pub fn transitions(
    old: &Snapshot,
    new: &Snapshot,
    root: &[u32],
    settling: bool,
) -> Vec<Notification> {
    let mut out = Vec::new();
    for m in &new.members {
        let Some(mark) = completed_takeover(new, &m.record.name) else {
            continue;
        };
        let before = completed_takeover(old, &m.record.name);
        if before.is_some_and(|b| b.at == mark.at && b.backup == mark.backup) {
            continue;
        }
        out.push(takeover(new, root, mark.kind, &mark.main, &mark.backup));
    }
    if !settling {
        let known: Vec<(u32, Millis)> = old
            .redundancy
            .alarms
            .iter()
            .map(|a| alarm_key(old, a))
            .collect();
        for a in &new.redundancy.alarms {
            if !known.contains(&alarm_key(new, a)) {
                out.push(no_redundancy(new, root, a));
            }
        }
        if !old.redundancy.redundant() && new.redundancy.redundant() {
            out.push(restored(new, root, old.redundancy.since()));
        }
        // Down, or down again since the last snapshot: lost. Up after down: restored. (Up
        // from the start is no news; down from the start is announced when the agent has
        // settled, with the alarms raised then: `notify`.)
        match (coordination_key(old), coordination_key(new)) {
            (before, Some((false, since))) if before != Some((false, since)) => {
                out.extend(coordination(new, root));
            }
            (Some((false, _)), Some((true, _))) => out.extend(coordination(new, root)),
            _ => {}
        }
    }
    if fence_key(new) != fence_key(old) {
        out.extend(fencing_failed(new, root));
    }
    // A new write of the setting (here or by a peer): announced even while settling, it is
    // no judgement of the peers' state.
    if new.maintenance.version > 0 && new.maintenance.precedence() != old.maintenance.precedence() {
        out.push(maintenance_changed(new, root));
    }
    // This agent's own replication: when it starts failing (the first failure, a success
    // before, or another Main's); the Repeater repeats it while it keeps failing.
    if let Some(main) = failing_replication(new) {
        if failing_replication(old) != Some(main) {
            out.extend(replication_failed(new, root, &new.local));
        }
    }
    out
}

/// The Main whose data this agent's member last failed to replicate, if its last replication
/// failed.
fn failing_replication(snap: &Snapshot) -> Option<&str> {
    let rep = snap.member(&snap.local)?.record.replication.as_ref()?;
    (rep.result == ReplicationResult::Failed).then_some(rep.main.as_str())
}

/// Keeps track of when each raised alarm was last announced, to repeat `rgNoRedundancy` every
/// `every` while it stays raised. Time is a value (milliseconds on any monotonic clock).
/// Also repeats `rgReplicationFailed` every `every` while this agent's replication keeps
/// failing.
#[derive(Debug, Clone)]
pub struct Repeater {
    every: Millis,
    last: BTreeMap<(u32, Millis), Millis>,
    /// The Main whose replication keeps failing, and when that was last announced.
    replication: Option<(String, Millis)>,
}

impl Repeater {
    pub fn new(every: Duration) -> Self {
        Repeater {
            every: u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1),
            last: BTreeMap::new(),
            replication: None,
        }
    }

    /// Notes that the alarms of `snap` were announced (or are known) at `now`; forgets cleared
    /// ones.
    pub fn seen(&mut self, snap: &Snapshot, now: Millis) {
        let keys: Vec<(u32, Millis)> = snap
            .redundancy
            .alarms
            .iter()
            .map(|a| alarm_key(snap, a))
            .collect();
        self.last.retain(|k, _| keys.contains(k));
        for k in keys {
            self.last.entry(k).or_insert(now);
        }
        self.replication = match (failing_replication(snap), self.replication.take()) {
            (Some(main), Some((known, t))) if main == known => Some((known, t)),
            (Some(main), _) => Some((main.to_string(), now)),
            (None, _) => None,
        };
    }

    /// Whether this agent's failing replication is due to be announced again at `now` (and
    /// marks it announced).
    pub fn replication_due(&mut self, snap: &Snapshot, now: Millis) -> bool {
        let failing = failing_replication(snap);
        match &mut self.replication {
            Some((main, t))
                if failing == Some(main.as_str()) && now.saturating_sub(*t) >= self.every =>
            {
                *t = now;
                true
            }
            _ => false,
        }
    }

    /// The alarms of `snap` due to be announced again at `now` (and marks them announced).
    pub fn due<'a>(&mut self, snap: &'a Snapshot, now: Millis) -> Vec<&'a Alarm> {
        let mut out = Vec::new();
        for a in &snap.redundancy.alarms {
            let k = alarm_key(snap, a);
            match self.last.get_mut(&k) {
                Some(t) if now.saturating_sub(*t) >= self.every => {
                    *t = now;
                    out.push(a);
                }
                Some(_) => {}
                None => {
                    self.last.insert(k, now);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::group::Replication;
    use crate::snmp::mib::tests::{snapshot, taken_over, with_safety, ROOT};

    fn vb<'a>(n: &'a Notification, oid: &[u32]) -> Option<&'a Value> {
        n.varbinds.iter().find(|(o, _)| o == oid).map(|(_, v)| v)
    }

    fn takeover_event(at: Millis) -> Event {
        Event {
            id: format!("backup-1-{at}"),
            at,
            kind: OpKind::Manual,
            operation: Operation::Takeover {
                backup: "backup-1".into(),
                main: "main-1".into(),
            },
            requested_by: Requester {
                interface: "snmp".into(),
                identity: "noc".into(),
            },
            members: vec!["backup-1".into(), "main-1".into()],
            reason: Some("disk failure".into()),
            coordinator: "backup-1".into(),
            outcome: OutcomeKind::Done,
            failed: vec![],
            message: "backup-1 took over main-1".into(),
            repeats: 0,
            last_at: None,
        }
    }

    #[test]
    fn a_takeover_sends_rg_takeover_then_rg_no_redundancy() {
        let mut after = taken_over(100);
        after.events = Arc::new(vec![takeover_event(100)]);
        let notes = transitions(&snapshot(), &after, ROOT, false);
        let kinds: Vec<Kind> = notes.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, vec![Kind::Takeover, Kind::NoRedundancy]);
        let t = &notes[0];
        assert_eq!(t.trap_oid, mib::notification(ROOT, 1));
        let o = |arc| mib::notify_object(ROOT, arc);
        assert_eq!(
            vb(t, &o(notify_arc::MAIN_NAME)),
            Some(&Value::text("main-1"))
        );
        assert_eq!(
            vb(t, &o(notify_arc::BACKUP_NAME)),
            Some(&Value::text("backup-1"))
        );
        assert_eq!(
            vb(t, &o(notify_arc::REQUESTED_BY)),
            Some(&Value::text("snmp:noc"))
        );
        assert_eq!(
            vb(t, &o(notify_arc::REASON)),
            Some(&Value::text("disk failure"))
        );
        assert_eq!(
            vb(t, &mib::member_cell(ROOT, member_col::CURRENT_ADDRESS, 2)),
            Some(&Value::text("192.0.2.11")),
            "the backup's row: the main's address"
        );
        assert_eq!(
            vb(t, &mib::member_cell(ROOT, member_col::EXTRA_ADDRESS, 1)),
            Some(&Value::text("10.0.3.6")),
            "the main's row: its extra address"
        );
        assert_eq!(
            vb(t, &mib::scalar(ROOT, scalar_arc::REDUNDANCY_STATUS)),
            Some(&Value::Integer(2))
        );
        assert_eq!(
            t.varbinds.len(),
            10,
            "8 MIB varbinds, rgNotifyEventId and sysName.0"
        );
        assert_eq!(
            vb(t, &o(notify_arc::EVENT_ID)),
            Some(&Value::text("takeover/main-1/backup-1/100"))
        );
        let n = &notes[1];
        assert_eq!(n.trap_oid, mib::notification(ROOT, 3));
        assert_eq!(
            vb(n, &mib::alarm_cell(ROOT, alarm_col::TYPE, 1)),
            Some(&Value::Integer(1))
        );
        assert_eq!(
            vb(n, &mib::scalar(ROOT, scalar_arc::NO_REDUNDANCY_SINCE)),
            Some(&Value::Octets(mib::date_and_time(100)))
        );
        // nothing new: nothing sent
        assert!(transitions(&after, &after, ROOT, false).is_empty());
    }

    #[test]
    fn a_takeover_is_announced_once_both_records_show_it() {
        // main-1's agent hears of its own record first: not yet a takeover to announce.
        let mut half = snapshot();
        let full = taken_over(100);
        half.members[0] = full.members[0].clone();
        assert!(transitions(&snapshot(), &half, ROOT, false)
            .iter()
            .all(|n| n.kind != Kind::Takeover));
        let notes = transitions(&half, &full, ROOT, false);
        assert_eq!(notes.iter().filter(|n| n.kind == Kind::Takeover).count(), 1);
    }

    #[test]
    fn while_settling_only_the_alarm_waits() {
        let notes = transitions(&snapshot(), &taken_over(100), ROOT, true);
        let kinds: Vec<Kind> = notes.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, vec![Kind::Takeover]);
        let notes = transitions(&taken_over(100), &snapshot(), ROOT, true);
        assert!(notes.is_empty());
    }

    #[test]
    fn a_failover_without_its_event_names_the_detector() {
        let mut after = taken_over(100);
        for m in &mut after.members {
            if let Some(t) = &mut m.record.takeover {
                t.kind = OpKind::Failover;
            }
        }
        let notes = transitions(&snapshot(), &after, ROOT, false);
        assert_eq!(notes[0].kind, Kind::Failover);
        assert_eq!(notes[0].trap_oid, mib::notification(ROOT, 2));
        assert_eq!(
            vb(
                &notes[0],
                &mib::notify_object(ROOT, notify_arc::REQUESTED_BY)
            ),
            Some(&Value::text("detector:backup-1"))
        );
    }

    #[test]
    fn restoring_sends_rg_redundancy_restored_with_who_and_why() {
        let before = taken_over(100);
        let mut after = snapshot();
        let mut ev = takeover_event(200);
        ev.kind = OpKind::Reverse;
        ev.operation = Operation::ReverseTakeover {
            main: "main-1".into(),
        };
        ev.requested_by = Requester {
            interface: "http".into(),
            identity: "token".into(),
        };
        ev.reason = None;
        ev.message = "main-1 is back on its configured address".into();
        after.events = Arc::new(vec![ev]);
        let notes = transitions(&before, &after, ROOT, false);
        assert_eq!(notes.len(), 1);
        let r = &notes[0];
        assert_eq!(r.kind, Kind::RedundancyRestored);
        assert_eq!(
            vb(r, &mib::notify_object(ROOT, notify_arc::REQUESTED_BY)),
            Some(&Value::text("http:token"))
        );
        assert_eq!(
            vb(r, &mib::notify_object(ROOT, notify_arc::REASON)),
            Some(&Value::text("main-1 is back on its configured address"))
        );
        assert_eq!(
            vb(r, &mib::scalar(ROOT, scalar_arc::REDUNDANCY_STATUS)),
            Some(&Value::Integer(1))
        );
    }

    #[test]
    fn a_failed_replication_is_announced_once() {
        let before = snapshot();
        let mut after = snapshot();
        after.members[1].record.replication = Some(Replication {
            at: 1_700_000_030_000,
            result: ReplicationResult::Failed,
            main: "main-1".into(),
            last_success: BTreeMap::new(),
            error: Some("main-1 unreachable".into()),
        });
        let notes = transitions(&before, &after, ROOT, false);
        assert_eq!(notes.len(), 1);
        let n = &notes[0];
        assert_eq!(n.kind, Kind::ReplicationFailed);
        assert_eq!(
            vb(
                n,
                &mib::member_cell(ROOT, member_col::LAST_REPLICATION_RESULT, 2)
            ),
            Some(&Value::Integer(3))
        );
        assert_eq!(
            vb(n, &mib::notify_object(ROOT, notify_arc::REASON)),
            Some(&Value::text("main-1 unreachable"))
        );
        assert!(transitions(&after, &after, ROOT, false).is_empty());
    }

    /// `snap` as `member`'s agent sees it.
    fn seen_by(snap: &Snapshot, member: &str) -> Snapshot {
        let mut s = snap.clone();
        s.local = member.into();
        s
    }

    fn failing(snap: &Snapshot, at: Millis, main: &str) -> Snapshot {
        let mut s = snap.clone();
        s.members[1].record.replication = Some(Replication {
            at,
            result: ReplicationResult::Failed,
            main: main.into(),
            last_success: BTreeMap::new(),
            error: Some(format!("{main} unreachable")),
        });
        s
    }

    #[test]
    fn a_replication_that_keeps_failing_is_announced_once_then_at_alarm_repeat() {
        let ok = snapshot(); // backup-1's agent; its last replication succeeded
        let first = failing(&ok, 1_000, "main-1");
        let kinds_of = |a: &Snapshot, b: &Snapshot| kinds(&transitions(a, b, ROOT, false));
        assert_eq!(kinds_of(&ok, &first), [Kind::ReplicationFailed]);
        // Failing again (every attempt, a new time): no news.
        let again = failing(&ok, 6_000, "main-1");
        assert!(kinds_of(&first, &again).is_empty());
        // Another Main's data failing: news; success, then failing: news.
        assert_eq!(
            kinds_of(&again, &failing(&ok, 7_000, "main-2")),
            [Kind::ReplicationFailed]
        );
        assert_eq!(kinds_of(&ok, &again), [Kind::ReplicationFailed]);
        // Another member's failed replication is its own agent's to announce.
        let theirs = seen_by(&first, "main-1");
        assert!(kinds_of(&seen_by(&ok, "main-1"), &theirs).is_empty());
        // Repeated every alarm_repeat while it keeps failing, not at every attempt.
        let mut r = Repeater::new(Duration::from_secs(60));
        r.seen(&first, 1_000);
        assert!(!r.replication_due(&again, 30_000));
        r.seen(&again, 30_000);
        assert!(r.replication_due(&again, 61_000));
        assert!(!r.replication_due(&again, 62_000));
        assert!(r.replication_due(&again, 121_000));
        // Fixed: nothing more; failing again later: counted from then.
        r.seen(&ok, 130_000);
        assert!(!r.replication_due(&ok, 400_000));
        r.seen(&first, 500_000);
        assert!(!r.replication_due(&first, 520_000));
        assert!(r.replication_due(&first, 560_000));
        // Another member's failure is never repeated by this agent.
        let mut r = Repeater::new(Duration::from_secs(1));
        r.seen(&theirs, 0);
        assert!(!r.replication_due(&theirs, 10_000));
    }

    #[test]
    fn one_agent_sends_the_group_notifications_unless_every_agent_is_asked_to() {
        let mut after = taken_over(100);
        after.events = Arc::new(vec![takeover_event(100)]);
        let notes = transitions(&snapshot(), &after, ROOT, false);
        assert_eq!(kinds(&notes), [Kind::Takeover, Kind::NoRedundancy]);
        assert!(notes.iter().all(|n| n.scope == Scope::Group));
        // Both agents hear each other: main-1 (index 1) sends, backup-1 does not.
        let (on_main, on_backup) = (seen_by(&after, "main-1"), seen_by(&after, "backup-1"));
        assert_eq!(group_sender(&on_backup), Some("main-1"));
        let one = GroupNotifications::One;
        for n in &notes {
            assert!(sends(n, &on_main, one));
            assert!(!sends(n, &on_backup, one));
            assert!(sends(n, &on_backup, GroupNotifications::Every));
        }
        // The Main's agent is dead (unknown to backup-1): backup-1 sends.
        let mut dead = on_backup.clone();
        dead.members[0].state = OperState::Unknown;
        assert_eq!(group_sender(&dead), Some("backup-1"));
        assert!(notes.iter().all(|n| sends(n, &dead, one)));
        // Its own notifications every agent sends.
        let own = transitions(&snapshot(), &failing(&snapshot(), 5, "main-1"), ROOT, false);
        assert_eq!(own[0].scope, Scope::Agent);
        assert!(sends(&own[0], &on_backup, one));
    }

    #[test]
    fn the_event_id_is_the_same_on_every_agent() {
        let mut after = taken_over(100);
        after.events = Arc::new(vec![takeover_event(100)]);
        let id = |snap: &Snapshot, member: &str| -> Vec<Option<Value>> {
            transitions(
                &seen_by(&snapshot(), member),
                &seen_by(snap, member),
                ROOT,
                false,
            )
            .iter()
            .map(|n| vb(n, &mib::notify_object(ROOT, notify_arc::EVENT_ID)).cloned())
            .collect()
        };
        let on_main = id(&after, "main-1");
        assert_eq!(on_main, id(&after, "backup-1"));
        assert_eq!(
            on_main,
            [
                Some(Value::text("takeover/main-1/backup-1/100")),
                Some(Value::text("takeover/main-1/backup-1/100")),
            ]
        );
        // An alarm about one agent is that agent's to send, whoever is the group's sender.
        let mut s = snapshot();
        let a = crate::group::state_not_writable("backup-1", "disk full", 500);
        s.redundancy.alarms = vec![a.clone()];
        let n = no_redundancy(&s, ROOT, &a);
        assert_eq!(n.scope, Scope::Agent);
        assert_eq!(alarm_event_id(&a), "state_not_writable/-/-/500");
    }

    /// `with_safety(at)` with the quorum source up since `at` and no fence run yet.
    fn safe(at: Millis) -> Snapshot {
        let mut s = with_safety(at);
        if let Some(c) = s.coordination.as_mut() {
            c.up = true;
            c.error = None;
        }
        if let Some(f) = s.fencing.as_mut() {
            f.last = None;
        }
        s
    }

    fn kinds(notes: &[Notification]) -> Vec<Kind> {
        notes.iter().map(|n| n.kind).collect()
    }

    #[test]
    fn a_change_of_maintenance_mode_sends_rg_maintenance_mode_changed_once() {
        let off = snapshot();
        assert!(transitions(&off, &off, ROOT, false).is_empty());
        let by = Requester {
            interface: "snmp".into(),
            identity: "noc".into(),
        };
        let mut on = off.clone();
        on.maintenance =
            on.maintenance
                .set(true, &by, Some("router swap"), 1_700_000_000_000, "main-1");
        for settling in [true, false] {
            let notes = transitions(&off, &on, ROOT, settling);
            assert_eq!(kinds(&notes), [Kind::MaintenanceModeChanged], "{settling}");
        }
        let notes = transitions(&off, &on, ROOT, false);
        let n = &notes[0];
        assert_eq!(n.trap_oid, mib::notification(ROOT, 9));
        let m = |arc| mib::maintenance_scalar(ROOT, arc);
        assert_eq!(vb(n, &m(maintenance_arc::MODE)), Some(&Value::Integer(1)));
        assert_eq!(
            vb(n, &m(maintenance_arc::CHANGED_TIME)),
            Some(&Value::Octets(mib::date_and_time(1_700_000_000_000)))
        );
        assert_eq!(
            vb(n, &m(maintenance_arc::CHANGED_BY)),
            Some(&Value::text("snmp:noc"))
        );
        assert_eq!(
            vb(n, &m(maintenance_arc::REASON)),
            Some(&Value::text("router swap"))
        );
        assert_eq!(
            n.scope,
            Scope::Group,
            "one agent of the group sends it by default"
        );
        assert_eq!(
            vb(n, &mib::notify_object(ROOT, notify_arc::EVENT_ID)),
            Some(&Value::display("maintenance/1/main-1")),
            "the setting's stamp: the same on every agent"
        );
        assert_eq!(
            n.varbinds.len(),
            7,
            "5 MIB varbinds, rgNotifyEventId and sysName.0"
        );
        // The same setting again: nothing. Switched off: once more, with false(2).
        assert!(transitions(&on, &on, ROOT, false).is_empty());
        let mut cleared = on.clone();
        cleared.maintenance = on.maintenance.set(false, &by, None, 1_700_000_060_000, "b");
        let notes = transitions(&on, &cleared, ROOT, false);
        assert_eq!(kinds(&notes), [Kind::MaintenanceModeChanged]);
        assert_eq!(
            vb(&notes[0], &m(maintenance_arc::MODE)),
            Some(&Value::Integer(2))
        );
    }

    #[test]
    fn a_failed_fence_run_sends_rg_fencing_failed_once() {
        let before = safe(100);
        let after = with_safety(100); // last run: failed against main-1 at 100
        let notes = transitions(&before, &after, ROOT, true);
        assert!(
            kinds(&notes).contains(&Kind::FencingFailed),
            "even while settling"
        );
        let notes = transitions(&before, &after, ROOT, false);
        let n = notes
            .iter()
            .find(|n| n.kind == Kind::FencingFailed)
            .expect("rgFencingFailed");
        assert_eq!(n.trap_oid, mib::notification(ROOT, 6));
        let o = |arc| mib::notify_object(ROOT, arc);
        let f = |arc| mib::fencing_scalar(ROOT, arc);
        assert_eq!(
            vb(n, &o(notify_arc::MAIN_NAME)),
            Some(&Value::text("main-1"))
        );
        assert_eq!(
            vb(n, &o(notify_arc::BACKUP_NAME)),
            Some(&Value::text("backup-1")),
            "the agent that ran it"
        );
        assert_eq!(
            vb(n, &f(fencing_arc::LAST_OUTCOME)),
            Some(&Value::Integer(3))
        );
        assert_eq!(
            vb(n, &f(fencing_arc::LAST_TIME)),
            Some(&Value::Octets(mib::date_and_time(100)))
        );
        assert_eq!(
            vb(n, &f(fencing_arc::LAST_DETAIL)),
            Some(&Value::text("exit status 1: power controller refused"))
        );
        assert_eq!(n.varbinds.len(), 7, "6 MIB varbinds and sysName.0");
        // the same run again: nothing; a timeout later: again; a success: nothing
        let notes = transitions(&after, &after, ROOT, false);
        assert!(!kinds(&notes).contains(&Kind::FencingFailed));
        let mut timeout = after.clone();
        if let Some(run) = timeout.fencing.as_mut().and_then(|f| f.last.as_mut()) {
            run.at = 200;
            run.outcome = FenceOutcome::Timeout;
        }
        let notes = transitions(&after, &timeout, ROOT, false);
        let n = notes
            .iter()
            .find(|n| n.kind == Kind::FencingFailed)
            .expect("rgFencingFailed for the timeout");
        assert_eq!(
            vb(n, &mib::fencing_scalar(ROOT, fencing_arc::LAST_OUTCOME)),
            Some(&Value::Integer(4))
        );
        let mut success = timeout.clone();
        if let Some(run) = success.fencing.as_mut().and_then(|f| f.last.as_mut()) {
            run.at = 300;
            run.outcome = FenceOutcome::Success;
        }
        assert!(
            !kinds(&transitions(&timeout, &success, ROOT, false)).contains(&Kind::FencingFailed)
        );
        // no fence command: nothing
        assert!(fencing_failed(&snapshot(), ROOT).is_none());
    }

    #[test]
    fn the_quorum_source_going_down_and_up_sends_lost_then_restored() {
        let up = safe(100);
        let mut down = up.clone();
        if let Some(c) = down.coordination.as_mut() {
            c.up = false;
            c.since = 500;
            c.error = Some("connection refused".into());
        }
        if let Some(f) = down.fencing.as_mut() {
            f.last = None;
        }
        let notes = transitions(&up, &down, ROOT, false);
        assert_eq!(kinds(&notes), vec![Kind::CoordinationLost]);
        let n = &notes[0];
        assert_eq!(n.trap_oid, mib::notification(ROOT, 7));
        let c = |arc| mib::coordination_scalar(ROOT, arc);
        assert_eq!(
            vb(n, &c(coordination_arc::STATUS)),
            Some(&Value::Integer(3))
        );
        assert_eq!(
            vb(n, &c(coordination_arc::BACKEND)),
            Some(&Value::text("etcd"))
        );
        assert_eq!(
            vb(n, &c(coordination_arc::SINCE)),
            Some(&Value::Octets(mib::date_and_time(500)))
        );
        assert_eq!(
            vb(n, &c(coordination_arc::ERROR)),
            Some(&Value::text("connection refused"))
        );
        // still down: nothing more; while settling: nothing (announced once settled)
        assert!(transitions(&down, &down, ROOT, false).is_empty());
        assert!(transitions(&up, &down, ROOT, true).is_empty());
        // back up: restored
        let mut again = up.clone();
        if let Some(c) = again.coordination.as_mut() {
            c.since = 900;
        }
        let notes = transitions(&down, &again, ROOT, false);
        assert_eq!(kinds(&notes), vec![Kind::CoordinationRestored]);
        assert_eq!(notes[0].trap_oid, mib::notification(ROOT, 8));
        assert_eq!(
            vb(&notes[0], &c(coordination_arc::STATUS)),
            Some(&Value::Integer(2))
        );
        // up from the start is no news; down with a new since (up and down in between): lost
        assert!(transitions(&snapshot(), &up, ROOT, false).is_empty());
        let mut down_again = down.clone();
        if let Some(c) = down_again.coordination.as_mut() {
            c.since = 1_000;
        }
        assert_eq!(
            kinds(&transitions(&down, &down_again, ROOT, false)),
            vec![Kind::CoordinationLost]
        );
        // no quorum source at all: nothing
        assert!(coordination(&snapshot(), ROOT).is_none());
    }

    #[test]
    fn the_repeater_repeats_while_raised_and_forgets_cleared_alarms() {
        let raised = taken_over(100);
        let mut r = Repeater::new(Duration::from_secs(60));
        r.seen(&raised, 1_000);
        assert!(r.due(&raised, 30_000).is_empty());
        assert_eq!(r.due(&raised, 61_000).len(), 1);
        assert!(r.due(&raised, 62_000).is_empty());
        assert_eq!(r.due(&raised, 121_000).len(), 1);
        let clear = snapshot();
        r.seen(&clear, 130_000);
        assert!(r.due(&clear, 400_000).is_empty());
        // raised again later: a new alarm, counted from when it is seen
        let again = taken_over(500_000);
        r.seen(&again, 500_000);
        assert!(r.due(&again, 520_000).is_empty());
        assert_eq!(r.due(&again, 560_000).len(), 1);
    }
}
