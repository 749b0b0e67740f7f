//! The failover detector's decision: which Main is due to be failed over (auto-failover on,
//! not taken over, silent on every heartbeat path for `failover_after` or reporting failing
//! device checks) and which Backup does it (the first, in configuration order, that could: in
//! standby, reachable, replicated that Main, no failing check), so exactly one Backup acts.
//! While the group is in maintenance mode it decides nothing. Pure: the last-heard times and the time come in as values.

use std::time::Duration;

use super::{GroupView, Liveness, Millis, Mono, OperState, Reachability, Role};

/// What one agent's detector looks at.
#[derive(Debug, Clone, Copy)]
pub struct Sight<'a> {
    pub view: &'a GroupView,
    /// The member whose agent looks.
    pub local: &'a str,
    pub liveness: &'a Liveness,
    pub now: Mono,
    /// When the agent started (a member never heard has been silent since then).
    pub started: Mono,
    /// `failover_after`: silence that counts as a failure, and the reachability window.
    pub after: Millis,
}

/// A Main to fail over, by which Backup, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub main: String,
    pub backup: String,
    pub reason: String,
}

impl Sight<'_> {
    fn reach(&self, member: &str) -> Reachability {
        self.liveness
            .reachability(self.local, member, self.now, self.after)
    }

    /// Why `main` is to be failed over, or `None`.
    fn failed(&self, main: &str, failing_checks: &[String]) -> Option<String> {
        let silent = self.liveness.silent_for(main, self.now, self.started);
        if silent >= self.after {
            Some(format!(
                "{main} unreachable on every heartbeat path for {}",
                humantime::format_duration(Duration::from_millis(silent))
            ))
        } else if self.reach(main) == Reachability::Reachable && !failing_checks.is_empty() {
            Some(format!(
                "{main} reports failing device checks: {}",
                failing_checks.join(", ")
            ))
        } else {
            None
        }
    }

    /// Every Main due for failover as this agent sees it, each with its designated Backup (a
    /// Main no Backup could take over is left out). None while the group is in maintenance
    /// mode: no automatic failover anywhere, whatever a Main's silence or device checks say.
    pub fn failovers_due(&self) -> Vec<Failover> {
        let view = self.view;
        if view.maintenance.enabled {
            return Vec::new();
        }
        view.members
            .iter()
            .filter(|m| m.role == Role::Main && m.auto_failover && m.takeover.is_none())
            .filter_map(|m| {
                let reason = self.failed(&m.name, &m.failing_checks)?;
                // Exactly one Backup acts: the first, in configuration order, that could.
                let designated = view.members.iter().find(|b| {
                    b.role == Role::Backup
                        && b.state == OperState::Standby
                        && self.reach(&b.name) != Reachability::Unreachable
                        && b.failing_checks.is_empty()
                        && b.replicated(&m.name).is_some()
                })?;
                Some(Failover {
                    main: m.name.clone(),
                    backup: designated.name.clone(),
                    reason,
                })
            })
            .collect()
    }

    /// The failover this agent is to carry out now: the first Main due whose designated
    /// Backup is this member.
    pub fn failover_for_local(&self) -> Option<Failover> {
        self.failovers_due()
            .into_iter()
            .find(|f| f.backup == self.local)
    }
}

/// When the detector may try a failover again after attempts that were refused or failed:
/// the wait doubles from `base` (the heartbeat interval) with every failure in a row, up to
/// `cap`, so a failover that cannot be carried out (a full disk, a refusing peer) is retried
/// less and less often instead of on every heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
    pub not_before: Mono,
}

impl Backoff {
    /// May an attempt be made at `now`?
    pub fn allows(&self, now: Mono) -> bool {
        now >= self.not_before
    }

