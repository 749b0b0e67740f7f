//! Maintenance mode: a group-wide setting that, while on, stops every automatic failover in
//! the group (the failover detector decides nothing, whether a Main is silent or reports
//! failing device checks); manual operations are not affected. Like a member record it
//! carries a `(version, writer)` stamp and the higher stamp wins wherever two copies meet, so
//! every agent ends up with the same setting. Pure.

use serde::{Deserialize, Serialize};

use super::{Millis, Requester};

/// The group's maintenance setting, as the last agent that changed it wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Maintenance {
    pub enabled: bool,
    /// When it was switched on (kept while it stays on; `None` while off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Millis>,
    /// When it was last changed (switched on or off), and by whom and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<Requester>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// 0: never set (the setting every group starts with).
    pub version: u64,
    /// The agent that wrote this copy.
    #[serde(default)]
    pub writer: String,
}

impl Maintenance {
    /// The order in which two copies win: the higher version, then the writer's name (two
    /// agents that set it at once, each from the same copy, write the same version).
    pub fn precedence(&self) -> (u64, &str) {
        (self.version, self.writer.as_str())
    }

    /// The setting after `by` sets it to `enabled` at `now` through the agent `writer`: one
    /// version above this one. Switching it on while it is on keeps `since` (the window goes
    /// on; the new reason and requester are recorded).
    pub fn set(
        &self,
        enabled: bool,
        by: &Requester,
        reason: Option<&str>,
        now: Millis,
        writer: &str,
    ) -> Maintenance {
        let since = match (enabled, self.enabled) {
            (false, _) => None,
            (true, true) => self.since.or(Some(now)),
            (true, false) => Some(now),
        };
        Maintenance {
            enabled,
            since,
            changed_at: Some(now),
            changed_by: Some(by.clone()),
            reason: reason.map(str::to_string),
            version: self.version.saturating_add(1),
            writer: writer.to_string(),
        }
    }

    /// Adopts `incoming` if its stamp is higher. Whether anything changed.
    pub fn merge(&mut self, incoming: &Maintenance) -> bool {
        if incoming.precedence() > self.precedence() {
            *self = incoming.clone();
            true
        } else {
            false
        }
    }

    /// The id of the event that records this change: the same on every agent that learns it.
    pub fn event_id(&self) -> String {
        format!(
            "{}-{}-maintenance-{}",
            self.writer,
            self.changed_at.unwrap_or(0),
            self.version
        )
    }

    /// How the change reads in the event history and the logs.
    pub fn describe(&self) -> String {
        if self.enabled {
            "maintenance mode on: no automatic failover anywhere in the group".to_string()
        } else {
            "maintenance mode off: automatic failover as configured".to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op(identity: &str) -> Requester {
        Requester {
            interface: "http".into(),
            identity: identity.into(),
        }
    }

    #[test]
    fn setting_steps_the_version_and_keeps_since_while_on() {
        let off = Maintenance::default();
        let on = off.set(true, &op("ops"), Some("window"), 1_000, "main-1");
        assert_eq!(
            (on.enabled, on.since, on.version, on.writer.as_str()),
            (true, Some(1_000), 1, "main-1")
        );
        assert_eq!(on.reason.as_deref(), Some("window"));
        // On again later: the window started at 1000 still.
        let again = on.set(true, &op("other"), None, 5_000, "backup-1");
        assert_eq!((again.since, again.version), (Some(1_000), 2));
        assert_eq!(again.changed_at, Some(5_000));
        assert_eq!(again.changed_by, Some(op("other")));
        let cleared = again.set(false, &op("ops"), Some("done"), 9_000, "main-1");
        assert_eq!(
            (cleared.enabled, cleared.since, cleared.version),
            (false, None, 3)
        );
        // And on once more: a new window.
        let reopened = cleared.set(true, &op("ops"), None, 12_000, "main-1");
        assert_eq!(reopened.since, Some(12_000));
    }

    #[test]
    fn merge_takes_the_higher_stamp_only() {
        let base = Maintenance::default();
        let on = base.set(true, &op("a"), None, 10, "main-1");
        let mut held = base.clone();
        assert!(held.merge(&on));
        assert_eq!(held, on);
        assert!(!held.merge(&on), "the same copy again changes nothing");
        assert!(!held.merge(&base), "an older copy changes nothing");
        // Two agents set it at once from the same copy: the writer's name decides, the same
        // way on both.
        let off_by_b = base.set(false, &op("b"), None, 11, "backup-1");
        let mut x = on.clone();
        let mut y = off_by_b.clone();
        x.merge(&off_by_b);
        y.merge(&on);
        assert_eq!(x, y);
        assert_eq!(x.writer, "main-1", "(1, main-1) > (1, backup-1)");
    }

    /// A copy as its writer wrote it: one writer writes each version once, so the content
    /// follows from the stamp.
    fn arb_copy() -> impl Strategy<Value = Maintenance> {
        (
            0u64..5,
            prop::sample::select(vec!["main-1", "main-2", "backup-1"]),
        )
            .prop_map(|(version, writer)| {
                let enabled = (version + writer.len() as u64).is_multiple_of(2);
                Maintenance {
                    enabled,
                    since: enabled.then_some(version),
                    changed_at: Some(version),
                    changed_by: None,
                    reason: None,
                    version,
                    writer: writer.into(),
                }
            })
    }

    proptest! {
        /// Whatever order the copies arrive in, every agent ends with the same setting: the
        /// one with the highest stamp.
        #[test]
        fn every_order_of_merges_converges(copies in prop::collection::vec(arb_copy(), 1..8)) {
            let mut forward = Maintenance::default();
            for c in &copies {
                forward.merge(c);
            }
            let mut backward = Maintenance::default();
            for c in copies.iter().rev() {
                backward.merge(c);
            }
            prop_assert_eq!(&forward, &backward);
            let best = copies.iter().map(|c| c.precedence()).max().unwrap_or((0, ""));
            prop_assert!(forward.precedence() >= best);
        }
    }
}
