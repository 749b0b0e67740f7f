//! The one command path: forwarding a command to its coordinator, planning it against the
//! group view, the takeover handshake (each member persists, then moves its address, then
//! acknowledges; whoever releases an address goes first) and the event history. Does I/O.

use super::claims::Running;
use super::*;
use crate::group::{
    after_apply_failure, claim_verdict, claimed_members, coordinator_of, release_not_awaited,
    Adopted, AfterApplyFailure, Claim, ClaimRefused, Precondition,
};
use crate::store::Intent;

impl Agent {
    // ---------------------------------------------------------------- the command path

    /// Carries out a command, wherever it came from: forwarded to the agent that must
    /// coordinate it, or coordinated here.
    ///
    /// The command runs as a task of its own: once submitted it runs to its end whatever
    /// happens to the requester (an HTTP client that hangs up, an SNMP manager that times
    /// out), and [`Agent::drain`] waits for it at shutdown.
    pub async fn submit(&self, cmd: Command) -> CommandResult {
        let me = self.clone();
        self.outlive_requester(async move { me.submit_here(cmd).await })
            .await
    }

    /// Runs `work` as a task of its own, tracked for [`Agent::drain`]; its result when the
    /// caller is still waiting.
    async fn outlive_requester<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, CommandError>> + Send + 'static,
    ) -> Result<T, CommandError> {
        match self.inner.operations.spawn(work).await {
            Ok(result) => result,
            Err(e) => Err(CommandError::Unavailable(format!(
                "the operation's task ended abnormally: {e}"
            ))),
        }
    }

    async fn submit_here(&self, cmd: Command) -> CommandResult {
        // A group setting: the agent asked sets it and pushes it to its peers.
        if let Operation::SetMaintenance { enabled } = cmd.operation {
            return self.set_maintenance(cmd, enabled).await;
        }
        {
            let st = self.inner.state.lock().await;
            for name in cmd.operation.named_members() {
                if st.view.member(name).is_none() {
                    return Err(CommandError::UnknownMember(name.to_string()));
                }
            }
        }
        if let Some(refusal) = cmd.operation.malformed() {
            return Err(refusal.into());
        }
        let coordinator = coordinator_of(&cmd.operation).to_string();
        if coordinator == self.inner.name {
            return self.coordinate(cmd).await;
        }
        info!(member = %self.inner.name, to = %coordinator, op = %cmd.operation.kind(),
            "forwarding command to its coordinator");
        let req = CommandRequest {
            protocol: PROTOCOL,
            group: self.inner.cfg.file.group.clone(),
            from: self.inner.name.clone(),
            command: cmd,
            definition_digest: Some(self.agreement().digest().to_string()),
        };
        let now = now_ms();
        let res = self.inner.peers.command(&coordinator, &req).await;
        // The agent an operator talked to keeps the outcome in its own history too.
        match &res {
            Ok(ev) => {
                let mut st = self.inner.state.lock().await;
                st.record_event(ev.clone());
                self.persist_or_log(&st);
                drop(st);
                // See the result at once rather than at the next heartbeat.
                self.gossip_round().await;
                self.publish().await;
            }
            Err(e) => {
                let mut ev = self.event(
                    &req.command,
                    format!("{}-{now}-relayed", self.inner.name),
                    now,
                );
                ev.coordinator = coordinator;
                self.record_failure(ev, e).await;
            }
        }
        res
    }

    /// A command forwarded by a peer: this agent must be its coordinator.
    /// Runs to its end whatever happens to the forwarding agent's request.
    pub async fn handle_forwarded(&self, req: CommandRequest) -> CommandResult {
        let me = self.clone();
        self.outlive_requester(async move { me.forwarded_here(req).await })
            .await
    }

    async fn forwarded_here(&self, req: CommandRequest) -> CommandResult {
        let coordinator = coordinator_of(&req.command.operation);
        if coordinator != self.inner.name {
            return Err(CommandError::Invalid(format!(
                "{} is not the coordinator of this operation ({coordinator} is)",
                self.inner.name
            )));
        }
        if let Err(err) = self.same_definition(&req.from, req.definition_digest.as_deref()) {
            self.record_refusal(&req.command, now_ms(), &err).await;
            return Err(err);
        }
        self.coordinate(req.command).await
    }

    /// Refuses a request from `peer` whose group definition (`digest`, absent from older
    /// agents) differs from this agent's: it may name members, or read row indexes, of
    /// another group.
    fn same_definition(&self, peer: &str, digest: Option<&str>) -> Result<(), CommandError> {
        let ours = self.agreement().digest().to_string();
        match digest {
            Some(d) if d != ours => Err(CommandError::Refused {
                failed: vec![Precondition::GroupDefinitionMismatch.code().to_string()],
                message: format!(
                    "refused: {} ({peer} lists another group than {}; see the alarm for how)",
                    Precondition::GroupDefinitionMismatch.code(),
                    self.inner.name
                ),
            }),
            _ => Ok(()),
        }
    }

    async fn coordinate(&self, cmd: Command) -> CommandResult {
        let now = now_ms();
        if let Some(why) = self.state_error() {
            let err = CommandError::Unavailable(format!(
                "{} cannot write its state ({why}); it takes part in no operation until it can",
                self.inner.name
            ));
            self.record_refusal(&cmd, now, &err).await;
            return Err(err);
        }
        // A replace takeover copies the acting Backup's data to this (new) server: refused
        // at once when it cannot be planned or the data_dir is not empty, and a first copy
        // is staged before anything is claimed (it may take long; nothing changes meanwhile).
        if let Operation::ReplaceTakeover { main, .. } = &cmd.operation {
            match self.replace_source(&cmd.operation, now).await {
                Ok(backup) => self.stage_restore(&backup, main).await,
                Err(err) => {
                    self.record_refusal(&cmd, now, &err).await;
                    return Err(err);
                }
            }
        }
        // Plan, claim the members here and persist the intent: one write, before any step.
        let started = self.start_here(&cmd, now).await;
        let (plan, members, event, since) = match started {
            Ok(s) => s,
            Err(err) => {
                self.record_refusal(&cmd, now, &err).await;
                return Err(err);
            }
        };
        // Runs here now: the heartbeat rounds leave its intent alone until it ends.
        let _running = Running::mark(self, &plan.id);
        // With a quorum source: the group's operation lock there, across partitions.
        if let Err(err) = self.lock_operation(&plan.id).await {
            self.end_intent(&plan.id).await;
            self.record_refusal(&cmd, now, &err).await;
            return Err(err);
        }
        // Then on every peer: of two overlapping operations, one finds the other's claim.
        let answers = self
            .claim_round(&plan.id, &members, self.claim_duration(&plan), since)
            .await;
        if let Err(why) = claim_verdict(&plan, &self.inner.name, &answers) {
            self.end_intent(&plan.id).await;
            let err = match why {
                ClaimRefused::InProgress { at, by } => CommandError::Refused {
                    failed: vec![Precondition::OperationInProgress.code().to_string()],
                    message: format!(
                        "refused: operation_in_progress ({} holds a claim of operation {by} on \
                         these members)",
                        at
                    ),
                },
                ClaimRefused::Unable { member, why } => CommandError::Unavailable(format!(
                    "{member} cannot take part in the operation: {why}"
                )),
            };
            self.record_refusal(&cmd, now, &err).await;
            return Err(err);
        }
        self.execute(&cmd, &plan, event).await
    }

    /// The Backup a replace takeover copies from (the one acting for the Main), if the
    /// operation can be planned now and this member's data_dir is empty.
    async fn replace_source(&self, op: &Operation, now: Millis) -> Result<String, CommandError> {
        let plan = {
            let st = self.inner.state.lock().await;
            st.view.plan(
                op,
                now,
                &self.inner.name,
                &st.claims.busy(now),
                &|m| self.reachability(m),
                &self.mismatched(),
            )?
        };
        self.restore_target()?;
        replace_backup(&plan).ok_or_else(|| {
            CommandError::Invalid("the replace takeover's plan names no backup".into())
        })
    }

    /// Plans `cmd` against this view and, if it may run, claims its members here and persists
    /// the intent (in one write): the plan, the members claimed and the event it will record.
    async fn start_here(
        &self,
        cmd: &Command,
        now: Millis,
    ) -> Result<(crate::group::Plan, Vec<String>, Event, Millis), CommandError> {
        let mut st = self.inner.state.lock().await;
        let busy = st.claims.busy(now);
        let plan = st.view.plan(
            &cmd.operation,
            now,
            &self.inner.name,
            &busy,
            &|m| self.reachability(m),
            &self.mismatched(),
        )?;
        let members = claimed_members(&plan);
        let claim = Claim {
            op: plan.id.clone(),
            coordinator: self.inner.name.clone(),
            members: members.clone(),
            until: now + self.claim_duration(&plan),
            // Read under the state lock (see `gossip_round`).
            since: now_ms(),
        };
        let since = claim.since;
        let mut next = st.clone();
        next.claims.expire(now);
        if let Err(held) = next.claims.grant(claim, now) {
            return Err(CommandError::Refused {
                failed: vec![Precondition::OperationInProgress.code().to_string()],
                message: format!(
                    "refused: operation_in_progress (operation {} coordinated by {} holds these \
                     members)",
                    held.op, held.coordinator
                ),
            });
        }
        let before = plan
            .updates
            .iter()
            .filter_map(|u| st.view.member(&u.name).cloned())
            .collect();
        let mut event = self.event(cmd, plan.id.clone(), now);
        event.message = describe_done(&plan.operation);
        if let (Operation::ReplaceTakeover { main, .. }, Some(backup)) =
            (&plan.operation, replace_backup(&plan))
        {
            event.message = format!(
                "{main} is online on its new server with the data {backup} served (copied before \
                 it went online); {backup} is in standby"
            );
            event.members.push(backup);
        }
        next.intent = Some(Intent {
            plan: plan.clone(),
            before,
            event: event.clone(),
        });
        self.commit(&mut st, next).map_err(|e| {
            CommandError::Unavailable(format!(
                "{} cannot persist the operation's intent: {e}",
                self.inner.name
            ))
        })?;
        Ok((plan, members, event, since))
    }

    fn event(&self, cmd: &Command, id: String, now: Millis) -> Event {
        Event::of(cmd, id, &self.inner.name, now)
    }

    async fn record_refusal(&self, cmd: &Command, now: Millis, err: &CommandError) {
        let ev = self.event(cmd, format!("{}-{}-refused", self.inner.name, now), now);
        self.record_failure(ev, err).await;
    }

    async fn record_failure(&self, mut ev: Event, err: &CommandError) {
        ev.outcome = match err {
            CommandError::Unavailable(_) => OutcomeKind::Failed,
            _ => OutcomeKind::Refused,
        };
        ev.failed = err.body().failed;
        ev.message = err.to_string();
        warn!(member = %self.inner.name, op = %ev.kind, requested_by = %ev.requested_by,
            error = %ev.message, "command refused");
        let mut st = self.inner.state.lock().await;
        st.record_event(ev);
        self.persist_or_log(&st);
        drop(st);
        self.publish().await;
    }

    async fn execute(
        &self,
        cmd: &Command,
        plan: &crate::group::Plan,
        mut event: Event,
    ) -> CommandResult {
        for (rec, from) in plan.updates.iter().zip(&plan.planned_from) {
            if rec.name == self.inner.name {
                // Replace takeover: the Backup stopped serving (its step came first); the
                // data it served is copied here before this member goes online with it.
                if let (Operation::ReplaceTakeover { main, .. }, Some(backup)) =
                    (&plan.operation, replace_backup(plan))
                {
                    if let Err(why) = self.restore_data(&backup, main).await {
                        return self.stopped(cmd, why, true).await;
                    }
                }
                let planned = Some((from.0, from.1.as_str()));
                if let Err(e) = self
                    .adopt_own(rec.clone(), planned, Some(event.clone()))
                    .await
                {
                    return self.stopped(cmd, e, true).await;
                }
                continue;
            }
            let req = self.apply_request(rec, from, Some(event.clone()));
            let reach = self.reachability(&rec.name);
            let not_awaited = release_not_awaited(&plan.operation, &rec.name, reach);
            let asked_at = self.mono_now();
            let mut answer = if not_awaited {
                Err(PeerError::Unreachable {
                    member: rec.name.clone(),
                    detail: "silent on every heartbeat path; its release was not awaited".into(),
                })
            } else {
                self.inner.peers.apply(&rec.name, &req).await
            };
            // Asked and not answered: it may have died just now, holding the address under a
            // lease it renewed until then, which is gone once that lease has run out (a Main
            // silent for failover_after is past it). If it is heard again meanwhile (an agent
            // restarted), it is asked once more: it releases the address itself.
            if !not_awaited
                && matches!(answer, Err(PeerError::Unreachable { .. }))
                && after_apply_failure(&plan.operation, &rec.name, true)
                    == AfterApplyFailure::Proceed
            {
                if let Some(wait) = self.unconfirmed_release_wait() {
                    info!(member = %self.inner.name, main = %rec.name,
                        wait_ms = wait.as_millis() as u64,
                        "waiting for the Main's address lease to run out");
                    tokio::time::sleep(wait).await;
                    if self.liveness().heard_since(&rec.name, asked_at) {
                        info!(member = %self.inner.name, main = %rec.name,
                            "the Main answers again; asking it to release once more");
                        answer = self.inner.peers.apply(&rec.name, &req).await;
                    }
                }
            }
            match answer {
                Ok(reply) => {
                    self.absorb(std::slice::from_ref(&reply.record)).await;
                }
                Err(PeerError::Unreachable { detail, .. })
                    if after_apply_failure(&plan.operation, &rec.name, true)
                        == AfterApplyFailure::Proceed =>
                {
                    // The Main cannot release its address: proceed (the seed's failover).
                    // Its new record travels with every heartbeat, so when it returns it
                    // learns it was taken over and stays offline on its extra address.
                    warn!(member = %self.inner.name, main = %rec.name, %detail,
                        "main unreachable: taking over without its release");
                    event.message.push_str(&format!(
                        " ({} could not be reached to release its address: {detail})",
                        rec.name
                    ));
                }
                Err(e) => {
                    // A refusal is definite (nothing changed there); a request that got no
                    // answer may or may not have been applied.
                    let definite = matches!(e, PeerError::Rejected { .. });
                    let why = format!("{} did not apply its part: {e}", rec.name);
                    return self.stopped(cmd, why, definite).await;
                }
            }
        }
        {
            let mut st = self.inner.state.lock().await;
            let mut next = st.clone();
            for rec in &plan.updates {
                next.view.merge(rec);
            }
            next.count_op(&plan.id, plan.operation.kind());
            next.record_event(event.clone());
            next.intent = None;
            next.claims.release(&plan.id);
            if let Err(e) = self.commit(&mut st, next) {
                // Every member holds its part; only this closing write failed. The intent
                // stays, and the next heartbeat round finishes the operation from it.
                error!(member = %self.inner.name, error = %e,
                    "operation done; its closing write failed and is retried");
            }
        }
        info!(member = %self.inner.name, op = %event.kind, requested_by = %event.requested_by,
            members = ?event.members, reason = ?event.reason, "{}", event.message);
        self.release_round(&plan.id).await;
        self.publish().await;
        self.gossip_round().await;
        Ok(event)
    }

    /// An operation stopped part way: carried to a consistent end now when every step's
    /// outcome is known (`definite`), else left to the heartbeat rounds, which resolve the
    /// persisted intent once the member that did not answer is heard from again.
    async fn stopped(&self, cmd: &Command, why: String, definite: bool) -> CommandResult {
        error!(member = %self.inner.name, op = %cmd.operation.kind(), error = %why,
            "operation stopped part way");
        let ending = if definite {
            self.resolve_intent(None).await
        } else {
            Some(
                "its outcome on that member is unknown; the operation is rolled back or \
                 finished once the member is heard from again"
                    .to_string(),
            )
        };
        Err(CommandError::Unavailable(match ending {
            Some(end) => format!("operation stopped: {why}; {end}"),
            None => format!("operation stopped: {why}"),
        }))
    }

    /// The request that hands `rec`, planned from the record stamped `from`, to its member.
    pub(super) fn apply_request(
        &self,
        rec: &MemberRecord,
        from: &(u64, String),
        event: Option<Event>,
    ) -> ApplyRequest {
        ApplyRequest {
            protocol: PROTOCOL,
            group: self.inner.cfg.file.group.clone(),
            from: self.inner.name.clone(),
            record: rec.clone(),
            planned_from: Some(from.clone()),
            event,
            definition_digest: Some(self.agreement().digest().to_string()),
        }
    }

    /// A coordinator hands this agent its new record (the takeover handshake). The record is
    /// persisted first, then the address is moved, then the new record is acknowledged.
    /// Runs to its end (persisted, address moved, hook run) whatever happens to the
    /// coordinator's request.
    pub async fn handle_apply(&self, req: ApplyRequest) -> Result<ApplyReply, CommandError> {
        let me = self.clone();
        self.outlive_requester(async move { me.apply_here(req).await })
            .await
    }

    async fn apply_here(&self, req: ApplyRequest) -> Result<ApplyReply, CommandError> {
        if req.record.name != self.inner.name {
            return Err(CommandError::Invalid(format!(
                "record for {} sent to {}",
                req.record.name, self.inner.name
            )));
        }
        self.same_definition(&req.from, req.definition_digest.as_deref())?;
        let planned = req.planned_from.as_ref().map(|(v, w)| (*v, w.as_str()));
        self.adopt_own(req.record, planned, req.event)
            .await
            .map_err(CommandError::Unavailable)?;
        let st = self.inner.state.lock().await;
        let record = st
            .view
            .member(&self.inner.name)
            .cloned()
            .ok_or_else(|| CommandError::Unavailable("own record missing".into()))?;
        Ok(ApplyReply { record })
    }

    /// Adopts a new record for this member: persist, then move the address.
    pub(super) async fn adopt_own(
        &self,
        rec: MemberRecord,
        planned_from: Option<(u64, &str)>,
        event: Option<Event>,
    ) -> Result<(), String> {
        // With a quorum source: a record that gives this member a new address is adopted only
        // once its key is this member's (before anything is persisted: a refusal changes
        // nothing). A key left over by an adoption refused below is deleted by
        // `reconcile_keys`.
        if let Some(a) = rec.current_address {
            let holds = {
                let st = self.inner.state.lock().await;
                st.view
                    .member(&self.inner.name)
                    .is_some_and(|r| r.current_address == Some(a))
            };
            if !holds {
                self.may_take(a)
                    .await
                    .map_err(|e| format!("{} cannot take {a}: {e}", self.inner.name))?;
            }
        }
        let mut st = self.inner.state.lock().await;
        let mut next = st.clone();
        // None: the same write again (a coordinator retrying on another path after a
        // timeout), already persisted and acted on; acknowledge it.
        let Some(Adopted { old, new, op }) =
            next.view.adopt_own(&self.inner.name, &rec, planned_from)?
        else {
            return Ok(());
        };
        if let Some(op) = &op {
            next.count_op(&op.id, op.kind);
        }
        if let Some(ev) = event {
            next.record_event(ev);
        }
        // Persist, then change memory, then act: a failed save refuses the step.
        self.commit(&mut st, next)
            .map_err(|e| format!("{} cannot persist its new record: {e}", self.inner.name))?;
        drop(st);
        self.move_address(&old, &new).await?;
        info!(member = %self.inner.name, from = %old.state, to = %new.state,
            address = ?new.current_address, "state changed");
        self.publish().await;
        Ok(())
    }

    /// What the address backend is told when this member's record goes from `old` (None at
    /// start) to `new`.
    pub(super) fn transition(&self, old: Option<&MemberRecord>, new: &MemberRecord) -> Transition {
        let cfg = &self.inner.cfg.file;
        let mut managed: Vec<std::net::IpAddr> = cfg.members.iter().map(|m| m.address).collect();
        managed.extend(
            cfg.members
                .iter()
                .filter(|m| m.role == Role::Main)
                .map(|m| m.extra()),
        );
        managed.sort();
        managed.dedup();
        Transition {
            group: cfg.group.clone(),
            member: self.inner.name.clone(),
            previous_state: old.map(|o| o.state),
            state: new.state,
            previous_address: old.and_then(|o| o.current_address),
            address: new.current_address,
            configured_address: new.configured_address,
            acting_for: new.acting_for.clone(),
            replica_dir: new
                .replica_served()
                .map(|m| replication::current_dir(&self.replica_root(), m)),
            managed,
            lifetime: self.lease_lifetime(new.current_address),
        }
    }

    pub(super) async fn move_address(
        &self,
        old: &MemberRecord,
        new: &MemberRecord,
    ) -> Result<(), String> {
        if old.current_address == new.current_address && old.state == new.state {
            return Ok(());
        }
        let t = self.transition(Some(old), new);
        self.change_address(&t).await.map_err(|e| e.to_string())
    }
}

