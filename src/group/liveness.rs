//! Who an agent has heard from lately: the last time each (member, heartbeat path) answered or
//! called, and what follows from it: whether a member is reachable, whether one path is up,
//! how long a member has been silent on every path. Pure: times are monotonic milliseconds
//! passed in by the caller (the agent counts them from its start).

use std::collections::BTreeMap;

use super::{Millis, Reachability};

/// Milliseconds on a monotonic clock (never goes back; its zero is the caller's choice).
pub type Mono = u64;

/// A gap this long between two ticks of the agent's own loops means the agent was paused
/// (SIGSTOP, a stalled VM) or starved: what it heard before says nothing about now.
pub const PAUSE_GAP: Millis = 1_000;

/// Last successful exchange with each (member, heartbeat path), and whether this agent's own
/// view of them is current (it was not paused since).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liveness {
    last_heard: BTreeMap<(String, String), Mono>,
    /// The last tick of the agent's loops.
    last_tick: Option<Mono>,
    /// When the agent found it had been paused; cleared once a heartbeat round that started
    /// after it has ended (its answers are in).
    resumed_at: Option<Mono>,
}

impl Liveness {
    /// `member` answered (or called) on `path` at `at`.
    pub fn heard(&mut self, member: &str, path: &str, at: Mono) {
        self.last_heard
            .insert((member.to_string(), path.to_string()), at);
    }

    /// The agent's loops tick at `now` (at least every [`PAUSE_GAP`] / 10 when not paused). A
    /// longer gap since the last tick is a pause: silence is not judged until a heartbeat
    /// round started after it has ended.
    /// Whether this tick found a pause.
    pub fn tick(&mut self, now: Mono) -> bool {
        let paused = self
            .last_tick
            .is_some_and(|t| now.saturating_sub(t) > PAUSE_GAP);
        if paused {
            self.resumed_at = Some(now);
        }
        self.last_tick = Some(now);
        paused
    }

    /// A heartbeat round that started at `started` has ended.
    pub fn round_ended(&mut self, started: Mono) {
        if self.resumed_at.is_some_and(|r| started >= r) {
            self.resumed_at = None;
        }
    }

    /// Whether silence can be judged at `now`: not right after a pause (found at a tick, or
    /// seen now before any tick: the agent just resumed and its loops have not run yet).
    pub fn current(&self, now: Mono) -> bool {
        self.resumed_at.is_none()
            && self
                .last_tick
                .is_none_or(|t| now.saturating_sub(t) <= PAUSE_GAP)
    }

