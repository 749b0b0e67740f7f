//! The takeover handshake's decisions, shared by the agent and the simulated network: what a
//! member does with a record a coordinator offers it (acknowledge a repeat, refuse a stale one,
//! adopt a newer one), what a coordinator does when a member cannot apply its part, and what
//! merging peers' records means for the counters and for this member's own address. Pure: the
//! caller persists, moves addresses and sends.

use super::{GroupView, MemberRecord, OpStamp, Operation, Reachability};

/// What a member does with the record a coordinator offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// The same write again (a stamp names one write: a coordinator retrying on another path
    /// after a timeout). Already persisted and acted on: acknowledge it.
    Repeat,
    /// Not newer than the record held: refuse, with the reason for the coordinator.
    Stale(String),
    /// Newer: persist it, then move the address, then acknowledge.
    Newer,
}

/// Judges `offered`, planned from the record stamped `planned_from`, against the record `held`
/// for the same member: a compare-and-swap — a record changed since the coordinator planned
/// (another operation got there first) refuses the offer.
pub fn judge_offer_planned(
    held: &MemberRecord,
    offered: &MemberRecord,
    planned_from: Option<(u64, &str)>,
) -> Offer {
    match (judge_offer(held, offered), planned_from) {
        (Offer::Newer, Some(from)) if from != held.stamp() => Offer::Stale(format!(
            "{}'s record changed since the operation was planned (planned from version {} by \
             {}, now version {} by {}): another operation got there first",
            held.name, from.0, from.1, held.version, held.writer
        )),
        (judged, _) => judged,
    }
}

/// Judges `offered` against the record `held` for the same member.
pub fn judge_offer(held: &MemberRecord, offered: &MemberRecord) -> Offer {
    let same_write = offered.stamp() == held.stamp()
        && offered.role == held.role
        && offered.state == held.state
        && offered.current_address == held.current_address
        && offered.acting_for == held.acting_for
        && offered.auto_failover == held.auto_failover;
    if same_write {
        Offer::Repeat
    } else if offered.precedence() <= held.precedence() {
        Offer::Stale(format!(
            "{}'s record changed meanwhile (held version {} by {}, offered {} by {}); \
             retry the operation",
            held.name, held.version, held.writer, offered.version, offered.writer
        ))
    } else {
        Offer::Newer
    }
}

/// A newer own record adopted: the record before (to move the address from) and after, and
/// the operation that wrote it (to count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    pub old: MemberRecord,
    pub new: MemberRecord,
    pub op: Option<OpStamp>,
}

impl GroupView {
    /// The receiving side of the handshake on `member`'s view: judges `offered` against the
    /// record held and merges it when it is newer. `Ok(None)` for a repeat (acknowledge it),
    /// `Err` with the reason for the coordinator when stale or when the view has no record of
    /// `member`. The caller then persists, and only then moves the address.
    pub fn adopt_own(
        &mut self,
        member: &str,
        offered: &MemberRecord,
        planned_from: Option<(u64, &str)>,
    ) -> Result<Option<Adopted>, String> {
        let old = self
            .member(member)
            .cloned()
            .ok_or_else(|| "own record missing".to_string())?;
        match judge_offer_planned(&old, offered, planned_from) {
            Offer::Repeat => return Ok(None),
            Offer::Stale(why) => return Err(why),
            Offer::Newer => {}
        }
        self.merge(offered);
        let new = self.member(member).cloned().unwrap_or_else(|| old.clone());
        Ok(Some(Adopted {
            old,
            new,
            op: offered.last_op.clone(),
        }))
    }
}

/// What a coordinator does when `member` did not apply its part of `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterApplyFailure {
    /// The Main of a takeover or failover cannot be reached to release its address: take over
    /// without its release (the seed's failover). Its new record travels with every heartbeat,
    /// so when it returns it learns it was taken over and stays offline on its extra address.
    Proceed,
    /// Any other failure stops the operation; the records already applied are consistent
    /// (whoever releases an address comes before whoever takes it).
    Stop,
}

