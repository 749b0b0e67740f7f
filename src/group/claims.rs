//! Serializing operations across the group, and carrying an interrupted one to an end. Pure.
//!
//! Before its first step, the coordinator of an operation *claims* every member the operation
//! involves, on every member of the group it can reach: each member keeps a table of claims
//! (persisted, with an expiry on its own clock) and grants a claim only when no live claim of
//! another operation covers one of its members. So of two operations that share a member,
//! whichever agents coordinate them, the second finds the first's claim on at least one
//! member that both reach — the shared member itself, or any member both can reach when that
//! one is unreachable (two Backups failing over one dead Main) — and is refused with
//! `operation_in_progress`. Claims are released when the operation ends and expire on their
//! own after the operation's deadline, so a crashed coordinator leaves no lock behind.
//!
//! The coordinator also persists its *intent* (the plan and the records it was planned from)
//! in the same write as its own claim. An operation stopped part way — a member refused its
//! step, or the coordinator crashed — is resolved from the intent against the records the
//! group holds ([`resolve`]): finished when every step is in place, rolled back (compensating
//! records written over the steps in place) when some are not, left alone when another
//! operation has written a record since, and waited for while a member whose step is unknown
//! cannot be reached.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    after_apply_failure, AfterApplyFailure, GroupView, MemberRecord, Millis, OpStamp, Plan,
    Reachability,
};

/// One operation's claim on some members, as held by one member of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The operation's id (its plan's id).
    pub op: String,
    pub coordinator: String,
    /// The members the operation involves, sorted.
    pub members: Vec<String>,
    /// When the claim lapses, on the holder's clock (wall time, milliseconds).
    pub until: Millis,
    /// When the coordinator made the claim, on the coordinator's clock.
    #[serde(default)]
    pub since: Millis,
}

/// The claims one member holds. Persisted with its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Claims(pub Vec<Claim>);

impl Claims {
    /// Drops the claims that lapsed by `now`; whether any did.
    pub fn expire(&mut self, now: Millis) -> bool {
        let before = self.0.len();
        self.0.retain(|c| c.until > now);
        self.0.len() != before
    }

    /// A live claim of another operation on one of `members`.
    pub fn conflicting(&self, op: &str, members: &[String], now: Millis) -> Option<&Claim> {
        self.0
            .iter()
            .filter(|c| c.until > now && c.op != op)
            .find(|c| c.members.iter().any(|m| members.contains(m)))
    }

    /// Grants `claim` unless a live claim of another operation covers one of its members.
    /// `Ok(true)` when newly granted (persist), `Ok(false)` when it is held already (a
    /// retried request), `Err` with the claim in the way.
    pub fn grant(&mut self, claim: Claim, now: Millis) -> Result<bool, Claim> {
        if let Some(c) = self.conflicting(&claim.op, &claim.members, now) {
            return Err(c.clone());
        }
        if self.0.iter().any(|c| c.op == claim.op) {
            return Ok(false);
        }
        self.0.push(claim);
        Ok(true)
    }

    /// Releases operation `op`'s claim; whether it was held.
    pub fn release(&mut self, op: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|c| c.op != op);
        self.0.len() != before
    }

    /// Drops the claims of `coordinator` that its heartbeat, sent at `sent_at` (its clock)
    /// after it made them, no longer lists among the operations it runs (`running`): its
    /// operation ended and the release was lost. Whether any was dropped.
    pub fn forget_ended(&mut self, coordinator: &str, running: &[String], sent_at: Millis) -> bool {
        let before = self.0.len();
        self.0.retain(|c| {
            c.coordinator != coordinator || c.since >= sent_at || running.contains(&c.op)
        });
        self.0.len() != before
    }

    /// The operations `me` coordinates and holds claims for (its heartbeats list them).
    pub fn coordinated_by(&self, me: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|c| c.coordinator == me)
            .map(|c| c.op.clone())
            .collect()
    }

    /// Members under a live claim (the planner's `busy`).
    pub fn busy(&self, now: Millis) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|c| c.until > now)
            .flat_map(|c| c.members.iter().cloned())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The members an operation claims: every member it writes a record for and every member the
