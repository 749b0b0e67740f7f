//! The fence gate: with a fence command configured (`[fencing]`), a Backup fails over a Main
//! that does not answer only after the fence command succeeded against it. Decided here: which
//! failovers need a fence (only those of a Main silent on every heartbeat path: a Main that
//! answers releases its address itself in the takeover handshake), the delay before the fence
//! (a Main heard again during it is not fenced: the failover is dropped), one run per Main at
//! a time, what a run's outcome lets happen (submit the failover, or back off and fence again
//! next time), and the `fencingFailed` alarm while a failover waits for a fence that failed.
//! Pure: the time and the outcomes come in as values; the agent runs the command.

use std::collections::{BTreeMap, BTreeSet};

use super::{fencing_failed, Alarm, Backoff, Failover, GroupView, Millis, Mono, Sight};

/// Does the failover of `main` need a fence first? Only when `main` has been silent on every
/// heartbeat path for `failover_after`: a Main that still answers (failed over because it
/// reports failing device checks) is asked to release its address in the takeover handshake,
/// which fencing would only make slower and harsher.
pub fn fence_needed(sight: &Sight<'_>, main: &str) -> bool {
    sight.liveness.silent_for(main, sight.now, sight.started) >= sight.after
}

/// What the detector is to do now about one failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceNext {
    /// No fence is needed (the Main answers): submit the failover.
    Submit(Failover),
    /// The delay has passed and no run is under way: run the fence command against the Main,
    /// then report the outcome with [`FenceGate::ran`].
    Fence(Failover),
}

/// One look of the detector through the gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateTick {
    /// In the order the detector decided them.
    pub act: Vec<FenceNext>,
    /// Mains whose failover was pending a fence and is no longer decided (the Main was heard
    /// again during the delay, another member took it over, this Backup cannot act): dropped,
    /// never fenced.
    pub dropped: Vec<String>,
    /// Mains whose failover was decided at this look and waits for the delay before the fence.
    pub delayed: Vec<String>,
}

/// What a fence run lets happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceVerdict {
    /// Submit the failover now.
    pub submit: bool,
    /// The back-off to keep for the Main from now on (`None`: leave it as it is).
    pub backoff: Option<Backoff>,
}

/// A Backup's fencing memory: per Main, when it first decided the failover (the delay runs
/// from then), whether a fence run is under way, and the last run's failure while the
/// failover waits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FenceGate {
    decided: BTreeMap<String, Mono>,
    running: BTreeSet<String>,
    /// Main → (why the last run failed, when: wall clock).
    failed: BTreeMap<String, (String, Millis)>,
}

impl FenceGate {
    /// One look at `now`: `due` holds the failovers the detector decided for this Backup, each
    /// with whether it needs a fence ([`fence_needed`]); `allowed` the Mains whose back-off
    /// allows an attempt now; `delay` how long to wait after the first decision before fencing.
    pub fn tick(
        &mut self,
        due: &[(Failover, bool)],
        allowed: &BTreeSet<String>,
        now: Mono,
        delay: Millis,
    ) -> GateTick {
        let fenced: BTreeSet<&str> = due
            .iter()
            .filter(|(_, need)| *need)
            .map(|(f, _)| f.main.as_str())
            .collect();
        let running = &self.running;
        let gone = |main: &String| !fenced.contains(main.as_str()) && !running.contains(main);
        let dropped: Vec<String> = self.decided.keys().filter(|m| gone(m)).cloned().collect();
        self.decided.retain(|m, _| !gone(m));
        self.failed.retain(|m, _| !gone(m));
        let mut act = Vec::new();
        let mut delayed = Vec::new();
        for (f, need) in due {
            if !allowed.contains(&f.main) {
                continue;
            }
            if !need {
                act.push(FenceNext::Submit(f.clone()));
                continue;
            }
            if self.running.contains(&f.main) {
                continue; // never two runs against one Main
            }
            let since = *self.decided.entry(f.main.clone()).or_insert(now);
            if now.saturating_sub(since) >= delay {
                self.running.insert(f.main.clone());
                act.push(FenceNext::Fence(f.clone()));
            } else if since == now {
                delayed.push(f.main.clone());
            }
        }
        GateTick {
            act,
            dropped,
            delayed,
        }
    }