    /// After a refused or failed attempt at `now`.
    pub fn failed(self, now: Mono, base: Millis, cap: Millis) -> Backoff {
        let wait = base.saturating_mul(1u64 << self.failures.min(20)).min(cap);
        Backoff {
            failures: self.failures.saturating_add(1),
            not_before: now.saturating_add(wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Replication, ReplicationResult};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const NAMES: [&str; 4] = ["main-1", "main-2", "backup-1", "backup-2"];
    const AFTER: Millis = 3_000;

    fn view() -> GroupView {
        let mut v = crate::group::test_view(&NAMES);
        for b in &mut v.members[2..] {
            b.replication = Some(Replication {
                at: 1,
                result: ReplicationResult::Success,
                main: "main-1".into(),
                last_success: BTreeMap::from([("main-1".into(), 1), ("main-2".into(), 1)]),
                error: None,
            });
        }
        v
    }

    /// Everybody heard at `at` on "lan".
    fn all_heard(at: Mono) -> Liveness {
        let mut l = Liveness::default();
        for n in NAMES {
            l.heard(n, "lan", at);
        }
        l
    }

    #[test]
    fn failed_attempts_back_off_doubling_up_to_the_cap() {
        let mut b = Backoff::default();
        assert!(b.allows(0));
        // (now of the failed attempt, earliest next attempt)
        let rows = [
            (0, 500),
            (500, 1500),
            (1500, 3500),
            (3500, 7500),
            (7500, 15_500),
            (15_500, 31_500),
            (31_500, 63_500),
            (63_500, 123_500),
            (123_500, 183_500),
            (183_500, 243_500),
        ];
        for (now, next) in rows {
            assert!(b.allows(now), "{b:?} at {now}");
            b = b.failed(now, 500, 60_000);
            assert_eq!(b.not_before, next, "{b:?}");
            assert!(!b.allows(next - 1));
        }
    }

    proptest::proptest! {
        #[test]
        fn the_wait_never_exceeds_the_cap_and_never_shrinks(
            failures in 0u32..100, now in 0u64..1 << 40, base in 1u64..10_000, cap in 1u64..1 << 30,
        ) {
            let b = Backoff { failures, not_before: 0 };
            let next = b.failed(now, base, cap);
            proptest::prop_assert!(next.not_before - now <= cap);
            let later = next.failed(next.not_before, base, cap);
            proptest::prop_assert!(
                later.not_before - next.not_before >= (next.not_before - now).min(cap)
            );
        }
    }

    fn decide(v: &GroupView, local: &str, l: &Liveness, now: Mono) -> Option<(String, String)> {
        let sight = Sight {
            view: v,
            local,
            liveness: l,
            now,
            started: 0,
            after: AFTER,
        };
        sight.failover_for_local().map(|f| (f.main, f.backup))
    }

    fn pair(m: &str, b: &str) -> Option<(String, String)> {
        Some((m.to_string(), b.to_string()))
    }

    #[test]
    fn who_fails_over_whom() {
        type Edit = fn(&mut GroupView, &mut Liveness);
        type Row = (
            &'static str,
            &'static str,
            Edit,
            Mono,
            Option<(String, String)>,
        );
        fn silent_main_1(_: &mut GroupView, l: &mut Liveness) {
            *l = Liveness::default();
            for n in ["main-2", "backup-1", "backup-2"] {
                l.heard(n, "lan", 9_000);
            }
        }
        // (what, local, edit, now, expected)
        fn maintenance_on(v: &mut GroupView) {
            let by = crate::group::Requester {
                interface: "http".into(),
                identity: "ops".into(),
            };
            v.maintenance = v.maintenance.set(true, &by, Some("window"), 1, "main-2");
        }
        let rows: [Row; 12] = [
            (
                "all heard lately: nothing",
                "backup-1",
                |_, _| {},
                9_500,
                None,
            ),
            (
                "main-1 silent: the first backup acts",
                "backup-1",
                silent_main_1,
                9_500,
                pair("main-1", "backup-1"),
            ),
            (
                "main-1 silent: the second backup does not",
                "backup-2",
                silent_main_1,
                9_500,
                None,
            ),
            (
                "everybody silent: backup-1 still sees itself",
                "backup-1",
                |_, _| {},
                20_000,
                pair("main-1", "backup-1"),
            ),
            (
                "backup-1 not standby: backup-2 acts",
                "backup-2",
                |v, l| {
                    silent_main_1(v, l);
                    v.members[2].state = OperState::Online;
                },
                9_500,
                pair("main-1", "backup-2"),
            ),
            (
                "auto-failover off: nothing",
                "backup-1",
                |v, l| {
                    silent_main_1(v, l);
                    v.members[0].auto_failover = false;
                },
                9_500,
                None,
            ),
            (
                "failing device check on a reachable main",
                "backup-1",
                |v, _| v.members[1].failing_checks = vec!["router".into()],
                9_500,
                pair("main-2", "backup-1"),
            ),
            (
                "failing check on backup-1: backup-2 acts",
                "backup-2",
                |v, l| {
                    silent_main_1(v, l);
                    v.members[2].failing_checks = vec!["disk".into()];
                },
                9_500,
                pair("main-1", "backup-2"),
            ),
            ("a main never decides", "main-2", silent_main_1, 9_500, None),
            (
                "maintenance mode: a silent main is not failed over",
                "backup-1",
                |v, l| {
                    silent_main_1(v, l);
                    maintenance_on(v);
                },
                9_500,
                None,
            ),
            (
                "maintenance mode: nor one with failing device checks",
                "backup-1",
                |v, _| {
                    v.members[1].failing_checks = vec!["router".into()];
                    maintenance_on(v);
                },
                9_500,
                None,
            ),
            (
                "maintenance mode switched off again: failover as before",
                "backup-1",
                |v, l| {
                    silent_main_1(v, l);
                    maintenance_on(v);
                    let by = crate::group::Requester {
                        interface: "cli".into(),
                        identity: "ops".into(),
                    };
                    v.maintenance = v.maintenance.set(false, &by, None, 2, "main-2");
                },
                9_500,
                pair("main-1", "backup-1"),
            ),
        ];
        for (what, local, edit, now, want) in rows {
            let mut v = view();
            let mut l = all_heard(9_000);
            edit(&mut v, &mut l);
            assert_eq!(decide(&v, local, &l, now), want, "{what}");
        }
    }

    #[test]
    fn the_reason_says_how_long_or_which_checks() {
        let v = view();
        let l = Liveness::default();
        let sight = Sight {
            view: &v,
            local: "backup-1",
            liveness: &l,
            now: 4_500,
            started: 0,
            after: AFTER,
        };
        let f = sight.failover_for_local().expect("due");
        assert_eq!(
            f.reason,
            "main-1 unreachable on every heartbeat path for 4s 500ms"
        );
    }

    proptest! {
        /// In maintenance mode no agent decides any failover, whatever the view, the
        /// last-heard times and the device checks.
        #[test]
        fn maintenance_mode_decides_nothing_anywhere(
            heard in prop::collection::vec((0..4usize, 0..12_000u64), 0..8),
            states in prop::collection::vec(0..3usize, 4),
            checks in prop::collection::vec(any::<bool>(), 4),
            now in 0..12_000u64,
        ) {
            let mut v = view();
            let by = crate::group::Requester { interface: "snmp".into(), identity: "w".into() };
            v.maintenance = v.maintenance.set(true, &by, None, 1, "backup-2");
            let mut l = Liveness::default();
            for (m, at) in heard {
                l.heard(NAMES[m], "lan", at.min(now));
            }
            for (i, r) in v.members.iter_mut().enumerate() {
                r.state = [OperState::Online, OperState::Standby, OperState::Offline][states[i]];
                if checks[i] {
                    r.failing_checks = vec!["c".into()];
                }
            }
            for local in NAMES {
                let sight = Sight { view: &v, local, liveness: &l, now, started: 0, after: AFTER };
                prop_assert!(sight.failovers_due().is_empty());
            }
        }

        /// Whatever the view and the last-heard times: only a standby Backup acts, only on a
        /// Main with auto-failover on and no takeover mark that is silent for `after` or
        /// reachable with failing checks, and no Backup earlier in configuration order could
        /// have acted instead.
        #[test]
        fn only_the_designated_backup_fails_over_a_failed_main(
            heard in prop::collection::vec((0..4usize, 0..12_000u64), 0..8),
            states in prop::collection::vec(0..3usize, 4),
            auto in prop::collection::vec(any::<bool>(), 4),
            checks in prop::collection::vec(any::<bool>(), 4),
            local in 0..4usize,
            now in 0..12_000u64,
        ) {
            let mut v = view();
            let mut l = Liveness::default();
            for (m, at) in heard {
                l.heard(NAMES[m], "lan", at.min(now));
            }
            for (i, r) in v.members.iter_mut().enumerate() {
                r.state = [OperState::Online, OperState::Standby, OperState::Offline][states[i]];
                r.auto_failover = auto[i];
                if checks[i] {
                    r.failing_checks = vec!["c".into()];
                }
            }
            let Some((main, backup)) = decide(&v, NAMES[local], &l, now) else {
                return Ok(());
            };
            prop_assert_eq!(backup.as_str(), NAMES[local]);
            let b = v.member(&backup).expect("backup");
            prop_assert!(b.role == Role::Backup && b.state == OperState::Standby);
            prop_assert!(b.failing_checks.is_empty());
            let m = v.member(&main).expect("main");
            prop_assert!(m.role == Role::Main && m.auto_failover && m.takeover.is_none());
            let silent = l.silent_for(&main, now, 0) >= AFTER;
            let reach = l.reachability(NAMES[local], &main, now, AFTER);
            prop_assert!(silent || (reach == Reachability::Reachable && !m.failing_checks.is_empty()));
            for earlier in &v.members[2..local] {
                let could = earlier.state == OperState::Standby
                    && earlier.failing_checks.is_empty()
                    && l.reachability(NAMES[local], &earlier.name, now, AFTER) != Reachability::Unreachable;
                prop_assert!(!could, "{} comes first", earlier.name);
            }
        }
    }
}
