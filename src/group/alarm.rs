//! The no-redundancy alarm, derived from the records: one alarm per taken-over Main and one
//! when no Backup is in standby. Pure.

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

impl GroupView {
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
