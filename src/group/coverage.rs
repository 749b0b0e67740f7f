//! Which Mains a Backup could take over now: for every Main that is not taken over, every
//! Backup's takeover is planned against the view with the operation's own precondition checks
//! (`GroupView::plan`), so "covered" means exactly "a takeover would be accepted". Pure.

use std::collections::BTreeSet;
use std::fmt;

use super::{GroupView, Operation, Precondition, Reachability, Refusal, ReplicationResult, Role};

/// A Main no Backup could take over now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    pub main: String,
    /// Per configured Backup (configuration order): the takeover preconditions it fails, and
    /// for `never_replicated` the error of its last attempt at that Main when it failed.
    /// Empty: the group has no configured Backup.
    pub backups: Vec<Refused>,
}

/// One Backup's refused takeover of one Main.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub backup: String,
    pub failed: Vec<Precondition>,
    /// Why its last replication of the Main failed, when that is why it never replicated (or,
    /// with no codes, why the takeover could not even be planned).
    pub replication_error: Option<String>,
}

impl fmt::Display for Uncovered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.backups.is_empty() {
            return write!(f, "{} (the group has no configured backup)", self.main);
        }
        let why = self
            .backups
            .iter()
            .map(|b| {
                let codes = b
                    .failed
                    .iter()
                    .map(|p| p.code())
                    .collect::<Vec<_>>()
                    .join(", ");
                match &b.replication_error {
                    Some(e) if codes.is_empty() => format!("{}: {e}", b.backup),
                    Some(e) => format!("{}: {codes}, its last replication failed: {e}", b.backup),
                    None => format!("{}: {codes}", b.backup),
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        write!(f, "{} ({why})", self.main)
    }
}

impl GroupView {
    /// The Mains (not taken over: a taken-over Main has its own alarm) that no Backup could
    /// take over now, in configuration order. A Backup covers a Main when the takeover would
    /// be planned without refusal by an agent that sees `reach` and `mismatched` as given; an
    /// operation under way is not counted (it ends).
    pub fn uncovered(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        mismatched: &BTreeSet<String>,
    ) -> Vec<Uncovered> {
        let idle = BTreeSet::new();
        let backups: Vec<&str> = self
            .members
            .iter()
            .filter(|m| m.role == Role::Backup)
            .map(|m| m.name.as_str())
            .collect();
        let mut out = Vec::new();
        for m in &self.members {
            if m.role != Role::Main || m.takeover.is_some() {
                continue;
            }
            let mut refused = Vec::new();
            let mut covered = false;
            for &b in &backups {
                let op = Operation::Takeover {
                    backup: b.to_string(),
                    main: m.name.clone(),
                };
                match self.plan(&op, 0, b, &idle, reach, mismatched) {
                    Ok(_) => {
                        covered = true;
                        break;
                    }
                    Err(Refusal::Preconditions(failed)) => {
                        let replication_error = failed
                            .contains(&Precondition::NeverReplicated)
                            .then(|| self.member(b).and_then(|r| r.replication.as_ref()))
                            .flatten()
                            .filter(|r| r.main == m.name && r.result == ReplicationResult::Failed)
                            .and_then(|r| r.error.clone());
                        refused.push(Refused {
                            backup: b.to_string(),
                            failed,
                            replication_error,
                        });
                    }
                    // Cannot happen for two distinct members of the view; shown as not
                    // covering (with why) rather than hidden.
                    Err(other) => refused.push(Refused {
                        backup: b.to_string(),
                        failed: Vec::new(),
                        replication_error: Some(other.to_string()),
                    }),
                }
            }
            if !covered {
                out.push(Uncovered {
                    main: m.name.clone(),
                    backups: refused,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{test_view, Millis, OperState};

    fn reachable(_: &str) -> Reachability {
        Reachability::Reachable
    }

    fn replicated(v: &mut GroupView, backup: &str, main: &str, at: Millis) {
        assert!(v.record_replication(backup, main, at, None), "{backup}");
    }

    fn failed(v: &mut GroupView, backup: &str, main: &str, error: &str) {
        assert!(
            v.record_replication(backup, main, 0, Some(error.into())),
            "{backup}"
        );
    }

    fn set(v: &mut GroupView, name: &str, f: impl FnOnce(&mut crate::group::MemberRecord)) {
        f(v.members
            .iter_mut()
            .find(|m| m.name == name)
            .expect("member"));
    }

    fn names(u: &[Uncovered]) -> Vec<String> {
        u.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_main_is_covered_only_by_a_backup_whose_takeover_would_be_accepted() {
        let none = BTreeSet::new();
        let backup_1 = BTreeSet::from(["backup-1".to_string()]);
        // (what, what was done to the group, members whose definition differs, uncovered)
        type Setup = fn(&mut GroupView);
        let rows: Vec<(&str, Setup, &BTreeSet<String>, Vec<&str>)> = vec![
            (
                "fresh group: nobody has replicated",
                |_| {},
                &none,
                vec![
                    "main-1 (backup-1: never_replicated; backup-2: never_replicated)",
                    "main-2 (backup-1: never_replicated; backup-2: never_replicated)",
                ],
            ),
            (
                "one backup replicated both mains",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-1", "main-2", 2);
                },
                &none,
                vec![],
            ),
            (
                "each main covered by another backup",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-2", "main-2", 2);
                },
                &none,
                vec![],
            ),
            (
                "the only replicating backup has a failing device check",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-1", "main-2", 2);
                    set(v, "backup-1", |b| b.failing_checks = vec!["router".into()]);
                },
                &none,
                vec![
                    "main-1 (backup-1: device_check_failed; backup-2: never_replicated)",
                    "main-2 (backup-1: device_check_failed; backup-2: never_replicated)",
                ],
            ),
            (
                "the last attempt failed: its error is the reason",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-2", "main-1", 1);
                    failed(v, "backup-1", "main-2", "main-2 publishes nothing");
                },
                &none,
                vec![
                    "main-2 (backup-1: never_replicated, its last replication failed: \
                     main-2 publishes nothing; backup-2: never_replicated)",
                ],
            ),
            (
                "a backup that is not in standby covers nothing",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-1", "main-2", 2);
                    set(v, "backup-1", |b| b.state = OperState::Offline);
                },
                &none,
                vec![
                    "main-1 (backup-1: backup_not_standby; backup-2: never_replicated)",
                    "main-2 (backup-1: backup_not_standby; backup-2: never_replicated)",
                ],
            ),
            (
                "a backup whose group definition differs covers nothing",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    replicated(v, "backup-1", "main-2", 2);
                },
                &backup_1,
                vec![
                    "main-1 (backup-1: group_definition_mismatch; backup-2: never_replicated)",
                    "main-2 (backup-1: group_definition_mismatch; backup-2: never_replicated)",
                ],
            ),
            (
                "a taken-over main has its own alarm; the other main is checked",
                |v| {
                    replicated(v, "backup-1", "main-1", 1);
                    let p = v
                        .plan(
                            &Operation::Takeover {
                                backup: "backup-1".into(),
                                main: "main-1".into(),
                            },
                            5,
                            "backup-1",
                            &BTreeSet::new(),
                            &reachable,
                            &BTreeSet::new(),
                        )
                        .expect("takeover");
                    v.apply(&p);
                },
                &none,
                vec![
                    "main-2 (backup-1: backup_not_standby, never_replicated; \
                      backup-2: never_replicated)",
                ],
            ),
        ];
        for (what, setup, mismatched, want) in rows {
            let mut v = test_view(&["main-1", "main-2", "backup-1", "backup-2"]);
            setup(&mut v);
            assert_eq!(names(&v.uncovered(&reachable, mismatched)), want, "{what}");
        }
    }

    #[test]
    fn an_unreachable_backup_covers_nothing_and_no_backup_is_said() {
        let mut v = test_view(&["main-1", "backup-1"]);
        replicated(&mut v, "backup-1", "main-1", 1);
        let gone = |m: &str| {
            if m == "backup-1" {
                Reachability::Unreachable
            } else {
                Reachability::Reachable
            }
        };
        assert_eq!(
            names(&v.uncovered(&gone, &BTreeSet::new())),
            ["main-1 (backup-1: backup_not_standby)"]
        );
        let alone = test_view(&["main-1"]);
        assert_eq!(
            names(&alone.uncovered(&reachable, &BTreeSet::new())),
            ["main-1 (the group has no configured backup)"]
        );
    }
}
