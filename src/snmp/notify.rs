//! Notifications: which ones a change of the published snapshot calls for (pure:
//! [`transitions`], [`Repeater`]), and the loop that watches the snapshot and hands them to
//! every configured target, one ordered queue per target, counting what became of each
//! (does I/O through [`crate::snmp::agent::Notifier`]).
//!
//! Every agent reports the group as it sees it: `coldStart` when it starts, `rgTakeover` or
//! `rgFailover` when a Main is taken over, `rgNoRedundancy` when an alarm is raised and again
//! every `alarm_repeat` while it stays raised, `rgRedundancyRestored` when the last alarm
//! clears, `rgReplicationFailed` when a Backup's replication fails. Each notification also
//! carries `sysName.0`, the member whose agent sent it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::command::{Event, OutcomeKind};
use crate::group::{Alarm, Millis, OpKind, Operation, ReplicationResult, Requester, TakeoverMark};
use crate::snapshot::{NotificationCounts, Snapshot, VERSION};
use crate::snmp::agent::{Delivery, Notifier};
use crate::snmp::mib::{
    self, alarm_col, member_col, notification_arc as na, notify_arc, scalar_arc, Oid, Value,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ColdStart,
    Takeover,
    Failover,
    NoRedundancy,
    RedundancyRestored,
    ReplicationFailed,
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
        }
    }
}

/// One notification: its OID (`snmpTrapOID.0`) and varbinds, in MIB order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: Kind,
    pub trap_oid: Oid,
    pub varbinds: Vec<(Oid, Value)>,
}

fn redundancy_status(snap: &Snapshot) -> Value {
    Value::Integer(if snap.redundancy.redundant() { 1 } else { 2 })
}

fn with_sys_name(mut n: Notification, snap: &Snapshot) -> Notification {
    n.varbinds
        .push((mib::SYS_NAME_0.to_vec(), Value::text(&snap.local)));
    n
}

/// `coldStart`.
pub fn cold_start(snap: &Snapshot) -> Notification {
    with_sys_name(
        Notification {
            kind: Kind::ColdStart,
            trap_oid: mib::COLD_START.to_vec(),
            varbinds: Vec::new(),
        },
        snap,
    )
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
    with_sys_name(
        Notification {
            kind: if failover {
                Kind::Failover
            } else {
                Kind::Takeover
            },
            trap_oid: mib::notification(root, if failover { na::FAILOVER } else { na::TAKEOVER }),
            varbinds: vec![
                (
                    mib::scalar(root, scalar_arc::GROUP_NAME),
                    Value::text(&snap.group),
                ),
                (
                    mib::notify_object(root, notify_arc::MAIN_NAME),
                    Value::text(main),
                ),
                (
                    mib::notify_object(root, notify_arc::BACKUP_NAME),
                    Value::text(backup),
                ),
                (
                    mib::member_cell(root, member_col::CURRENT_ADDRESS, b),
                    Value::text(&current),
                ),
                (
                    mib::member_cell(root, member_col::EXTRA_ADDRESS, m),
                    Value::text(&extra),
                ),
                (
                    mib::notify_object(root, notify_arc::REQUESTED_BY),
                    Value::text(&requested_by),
                ),
                (
                    mib::notify_object(root, notify_arc::REASON),
                    Value::text(&reason),
                ),
                (
                    mib::scalar(root, scalar_arc::REDUNDANCY_STATUS),
                    redundancy_status(snap),
                ),
            ],
        },
        snap,
    )
}

/// `rgNoRedundancy` for one alarm (its row in `rgAlarmTable`).
pub fn no_redundancy(snap: &Snapshot, root: &[u32], alarm: &Alarm) -> Notification {
    let idx = mib::alarm_index(snap, alarm);
    let since = if snap.redundancy.redundant() {
        None
    } else {
        snap.redundancy.since()
    };
    with_sys_name(
        Notification {
            kind: Kind::NoRedundancy,
            trap_oid: mib::notification(root, na::NO_REDUNDANCY),
            varbinds: vec![
                (
                    mib::scalar(root, scalar_arc::GROUP_NAME),
                    Value::text(&snap.group),
                ),
                (
                    mib::scalar(root, scalar_arc::REDUNDANCY_STATUS),
                    redundancy_status(snap),
                ),
                (
                    mib::scalar(root, scalar_arc::NO_REDUNDANCY_SINCE),
                    Value::Octets(since.map_or_else(mib::no_date_and_time, mib::date_and_time)),
                ),
                (
                    mib::alarm_cell(root, alarm_col::TYPE, idx),
                    Value::Integer(mib::alarm_type_value(alarm.kind)),
                ),
                (
                    mib::alarm_cell(root, alarm_col::REASON, idx),
                    Value::text(&alarm.reason),
                ),
            ],
        },
        snap,
    )
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
    with_sys_name(
        Notification {
            kind: Kind::RedundancyRestored,
            trap_oid: mib::notification(root, na::REDUNDANCY_RESTORED),
            varbinds: vec![
                (
                    mib::scalar(root, scalar_arc::GROUP_NAME),
                    Value::text(&snap.group),
                ),
                (
                    mib::scalar(root, scalar_arc::REDUNDANCY_STATUS),
                    redundancy_status(snap),
                ),
                (
                    mib::notify_object(root, notify_arc::REQUESTED_BY),
                    Value::text(&requested_by),
                ),
                (
                    mib::notify_object(root, notify_arc::REASON),
                    Value::text(&reason),
                ),
            ],
        },
        snap,
    )
}

