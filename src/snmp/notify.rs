//! The delivery of notifications: the loop that watches the published snapshot, asks
//! [`crate::snmp::transitions`] which notifications each change calls for, and hands them to
//! every configured target, one ordered queue per target, counting what became of each through
//! the [`Count`] callback (the agent's snapshot carries the counts). Does I/O (through
//! [`crate::snmp::notifier::Notifier`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::snapshot::{NotificationCounts, Snapshot, VERSION};
use crate::snmp::config::GroupNotifications;
use crate::snmp::mib::Oid;
use crate::snmp::notifier::{Delivery, Notifier, Outcome};
use crate::snmp::transitions::{
    cold_start, coordination, no_redundancy, replication_failed, sends, transitions, Kind,
    Notification, Repeater,
};

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

/// What the notification loop needs (put together by `snmp::server`).
pub(crate) struct Setup {
    /// Where UNDERSTUDY-MIB is rooted.
    pub root: Oid,
    pub notifiers: Vec<Arc<Notifier>>,
    pub count: Count,
    /// `sysUpTime` in hundredths of a second.
    pub uptime: Arc<dyn Fn() -> u32 + Send + Sync>,
    pub alarm_repeat: Duration,
    /// Which agents send the group-level notifications.
    pub group_notifications: GroupNotifications,
    /// How long to let the group meet before judging its redundancy.
    pub settle: Duration,
}

/// Watches the snapshot and sends notifications until `shutdown` resolves.
pub(crate) async fn run(
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
        group_notifications,
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
    // What this agent sends of what `snap` calls for: its own notifications, and the group's
    // when it is the one that sends them (or every agent does).
    let deliver = |note: Notification, snap: &Snapshot| {
        if sends(&note, snap, group_notifications) {
            send(note);
        } else {
            debug!(
                notification = note.kind.name(),
                "group notification left to the group's sender"
            );
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
                deliver(no_redundancy(snap, &root, a), snap);
            }
            // A quorum source down since the start is announced now, as the alarms are.
            if let Some(lost) =
                coordination(snap, &root).filter(|n| n.kind == Kind::CoordinationLost)
            {
                send(lost);
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
                        deliver(note, &new);
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
                    let now = ms();
                    for a in repeater.due(&old, now) {
                        deliver(no_redundancy(&old, &root, a), &old);
                    }
                    if repeater.replication_due(&old, now) {
                        if let Some(n) = replication_failed(&old, &root, &old.local) {
                            deliver(n, &old);
                        }
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
