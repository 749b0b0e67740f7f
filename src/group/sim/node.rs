//! One simulated member: the agent's handlers for the peer messages (heartbeat, apply,
//! command), its heartbeat round, the command path and the takeover handshake, written over the
//! same core functions the agent calls (merge and digests, plan, judge_offer,
//! after_apply_failure, the failover detector, the alarm bookkeeping) and the agent's durable
//! state (`PersistedState`), with the sockets, the clock and the disk replaced by values.
//! Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::command::{Command, CommandError, ErrorBody, Event, OutcomeKind};
use crate::group::{
    after_apply_failure, claim_verdict, claimed_members, coordinator_of, own_record_rewritten,
    release_not_awaited, resolve, AfterApplyFailure, Agreement, Alarm, Claim, ClaimAnswer,
    ClaimRefused, GroupView, Liveness, MemberRecord, Millis, Mono, Operation, Plan, Precondition,
    Reachability, Requester, Resolution, Sight,
};
use crate::peer::messages::{check_envelope, Envelope};
use crate::peer::{
    ApplyReply, ApplyRequest, ClaimRequest, CommandRequest, Heartbeat, HeartbeatReply, PROTOCOL,
};
use crate::store::{Intent, PersistedState};

/// Heartbeat interval, `failover_after`, and how long each kind of request may take.
pub(super) const HEARTBEAT: Millis = 1_000;
pub(super) const FAILOVER_AFTER: Millis = 3_000;
pub(super) const HEARTBEAT_TIMEOUT: Millis = 500;
pub(super) const APPLY_TIMEOUT: Millis = 1_500;
pub(super) const COMMAND_TIMEOUT: Millis = 3 * APPLY_TIMEOUT;
pub(super) const CLAIM_TIMEOUT: Millis = HEARTBEAT_TIMEOUT;
/// How long a claim holds: the agent's rule, steps + 2 apply time-outs.
fn claim_duration(plan: &Plan) -> Millis {
    (plan.updates.len() as Millis + 2) * APPLY_TIMEOUT
}
/// Wall-clock time at virtual time 0 (records carry wall-clock times).
pub(super) const EPOCH: Millis = 1_700_000_000_000;
const PATH: &str = "lan";
const CHECK: &str = "probe";

/// Which peer route a packet travels on (the HTTP path of the real protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Heartbeat,
    HeartbeatReply,
    Apply,
    ApplyReply,
    Command,
    CommandReply,
    Claim,
    ClaimReply,
}

/// A request or a reply on the wire: the peer message as JSON.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    pub from: usize,
    pub to: usize,
    /// Pairs a reply with its request.
    pub rpc: u64,
    pub route: Route,
    /// Shared by the copies of a duplicated packet and by a round's heartbeats.
    pub body: Rc<str>,
}

/// What a member asks of the world while it handles an input.
#[derive(Debug)]
pub(super) enum Out {
    Send(Packet),
    /// Calls the member back after this long (an RPC's timeout).
    Timeout {
        after: Millis,
        rpc: u64,
    },
    /// Calls the member back after this long to end its heartbeat round.
    RoundEnd {
        after: Millis,
    },
    Report(Report),
}

/// What the checker learns from a member.
#[derive(Debug)]
pub(super) enum Report {
    /// This member coordinated `op` to the end; `alarms` as it sees them right after.
    Completed {
        op: Operation,
        alarms: Vec<Alarm>,
    },
    /// A refused command changed the coordinator's state.
    RefusalChanged {
        op: Operation,
        what: String,
    },
    /// This member accepted `op` and starts carrying it out.
    Started {
        op: Operation,
    },
    Refused,
    Stopped,
    /// A message did not decode: the wire format is broken.
    Garbled(String),
}

/// The time and the outputs of one step of one member.
#[derive(Debug)]
pub(super) struct Ctx<'a> {
    pub now: Millis,
    pub me: usize,
    pub names: &'a [String],
    pub next_rpc: &'a mut u64,
    pub out: Vec<Out>,
}

impl Ctx<'_> {
    fn wall(&self) -> Millis {
        EPOCH + self.now
    }

    fn rpc(&mut self) -> u64 {
        *self.next_rpc += 1;
        *self.next_rpc
    }

    fn send<T: Serialize>(&mut self, to: usize, rpc: u64, route: Route, msg: &T) {
        self.send_encoded(to, rpc, route, encode(msg));
    }

    fn send_encoded(&mut self, to: usize, rpc: u64, route: Route, body: Rc<str>) {
        self.out.push(Out::Send(Packet {
            from: self.me,
            to,
            rpc,
            route,
            body,
        }));
    }

    fn report(&mut self, r: Report) {
        self.out.push(Out::Report(r));
    }
}

/// `operation_in_progress`, naming the operation that holds the claim.
fn in_progress(by: &str) -> CommandError {
    CommandError::Refused {
        failed: vec![Precondition::OperationInProgress.code().to_string()],
        message: format!("refused: operation_in_progress ({by} holds these members)"),
    }
}

fn encode<T: Serialize>(msg: &T) -> Rc<str> {
    serde_json::to_string(msg)
        .expect("peer messages serialize")
        .into()
}

