//! The group-wide side of an operation this agent coordinates: its claims on every peer (and
//! the claims peers ask this agent to hold), and the persisted intent that carries an
//! interrupted operation to an end (`group::claims`). Does I/O.

use super::*;
use crate::group::{resolve, Claim, ClaimAnswer, Resolution};
use crate::peer::ClaimRequest;

/// The longest claim a peer may ask this agent to hold.
const MAX_CLAIM: Duration = Duration::from_secs(600);

impl Agent {
    /// How long a claim holds: longer than an operation of the plan's steps can take (each
    /// step is one apply, bounded by the apply time-out), plus the claim and release rounds.
    pub(super) fn claim_duration(&self, plan: &crate::group::Plan) -> Millis {
        let p = &self.inner.cfg.file;
        let step = p.peer.request_timeout + p.hooks.timeout + Duration::from_secs(2);
        (step * (plan.updates.len() as u32 + 2)).as_millis() as Millis
    }

    /// Sends a claim (or, with `release`, its release) to every peer at once; each peer's
    /// answer. Peers this agent judges unreachable are not waited for.
    pub(super) async fn claim_round(
        &self,
        op: &str,
        members: &[String],
        duration: Millis,
        since: Millis,
    ) -> Vec<(String, ClaimAnswer)> {
        self.claim_requests(op, members, (duration, since), false)
            .await
    }

    /// Releases operation `op`'s claims on every peer, in the background (tracked, so a
    /// stopping node waits for it): the requester and the published state do not wait for a
    /// peer that does not answer. A peer that misses it drops the claim when this agent's
    /// next heartbeat no longer lists the operation.
    pub(super) async fn release_round(&self, op: &str) {
        let me = self.clone();
        let op = op.to_string();
        self.inner.operations.spawn(async move {
            me.unlock_operation(&op).await;
            me.claim_requests(&op, &[], (0, 0), true).await;
        });
    }

    async fn claim_requests(
        &self,
        op: &str,
        members: &[String],
        (duration, since): (Millis, Millis),
        release: bool,
    ) -> Vec<(String, ClaimAnswer)> {
        let mut set = JoinSet::new();
        let mut answers = Vec::new();
        for m in &self.inner.cfg.file.members {
            if m.name == self.inner.name {
                continue;
            }
            if self.reachability(&m.name) == Reachability::Unreachable {
                answers.push((m.name.clone(), ClaimAnswer::Unreachable));
                continue;
            }
            let req = ClaimRequest {
                protocol: PROTOCOL,
                group: self.inner.cfg.file.group.clone(),
                from: self.inner.name.clone(),
                op: op.to_string(),
                members: members.to_vec(),
                duration_ms: duration,
                since,
                release,
            };
            let peers = self.inner.peers.clone();
            let name = m.name.clone();
            set.spawn(async move {
                let a = peers.claim(&name, &req).await;
                (name, a)
            });
        }
        while let Some(joined) = set.join_next().await {
            if let Ok(answer) = joined {
                answers.push(answer);
            }
        }
        answers
    }

    /// Ends this agent's operation `op`: its intent cleared and its claim released here (one
    /// write), then its claims released on every peer.
    pub(super) async fn end_intent(&self, op: &str) {
        {
            let mut st = self.inner.state.lock().await;
            let mut next = st.clone();
            next.claims.release(op);
            if next.intent.as_ref().is_some_and(|i| i.plan.id == op) {
                next.intent = None;
            }
            if next != *st && self.commit(&mut st, next).is_err() {
                // The intent stays; the next heartbeat round resolves it again.
                return;
            }
        }
        self.release_round(op).await;
    }

    /// A peer claims members for an operation, or releases its claim.
    pub async fn handle_claim(&self, req: ClaimRequest) -> Result<ClaimAnswer, CommandError> {
        let now = now_ms();
        let mut st = self.inner.state.lock().await;
        let mut next = st.clone();
        next.claims.expire(now);
        if req.release {
            next.claims.release(&req.op);
        } else {
            if let Some(why) = self.state_error() {
                return Ok(ClaimAnswer::Refused {
                    message: format!("{} cannot write its state ({why})", self.inner.name),
                });
            }
            // Bounded: a claim never outlives the longest operation this agent allows.
            let duration = req.duration_ms.min(MAX_CLAIM.as_millis() as Millis);
            let claim = Claim {
                op: req.op.clone(),
                coordinator: req.from.clone(),
                members: req.members.clone(),
                until: now + duration,
                since: req.since,
            };
            if let Err(held) = next.claims.grant(claim, now) {
                return Ok(ClaimAnswer::Held {
                    op: held.op,
                    coordinator: held.coordinator,
                });
            }
        }
        if next != *st {
            if let Err(e) = self.commit(&mut st, next) {
                return Ok(ClaimAnswer::Refused {
                    message: format!("{} cannot persist the claim: {e}", self.inner.name),
                });
            }
        }
        Ok(ClaimAnswer::Granted)
    }