    /// A fence run against `main` ended at `now` (wall clock `at`): `failure` is `None` when
    /// it succeeded, else why not; `still_due` whether the detector still decides the failover
    /// (checked again after the run); `backoff` the Main's back-off before the run, which a
    /// failure lengthens (doubling from `base` up to `cap`).
    #[allow(clippy::too_many_arguments)]
    pub fn ran(
        &mut self,
        main: &str,
        failure: Option<&str>,
        still_due: bool,
        backoff: Backoff,
        now: Mono,
        at: Millis,
        base: Millis,
        cap: Millis,
    ) -> FenceVerdict {
        self.running.remove(main);
        match failure {
            None => {
                self.failed.remove(main);
                if !still_due {
                    self.decided.remove(main);
                }
                FenceVerdict {
                    submit: still_due,
                    backoff: None,
                }
            }
            Some(why) => {
                self.failed.insert(main.to_string(), (why.to_string(), at));
                FenceVerdict {
                    submit: false,
                    backoff: Some(backoff.failed(now, base, cap)),
                }
            }
        }
    }

    /// The failover of `main` was carried out: nothing waits for it any more (so it is not
    /// reported as dropped when its Main is no longer due).
    pub fn failed_over(&mut self, main: &str) {
        self.decided.remove(main);
        self.failed.remove(main);
    }

    /// Is a fence run against `main` under way?
    pub fn running(&self, main: &str) -> bool {
        self.running.contains(main)
    }

