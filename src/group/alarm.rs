//! The no-redundancy alarm, derived from the records: one alarm per taken-over Main, one while
//! a Main has no Backup in standby that could take it over now (`coverage`), one while a peer's
//! group definition differs (`definition`), with the only alarm bookkeeping an agent keeps
//! (when it first saw a Main uncovered). Pure.

use serde::{Deserialize, Serialize};

use super::{Agreement, GroupView, Millis, OpKind, Reachability, Uncovered};

/// One active alarm (a row of `rgAlarmTable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    #[serde(rename = "type")]
    pub kind: AlarmKind,
    pub raised_at: Millis,
    pub reason: String,
    pub main: Option<String>,
    pub backup: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    Takeover,
    Failover,
    /// A Main (not taken over) that no Backup in standby could take over now.
    NoStandbyBackup,
    /// A peer's configuration lists another group than this agent's.
    GroupDefinitionMismatch,
    /// This agent cannot write its state directory: it takes part in no operation.
    StateNotWritable,
    /// The configured quorum source (etcd) cannot be reached: failover is suspended (what
    /// serves keeps serving while the members reach each other).
    CoordinationLost,
    /// The fence command failed or timed out before a failover: the failover waits for it.
    FencingFailed,
}

/// The alarm of an agent that cannot reach its quorum source (`backend`) since `since`.
pub fn coordination_lost(member: &str, backend: &str, why: &str, since: Millis) -> Alarm {
    Alarm {
        kind: AlarmKind::CoordinationLost,
        raised_at: since,
        reason: format!(
            "{member} cannot reach its quorum source ({backend}: {why}); failover is suspended \
             and a Main that also loses every peer gives up its address when its lease runs out"
        ),
        main: None,
        backup: None,
    }
}

/// The alarm of a Backup (`backup`) whose fence command against `main` failed at `at`
/// (`why`): the failover of `main` waits until a fence run succeeds.
pub fn fencing_failed(backup: &str, main: &str, why: &str, at: Millis) -> Alarm {
    Alarm {
        kind: AlarmKind::FencingFailed,
        raised_at: at,
        reason: format!(
            "{backup} could not fence {main} ({why}); the failover of {main} waits for a fence \
             run that succeeds"
        ),
        main: Some(main.to_string()),
        backup: Some(backup.to_string()),
    }
}

/// The alarm of an agent (`member`) whose state cannot be written since `since` (`why`).
pub fn state_not_writable(member: &str, why: &str, since: Millis) -> Alarm {
    Alarm {
        kind: AlarmKind::StateNotWritable,
        raised_at: since,
        reason: format!(
            "{member} cannot write its state ({why}); it takes part in no operation until it can"
        ),
        main: None,
        backup: None,
    }
}

/// The alarms at one moment, and the no-standby time the agent is to keep from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub alarms: Vec<Alarm>,
    /// When this agent first saw a Main that no Backup in standby could take over; `None` while
    /// every Main is covered. Persist it when it differs from the value passed in.
    pub no_standby_since: Option<Millis>,
}

/// The no-standby bookkeeping: set to `now` when the shortfall (a Main uncovered) appears, kept
/// while it lasts, cleared when every Main is covered again.
pub fn no_standby_since(shortfall: bool, since: Option<Millis>, now: Millis) -> Option<Millis> {
    match (shortfall, since) {
        (true, None) => Some(now),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    }
}

impl GroupView {
    /// The alarms at `now` and the updated no-standby time, from the time kept so far.
    /// `agreement` tells which peers' group definitions differ from this agent's.
    pub fn alarm_state(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        agreement: &Agreement,
        no_standby: Option<Millis>,
        now: Millis,
    ) -> AlarmState {
        let uncovered = self.uncovered(reach, &agreement.mismatched());
        let since = no_standby_since(!uncovered.is_empty(), no_standby, now);
        let mut alarms = self.takeover_alarms();
        if let Some(a) = uncovered_alarm(&uncovered, since.unwrap_or(now)) {
            alarms.push(a);
        }
        alarms.extend(agreement.alarm());
        AlarmState {
            alarms,
            no_standby_since: since,
        }
    }