/// `rgReplicationFailed` for the Backup `backup` (its last replication failed).
pub fn replication_failed(snap: &Snapshot, root: &[u32], backup: &str) -> Option<Notification> {
    let b = snap.member(backup)?;
    let rep = b.record.replication.as_ref()?;
    let idx = mib::member_index(snap, backup);
    Some(with_sys_name(
        Notification {
            kind: Kind::ReplicationFailed,
            trap_oid: mib::notification(root, na::REPLICATION_FAILED),
            varbinds: vec![
                (
                    mib::scalar(root, scalar_arc::GROUP_NAME),
                    Value::text(&snap.group),
                ),
                (
                    mib::notify_object(root, notify_arc::MAIN_NAME),
                    Value::text(&rep.main),
                ),
                (
                    mib::notify_object(root, notify_arc::BACKUP_NAME),
                    Value::text(backup),
                ),
                (
                    mib::member_cell(root, member_col::LAST_REPLICATION_TIME, idx),
                    Value::Octets(mib::date_and_time(rep.at)),
                ),
                (
                    mib::member_cell(root, member_col::LAST_REPLICATION_RESULT, idx),
                    Value::Integer(mib::replication_value(rep.result)),
                ),
                (
                    mib::notify_object(root, notify_arc::REASON),
                    Value::text(rep.error.as_deref().unwrap_or("")),
                ),
            ],
        },
        snap,
    ))
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
    }
    for m in &new.members {
        let Some(rep) = &m.record.replication else {
            continue;
        };
        if rep.result != ReplicationResult::Failed {
            continue;
        }
        let before = old
            .member(&m.record.name)
            .and_then(|o| o.record.replication.as_ref())
            .map(|r| r.at);
        if before != Some(rep.at) {
            out.extend(replication_failed(new, root, &m.record.name));
        }
    }
    out
}

/// Keeps track of when each raised alarm was last announced, to repeat `rgNoRedundancy` every
/// `every` while it stays raised. Time is a value (milliseconds on any monotonic clock).
#[derive(Debug, Clone)]
pub struct Repeater {
    every: Millis,
    last: BTreeMap<(u32, Millis), Millis>,
}