    /// The `fencingFailed` alarms of this Backup (`backup`): one per Main whose last fence run
    /// failed and whose failover still waits (the Main is not taken over in `view`).
    pub fn alarms(&self, backup: &str, view: &GroupView) -> Vec<Alarm> {
        self.failed
            .iter()
            .filter(|(main, _)| view.member(main).is_some_and(|m| m.takeover.is_none()))
            .map(|(main, (why, at))| fencing_failed(backup, main, why, *at))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{AlarmKind, Liveness, TakeoverMark};

    const DELAY: Millis = 1_000;
    const BASE: Millis = 200;
    const CAP: Millis = 1_000;

    fn failover(main: &str) -> Failover {
        Failover {
            main: main.into(),
            backup: "backup-1".into(),
            reason: format!("{main} unreachable"),
        }
    }

    fn all(mains: &[&str]) -> BTreeSet<String> {
        mains.iter().map(|m| m.to_string()).collect()
    }

    fn fenced(t: &GateTick) -> Vec<&str> {
        t.act
            .iter()
            .filter_map(|a| match a {
                FenceNext::Fence(f) => Some(f.main.as_str()),
                FenceNext::Submit(_) => None,
            })
            .collect()
    }

    #[test]
    fn only_a_silent_main_needs_a_fence() {
        let v = crate::group::test_view(&["main-1", "backup-1"]);
        let mut l = Liveness::default();
        l.heard("backup-1", "lan", 9_000);
        // (heard main-1 at, now, needs a fence)
        for (heard, now, want) in [
            (None, 2_999, false),
            (None, 3_000, true),
            (Some(8_000), 9_000, false),
            (Some(5_000), 8_000, true),
            (Some(5_000), 7_999, false),
        ] {
            let mut l = l.clone();
            if let Some(at) = heard {
                l.heard("main-1", "lan", at);
            }
            let sight = Sight {
                view: &v,
                local: "backup-1",
                liveness: &l,
                now,
                started: 0,
                after: 3_000,
            };
            assert_eq!(fence_needed(&sight, "main-1"), want, "{heard:?} {now}");
        }
    }

    #[test]
    fn the_fence_waits_for_the_delay_and_a_main_heard_meanwhile_is_dropped() {
        let mut g = FenceGate::default();
        let due = [(failover("main-1"), true)];
        let ok = all(&["main-1"]);
        // (now, due?, fenced now?, dropped, delay started)
        let rows: [(Mono, bool, bool, &[&str], bool); 6] = [
            (10_000, true, false, &[], true),
            (10_500, true, false, &[], false),
            (10_900, false, false, &["main-1"], false), // heard again: dropped
            (11_000, true, false, &[], true),           // decided again: the delay starts again
            (11_999, true, false, &[], false),
            (12_000, true, true, &[], false),
        ];
        for (now, is_due, fence, dropped, started) in rows {
            let due: &[(Failover, bool)] = if is_due { &due } else { &[] };
            let t = g.tick(due, &ok, now, DELAY);
            assert_eq!(fenced(&t) == ["main-1"], fence, "at {now}: {t:?}");
            assert_eq!(t.dropped, dropped, "at {now}");
            assert_eq!(t.delayed == ["main-1"], started, "at {now}");
        }
    }

    #[test]
    fn no_delay_fences_at_once_and_never_twice_at_the_same_time() {
        let mut g = FenceGate::default();
        let due = [(failover("main-1"), true), (failover("main-2"), true)];
        let ok = all(&["main-1", "main-2"]);
        let t = g.tick(&due, &ok, 5_000, 0);
        assert_eq!(fenced(&t), ["main-1", "main-2"]);
        // Both still running: nothing more, even when their Mains are no longer due.
        assert_eq!(fenced(&g.tick(&due, &ok, 5_100, 0)), Vec::<&str>::new());
        let t = g.tick(&[], &ok, 5_200, 0);
        assert!(t.dropped.is_empty() && t.act.is_empty(), "{t:?}");
        assert!(g.running("main-1") && g.running("main-2"));
    }

    #[test]
    fn a_main_that_answers_is_submitted_without_a_fence() {
        let mut g = FenceGate::default();
        let t = g.tick(&[(failover("main-1"), false)], &all(&["main-1"]), 0, DELAY);
        assert_eq!(t.act, [FenceNext::Submit(failover("main-1"))]);
        assert!(!g.running("main-1"));
    }

    #[test]
    fn the_back_off_holds_both_fences_and_submits() {
        let mut g = FenceGate::default();
        let due = [(failover("main-1"), true), (failover("main-2"), false)];
        let t = g.tick(&due, &BTreeSet::new(), 0, 0);
        assert!(t.act.is_empty(), "{t:?}");
        assert!(!g.running("main-1"));
    }

    #[test]
    fn only_a_success_lets_the_failover_be_submitted() {
        let ok = all(&["main-1"]);
        let due = [(failover("main-1"), true)];
        // (failure, still due after the run, submit, back-off lengthened)
        let rows = [
            (None, true, true, false),
            (None, false, false, false),
            (Some("exit status 1"), true, false, true),
            (Some("no exit within 30s"), false, false, true),
        ];
        for (failure, still_due, submit, backs_off) in rows {
            let mut g = FenceGate::default();
            assert_eq!(fenced(&g.tick(&due, &ok, 1_000, 0)), ["main-1"]);
            let v = g.ran(
                "main-1",
                failure,
                still_due,
                Backoff::default(),
                1_500,
                77,
                BASE,
                CAP,
            );
            assert_eq!(v.submit, submit, "{failure:?} {still_due}");
            assert_eq!(v.backoff.is_some(), backs_off, "{failure:?} {still_due}");
            if let Some(b) = v.backoff {
                assert_eq!(b.not_before, 1_500 + BASE);
            }
            assert!(!g.running("main-1"));
        }
    }

    #[test]
    fn a_failed_fence_is_retried_with_back_off_up_to_the_cap() {
        let mut g = FenceGate::default();
        let due = [(failover("main-1"), true)];
        let mut backoff = Backoff::default();
        let mut runs = Vec::new();
        let mut now: Mono = 0;
        while now <= 6_000 {
            let allowed = if backoff.allows(now) {
                all(&["main-1"])
            } else {
                BTreeSet::new()
            };
            if !fenced(&g.tick(&due, &allowed, now, 0)).is_empty() {
                runs.push(now);
                // The run takes 50 ms and fails.
                let v = g.ran(
                    "main-1",
                    Some("exit status 1"),
                    true,
                    backoff,
                    now + 50,
                    now + 50,
                    BASE,
                    CAP,
                );
                backoff = v.backoff.expect("backs off");
            }
            now += 50;
        }
        // Waits of 200, 400, 800, then the 1 s cap (each after a 50 ms run).
        assert_eq!(runs, [0, 250, 700, 1_550, 2_600, 3_650, 4_700, 5_750]);
    }

    #[test]
    fn the_alarm_stands_while_the_failover_waits_for_a_failed_fence() {
        let mut view = crate::group::test_view(&["main-1", "main-2", "backup-1"]);
        let mut g = FenceGate::default();
        let due = [(failover("main-1"), true), (failover("main-2"), true)];
        let ok = all(&["main-1", "main-2"]);
        g.tick(&due, &ok, 0, 0);
        g.ran(
            "main-1",
            Some("exit status 1"),
            true,
            Backoff::default(),
            10,
            1_234,
            BASE,
            CAP,
        );
        g.ran(
            "main-2",
            None,
            true,
            Backoff::default(),
            10,
            1_234,
            BASE,
            CAP,
        );
        let alarms = g.alarms("backup-1", &view);
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        let a = &alarms[0];
        assert_eq!(a.kind, AlarmKind::FencingFailed);
        assert_eq!(
            (a.main.as_deref(), a.backup.as_deref()),
            (Some("main-1"), Some("backup-1"))
        );
        assert_eq!(a.raised_at, 1_234);
        assert!(a.reason.contains("exit status 1"), "{}", a.reason);
        // Taken over (by anyone): the failover no longer waits.
        view.members[0].takeover = Some(TakeoverMark {
            kind: crate::group::OpKind::Manual,
            main: "main-1".into(),
            backup: "backup-2".into(),
            at: 5,
        });
        assert!(g.alarms("backup-1", &view).is_empty());
        view.members[0].takeover = None;
        assert_eq!(g.alarms("backup-1", &view).len(), 1);
        // A later success clears it.
        g.tick(&due, &ok, 20, 0);
        g.ran(
            "main-1",
            None,
            true,
            Backoff::default(),
            30,
            2_000,
            BASE,
            CAP,
        );
        assert!(g.alarms("backup-1", &view).is_empty());
    }

    #[test]
    fn a_failover_carried_out_is_not_reported_as_dropped() {
        let mut g = FenceGate::default();
        let ok = all(&["main-1"]);
        g.tick(&[(failover("main-1"), true)], &ok, 0, 0);
        let v = g.ran("main-1", None, true, Backoff::default(), 10, 10, BASE, CAP);
        assert!(v.submit);
        g.failed_over("main-1");
        assert_eq!(g.tick(&[], &ok, 20, 0), GateTick::default());
        // Without it, the next look reports the failover dropped.
        let mut g = FenceGate::default();
        g.tick(&[(failover("main-1"), true)], &ok, 0, 0);
        g.ran("main-1", None, true, Backoff::default(), 10, 10, BASE, CAP);
        assert_eq!(g.tick(&[], &ok, 20, 0).dropped, ["main-1"]);
    }

    #[test]
    fn the_alarm_clears_when_the_main_is_no_longer_due() {
        let view = crate::group::test_view(&["main-1", "backup-1"]);
        let mut g = FenceGate::default();
        let ok = all(&["main-1"]);
        g.tick(&[(failover("main-1"), true)], &ok, 0, 0);
        g.ran(
            "main-1",
            Some("timeout"),
            true,
            Backoff::default(),
            10,
            10,
            BASE,
            CAP,
        );
        assert_eq!(g.alarms("backup-1", &view).len(), 1);
        // Heard again: the failover is dropped, and with it the alarm.
        let t = g.tick(&[], &ok, 20, 0);
        assert_eq!(t.dropped, ["main-1"]);
        assert!(g.alarms("backup-1", &view).is_empty());
    }
}