    /// Carries this agent's persisted intent, if any, to an end against its view now
    /// (`group::resolve`): finished, abandoned, rolled back or left to a newer operation, and
    /// recorded; or left for a later round while a member whose step is unknown cannot be
    /// judged. `answered`: the peers that answered the heartbeat round just ended (their
    /// records are current in this view); None right after a definite refusal, when every
    /// step's outcome is known. What happened, for the requester.
    pub(super) async fn resolve_intent(
        &self,
        answered: Option<&BTreeSet<String>>,
    ) -> Option<String> {
        let (intent, view) = {
            let st = self.inner.state.lock().await;
            (st.intent.clone()?, st.view.clone())
        };
        if answered.is_some() && self.running_ops().contains(&intent.plan.id) {
            return None; // under way in this process: it ends (or resolves) itself
        }
        let me = self.inner.name.clone();
        let reach = |m: &str| {
            if m == me {
                Reachability::Local
            } else {
                match answered {
                    Some(a) if !a.contains(m) => Reachability::Unreachable,
                    _ => self.reachability(m),
                }
            }
        };
        let now = now_ms();
        let plan = &intent.plan;
        let resolution = resolve(&view, plan, &intent.before, &reach, &self.inner.name, now);
        let mut event = intent.event.clone();
        let (outcome, message) = match resolution {
            Resolution::Wait(why) => {
                debug!(member = %self.inner.name, op = %plan.id, %why, "operation not resolved yet");
                return Some(why);
            }
            Resolution::Finish => (OutcomeKind::Done, event.message.clone()),
            Resolution::Abandon => (
                OutcomeKind::Failed,
                "operation stopped before any member changed; nothing to undo".to_string(),
            ),
            Resolution::Superseded(why) => (
                OutcomeKind::Failed,
                format!("operation stopped part way and not rolled back: {why}"),
            ),
            Resolution::RollBack(undo) => match self.roll_back(&undo).await {
                Ok(names) => (
                    OutcomeKind::Failed,
                    format!(
                        "operation stopped part way; rolled back on {}",
                        names.join(", ")
                    ),
                ),
                Err(why) => {
                    warn!(member = %self.inner.name, op = %plan.id, %why,
                        "rollback not done yet; retried next round");
                    return Some(format!("rollback not done yet: {why}"));
                }
            },
        };
        event.outcome = outcome;
        event.message = message.clone();
        if outcome == OutcomeKind::Failed {
            event.id = format!("{}-stopped", plan.id);
        }
        {
            let mut st = self.inner.state.lock().await;
            let mut next = st.clone();
            if outcome == OutcomeKind::Done {
                for rec in &plan.updates {
                    next.view.merge(rec);
                }
                next.count_op(&plan.id, plan.operation.kind());
            }
            next.record_event(event);
            next.intent = None;
            next.claims.release(&plan.id);
            if self.commit(&mut st, next).is_err() {
                return Some("its end could not be persisted; retried next round".into());
            }
        }
        info!(member = %self.inner.name, op = %plan.id, "{message}");
        self.release_round(&plan.id).await;
        self.publish().await;
        Some(message)
    }

    /// Writes the compensating records of a rollback, in order (each a compare-and-swap over
    /// the step it undoes); the members rolled back.
    async fn roll_back(
        &self,
        undo: &[(MemberRecord, (u64, String))],
    ) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for (rec, from) in undo {
            if rec.name == self.inner.name {
                self.adopt_own(rec.clone(), Some((from.0, from.1.as_str())), None)
                    .await?;
            } else {
                let req = self.apply_request(rec, from, None);
                let reply = self
                    .inner
                    .peers
                    .apply(&rec.name, &req)
                    .await
                    .map_err(|e| format!("{} did not take its record back: {e}", rec.name))?;
                self.absorb(std::slice::from_ref(&reply.record)).await;
            }
            names.push(rec.name.clone());
        }
        Ok(names)
    }
}

/// Marks an operation as running in this process for as long as it lives (every path out of
/// the coordinator drops it).
pub(super) struct Running {
    agent: Agent,
    op: String,
}

impl Running {
    pub(super) fn mark(agent: &Agent, op: &str) -> Running {
        agent.running_ops().insert(op.to_string());
        Running {
            agent: agent.clone(),
            op: op.to_string(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.agent.running_ops().remove(&self.op);
    }
}

impl Agent {
    pub(super) fn running_ops(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.inner
            .running_ops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
