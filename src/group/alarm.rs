//! The no-redundancy alarm, derived from the records: one alarm per taken-over Main and one
//! when no Backup is in standby, with the only alarm bookkeeping an agent keeps (when it first
//! saw no Backup in standby). Pure.

use serde::{Deserialize, Serialize};

use super::{GroupView, MemberRecord, Millis, OpKind, OperState, Reachability, Role};

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
    NoStandbyBackup,
}

/// The alarms at one moment, and the no-standby time the agent is to keep from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub alarms: Vec<Alarm>,
    /// When this agent first saw no Backup in standby; `None` while one is. Persist it when it
    /// differs from the value passed in.
    pub no_standby_since: Option<Millis>,
}

/// The no-standby bookkeeping: set to `now` when the shortfall appears, kept while it lasts,
/// cleared when a Backup is in standby again.
pub fn no_standby_since(shortfall: bool, since: Option<Millis>, now: Millis) -> Option<Millis> {
    match (shortfall, since) {
        (true, None) => Some(now),
        (true, Some(t)) => Some(t),
        (false, _) => None,
    }
}

impl GroupView {
    /// The alarms at `now` and the updated no-standby time, from the time kept so far.
    pub fn alarm_state(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        no_standby: Option<Millis>,
        now: Millis,
    ) -> AlarmState {
        let shortfall = self.standby_shortfall(reach).is_some();
        let since = no_standby_since(shortfall, no_standby, now);
        AlarmState {
            alarms: self.alarms(reach, since, now),
            no_standby_since: since,
        }
    }

    /// The active alarms, derived from the records: one per taken-over pair, and one when no
    /// Backup is in standby to cover the Mains. `no_standby_since` is when this agent first saw
    /// the latter condition (the caller keeps and persists it).
    pub fn alarms(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        no_standby_since: Option<Millis>,
        now: Millis,
    ) -> Vec<Alarm> {
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
        if let Some(reason) = self.standby_shortfall(reach) {
            alarms.push(Alarm {
                kind: AlarmKind::NoStandbyBackup,
                raised_at: no_standby_since.unwrap_or(now),
                reason,
                main: None,
                backup: None,
            });
        }
        alarms
    }

    /// Why no Backup covers the Mains, or `None` when one is in standby.
    pub fn standby_shortfall(&self, reach: &dyn Fn(&str) -> Reachability) -> Option<String> {
        let has_main = self.members.iter().any(|m| m.role == Role::Main);
        if !has_main {
            return None;
        }
        let backups: Vec<&MemberRecord> = self
            .members
            .iter()
            .filter(|m| m.role == Role::Backup)
            .collect();
        if backups.is_empty() {
            return Some("the group has no configured backup".to_string());
        }
        let standby = backups
            .iter()
            .any(|b| b.state == OperState::Standby && reach(&b.name) != Reachability::Unreachable);
        if standby {
            return None;
        }
        let why = backups
            .iter()
            .map(|b| {
                let state = self.effective_state(b, reach(&b.name));
                format!("{} is {}", b.name, state)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "no backup is in standby to cover the mains ({why})"
        ))
    }
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

    fn view() -> GroupView {
        crate::group::test_view(&["main-1", "backup-1", "backup-2"])
    }

    proptest! {
        /// Over any sequence of Backups coming and going: the kept time is set exactly while no
        /// Backup is in standby, is the moment the shortfall began, and is the raise time of
        /// the no-standby alarm.
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
                let state = v.alarm_state(&reach, kept, now);
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