/// Decodes a peer message, reporting a garbled one.
pub(super) fn decode<T: DeserializeOwned>(ctx: &mut Ctx<'_>, body: &str) -> Option<T> {
    match serde_json::from_str(body) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.report(Report::Garbled(format!("{e}: {body}")));
            None
        }
    }
}

/// A request this member waits an answer for.
#[derive(Debug, Clone)]
enum Pending {
    Heartbeat { peer: usize, push: bool },
    Apply,
    Command { cmd: Command, coordinator: String },
    Claim { peer: String },
    Release,
}

/// Where the operation this member coordinates stands.
#[derive(Debug, Clone)]
enum Phase {
    /// Waiting for the peers' answers to its claim.
    Claiming {
        waiting: BTreeSet<u64>,
        answers: Vec<(String, ClaimAnswer)>,
    },
    /// Applying the plan's records in order.
    Applying,
    /// Writing the compensating records of a rollback in order.
    Undoing(Vec<(MemberRecord, (u64, String))>),
}

/// The operation this member coordinates: the plan, how far it got, whom to answer.
#[derive(Debug, Clone)]
pub(super) struct Running {
    plan: Plan,
    phase: Phase,
    event: Event,
    at: Millis,
    next: usize,
    awaiting: Option<u64>,
    reply_to: Option<(usize, u64)>,
}

/// What a member holds in memory; lost in a crash.
#[derive(Debug, Clone)]
pub(super) struct Mem {
    pub st: PersistedState,
    liveness: Liveness,
    started: Mono,
    pub running: Option<Running>,
    /// The peers that answered this heartbeat round.
    answered: BTreeSet<String>,
    rpcs: BTreeMap<u64, Pending>,
    pushed: BTreeSet<usize>,
    /// Whether the first heartbeat round after start ended and the address was taken.
    pub took_address: bool,
    /// Whether the last write of the state failed (`Agent::state_error`).
    state_error: bool,
}

impl Mem {
    /// Whether a command is under way here (coordinated, or forwarded and unanswered).
    pub fn active(&self) -> bool {
        self.running.is_some()
            || self
                .rpcs
                .values()
                .any(|p| matches!(p, Pending::Command { .. }))
    }
}

/// One member: its state file and, while it runs, its memory.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub name: String,
    pub group: String,
    pub disk: PersistedState,
    pub mem: Option<Mem>,
    /// Bumped at every crash: timers of an earlier life are ignored.
    pub incarnation: u32,
    /// The address the member's host is configured with (the address backend's side; it
    /// stays through a crash, as a service address does when an agent dies).
    pub host: Option<IpAddr>,
    /// The state directory cannot be written (a full disk): every save fails.
    pub disk_full: bool,
}

impl Node {
    pub fn new(view: GroupView, name: &str) -> Node {
        Node {
            name: name.to_string(),
            group: view.group.clone(),
            disk: PersistedState::new(view, name),
            mem: None,
            incarnation: 0,
            host: None,
            disk_full: false,
        }
    }