    fn heard_from(&self, member: &str) -> impl Iterator<Item = Mono> + '_ {
        let member = member.to_string();
        self.last_heard
            .iter()
            .filter(move |((m, _), _)| *m == member)
            .map(|(_, t)| *t)
    }

    /// How `local`'s agent sees `member` at `now`: itself, or heard on some path within
    /// `window`, or not. Right after a pause (see [`Liveness::current`]) a silent member counts
    /// as reachable: the silence is the agent's own.
    pub fn reachability(
        &self,
        local: &str,
        member: &str,
        now: Mono,
        window: Millis,
    ) -> Reachability {
        if member == local {
            return Reachability::Local;
        }
        if !self.current(now)
            || self
                .heard_from(member)
                .any(|t| now.saturating_sub(t) < window)
        {
            Reachability::Reachable
        } else {
            Reachability::Unreachable
        }
    }

    /// Whether `member` was heard on some path within `window` of `now`, strictly: no
    /// allowance for a pause of this agent (for a decision that must rest on fresh news).
    pub fn heard_within(&self, member: &str, now: Mono, window: Millis) -> bool {
        self.heard_from(member)
            .any(|t| now.saturating_sub(t) < window)
    }

    /// Whether `member` was heard on some path after `since`.
    pub fn heard_since(&self, member: &str, since: Mono) -> bool {
        self.heard_from(member).any(|t| t > since)
    }

    /// Whether `member` was heard on `path` within `window`.
    pub fn path_up(&self, member: &str, path: &str, now: Mono, window: Millis) -> bool {
        self.last_heard
            .get(&(member.to_string(), path.to_string()))
            .is_some_and(|t| now.saturating_sub(*t) < window)
    }

    /// How long `member` has been silent on every path at `now`: since it was last heard on
    /// any path, or since `started` when it never was; 0 right after a pause (the silence is
    /// the agent's own).
    pub fn silent_for(&self, member: &str, now: Mono, started: Mono) -> Millis {
        if !self.current(now) {
            return 0;
        }
        self.heard_from(member)
            .map(|t| now.saturating_sub(t))
            .min()
            .unwrap_or_else(|| now.saturating_sub(started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// main-1 heard on "lan" at 1000 and on "ha" at 4000; backup-1 never.
    fn heard() -> Liveness {
        let mut l = Liveness::default();
        l.heard("main-1", "lan", 1_000);
        l.heard("main-1", "ha", 4_000);
        l
    }

    #[test]
    fn after_a_pause_silence_is_not_judged_until_a_round_started_after_it_ended() {
        let mut l = heard(); // main-1 last heard at 4000
        for t in (4_000..=4_500).step_by(100) {
            l.tick(t);
        }
        // Frozen from 4500 to 9000: main-1 looks silent for 5 s, but this agent was paused.
        // Before its loops tick again (a request handled first):
        assert!(!l.current(9_000));
        assert_eq!(
            l.reachability("backup-1", "main-1", 9_000, 3_000),
            Reachability::Reachable
        );
        assert_eq!(l.silent_for("main-1", 9_000, 0), 0);
        // The tick finds the gap; a round that started before the pause ends: still unknown.
        l.tick(9_010);
        l.round_ended(4_400);
        assert!(!l.current(9_020));
        // A round started after the pause ends without main-1's answer: silence counts.
        l.tick(9_100);
        l.round_ended(9_020);
        assert!(l.current(9_150));
        assert_eq!(
            l.reachability("backup-1", "main-1", 9_150, 3_000),
            Reachability::Unreachable
        );
        assert_eq!(l.silent_for("main-1", 9_150, 0), 5_150);
        // Ticks every 100 ms are no pause.
        let mut l = heard();
        for t in (4_000..=8_000).step_by(100) {
            l.tick(t);
            assert!(l.current(t));
        }
    }

    #[test]
    fn reachability_table() {
        // (member, now, window, expected) as seen by backup-2
        let rows = [
            ("backup-2", 99_999, 1, Reachability::Local),
            ("main-1", 4_000, 3_000, Reachability::Reachable),
            ("main-1", 6_999, 3_000, Reachability::Reachable),
            ("main-1", 7_000, 3_000, Reachability::Unreachable),
            ("backup-1", 0, 3_000, Reachability::Unreachable),
        ];
        let l = heard();
        for (member, now, window, want) in rows {
            assert_eq!(
                l.reachability("backup-2", member, now, window),
                want,
                "{member} at {now} within {window}"
            );
        }
    }

    #[test]
    fn path_up_table() {
        let rows = [
            ("main-1", "lan", 3_999, true),
            ("main-1", "lan", 4_000, false),
            ("main-1", "ha", 4_000, true),
            ("main-1", "serial", 4_000, false),
            ("backup-1", "lan", 0, false),
        ];
        let l = heard();
        for (member, path, now, want) in rows {
            assert_eq!(
                l.path_up(member, path, now, 3_000),
                want,
                "{member}/{path} at {now}"
            );
        }
    }

    #[test]
    fn silent_for_table() {
        // (member, now, started, expected): the newest path counts; never heard = since start.
        let rows = [
            ("main-1", 4_000, 0, 0),
            ("main-1", 9_000, 0, 5_000),
            ("backup-1", 9_000, 0, 9_000),
            ("backup-1", 9_000, 8_500, 500),
            ("main-1", 500, 0, 0),
        ];
        let l = heard();
        for (member, now, started, want) in rows {
            assert_eq!(
                l.silent_for(member, now, started),
                want,
                "{member} at {now}"
            );
        }
    }

    proptest! {
        /// Reachable exactly when silent for less than the window (after hearing anything),
        /// and reachable whenever some path is up.
        #[test]
        fn reachable_iff_silent_less_than_window(
            heard in prop::collection::vec((0..3usize, 0..2usize, 0..10_000u64), 0..12),
            now in 0..20_000u64,
            window in 1..5_000u64,
        ) {
            let names = ["main-1", "main-2", "backup-1"];
            let paths = ["lan", "ha"];
            let mut l = Liveness::default();
            for (m, p, at) in &heard {
                l.heard(names[*m], paths[*p], (*at).min(now));
            }
            for (i, m) in names.iter().enumerate() {
                let ever = heard.iter().any(|(hm, _, _)| *hm == i);
                let reachable = l.reachability("local", m, now, window) == Reachability::Reachable;
                if ever {
                    prop_assert_eq!(reachable, l.silent_for(m, now, 0) < window);
                } else {
                    prop_assert!(!reachable);
                }
                let any_path = paths.iter().any(|p| l.path_up(m, p, now, window));
                prop_assert_eq!(any_path, reachable);
            }
        }
    }
}