    /// The active alarms, derived from the records: one per taken-over pair, one while a Main
    /// (not taken over) has no Backup in standby that could take it over now
    /// ([`GroupView::uncovered`]), and one while a peer's group definition differs.
    /// `no_standby_since` is when this agent first saw a Main uncovered (the caller keeps and
    /// persists it: see [`GroupView::alarm_state`]).
    pub fn alarms(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        agreement: &Agreement,
        no_standby_since: Option<Millis>,
        now: Millis,
    ) -> Vec<Alarm> {
        self.alarm_state(reach, agreement, no_standby_since, now)
            .alarms
    }

    /// One alarm per taken-over Main, raised at its takeover.
    fn takeover_alarms(&self) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        for m in &self.members {
            if let (Some(mark), None) = (&m.takeover, &m.acting_for) {
                alarms.push(Alarm {
                    kind: if mark.kind == OpKind::Failover {
                        AlarmKind::Failover
                    } else {
                        AlarmKind::Takeover
                    },
                    raised_at: mark.at,
                    reason: format!(
                        "{} {} was taken over by {}: no redundancy until it is restored \
                         (reverse takeover, reconfigure or replace takeover)",
                        if mark.kind == OpKind::Failover {
                            "failover:"
                        } else {
                            "manual takeover:"
                        },
                        mark.main,
                        mark.backup
                    ),
                    main: Some(mark.main.clone()),
                    backup: Some(mark.backup.clone()),
                });
            }
        }
        alarms
    }
}

/// The alarm while some Main is uncovered: its reason names each such Main and, per Backup,
/// the takeover preconditions it fails.
fn uncovered_alarm(uncovered: &[Uncovered], raised_at: Millis) -> Option<Alarm> {
    if uncovered.is_empty() {
        return None;
    }
    Some(Alarm {
        kind: AlarmKind::NoStandbyBackup,
        raised_at,
        reason: format!(
            "no backup in standby could take over {}",
            uncovered
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", nor ")
        ),
        main: match uncovered {
            [one] => Some(one.main.clone()),
            _ => None,
        },
        backup: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_standby_since_table() {
        // (shortfall, kept, now, expected)
        let rows = [
            (false, None, 5, None),
            (true, None, 5, Some(5)),
            (true, Some(2), 5, Some(2)),
            (false, Some(2), 5, None),
        ];
        for (shortfall, kept, now, want) in rows {
            assert_eq!(
                no_standby_since(shortfall, kept, now),
                want,
                "{shortfall} {kept:?}"
            );
        }
    }

    /// main-1 and two Backups that have both replicated it.
    fn view() -> GroupView {
        let mut v = crate::group::test_view(&["main-1", "backup-1", "backup-2"]);
        for b in &mut v.members[1..] {
            b.replication = Some(crate::group::Replication {
                at: 1,
                result: crate::group::ReplicationResult::Success,
                main: "main-1".into(),
                last_success: [("main-1".to_string(), 1)].into(),
                error: None,
            });
        }
        v
    }

    proptest! {
        /// Over any sequence of Backups coming and going: the kept time is set exactly while no
        /// Backup could take main-1 over, is the moment the shortfall began, and is the raise
        /// time of the no-standby alarm.
        #[test]
        fn the_no_standby_alarm_keeps_its_raise_time(
            steps in prop::collection::vec((any::<bool>(), any::<bool>()), 1..40)
        ) {
            let v = view();
            let mut kept = None;
            let mut began = None;
            for (i, (up1, up2)) in steps.into_iter().enumerate() {
                let now = 1_000 * (i as Millis + 1);
                let reach = move |m: &str| match m {
                    "backup-1" if !up1 => Reachability::Unreachable,
                    "backup-2" if !up2 => Reachability::Unreachable,
                    _ => Reachability::Reachable,
                };
                let shortfall = !up1 && !up2;
                if shortfall && began.is_none() {
                    began = Some(now);
                } else if !shortfall {
                    began = None;
                }
                let state = v.alarm_state(&reach, &Agreement::default(), kept, now);
                prop_assert_eq!(state.no_standby_since, began);
                let raised: Vec<Millis> = state
                    .alarms
                    .iter()
                    .filter(|a| a.kind == AlarmKind::NoStandbyBackup)
                    .map(|a| a.raised_at)
                    .collect();
                prop_assert_eq!(raised, began.into_iter().collect::<Vec<_>>());
                kept = state.no_standby_since;
            }
        }
    }
}