    /// Starts (or restarts) from the state file, as `Agent::open` then `Agent::run` do: count
    /// the boot, persist, then one heartbeat round before taking the address the record names.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        if self.disk_full {
            return; // the agent cannot count its boot and exits; it is started again later
        }
        let mut st = self.disk.clone();
        st.boots = st.boots.saturating_add(1);
        self.disk = st.clone();
        self.mem = Some(Mem {
            st,
            liveness: Liveness::default(),
            started: ctx.now,
            running: None,
            answered: BTreeSet::new(),
            rpcs: BTreeMap::new(),
            pushed: BTreeSet::new(),
            took_address: false,
            state_error: false,
        });
        self.gossip_round(ctx);
        ctx.out.push(Out::RoundEnd {
            after: HEARTBEAT_TIMEOUT,
        });
    }

    /// The address backend carries out this member's record (`Agent::move_address`).
    fn move_address(&mut self) {
        self.host = self
            .mem_ref()
            .st
            .view
            .member(&self.name)
            .and_then(|r| r.current_address);
    }

    /// Drops everything in memory; the state file stays.
    pub fn crash(&mut self) {
        self.mem = None;
        self.incarnation += 1;
    }

    fn mem(&mut self) -> &mut Mem {
        self.mem
            .as_mut()
            .expect("only a running member handles inputs")
    }

    fn mem_ref(&self) -> &Mem {
        self.mem
            .as_ref()
            .expect("only a running member handles inputs")
    }

    /// Whether this member's host holds another address than its own record names, once it
    /// has taken its address after start (every step persists, then moves, then answers).
    pub fn holds_other_than_recorded(&self) -> Option<String> {
        let mem = self.mem.as_ref()?;
        if !mem.took_address {
            return None;
        }
        let named = mem
            .st
            .view
            .member(&self.name)
            .and_then(|r| r.current_address);
        (named != self.host).then(|| {
            format!(
                "{} holds {:?}, its record names {named:?}",
                self.name, self.host
            )
        })
    }

    pub fn view(&self) -> Option<&GroupView> {
        self.mem.as_ref().map(|m| &m.st.view)
    }

    /// `Agent::commit`: writes the state; a failed write changes nothing (the state in
    /// memory goes back to the last one written, as the agent's copy never replaced it) and
    /// is remembered until a write succeeds. Whether it was written.
    fn persist(&mut self) -> bool {
        if self.disk_full {
            let disk = self.disk.clone();
            let mem = self.mem();
            mem.st = disk;
            mem.state_error = true;
            return false;
        }
        let st = self.mem().st.clone();
        self.disk = st;
        self.mem().state_error = false;
        true
    }

    fn reach_fn(&self, now: Mono) -> impl Fn(&str) -> Reachability + '_ {
        let mem = self.mem.as_ref().expect("running");
        move |m: &str| {
            mem.liveness
                .reachability(&self.name, m, now, FAILOVER_AFTER)
        }
    }

    /// `Agent::publish`: the alarms, keeping (and persisting) the no-standby time.
    pub fn publish(&mut self, ctx: &Ctx<'_>) -> Vec<Alarm> {
        let state = {
            let mem = self.mem.as_ref().expect("running");
            let reach = self.reach_fn(ctx.now);
            mem.st.view.alarm_state(
                &reach,
                &Agreement::default(),
                mem.st.no_standby_since,
                ctx.wall(),
            )
        };
        if state.no_standby_since != self.mem().st.no_standby_since {
            self.mem().st.no_standby_since = state.no_standby_since;
            self.persist();
        }
        state.alarms
    }

    // ------------------------------------------------------------------ heartbeats

    /// `Agent::gossip_round`: our digest to every peer.
    pub fn gossip_round(&mut self, ctx: &mut Ctx<'_>) {
        let digest = self.mem().st.view.digest();
        self.mem().pushed.clear();
        self.mem().answered.clear();
        let operations = self.mem_ref().st.claims.coordinated_by(&self.name);
        let body = encode(&Heartbeat {
            protocol: PROTOCOL,
            group: self.group.clone(),
            from: self.name.clone(),
            path: PATH.into(),
            records: Vec::new(),
            digest: digest.clone(),
            operations,
            sent_at: ctx.wall(),
            // Every simulated member lists the same group: nothing to compare.
            definition_digest: None,
            definition: None,
            lease: None,
            maintenance: None,
        });

        for peer in 0..ctx.names.len() {
            if peer == ctx.me {
                continue;
            }
            let rpc = ctx.rpc();
            self.mem()
                .rpcs
                .insert(rpc, Pending::Heartbeat { peer, push: false });
            ctx.send_encoded(peer, rpc, Route::Heartbeat, body.clone());
            ctx.out.push(Out::Timeout {
                after: HEARTBEAT_TIMEOUT,
                rpc,
            });
        }
    }

    /// The end of a heartbeat round (`heartbeat_loop`): publish, then the failover detector.
    pub fn round_end(&mut self, ctx: &mut Ctx<'_>) {
        if !self.mem_ref().took_address {
            self.mem().took_address = true;
            self.move_address();
        }
        if self.mem_ref().state_error {
            self.persist(); // `Agent::retry_save`
        }
        let now = ctx.wall();
        if self.mem().st.claims.expire(now) {
            self.persist();
        }
        self.resolve_intent(ctx);
        self.publish(ctx);
        let decided = {
            let mem = self.mem.as_ref().expect("running");
            Sight {
                view: &mem.st.view,
                local: &self.name,
                liveness: &mem.liveness,
                now: ctx.now,
                started: mem.started,
                after: FAILOVER_AFTER,
            }
            .failover_for_local()
        };
        if let Some(f) = decided {
            let cmd = Command {
                operation: Operation::Failover {
                    backup: f.backup,
                    main: f.main,
                },
                requested_by: Requester {
                    interface: "detector".into(),
                    identity: self.name.clone(),
                },
                reason: Some(f.reason),
            };
            self.submit(ctx, cmd);
        }
    }

    /// `Agent::absorb`: merge, count, persist; act on a rewritten own record.
    fn absorb(&mut self, ctx: &Ctx<'_>, records: &[MemberRecord]) {
        let name = self.name.clone();
        let st = &mut self.mem().st;
        let old = st.view.member(&name).cloned();
        let absorbed = st.view.absorb(records);
        for op in &absorbed.ops {
            st.count_op(&op.id, op.kind);
        }
        if !absorbed.changed || !self.persist() {
            return;
        }
        let new = self.mem().st.view.member(&name).cloned();
        if let (Some(old), Some(new)) = (old, new) {
            if own_record_rewritten(&old, &new) {
                self.move_address();
            }
        }
        self.publish(ctx);
    }

    /// The server's envelope check (`peer::messages::check_envelope`), as the real server
    /// runs it before a message reaches the agent.
    fn envelope(&self, ctx: &Ctx<'_>, msg: &impl Envelope) -> Result<(), CommandError> {
        check_envelope(msg, &self.group, ctx.names.iter().map(String::as_str))
    }

    /// `Agent::handle_heartbeat`.
    pub fn on_heartbeat(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(hb) = decode::<Heartbeat>(ctx, &p.body) else {
            return;
        };
        let reply: Result<HeartbeatReply, ErrorBody> = if let Err(e) = self.envelope(ctx, &hb) {
            Err(e.body())
        } else {
            self.mem().liveness.heard(&hb.from, &hb.path, ctx.now);
            self.absorb(ctx, &hb.records);
            if hb.sent_at != 0
                && self
                    .mem()
                    .st
                    .claims
                    .forget_ended(&hb.from, &hb.operations, hb.sent_at)
            {
                self.persist();
            }
            let view = &self.mem_ref().st.view;
            Ok(HeartbeatReply {
                protocol: PROTOCOL,
                from: self.name.clone(),
                records: view.newer_than(&hb.digest),
                want: view.wanted(&hb.digest),
                definition_digest: None,
                definition: None,
                lease: None,
                maintenance: None,
            })
        };
        ctx.send(p.from, p.rpc, Route::HeartbeatReply, &reply);
    }

    /// A heartbeat's answer (inside `gossip_round`, and `push`'s answer).
    pub fn on_heartbeat_reply(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(Pending::Heartbeat { peer, push }) = self.mem().rpcs.remove(&p.rpc) else {
            return;
        };
        let Some(Ok(reply)) = decode::<Result<HeartbeatReply, ErrorBody>>(ctx, &p.body) else {
            return;
        };
        if push {
            self.absorb(ctx, &reply.records);
            return;
        }
        if reply.from != ctx.names[peer] {
            return;
        }
        self.mem().liveness.heard(&reply.from, PATH, ctx.now);
        self.absorb(ctx, &reply.records);
        self.mem().answered.insert(reply.from.clone());
        if !reply.want.is_empty() && self.mem().pushed.insert(peer) {
            let records: Vec<MemberRecord> = {
                let view = &self.mem().st.view;
                reply
                    .want
                    .iter()
                    .filter_map(|n| view.member(n).cloned())
                    .collect()
            };
            let hb = Heartbeat {
                protocol: PROTOCOL,
                group: self.group.clone(),
                from: self.name.clone(),
                path: PATH.into(),
                records,
                digest: Vec::new(),
                operations: Vec::new(),
                sent_at: 0,
                definition_digest: None,
                definition: None,
                lease: None,
                maintenance: None,
            };
            let rpc = ctx.rpc();
            self.mem()
                .rpcs
                .insert(rpc, Pending::Heartbeat { peer, push: true });
            ctx.send(peer, rpc, Route::Heartbeat, &hb);
            ctx.out.push(Out::Timeout {
                after: HEARTBEAT_TIMEOUT,
                rpc,
            });
        }
    }

    // ------------------------------------------------------------------ the command path

    /// `Agent::submit`: coordinate here or forward to the coordinator.
    pub fn submit(&mut self, ctx: &mut Ctx<'_>, cmd: Command) {
        for name in cmd.operation.named_members() {
            if self.mem().st.view.member(name).is_none() {
                ctx.report(Report::Refused);
                return;
            }
        }
        let coordinator = coordinator_of(&cmd.operation).to_string();
        if coordinator == self.name {
            self.coordinate(ctx, cmd, None);
            return;
        }
        let Some(to) = ctx.names.iter().position(|n| *n == coordinator) else {
            return;
        };
        let req = CommandRequest {
            protocol: PROTOCOL,
            group: self.group.clone(),
            from: self.name.clone(),
            command: cmd.clone(),
            definition_digest: None,
        };
        let rpc = ctx.rpc();
        self.mem()
            .rpcs
            .insert(rpc, Pending::Command { cmd, coordinator });
        ctx.send(to, rpc, Route::Command, &req);
        ctx.out.push(Out::Timeout {
            after: COMMAND_TIMEOUT,
            rpc,
        });
    }

    /// The forwarded command's answer, or its timeout (`answer` = None).
    fn forwarded_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        cmd: Command,
        coordinator: String,
        answer: Result<Event, CommandError>,
    ) {
        match answer {
            Ok(ev) => {
                self.mem().st.record_event(ev);
                self.persist();
                self.gossip_round(ctx);
                self.publish(ctx);
            }
            Err(e) => {
                let now = ctx.wall();
                let mut ev = self.event(&cmd, format!("{}-{now}-relayed", self.name), now);
                ev.coordinator = coordinator;
                self.record_failure(ctx, ev, &e);
            }
        }
    }

    pub fn on_command_reply(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(Pending::Command { cmd, coordinator }) = self.mem().rpcs.remove(&p.rpc) else {
            return;
        };
        let Some(answer) = decode::<Result<Event, ErrorBody>>(ctx, &p.body) else {
            return;
        };
        self.forwarded_answer(
            ctx,
            cmd,
            coordinator,
            answer.map_err(CommandError::from_body),
        );
    }

    /// `Agent::handle_forwarded`.
    pub fn on_command(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(req) = decode::<CommandRequest>(ctx, &p.body) else {
            return;
        };
        let refused = if let Err(e) = self.envelope(ctx, &req) {
            Some(e)
        } else if coordinator_of(&req.command.operation) != self.name {
            Some(CommandError::Invalid("not the coordinator".into()))
        } else {
            None
        };
        match refused {
            Some(e) => {
                let reply: Result<Event, ErrorBody> = Err(e.body());
                ctx.send(p.from, p.rpc, Route::CommandReply, &reply);
            }
            None => self.coordinate(ctx, req.command, Some((p.from, p.rpc))),
        }
    }

    fn event(&self, cmd: &Command, id: String, now: Millis) -> Event {
        Event::of(cmd, id, &self.name, now)
    }

    fn record_failure(&mut self, ctx: &Ctx<'_>, mut ev: Event, err: &CommandError) {
        ev.outcome = match err {
            CommandError::Unavailable(_) => OutcomeKind::Failed,
            _ => OutcomeKind::Refused,
        };
        ev.failed = err.body().failed;
        ev.message = err.to_string();
        self.mem().st.record_event(ev);
        self.persist();
        self.publish(ctx);
    }

    fn answer(ctx: &mut Ctx<'_>, reply_to: Option<(usize, u64)>, answer: Result<Event, ErrorBody>) {
        if let Some((to, rpc)) = reply_to {
            ctx.send(to, rpc, Route::CommandReply, &answer);
        }
    }

    /// `Agent::coordinate`: plan against this view and claim its members here, persisting
    /// the intent (refused: nothing changes); then the claim round on every peer.
    fn coordinate(&mut self, ctx: &mut Ctx<'_>, cmd: Command, reply_to: Option<(usize, u64)>) {
        let now = ctx.wall();
        let op = cmd.operation.clone();
        let before = self.mem().st.clone();
        // `Agent::coordinate`: a member whose state cannot be written coordinates nothing.
        let planned: Result<Plan, CommandError> = if self.mem_ref().state_error {
            Err(CommandError::Unavailable(format!(
                "{} cannot write its state",
                self.name
            )))
        } else {
            let mem = self.mem.as_ref().expect("running");
            let reach = self.reach_fn(ctx.now);
            let busy = mem.st.claims.busy(now);
            mem.st
                .view
                .plan(&op, now, &self.name, &busy, &reach, &BTreeSet::new())
                .map_err(CommandError::from)
        };
        let me = self.name.clone();
        let started = planned.and_then(|plan| {
            let claim = Claim {
                op: plan.id.clone(),
                coordinator: self.name.clone(),
                members: claimed_members(&plan),
                until: now + claim_duration(&plan),
                since: now,
            };
            let st = &mut self.mem().st;
            st.claims.expire(now);
            if let Err(held) = st.claims.grant(claim, now) {
                return Err(in_progress(&held.op));
            }
            let before = plan
                .updates
                .iter()
                .filter_map(|u| st.view.member(&u.name).cloned())
                .collect();
            let mut event = Event::of(&cmd, plan.id.clone(), &me, now);
            event.message = format!("{:?} done", op.kind());
            st.intent = Some(Intent {
                plan: plan.clone(),
                before,
                event: event.clone(),
            });
            Ok((plan, event))
        });
        let started = started.and_then(|s| {
            if self.persist() {
                Ok(s)
            } else {
                Err(CommandError::Unavailable(
                    "cannot persist the intent".into(),
                ))
            }
        });
        let (plan, event) = match started {
            Ok(s) => s,
            Err(err) => {
                let ev = self.event(&cmd, format!("{}-{now}-refused", self.name), now);
                self.record_failure(ctx, ev, &err);
                let after = &self.mem().st;
                if after.view != before.view || after.takeovers != before.takeovers {
                    let what = format!("{:?} -> {:?}", before.view, after.view);
                    ctx.report(Report::RefusalChanged { op, what });
                }
                ctx.report(Report::Refused);
                Self::answer(ctx, reply_to, Err(err.body()));
                return;
            }
        };
        // The claim round: every peer not judged unreachable is asked.
        let members = claimed_members(&plan);
        let mut waiting = BTreeSet::new();
        let mut answers = Vec::new();
        for peer in 0..ctx.names.len() {
            if peer == ctx.me {
                continue;
            }
            let name = ctx.names[peer].clone();
            if (self.reach_fn(ctx.now))(&name) == Reachability::Unreachable {
                answers.push((name, ClaimAnswer::Unreachable));
                continue;
            }
            let req = ClaimRequest {
                protocol: PROTOCOL,
                group: self.group.clone(),
                from: self.name.clone(),
                op: plan.id.clone(),
                members: members.clone(),
                duration_ms: claim_duration(&plan),
                since: now,
                release: false,
            };
            let rpc = ctx.rpc();
            self.mem().rpcs.insert(rpc, Pending::Claim { peer: name });
            waiting.insert(rpc);
            ctx.send(peer, rpc, Route::Claim, &req);
            ctx.out.push(Out::Timeout {
                after: CLAIM_TIMEOUT,
                rpc,
            });
        }
        self.mem().running = Some(Running {
            plan,
            phase: Phase::Claiming { waiting, answers },
            event,
            at: now,
            next: 0,
            awaiting: None,
            reply_to,
        });
        self.claim_answered(ctx, None);
    }

    /// A peer's answer to the claim (or its time-out, `Unreachable`); the verdict once every
    /// peer answered.
    fn claim_answered(&mut self, ctx: &mut Ctx<'_>, answer: Option<(u64, String, ClaimAnswer)>) {
        let Some(run) = self.mem().running.as_mut() else {
            return;
        };
        let Phase::Claiming { waiting, answers } = &mut run.phase else {
            return;
        };
        if let Some((rpc, peer, a)) = answer {
            if !waiting.remove(&rpc) {
                return;
            }
            answers.push((peer, a));
        }
        if !waiting.is_empty() {
            return;
        }
        let answers = answers.clone();
        let run = run.clone();
        match claim_verdict(&run.plan, &self.name, &answers) {
            Ok(()) => {
                if let Some(r) = self.mem().running.as_mut() {
                    r.phase = Phase::Applying;
                }
                ctx.report(Report::Started {
                    op: run.plan.operation.clone(),
                });
                self.advance(ctx);
            }
            Err(why) => {
                self.mem().running = None;
                self.end_intent(ctx, &run.plan.id);
                let err = match why {
                    ClaimRefused::InProgress { by, .. } => in_progress(&by),
                    ClaimRefused::Unable { member, why } => {
                        CommandError::Unavailable(format!("{member} cannot take part: {why}"))
                    }
                };
                let mut ev = run.event.clone();
                ev.id = format!("{}-{}-refused", self.name, run.at);
                self.record_failure(ctx, ev, &err);
                ctx.report(Report::Refused);
                Self::answer(ctx, run.reply_to, Err(err.body()));
            }
        }
    }

    pub fn on_claim_reply(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let pending = self.mem().rpcs.remove(&p.rpc);
        let Some(Pending::Claim { peer }) = pending else {
            return;
        };
        let Some(answer) = decode::<Result<ClaimAnswer, ErrorBody>>(ctx, &p.body) else {
            return;
        };
        let a = answer.unwrap_or_else(|b| ClaimAnswer::Refused { message: b.message });
        self.claim_answered(ctx, Some((p.rpc, peer, a)));
    }

    /// `Agent::handle_claim`.
    pub fn on_claim(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(req) = decode::<ClaimRequest>(ctx, &p.body) else {
            return;
        };
        let now = ctx.wall();
        let reply: Result<ClaimAnswer, ErrorBody> = if let Err(e) = self.envelope(ctx, &req) {
            Err(e.body())
        } else {
            let st = &mut self.mem().st;
            st.claims.expire(now);
            let answer = if req.release {
                st.claims.release(&req.op);
                ClaimAnswer::Granted
            } else {
                let claim = Claim {
                    op: req.op.clone(),
                    coordinator: req.from.clone(),
                    members: req.members.clone(),
                    until: now + req.duration_ms,
                    since: req.since,
                };
                match st.claims.grant(claim, now) {
                    Ok(_) => ClaimAnswer::Granted,
                    Err(held) => ClaimAnswer::Held {
                        op: held.op,
                        coordinator: held.coordinator,
                    },
                }
            };
            if self.persist() {
                Ok(answer)
            } else {
                Ok(ClaimAnswer::Refused {
                    message: "cannot persist the claim".into(),
                })
            }
        };
        ctx.send(p.from, p.rpc, Route::ClaimReply, &reply);
    }

    /// Clears the intent and releases operation `op`'s claim here (persisted), then on every
    /// peer.
    fn end_intent(&mut self, ctx: &mut Ctx<'_>, op: &str) {
        let st = &mut self.mem().st;
        st.claims.release(op);
        if st.intent.as_ref().is_some_and(|i| i.plan.id == op) {
            st.intent = None;
        }
        self.persist();
        let req = ClaimRequest {
            protocol: PROTOCOL,
            group: self.group.clone(),
            from: self.name.clone(),
            op: op.to_string(),
            members: Vec::new(),
            duration_ms: 0,
            since: 0,
            release: true,
        };
        let body = encode(&req);
        for peer in 0..ctx.names.len() {
            if peer != ctx.me {
                let rpc = ctx.rpc();
                self.mem().rpcs.insert(rpc, Pending::Release);
                ctx.send_encoded(peer, rpc, Route::Claim, body.clone());
            }
        }
    }

    /// `Agent::execute` and `Agent::roll_back`: the records in order; this member's own
    /// locally, the others' by apply, one at a time.
    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        loop {
            let Some(run) = self.mem().running.clone() else {
                return;
            };
            let (rec, from, undoing) = match &run.phase {
                Phase::Claiming { .. } => return,
                Phase::Applying => match run.plan.updates.get(run.next) {
                    Some(rec) => (
                        rec.clone(),
                        run.plan.planned_from.get(run.next).cloned(),
                        false,
                    ),
                    None => {
                        self.finish(ctx);
                        return;
                    }
                },
                Phase::Undoing(undo) => match undo.get(run.next) {
                    Some((rec, from)) => (rec.clone(), Some(from.clone()), true),
                    None => {
                        self.mem().running = None;
                        self.ended(ctx, &run, "rolled back".into(), false);
                        ctx.report(Report::Stopped);
                        return;
                    }
                },
            };
            let event = (!undoing).then(|| run.event.clone());
            if rec.name == self.name {
                if let Err(e) = self.adopt_own(ctx, rec, from, event) {
                    self.abort(ctx, e, true);
                    return;
                }
                if let Some(r) = self.mem().running.as_mut() {
                    r.next += 1;
                }
                continue;
            }
            let Some(to) = ctx.names.iter().position(|n| *n == rec.name) else {
                self.abort(ctx, format!("{} is not a member", rec.name), true);
                return;
            };
            // As the agent: a Main already judged unreachable is not asked to release.
            let reach = (self.reach_fn(ctx.now))(&rec.name);
            if !undoing && release_not_awaited(&run.plan.operation, &rec.name, reach) {
                if let Some(r) = self.mem().running.as_mut() {
                    r.event.message.push_str(" (main unreachable)");
                    r.next += 1;
                }
                continue;
            }
            let req = ApplyRequest {
                protocol: PROTOCOL,
                group: self.group.clone(),
                from: self.name.clone(),
                record: rec,
                planned_from: from,
                event,
                definition_digest: None,
            };
            let rpc = ctx.rpc();
            self.mem().rpcs.insert(rpc, Pending::Apply);
            if let Some(r) = self.mem().running.as_mut() {
                r.awaiting = Some(rpc);
            }
            ctx.send(to, rpc, Route::Apply, &req);
            ctx.out.push(Out::Timeout {
                after: APPLY_TIMEOUT,
                rpc,
            });
            return;
        }
    }

    /// An apply's answer: `Ok` acknowledged, `Err(Some)` refused, `Err(None)` unreachable.
    fn applied(&mut self, ctx: &mut Ctx<'_>, rpc: u64, answer: Result<ApplyReply, Option<String>>) {
        let Some(run) = self.mem().running.clone() else {
            return;
        };
        if run.awaiting != Some(rpc) {
            return;
        }
        let undoing = matches!(run.phase, Phase::Undoing(_));
        let name = match &run.phase {
            Phase::Undoing(undo) => undo[run.next].0.name.clone(),
            _ => run.plan.updates[run.next].name.clone(),
        };
        match answer {
            Ok(reply) => self.absorb(ctx, std::slice::from_ref(&reply.record)),
            Err(why) => {
                let unreachable = why.is_none();
                let proceed = !undoing
                    && after_apply_failure(&run.plan.operation, &name, unreachable)
                        == AfterApplyFailure::Proceed;
                if proceed {
                    if let Some(r) = self.mem().running.as_mut() {
                        r.event.message.push_str(" (main unreachable)");
                    }
                } else {
                    let definite = !unreachable;
                    let why = why.unwrap_or_else(|| "unreachable".into());
                    self.abort(
                        ctx,
                        format!("{name} did not apply its part: {why}"),
                        definite,
                    );
                    return;
                }
            }
        }
        if let Some(r) = self.mem().running.as_mut() {
            r.next += 1;
            r.awaiting = None;
        }
        self.advance(ctx);
    }

    pub fn on_apply_reply(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        if !matches!(self.mem().rpcs.remove(&p.rpc), Some(Pending::Apply)) {
            return;
        }
        let Some(answer) = decode::<Result<ApplyReply, ErrorBody>>(ctx, &p.body) else {
            return;
        };
        self.applied(ctx, p.rpc, answer.map_err(|b| Some(b.message)));
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>) {
        let Some(run) = self.mem().running.take() else {
            return;
        };
        self.ended(ctx, &run, String::new(), true);
    }

    /// The operation of `run` ended: done (its records merged, counted) or stopped (`why`);
    /// recorded, the intent cleared and the claims released, the requester answered.
    fn ended(&mut self, ctx: &mut Ctx<'_>, run: &Running, why: String, done: bool) {
        if done {
            let st = &mut self.mem().st;
            for rec in &run.plan.updates {
                st.view.merge(rec);
            }
            st.count_op(&run.plan.id, run.plan.operation.kind());
            st.record_event(run.event.clone());
        } else {
            let err = CommandError::Unavailable(format!("operation stopped: {why}"));
            let mut ev = run.event.clone();
            ev.id = format!("{}-stopped", run.plan.id);
            self.record_failure(ctx, ev, &err);
        }
        self.end_intent(ctx, &run.plan.id);
        let alarms = self.publish(ctx);
        self.gossip_round(ctx);
        if done {
            Self::answer(ctx, run.reply_to, Ok(run.event.clone()));
            ctx.report(Report::Completed {
                op: run.plan.operation.clone(),
                alarms,
            });
        } else {
            let err = CommandError::Unavailable(format!("operation stopped: {why}"));
            Self::answer(ctx, run.reply_to, Err(err.body()));
        }
    }

    /// A step failed: `definite` when the member surely did not apply it (it refused), else
    /// its outcome is unknown and the heartbeat rounds resolve the intent later.
    fn abort(&mut self, ctx: &mut Ctx<'_>, why: String, definite: bool) {
        let Some(run) = self.mem().running.take() else {
            return;
        };
        let undoing = matches!(run.phase, Phase::Undoing(_));
        if !definite || undoing {
            // Left to the rounds (a rollback refused is judged again from fresh records).
            let err = CommandError::Unavailable(format!("operation stopped: {why}"));
            Self::answer(ctx, run.reply_to, Err(err.body()));
            ctx.report(Report::Stopped);
            return;
        }
        let mut run = run;
        self.resolve_run(ctx, &mut run, None, why);
    }

    /// The end of a heartbeat round: an intent left by a stopped operation or a crash is
    /// resolved against the records of the peers that answered.
    fn resolve_intent(&mut self, ctx: &mut Ctx<'_>) {
        if self.mem_ref().running.is_some() {
            return;
        }
        let Some(intent) = self.mem_ref().st.intent.clone() else {
            return;
        };
        let answered = self.mem_ref().answered.clone();
        let mut run = Running {
            plan: intent.plan,
            phase: Phase::Applying,
            event: intent.event,
            at: ctx.wall(),
            next: 0,
            awaiting: None,
            reply_to: None,
        };
        self.resolve_run(
            ctx,
            &mut run,
            Some(&answered),
            "resumed after a stop".into(),
        );
    }

    fn resolve_run(
        &mut self,
        ctx: &mut Ctx<'_>,
        run: &mut Running,
        answered: Option<&BTreeSet<String>>,
        why: String,
    ) {
        let Some(intent) = self.mem_ref().st.intent.clone() else {
            return;
        };
        let resolution = {
            let mem = self.mem_ref();
            let reach_now = self.reach_fn(ctx.now);
            let reach = |m: &str| {
                if m == self.name {
                    Reachability::Local
                } else {
                    match answered {
                        Some(a) if !a.contains(m) => Reachability::Unreachable,
                        _ => reach_now(m),
                    }
                }
            };
            resolve(
                &mem.st.view,
                &intent.plan,
                &intent.before,
                &reach,
                &self.name,
                ctx.wall(),
            )
        };
        match resolution {
            Resolution::Wait(_) => {
                let err = CommandError::Unavailable(format!("operation stopped: {why}"));
                Self::answer(ctx, run.reply_to.take(), Err(err.body()));
                if answered.is_none() {
                    ctx.report(Report::Stopped);
                }
            }
            Resolution::Finish => self.ended(ctx, run, String::new(), true),
            Resolution::Abandon | Resolution::Superseded(_) => {
                self.ended(ctx, run, format!("{why}; nothing to undo"), false);
                ctx.report(Report::Stopped);
            }
            Resolution::RollBack(undo) => {
                let err = CommandError::Unavailable(format!("operation stopped: {why}"));
                Self::answer(ctx, run.reply_to.take(), Err(err.body()));
                run.phase = Phase::Undoing(undo);
                run.next = 0;
                run.awaiting = None;
                self.mem().running = Some(run.clone());
                self.advance(ctx);
            }
        }
    }

    /// `Agent::handle_apply`.
    pub fn on_apply(&mut self, ctx: &mut Ctx<'_>, p: &Packet) {
        let Some(req) = decode::<ApplyRequest>(ctx, &p.body) else {
            return;
        };
        let reply: Result<ApplyReply, ErrorBody> = if let Err(e) = self.envelope(ctx, &req) {
            Err(e.body())
        } else if req.record.name != self.name {
            Err(CommandError::Invalid("record for another member".into()).body())
        } else {
            match self.adopt_own(ctx, req.record, req.planned_from, req.event) {
                Err(e) => Err(CommandError::Unavailable(e).body()),
                Ok(()) => match self.mem_ref().st.view.member(&self.name).cloned() {
                    Some(record) => Ok(ApplyReply { record }),
                    None => Err(CommandError::Unavailable("own record missing".into()).body()),
                },
            }
        };
        ctx.send(p.from, p.rpc, Route::ApplyReply, &reply);
    }

    /// `Agent::adopt_own`: judge the offer; a newer record is persisted before anything else.
    fn adopt_own(
        &mut self,
        ctx: &Ctx<'_>,
        rec: MemberRecord,
        planned_from: Option<(u64, String)>,
        event: Option<Event>,
    ) -> Result<(), String> {
        let name = self.name.clone();
        let st = &mut self.mem().st;
        let planned = planned_from.as_ref().map(|(v, w)| (*v, w.as_str()));
        let Some(adopted) = st.view.adopt_own(&name, &rec, planned)? else {
            return Ok(());
        };
        if let Some(op) = &adopted.op {
            st.count_op(&op.id, op.kind);
        }
        if let Some(ev) = event {
            st.record_event(ev);
        }
        if !self.persist() {
            return Err(format!("{name} cannot persist its new record"));
        }
        self.move_address();
        self.publish(ctx);
        Ok(())
    }

    /// An RPC's time ran out.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>, rpc: u64) {
        match self.mem().rpcs.remove(&rpc) {
            Some(Pending::Apply) => self.applied(ctx, rpc, Err(None)),
            Some(Pending::Command { cmd, coordinator }) => {
                let e = CommandError::Unavailable(format!("{coordinator} cannot be reached"));
                self.forwarded_answer(ctx, cmd, coordinator, Err(e));
            }
            Some(Pending::Claim { peer }) => {
                self.claim_answered(ctx, Some((rpc, peer, ClaimAnswer::Unreachable)))
            }
            Some(Pending::Heartbeat { .. } | Pending::Release) | None => {}
        }
    }

    // ------------------------------------------------------------------ status

    /// A replication of `main` ended (`Agent::replicate_with_stats`).
    pub fn replicated(&mut self, ctx: &mut Ctx<'_>, main: &str, ok: bool) {
        let name = self.name.clone();
        let err = (!ok).then(|| "transfer failed".to_string());
        let at = ctx.wall();
        self.mem().st.view.record_replication(&name, main, at, err);
        self.persist();
        self.publish(ctx);
        self.gossip_round(ctx);
    }

    /// A device check's verdict changed or not (`Agent::device_check_loop`).
    pub fn device_check(&mut self, ctx: &mut Ctx<'_>, failing: bool) {
        let name = self.name.clone();
        if self.mem().st.view.set_device_check(&name, CHECK, failing) == Some(true) {
            self.persist();
            self.publish(ctx);
            self.gossip_round(ctx);
        }
    }
}