impl Repeater {
    pub fn new(every: Duration) -> Self {
        Repeater {
            every: u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1),
            last: BTreeMap::new(),
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

// ------------------------------------------------------------------ counting

/// What became of a notification sent to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A trap was handed to the network.
    Sent,
    /// An inform was acknowledged by the receiver.
    Acknowledged,
    /// An inform was not acknowledged after every retry.
    GivenUp,
    /// It could not be sent at all (no route, name not resolved, ...).
    Failed,
    /// The target's queue was full.
    Dropped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Acknowledged => "acknowledged",
            Outcome::GivenUp => "given_up",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Every (type, outcome) pair a notification can end with, counted from zero: what the
/// agent's snapshot (and so `understudy_snmp_notifications_total`) starts from.
pub fn zero_counts() -> NotificationCounts {
    [
        (Delivery::Trap, Outcome::Sent),
        (Delivery::Trap, Outcome::Failed),
        (Delivery::Trap, Outcome::Dropped),
        (Delivery::Inform, Outcome::Acknowledged),
        (Delivery::Inform, Outcome::GivenUp),
        (Delivery::Inform, Outcome::Failed),
        (Delivery::Inform, Outcome::Dropped),
    ]
    .into_iter()
    .map(|(d, o)| ((d.as_str(), o.as_str()), 0))
    .collect()
}

/// Where the outcome of every notification is counted (the agent, whose snapshot carries the
/// counts to the metrics).
pub type Count = Arc<dyn Fn(Delivery, Outcome) + Send + Sync>;

// ------------------------------------------------------------------ the loop

/// Has this agent heard from every member (none shown `unknown`)?
fn all_heard(snap: &Snapshot) -> bool {
    snap.members
        .iter()
        .all(|m| m.state != crate::group::OperState::Unknown)
}

/// How many notifications wait for one target before new ones are dropped.
const QUEUE: usize = 256;

/// What the notification loop needs.
pub struct Setup {
    /// Where UNDERSTUDY-MIB is rooted.
    pub root: Oid,
    pub notifiers: Vec<Arc<Notifier>>,
    pub count: Count,
    /// `sysUpTime` in hundredths of a second.
    pub uptime: Arc<dyn Fn() -> u32 + Send + Sync>,
    pub alarm_repeat: Duration,
    /// How long to let the group meet before judging its redundancy.
    pub settle: Duration,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("notifiers", &self.notifiers)
            .field("alarm_repeat", &self.alarm_repeat)
            .finish_non_exhaustive()
    }
}

/// Watches the snapshot and sends notifications until `shutdown` resolves.
pub async fn run(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    setup: Setup,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Setup {
        root,
        notifiers,
        count,
        uptime,
        alarm_repeat,
        settle,
    } = setup;
    tokio::pin!(shutdown);
    let mut queues = Vec::new();
    let mut workers = tokio::task::JoinSet::new();
    for n in notifiers {
        let (tx, mut rx) = mpsc::channel::<Notification>(QUEUE);
        let count = count.clone();
        let uptime = uptime.clone();
        let delivery = n.delivery();
        workers.spawn(async move {
            while let Some(note) = rx.recv().await {
                let outcome = n.send(&note, uptime()).await;
                count(delivery, outcome);
                match outcome {
                    Outcome::Sent | Outcome::Acknowledged => {
                        debug!(target_addr = %n.target(), notification = note.kind.name(),
                            outcome = outcome.as_str(), "notification delivered");
                    }
                    _ => warn!(target_addr = %n.target(), notification = note.kind.name(),
                        outcome = outcome.as_str(), "notification not delivered"),
                }
            }
        });
        queues.push((tx, delivery));
    }
    let send = |note: Notification| {
        info!(
            notification = note.kind.name(),
            targets = queues.len(),
            "sending notification"
        );
        for (q, delivery) in &queues {
            if q.try_send(note.clone()).is_err() {
                count(*delivery, Outcome::Dropped);
            }
        }
    };
    let start = Instant::now();
    let ms = move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    send(cold_start(&snapshots.borrow_and_update().clone()));
    // The first snapshot of the group (the agent publishes its restored state first).
    let first = async {
        loop {
            let s = snapshots.borrow_and_update().clone();
            if !s.members.is_empty() {
                return Some(s);
            }
            if snapshots.changed().await.is_err() {
                return None;
            }
        }
    };
    let first = tokio::select! {
        s = first => s,
        _ = &mut shutdown => None,
    };
    if let Some(mut old) = first {
        // Let the group meet before judging its redundancy: a peer not heard from yet is not a
        // lost standby. Takeovers are reported at once; alarms once every member has been
        // heard from or `settle` has passed (alarms already raised, kept across restarts,
        // are announced then).
        let settled = tokio::time::sleep(settle);
        tokio::pin!(settled);
        let mut settling = true;
        let mut repeater = Repeater::new(alarm_repeat);
        let settle_now = |snap: &Snapshot, repeater: &mut Repeater| {
            for a in &snap.redundancy.alarms {
                send(no_redundancy(snap, &root, a));
            }
            repeater.seen(snap, ms());
        };
        if all_heard(&old) {
            settling = false;
            settle_now(&old, &mut repeater);
        }
        let tick_every =
            (alarm_repeat / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = snapshots.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let new = snapshots.borrow_and_update().clone();
                    if new.members.is_empty() {
                        continue;
                    }
                    for note in transitions(&old, &new, &root, settling) {
                        send(note);
                    }
                    if settling && all_heard(&new) {
                        settling = false;
                        settle_now(&new, &mut repeater);
                    } else if !settling {
                        repeater.seen(&new, ms());
                    }
                    old = new;
                }
                _ = &mut settled, if settling => {
                    settling = false;
                    settle_now(&old, &mut repeater);
                }
                _ = tick.tick(), if !settling => {
                    for a in repeater.due(&old, ms()) {
                        send(no_redundancy(&old, &root, a));
                    }
                }
                _ = &mut shutdown => break,
            }
        }
    }
    drop(queues);
    // Let the queues drain briefly (informs may be waiting for an acknowledgement).
    let drain = async { while workers.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        debug!("notification queues not drained at shutdown");
    }
    debug!(version = VERSION, "notification loop stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Event;
    use crate::group::Replication;
    use crate::snmp::mib::tests::{snapshot, taken_over, ROOT};

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
        assert_eq!(t.varbinds.len(), 9, "8 MIB varbinds and sysName.0");
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