/// request names.
pub fn claimed_members(plan: &Plan) -> Vec<String> {
    let mut m: BTreeSet<String> = plan.updates.iter().map(|r| r.name.clone()).collect();
    m.extend(plan.operation.named_members().into_iter().map(String::from));
    m.into_iter().collect()
}

/// A peer's answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "answer")]
pub enum ClaimAnswer {
    Granted,
    /// Another operation holds a claim on one of the members.
    Held {
        op: String,
        coordinator: String,
    },
    /// The member cannot take part now (its state cannot be written, say).
    Refused {
        message: String,
    },
    /// No answer (unreachable, timed out).
    #[serde(skip)]
    Unreachable,
}

/// Why an operation may not start after its claim round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefused {
    /// Another operation holds a claim (`by` names it and its coordinator, `at` the member
    /// that said so).
    InProgress { at: String, by: String },
    /// A member the operation needs could not be asked, or cannot take part (`why`).
    Unable { member: String, why: String },
}

/// Whether the operation of `plan` may start, from every peer's answer to its claim.
/// Every answer that holds another claim refuses it; a member the operation writes must have
/// granted, except the Main of a takeover or failover that cannot be reached (the seed's
/// failover: it is taken over without its release). Members the operation does not involve
/// that cannot be reached are not waited for: they are witnesses only.
pub fn claim_verdict(
    plan: &Plan,
    coordinator: &str,
    answers: &[(String, ClaimAnswer)],
) -> Result<(), ClaimRefused> {
    for (peer, a) in answers {
        if let ClaimAnswer::Held { op, coordinator } = a {
            return Err(ClaimRefused::InProgress {
                at: peer.clone(),
                by: format!("{op} coordinated by {coordinator}"),
            });
        }
    }
    for m in claimed_members(plan) {
        if m == coordinator {
            continue;
        }
        let answer = answers.iter().find(|(p, _)| *p == m).map(|(_, a)| a);
        let why = match answer {
            Some(ClaimAnswer::Granted) => continue,
            Some(ClaimAnswer::Refused { message }) => message.clone(),
            _ if after_apply_failure(&plan.operation, &m, true) == AfterApplyFailure::Proceed => {
                continue
            }
            _ => "it cannot be reached".to_string(),
        };
        return Err(ClaimRefused::Unable { member: m, why });
    }
    Ok(())
}

/// Where one step of an interrupted operation stands, judged from the record the group holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// The member holds the record the step wrote (or a later write of the same operation).
    Applied,
    /// The member still holds the record the step was planned from.
    NotApplied,
    /// Another write replaced the record since.
    Moved,
}

/// How an interrupted operation is carried to an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Every step is in place: merge the records, count the operation, record it done.
    Finish,
    /// No step is in place: nothing to undo; record it stopped.
    Abandon,
    /// Some steps are in place and some are not: write these compensating records (each
    /// with the stamp it replaces, for the compare-and-swap), in order, then record it rolled
    /// back.
    RollBack(Vec<(MemberRecord, (u64, String))>),
    /// Another operation has written one of the records since: leave the group as it is and
    /// record why.
    Superseded(String),
    /// A member whose step cannot be judged is unreachable: try again later.
    Wait(String),
}

/// Judges one step: `held` is the member's record as this view has it.
pub fn step_state(
    held: &MemberRecord,
    update: &MemberRecord,
    planned_from: &(u64, String),
) -> StepState {
    if held.stamp() == update.stamp() {
        StepState::Applied
    } else if held.stamp() == (planned_from.0, planned_from.1.as_str()) {
        StepState::NotApplied
    } else {
        StepState::Moved
    }
}