/// The Backup a replace takeover's plan returns to standby: the one whose data it copies.
fn replace_backup(plan: &crate::group::Plan) -> Option<String> {
    match &plan.operation {
        Operation::ReplaceTakeover { main, .. } => plan
            .updates
            .iter()
            .find(|u| &u.name != main)
            .map(|u| u.name.clone()),
        _ => None,
    }
}

fn describe_done(op: &Operation) -> String {
    match op {
        Operation::Takeover { backup, main } => {
            format!("{backup} took over {main}; no redundancy until {main} is restored")
        }
        Operation::Failover { backup, main } => {
            format!("{backup} failed over {main}; no redundancy until {main} is restored")
        }
        Operation::ReverseTakeover { main } => {
            format!("{main} is back on its configured address; its backup is in standby")
        }
        Operation::Reconfigure { main, backup } => {
            format!("{backup} is now the configured main; {main} is a configured backup")
        }
        Operation::ReplaceTakeover { main, .. } => format!(
            "{main} is online on its new server with the data its backup served; the backup is \
             in standby"
        ),
        Operation::SetAutoFailover { member, enabled } => format!(
            "auto-failover {} on {member}",
            if *enabled { "enabled" } else { "disabled" }
        ),
        Operation::SetMaintenance { enabled } => {
            format!("maintenance mode {}", if *enabled { "on" } else { "off" })
        }
    }
}
