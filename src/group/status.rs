//! The owner-written status on a member's record: the last replication (per Main) and the
//! failing device checks. Only the member itself writes it, under its own counter
//! `status_version`, which every change raises so the change travels with heartbeats. Pure.

use std::collections::BTreeMap;

use super::{GroupView, Millis, Replication, ReplicationResult};

/// Whether a device check counts as failing: after `fail_after` failed probes in a row (at
/// least one).
pub fn check_failing(consecutive_failures: u32, fail_after: u32) -> bool {
    consecutive_failures >= fail_after.max(1)
}

impl GroupView {
    /// Records on `member`'s record an attempt at `at` to replicate `main`: a success when
    /// `error` is `None`. Returns `false` when the view has no such member.
    pub fn record_replication(
        &mut self,
        member: &str,
        main: &str,
        at: Millis,
        error: Option<String>,
    ) -> bool {
        let Some(me) = self.members.iter_mut().find(|r| r.name == member) else {
            return false;
        };
        let result = if error.is_none() {
            ReplicationResult::Success
        } else {
            ReplicationResult::Failed
        };
        let mut rep = me.replication.clone().unwrap_or(Replication {
            at,
            result,
            main: main.to_string(),
            last_success: BTreeMap::new(),
            error: None,
        });
        rep.at = at;
        rep.result = result;
        rep.main = main.to_string();
        rep.error = error;
        if result == ReplicationResult::Success {
            rep.last_success.insert(main.to_string(), at);
        }
        me.replication = Some(rep);
        me.status_version += 1;
        true
    }

    /// Lists `check` as failing on `member`'s record, or not. `Some(true)` when that changed
    /// (the status version went up), `Some(false)` when it already was so, `None` when the
    /// view has no such member.
    pub fn set_device_check(&mut self, member: &str, check: &str, failing: bool) -> Option<bool> {
        let me = self.members.iter_mut().find(|r| r.name == member)?;
        let listed = me.failing_checks.iter().any(|c| c == check);
        if failing == listed {
            return Some(false);
        }
        if failing {
            me.failing_checks.push(check.to_string());
            me.failing_checks.sort();
        } else {
            me.failing_checks.retain(|c| c != check);
        }
        me.status_version += 1;
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn view() -> GroupView {
        crate::group::test_view(&["main-1", "backup-1"])
    }

    #[test]
    fn check_failing_table() {
        // (failures in a row, fail_after, failing)
        let rows = [
            (0, 3, false),
            (2, 3, false),
            (3, 3, true),
            (4, 3, true),
            (0, 0, false),
            (1, 0, true),
            (1, 1, true),
        ];
        for (n, after, want) in rows {
            assert_eq!(check_failing(n, after), want, "{n} of {after}");
        }
    }

    #[test]
    fn replication_results_in_order() {
        // (main, at, error) -> (result, main, last_success of main-1, status_version)
        let rows = [
            (
                "main-1",
                10,
                None,
                (ReplicationResult::Success, "main-1", Some(10), 1),
            ),
            (
                "main-1",
                20,
                Some("gone"),
                (ReplicationResult::Failed, "main-1", Some(10), 2),
            ),
            (
                "main-2",
                30,
                None,
                (ReplicationResult::Success, "main-2", Some(10), 3),
            ),
            (
                "main-1",
                40,
                None,
                (ReplicationResult::Success, "main-1", Some(40), 4),
            ),
        ];
        let mut v = view();
        for (main, at, error, want) in rows {
            assert!(v.record_replication("backup-1", main, at, error.map(String::from)));
            let b = v.member("backup-1").expect("backup");
            let rep = b.replication.as_ref().expect("recorded");
            assert_eq!(
                (
                    rep.result,
                    rep.main.as_str(),
                    b.replicated("main-1"),
                    b.status_version
                ),
                want
            );
            assert_eq!(rep.at, at);
            assert_eq!(rep.error.as_deref(), error);
        }
        assert!(!v.record_replication("nobody", "main-1", 50, None));
    }

    #[test]
    fn device_checks_in_order() {
        // (check, failing) -> (changed, failing_checks, status_version)
        type Row = (
            &'static str,
            bool,
            Option<bool>,
            &'static [&'static str],
            u64,
        );
        let rows: [Row; 6] = [
            ("router", false, Some(false), &[], 0),
            ("router", true, Some(true), &["router"], 1),
            ("disk", true, Some(true), &["disk", "router"], 2),
            ("router", true, Some(false), &["disk", "router"], 2),
            ("router", false, Some(true), &["disk"], 3),
            ("disk", false, Some(true), &[], 4),
        ];
        let mut v = view();
        for (check, failing, changed, list, version) in rows {
            assert_eq!(v.set_device_check("main-1", check, failing), changed);
            let m = v.member("main-1").expect("main");
            assert_eq!(m.failing_checks, list, "{check} {failing}");
            assert_eq!(m.status_version, version);
        }
        assert_eq!(v.set_device_check("nobody", "disk", true), None);
    }

    proptest! {
        /// Every status change raises the status version, and only the status changes: a
        /// peer holding the older copy adopts it by merging, operational part untouched.
        #[test]
        fn status_changes_merge_into_an_older_copy(
            steps in prop::collection::vec((any::<bool>(), 0..3usize, any::<bool>()), 1..30)
        ) {
            let checks = ["a", "b", "c"];
            let mut v = view();
            let peer = v.clone();
            for (replicate, i, flag) in steps {
                let before = v.member("backup-1").expect("b").clone();
                let changed = if replicate {
                    let err = (!flag).then(|| "e".to_string());
                    v.record_replication("backup-1", "main-1", i as Millis, err)
                } else {
                    v.set_device_check("backup-1", checks[i], flag) == Some(true)
                };
                let after = v.member("backup-1").expect("b");
                prop_assert_eq!(after.status_version > before.status_version, changed);
                prop_assert_eq!(after.stamp(), before.stamp());
                prop_assert!(after.failing_checks.windows(2).all(|w| w[0] < w[1]));
                let mut p = peer.clone();
                p.merge(after);
                prop_assert_eq!(p.member("backup-1"), Some(after));
            }
        }
    }
}