/// Carries an interrupted operation to an end. `before` holds the records `plan` was planned
/// from (in the order of its updates), `view` the group as this agent sees it now (fresh
/// from heartbeats), `reach` whom it can reach, `writer` the agent writing compensations and
/// `now` their time. The Main of a takeover or failover that was not asked (unreachable) learns
/// its record from the heartbeats: its step counts as in place whatever it holds.
pub fn resolve(
    view: &GroupView,
    plan: &Plan,
    before: &[MemberRecord],
    reach: &dyn Fn(&str) -> Reachability,
    writer: &str,
    now: Millis,
) -> Resolution {
    let mut states = Vec::new();
    for (i, update) in plan.updates.iter().enumerate() {
        let lazy =
            after_apply_failure(&plan.operation, &update.name, true) == AfterApplyFailure::Proceed;
        let Some(held) = view.member(&update.name) else {
            return Resolution::Superseded(format!("{} is not a member", update.name));
        };
        let from = plan.planned_from.get(i).cloned().unwrap_or_default();
        let state = match step_state(held, update, &from) {
            StepState::NotApplied if lazy => StepState::Applied,
            s => s,
        };
        if state != StepState::Applied && reach(&update.name) == Reachability::Unreachable {
            return Resolution::Wait(format!(
                "{} cannot be reached to learn whether it applied its part",
                update.name
            ));
        }
        states.push(state);
    }
    if let Some(i) = states.iter().position(|s| *s == StepState::Moved) {
        return Resolution::Superseded(format!(
            "{}'s record was written by another operation since",
            plan.updates[i].name
        ));
    }
    let applied: Vec<usize> = (0..states.len())
        .filter(|i| states[*i] == StepState::Applied)
        .collect();
    // The lazily applied Main of a failover alone is not a step in place.
    let real = applied.iter().any(|i| {
        view.member(&plan.updates[*i].name)
            .is_some_and(|h| h.stamp() == plan.updates[*i].stamp())
    });
    if applied.len() == states.len() {
        return Resolution::Finish;
    }
    if !real {
        return Resolution::Abandon;
    }
    // Undo in the reverse order of the plan: whoever took an address gives it up before
    // whoever released it takes it back.
    let stamp = OpStamp {
        id: format!("{}-rollback", plan.id),
        kind: plan.operation.kind(),
        at: now,
    };
    let mut out = Vec::new();
    for i in applied.into_iter().rev() {
        let update = &plan.updates[i];
        let Some(held) = view.member(&update.name) else {
            continue;
        };
        if held.stamp() != update.stamp() {
            continue; // a lazily applied Main: nothing was written to it
        }
        let Some(old) = before.iter().find(|b| b.name == update.name) else {
            return Resolution::Superseded(format!(
                "the intent lacks {}'s record before the operation",
                update.name
            ));
        };
        out.push((
            compensation(old, held, writer, &stamp),
            (held.version, held.writer.clone()),
        ));
    }
    Resolution::RollBack(out)
}