/// Decides what follows a failed apply: `unreachable` when `member` could not be reached at
/// all (as opposed to answering with a refusal).
pub fn after_apply_failure(op: &Operation, member: &str, unreachable: bool) -> AfterApplyFailure {
    match op {
        Operation::Takeover { main, .. } | Operation::Failover { main, .. }
            if unreachable && main == member =>
        {
            AfterApplyFailure::Proceed
        }
        _ => AfterApplyFailure::Stop,
    }
}

/// Whether the coordinator goes on without asking `member` for its part at all: the Main of
/// a takeover or failover that this agent already judges unreachable on every path. Its
/// release could not come; asking would only wait for connect and ARP time-outs (a lost
/// host), which delays the service by seconds. Its record reaches it with the heartbeats when
/// it returns, as after a failed ask.
pub fn release_not_awaited(op: &Operation, member: &str, reach: Reachability) -> bool {
    reach == Reachability::Unreachable
        && after_apply_failure(op, member, true) == AfterApplyFailure::Proceed
}

/// What merging a peer's records did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Absorbed {
    /// Whether any record changed (persist then).
    pub changed: bool,
    /// The operations that wrote the records adopted, to count (each id once).
    pub ops: Vec<OpStamp>,
}

impl GroupView {
    /// Merges records a peer sent (heartbeat, reply or acknowledgement).
    pub fn absorb(&mut self, records: &[MemberRecord]) -> Absorbed {
        let mut out = Absorbed::default();
        for r in records {
            if self.merge(r) {
                out.changed = true;
                if let Some(op) = &r.last_op {
                    out.ops.push(op.clone());
                }
            }
        }
        out
    }
}

/// Whether a member whose own record went from `old` to `new` by merging must act on it (move
/// its address): another agent wrote it, not just its status.
pub fn own_record_rewritten(old: &MemberRecord, new: &MemberRecord) -> bool {
    old != new && old.stamp() != new.stamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{OpKind, OperState};
    use proptest::prelude::*;

    fn main_1() -> MemberRecord {
        crate::group::test_view(&["main-1"]).members.remove(0)
    }

    fn written(version: u64, writer: &str, state: OperState) -> MemberRecord {
        let mut r = main_1();
        r.version = version;
        r.writer = writer.into();
        r.state = state;
        r
    }

    #[test]
    fn offer_table() {
        use OperState::{Offline, Online};
        let held = written(3, "backup-1", Offline);
        // (offered, expected: 0 repeat, 1 stale, 2 newer)
        let mut status_only = held.clone();
        status_only.failing_checks = vec!["router".into()];
        status_only.status_version = 7;
        let rows = [
            (held.clone(), 0),
            (status_only, 0),
            (written(3, "backup-1", Online), 1),
            (written(2, "backup-2", Offline), 1),
            (written(3, "backup-0", Offline), 1),
            (written(3, "backup-2", Offline), 2),
            (written(4, "a", Online), 2),
        ];
        for (offered, want) in rows {
            let got = match judge_offer(&held, &offered) {
                Offer::Repeat => 0,
                Offer::Stale(why) => {
                    assert!(why.contains("changed meanwhile"), "{why}");
                    1
                }
                Offer::Newer => 2,
            };
            assert_eq!(got, want, "{} by {}", offered.version, offered.writer);
        }
    }

    /// A takeover and a failover of `m` by `b`, and the reverse takeover of `m`.
    fn operations() -> (Operation, Operation, Operation) {
        let (backup, main) = (String::from("b"), String::from("m"));
        (
            Operation::Takeover {
                backup: backup.clone(),
                main: main.clone(),
            },
            Operation::Failover {
                backup,
                main: main.clone(),
            },
            Operation::ReverseTakeover { main },
        )
    }

    #[test]
    fn after_apply_failure_table() {
        use AfterApplyFailure::{Proceed, Stop};
        let (takeover, failover, reverse) = operations();
        let replace = Operation::ReplaceTakeover {
            main: "m".into(),
            replacement: "m".into(),
        };
        // (operation, member that failed, unreachable, expected)
        let rows = [
            (&takeover, "m", true, Proceed),
            (&failover, "m", true, Proceed),
            (&takeover, "m", false, Stop),
            (&takeover, "b", true, Stop),
            (&reverse, "b", true, Stop),
            (&reverse, "m", true, Stop),
            (&replace, "m", true, Stop),
        ];
        for (op, member, unreachable, want) in rows {
            assert_eq!(
                after_apply_failure(op, member, unreachable),
                want,
                "{op:?} {member}"
            );
        }
    }

    /// Compare-and-swap: an offer planned from a record the member no longer holds is refused,
    /// whatever its stamp; the same write again is still acknowledged.
    #[test]
    fn an_offer_planned_from_another_record_is_refused() {
        let held = written(2, "backup-1", OperState::Offline);
        let offered = written(2, "backup-2", OperState::Offline);
        // (planned from, expected judgement: true = Newer)
        let rows: [(Option<(u64, &str)>, bool); 4] = [
            (None, true),
            (Some((2, "backup-1")), true),
            (Some((1, "main-1")), false),
            (Some((2, "backup-2")), false),
        ];
        for (from, newer) in rows {
            let got = judge_offer_planned(&held, &offered, from);
            assert_eq!(got == Offer::Newer, newer, "{from:?}: {got:?}");
        }
        assert_eq!(
            judge_offer_planned(&held, &held, Some((1, "main-1"))),
            Offer::Repeat
        );
    }

    #[test]
    fn the_release_of_an_unreachable_main_is_not_awaited() {
        use Reachability::{Local, Reachable, Unreachable};
        let (takeover, failover, reverse) = operations();
        // Only the Main of a takeover or failover, and only when it is unreachable.
        for op in [&takeover, &failover] {
            assert!(release_not_awaited(op, "m", Unreachable), "{op:?}");
            for reach in [Reachable, Local] {
                assert!(!release_not_awaited(op, "m", reach), "{op:?} {reach:?}");
            }
            assert!(
                !release_not_awaited(op, "b", Unreachable),
                "{op:?}: the Backup"
            );
        }
        for member in ["b", "m"] {
            assert!(
                !release_not_awaited(&reverse, member, Unreachable),
                "{member}"
            );
        }
    }

    #[test]
    fn absorb_reports_the_operations_of_adopted_records() {
        let mut v = GroupView {
            group: "g".into(),
            members: vec![main_1()],
            maintenance: Default::default(),
        };
        let mut newer = written(1, "backup-1", OperState::Offline);
        newer.last_op = Some(OpStamp {
            id: "op-1".into(),
            kind: OpKind::Manual,
            at: 5,
        });
        let stranger = MemberRecord {
            name: "nobody".into(),
            ..newer.clone()
        };
        let a = v.absorb(&[newer.clone(), stranger]);
        assert!(a.changed);
        assert_eq!(a.ops, newer.last_op.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(
            v.absorb(&[newer]),
            Absorbed::default(),
            "a repeat changes nothing"
        );
    }

    #[test]
    fn own_record_rewritten_table() {
        let old = written(3, "main-1", OperState::Online);
        let mut status = old.clone();
        status.status_version = 4;
        status.failing_checks = vec!["router".into()];
        // (new record, whether the member acts on it)
        let rows = [
            (old.clone(), false),
            (status, false),
            (written(4, "backup-1", OperState::Offline), true),
            (written(3, "backup-1", OperState::Online), true),
        ];
        for (new, want) in rows {
            assert_eq!(own_record_rewritten(&old, &new), want, "{new:?}");
        }
    }

    #[test]
    fn adopt_own_table() {
        let held = written(3, "backup-1", OperState::Offline);
        let mut newer = written(4, "main-1", OperState::Online);
        newer.last_op = Some(OpStamp {
            id: "op-4".into(),
            kind: OpKind::Reverse,
            at: 9,
        });
        // (offered, expected: "repeat", "refused", or the id of the operation to count)
        let rows = [
            (held.clone(), "repeat"),
            (newer.clone(), "op-4"),
            (written(2, "z", OperState::Online), "refused"),
        ];
        for (offered, want) in rows {
            let mut v = GroupView {
                group: "g".into(),
                members: vec![held.clone()],
                maintenance: Default::default(),
            };
            let got = match v.adopt_own("main-1", &offered, None) {
                Ok(None) => "repeat".to_string(),
                Ok(Some(a)) => {
                    assert_eq!((&a.old, &a.new), (&held, &offered));
                    assert_eq!(v.members[0], offered);
                    a.op.map(|o| o.id).unwrap_or_default()
                }
                Err(why) => {
                    assert!(why.contains("changed meanwhile"), "{why}");
                    assert_eq!(v.members[0], held, "a refused offer changes nothing");
                    "refused".to_string()
                }
            };
            assert_eq!(got, want);
        }
        let mut empty = GroupView {
            group: "g".into(),
            members: vec![],
            maintenance: Default::default(),
        };
        assert_eq!(
            empty.adopt_own("main-1", &newer, None),
            Err("own record missing".into())
        );
    }

    proptest! {
        /// Absorbing records reports a change exactly when the view changed, the operations of
        /// the records that changed it, and nothing the second time.
        #[test]
        fn absorbing_twice_changes_nothing_the_second_time(
            offers in prop::collection::vec((0..4u64, 0..3usize, 0..3u64, any::<bool>()), 0..6)
        ) {
            let writers = ["a", "b", "c"];
            let mut v = GroupView { group: "g".into(), members: vec![main_1()], maintenance: Default::default() };
            let records: Vec<MemberRecord> = offers
                .iter()
                .enumerate()
                .map(|(i, (version, w, status, op))| {
                    let mut r = written(*version, writers[*w], OperState::Offline);
                    r.status_version = *status;
                    r.last_op = op.then(|| OpStamp { id: format!("op-{i}"), kind: OpKind::Manual, at: 1 });
                    r
                })
                .collect();
            let before = v.clone();
            let a = v.absorb(&records);
            prop_assert_eq!(a.changed, v != before);
            prop_assert!(a.ops.len() <= records.len());
            for op in &a.ops {
                prop_assert!(records.iter().any(|r| r.last_op.as_ref() == Some(op)));
            }
            prop_assert_eq!(v.absorb(&records), Absorbed::default());
        }

        /// Exactly one of the three answers, and `Newer` exactly when merging the offer
        /// replaces the operational part; a repeat or a stale offer leaves it as it is.
        #[test]
        fn an_offer_is_adopted_exactly_when_its_stamp_is_higher(
            hv in 0..4u64, hw in 0..3usize, ov in 0..4u64, ow in 0..3usize,
            online in any::<bool>(), status in 0..3u64,
        ) {
            let writers = ["a", "b", "c"];
            let held = written(hv, writers[hw], OperState::Offline);
            let mut offered = written(ov, writers[ow], if online { OperState::Online } else { OperState::Offline });
            offered.status_version = status;
            let mut v = GroupView { group: "g".into(), members: vec![held.clone()], maintenance: Default::default() };
            v.merge(&offered);
            let adopted = v.members[0].stamp() != held.stamp();
            match judge_offer(&held, &offered) {
                Offer::Newer => prop_assert!(adopted),
                Offer::Repeat => {
                    prop_assert!(!adopted);
                    prop_assert_eq!(v.members[0].state, held.state);
                }
                Offer::Stale(_) => prop_assert!(!adopted),
            }
        }

        /// Only the unreachable Main of a takeover or failover lets the operation go on.
        #[test]
        fn only_an_unreachable_main_is_passed_over(kind in 0..6usize, who in 0..3usize, unreachable in any::<bool>()) {
            let names = ["m", "b", "r"];
            let op = match kind {
                0 => Operation::Takeover { backup: "b".into(), main: "m".into() },
                1 => Operation::Failover { backup: "b".into(), main: "m".into() },
                2 => Operation::ReverseTakeover { main: "m".into() },
                3 => Operation::Reconfigure { main: "m".into(), backup: "b".into() },
                4 => Operation::ReplaceTakeover { main: "m".into(), replacement: "r".into() },
                _ => Operation::SetAutoFailover { member: "m".into(), enabled: true },
            };
            let proceed = after_apply_failure(&op, names[who], unreachable) == AfterApplyFailure::Proceed;
            prop_assert_eq!(proceed, kind < 2 && who == 0 && unreachable);
        }
    }
}