/// The record that undoes a step: `old`'s operational part, stamped above `applied`.
fn compensation(
    old: &MemberRecord,
    applied: &MemberRecord,
    writer: &str,
    stamp: &OpStamp,
) -> MemberRecord {
    let mut r = old.clone().state_written(applied, stamp.at);
    r.replication = applied.replication.clone();
    r.failing_checks = applied.failing_checks.clone();
    r.status_version = applied.status_version;
    r.version = applied.version + 1;
    r.writer = writer.to_string();
    r.last_op = Some(stamp.clone());
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{test_view, OperState, Operation};

    fn claim(op: &str, members: &[&str], until: Millis) -> Claim {
        Claim {
            op: op.into(),
            coordinator: "c".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            until,
            since: 10,
        }
    }

    #[test]
    fn a_claim_whose_coordinator_no_longer_runs_it_is_forgotten() {
        let mut c = Claims::default();
        c.grant(claim("a", &["main-1"], 1_000), 0).expect("granted");
        // A heartbeat sent before the claim was made does not list it yet: kept.
        assert!(!c.forget_ended("c", &[], 5));
        // One sent after, listing it: kept; another coordinator's: kept.
        assert!(!c.forget_ended("c", &["a".to_string()], 20));
        assert!(!c.forget_ended("d", &[], 20));
        assert_eq!(c.coordinated_by("c"), vec!["a".to_string()]);
        // One sent after, not listing it: the operation ended, the release was lost.
        assert!(c.forget_ended("c", &[], 20));
        assert!(c.is_empty());
    }

    #[test]
    fn a_claim_is_granted_once_per_member_until_released_or_lapsed() {
        let mut c = Claims::default();
        assert_eq!(
            c.grant(claim("a", &["main-1", "backup-1"], 100), 0),
            Ok(true)
        );
        assert_eq!(
            c.grant(claim("a", &["main-1", "backup-1"], 100), 1),
            Ok(false)
        );
        assert_eq!(
            c.grant(claim("b", &["main-1", "backup-2"], 100), 2)
                .map_err(|c| c.op),
            Err("a".to_string())
        );
        // Disjoint members do not conflict.
        assert_eq!(
            c.grant(claim("d", &["main-2", "backup-2"], 100), 2),
            Ok(true)
        );
        assert_eq!(
            c.busy(3),
            ["backup-1", "backup-2", "main-1", "main-2"]
                .map(String::from)
                .into()
        );
        assert!(c.release("a"));
        assert!(!c.release("a"));
        assert_eq!(c.grant(claim("b", &["main-1"], 100), 4), Ok(true));
        // Lapsed claims neither conflict nor count as busy.
        assert_eq!(c.grant(claim("e", &["main-1"], 200), 100), Ok(true));
        assert!(c.expire(100));
        assert_eq!(c.0.len(), 1);
    }

    fn takeover_plan(view: &GroupView) -> Plan {
        let reach = |_: &str| Reachability::Reachable;
        view.plan(
            &Operation::Takeover {
                backup: "backup-1".into(),
                main: "main-1".into(),
            },
            1_000,
            "backup-1",
            &BTreeSet::new(),
            &reach,
            &BTreeSet::new(),
        )
        .expect("takeover plans")
    }

    /// The records `plan` was planned from, in the order of its updates (as the intent keeps).
    fn records_before(v: &GroupView, plan: &Plan) -> Vec<MemberRecord> {
        plan.updates
            .iter()
            .map(|u| v.member(&u.name).cloned().expect("member"))
            .collect()
    }

    fn ready_view() -> GroupView {
        let mut v = test_view(&["main-1", "backup-1", "backup-2"]);
        for b in ["backup-1", "backup-2"] {
            v.record_replication(b, "main-1", 500, None);
        }
        v
    }

    #[test]
    fn the_verdict_refuses_a_held_claim_and_an_unreachable_member_it_needs() {
        let v = ready_view();
        let plan = takeover_plan(&v);
        let g = |p: &str| (p.to_string(), ClaimAnswer::Granted);
        let u = |p: &str| (p.to_string(), ClaimAnswer::Unreachable);
        let held = |p: &str| {
            (
                p.to_string(),
                ClaimAnswer::Held {
                    op: "x".into(),
                    coordinator: "backup-2".into(),
                },
            )
        };
        assert_eq!(
            claim_verdict(&plan, "backup-1", &[g("main-1"), g("backup-2")]),
            Ok(())
        );
        // A witness that cannot be reached is not waited for; the Main may be unreachable.
        assert_eq!(
            claim_verdict(&plan, "backup-1", &[g("main-1"), u("backup-2")]),
            Ok(())
        );
        assert_eq!(
            claim_verdict(&plan, "backup-1", &[u("main-1"), g("backup-2")]),
            Ok(())
        );
        // A witness holding another claim refuses it.
        assert!(matches!(
            claim_verdict(&plan, "backup-1", &[u("main-1"), held("backup-2")]),
            Err(ClaimRefused::InProgress { .. })
        ));
        // A reverse takeover needs its Backup.
        let mut taken = v.clone();
        taken.apply(&plan);
        let reach = |_: &str| Reachability::Reachable;
        let reverse = taken
            .plan(
                &Operation::ReverseTakeover {
                    main: "main-1".into(),
                },
                2_000,
                "main-1",
                &BTreeSet::new(),
                &reach,
                &BTreeSet::new(),
            )
            .expect("reverse plans");
        assert_eq!(
            claim_verdict(&reverse, "main-1", &[u("backup-1"), g("backup-2")]),
            Err(ClaimRefused::Unable {
                member: "backup-1".into(),
                why: "it cannot be reached".into()
            })
        );
    }

    #[test]
    fn an_interrupted_takeover_is_finished_abandoned_rolled_back_or_waited_for() {
        let v = ready_view();
        let plan = takeover_plan(&v);
        let before = records_before(&v, &plan);
        let all = |_: &str| Reachability::Reachable;
        // Nothing in place.
        assert_eq!(
            resolve(&v, &plan, &before, &all, "backup-1", 5),
            Resolution::Abandon
        );
        // Everything in place.
        let mut done = v.clone();
        done.apply(&plan);
        assert_eq!(
            resolve(&done, &plan, &before, &all, "backup-1", 5),
            Resolution::Finish
        );
        // The Main released, the Backup did not take: the Main goes back online.
        let mut half = v.clone();
        half.merge(&plan.updates[0]);
        let Resolution::RollBack(undo) = resolve(&half, &plan, &before, &all, "backup-1", 5) else {
            panic!("a half-done takeover is rolled back");
        };
        assert_eq!(undo.len(), 1);
        let (rec, from) = &undo[0];
        assert_eq!(rec.name, "main-1");
        assert_eq!(rec.state, OperState::Online);
        assert_eq!(
            rec.state_changed,
            Some(5),
            "back online: a state change at the roll-back's time"
        );
        assert_eq!(rec.current_address, before[0].current_address);
        assert!(rec.stamp() > plan.updates[0].stamp());
        assert_eq!(
            *from,
            (plan.updates[0].version, plan.updates[0].writer.clone())
        );
        let mut undone = half.clone();
        undone.merge(rec);
        assert!(undone.invariant_violations().is_empty());
        // The Backup's step unknown and the Backup unreachable: wait.
        let no_b = |m: &str| {
            if m == "backup-1" {
                Reachability::Unreachable
            } else {
                Reachability::Reachable
            }
        };
        assert!(matches!(
            resolve(&half, &plan, &before, &no_b, "main-1", 5),
            Resolution::Wait(_)
        ));
        // Another operation wrote the Backup's record since: leave it.
        let mut moved = half.clone();
        let mut b = moved.member("backup-1").cloned().expect("backup");
        b.version += 7;
        b.writer = "backup-1".into();
        moved.merge(&b);
        assert!(matches!(
            resolve(&moved, &plan, &before, &all, "backup-1", 5),
            Resolution::Superseded(_)
        ));
    }

    #[test]
    fn a_failover_whose_main_was_not_asked_is_finished_once_the_backup_took_over() {
        let v = ready_view();
        let plan = takeover_plan(&v);
        let before = records_before(&v, &plan);
        let no_main = |m: &str| {
            if m == "main-1" {
                Reachability::Unreachable
            } else {
                Reachability::Reachable
            }
        };
        let mut b_only = v.clone();
        b_only.merge(&plan.updates[1]);
        assert_eq!(
            resolve(&b_only, &plan, &before, &no_main, "backup-1", 5),
            Resolution::Finish
        );
        assert_eq!(
            resolve(&v, &plan, &before, &no_main, "backup-1", 5),
            Resolution::Abandon
        );
    }
}
