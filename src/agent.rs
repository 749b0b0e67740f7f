//! One member's agent at run time: owns the member's durable state, carries out commands (the
//! one command path), exchanges state with its peers, replicates, runs device checks and the
//! failover detector, and publishes a [`Snapshot`] that every interface reads. Does I/O; the
//! decisions themselves are made by the pure [`crate::group`] module.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::address::{AddressBackend, Transition};
use crate::command::{Command, CommandError, CommandResult};
use crate::config::Config;
use crate::device_check;
use crate::group::{
    Alarm, GroupView, MemberRecord, Millis, OpKind, OperState, Operation, Reachability,
    Replication, ReplicationResult, Requester, Role,
};
use crate::peer::{
    ApplyReply, ApplyRequest, CommandRequest, Heartbeat, HeartbeatReply, PeerClient, PeerError,
    ReplicateReply, ReplicateRequest, ReplicateResult, PROTOCOL,
};
use crate::peer_auth::{self, AuthError, ReplayGuard};
use crate::replication;
use crate::store::{Event, OutcomeKind, PersistedState, Store, StoreError};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wall-clock time in milliseconds since the epoch: the only clock the agent reads for
/// recorded times.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One member as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub record: MemberRecord,
    /// The operational state shown: `unknown` when this agent cannot reach the member.
    pub state: OperState,
    pub is_local: bool,
    /// Per heartbeat path: is the member answering on it? (Always true for the local member.)
    pub paths: Vec<(String, bool)>,
}

/// The no-redundancy alarm as this agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redundancy {
    pub redundant: bool,
    pub since: Option<Millis>,
    pub alarms: Vec<Alarm>,
}

/// Everything the interfaces show, published after every change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub group: String,
    pub local: String,
    pub members: Vec<MemberSnapshot>,
    pub redundancy: Redundancy,
    pub takeovers: BTreeMap<OpKind, u64>,
    /// Newest first.
    pub events: Arc<Vec<Event>>,
    pub replication_failures: u64,
    pub boots: u32,
    pub started_at: Millis,
}

impl Snapshot {
    pub fn member(&self, name: &str) -> Option<&MemberSnapshot> {
        self.members.iter().find(|m| m.record.name == name)
    }

    /// 1-based index in configuration order (`rgMemberIndex`).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.record.name == name)
            .map(|i| i + 1)
    }
}

#[derive(Debug, Default)]
struct Liveness {
    /// Last successful exchange with (member, path).
    last_seen: HashMap<(String, String), Instant>,
}

#[derive(Debug)]
struct Inner {
    cfg: Config,
    name: String,
    store: Store,
    peers: PeerClient,
    address: Arc<dyn AddressBackend>,
    state: Mutex<PersistedState>,
    liveness: StdMutex<Liveness>,
    busy: StdMutex<BTreeSet<String>>,
    events_cache: StdMutex<(usize, String, Arc<Vec<Event>>)>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    started: Instant,
    started_at: Millis,
    replication_failures: StdMutex<u64>,
    replicate_now: Notify,
    gossip_now: Notify,
    replay: ReplayGuard,
    /// One replication at a time (the loop and on-demand requests share the replica dirs).
    replicating: Mutex<()>,
}

/// The authentication headers of a peer request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerAuthHeaders<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// A handle on the agent; cheap to clone.
#[derive(Debug, Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

impl Agent {
    /// Opens the state directory (restoring the persisted state, alarm included) and builds
    /// the agent. Nothing runs until [`Agent::run`].
    pub fn open(cfg: Config, address: Arc<dyn AddressBackend>) -> Result<Agent, AgentError> {
        let name = cfg.file.member.clone();
        let store = Store::open(&cfg.file.state_dir)?;
        let configured = initial_view(&cfg);
        let mut state = match store.load(&cfg.file.group, &name)? {
            Some(mut s) => {
                reconcile(&mut s.view, &configured);
                info!(member = %name, path = %store.path().display(), boots = s.boots,
                    "state restored");
                s
            }
            None => {
                info!(member = %name, "no state file: starting from configuration");
                PersistedState::new(configured, &name)
            }
        };
        state.boots = state.boots.saturating_add(1);
        store.save(&state)?;
        let peers = PeerClient::new(
            &cfg.file.members,
            cfg.peer_secret.clone(),
            &name,
            cfg.file.peer.request_timeout,
        )
        .with_timeouts(
            // The receiver of an apply persists, moves the address and runs its hook first.
            cfg.file.peer.request_timeout + cfg.file.hooks.timeout + Duration::from_secs(2),
            Duration::from_secs(300),
        );
        let started_at = now_ms();
        let placeholder = Arc::new(Snapshot {
            group: cfg.file.group.clone(),
            local: name.clone(),
            members: Vec::new(),
            redundancy: Redundancy {
                redundant: false,
                since: None,
                alarms: Vec::new(),
            },
            takeovers: BTreeMap::new(),
            events: Arc::new(Vec::new()),
            replication_failures: 0,
            boots: state.boots,
            started_at,
        });
        let (snapshot, _) = watch::channel(placeholder);
        let agent = Agent {
            inner: Arc::new(Inner {
                cfg,
                name,
                store,
                peers,
                address,
                state: Mutex::new(state),
                liveness: StdMutex::new(Liveness::default()),
                busy: StdMutex::new(BTreeSet::new()),
                events_cache: StdMutex::new((usize::MAX, String::new(), Arc::new(Vec::new()))),
                snapshot,
                started: Instant::now(),
                started_at,
                replication_failures: StdMutex::new(0),
                replicate_now: Notify::new(),
                gossip_now: Notify::new(),
                replay: ReplayGuard::default(),
                replicating: Mutex::new(()),
            }),
        };
        // Serve the restored state from the first request on (peers show as unknown until
        // the first heartbeat).
        if let Ok(mut st) = agent.inner.state.try_lock() {
            let snap = agent.build_snapshot(&mut st);
            drop(st);
            agent.inner.snapshot.send_replace(Arc::new(snap));
        }
        Ok(agent)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// Subscribe to snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    pub fn peers(&self) -> &PeerClient {
        &self.inner.peers
    }

    /// Checks a peer request's HMAC signature (made with the group secret), its timestamp
    /// against the replay window, and that its nonce was not seen before.
    pub fn verify_peer(
        &self,
        method: &str,
        path: &str,
        headers: PeerAuthHeaders<'_>,
        body: &[u8],
    ) -> Result<(), AuthError> {
        let now = now_ms();
        let window = self.inner.cfg.file.peer.replay_window;
        let (ts, nonce) = peer_auth::verify(
            &self.inner.cfg.peer_secret,
            method,
            path,
            headers.timestamp,
            headers.nonce,
            headers.signature,
            body,
            now,
            window,
        )?;
        self.inner.replay.check(&nonce, ts, now, window)
    }

    /// Checks an API bearer token.
    pub fn token_ok(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.inner.cfg.token.expose().as_bytes();
        want.ct_eq(presented.as_bytes()).into()
    }

    fn reachability(&self, member: &str) -> Reachability {
        if member == self.inner.name {
            return Reachability::Local;
        }
        let live = self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let window = self.inner.cfg.file.failover_after;
        let seen = live
            .last_seen
            .iter()
            .any(|((m, _), t)| m == member && t.elapsed() < window);
        if seen {
            Reachability::Reachable
        } else {
            Reachability::Unreachable
        }
    }

    fn path_up(&self, member: &str, path: &str) -> bool {
        let live = self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        live.last_seen
            .get(&(member.to_string(), path.to_string()))
            .is_some_and(|t| t.elapsed() < self.inner.cfg.file.failover_after)
    }

    /// How long `member` has been silent on every path (since start if never heard).
    fn silent_for(&self, member: &str) -> Duration {
        let live = self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        live.last_seen
            .iter()
            .filter(|((m, _), _)| m == member)
            .map(|(_, t)| t.elapsed())
            .min()
            .unwrap_or_else(|| self.inner.started.elapsed())
    }

    fn mark_seen(&self, member: &str, path: &str) {
        let mut live = self
            .inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        live.last_seen
            .insert((member.to_string(), path.to_string()), Instant::now());
    }

    // ---------------------------------------------------------------- the command path

    /// Carries out a command, wherever it came from: forwarded to the agent that must
    /// coordinate it, or coordinated here.
    pub async fn submit(&self, cmd: Command) -> CommandResult {
        {
            let st = self.inner.state.lock().await;
            for name in cmd.operation.named_members() {
                if st.view.member(name).is_none() {
                    return Err(CommandError::UnknownMember(name.to_string()));
                }
            }
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
    pub async fn handle_forwarded(&self, req: CommandRequest) -> CommandResult {
        if req.protocol != PROTOCOL || req.group != self.inner.cfg.file.group {
            return Err(CommandError::Invalid(format!(
                "peer {} speaks protocol {} of group {:?}",
                req.from, req.protocol, req.group
            )));
        }
        let coordinator = coordinator_of(&req.command.operation);
        if coordinator != self.inner.name {
            return Err(CommandError::Invalid(format!(
                "{} is not the coordinator of this operation ({coordinator} is)",
                self.inner.name
            )));
        }
        self.coordinate(req.command).await
    }

    async fn coordinate(&self, cmd: Command) -> CommandResult {
        let now = now_ms();
        let op = cmd.operation.clone();
        let busy = self
            .inner
            .busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let planned = {
            let st = self.inner.state.lock().await;
            st.view
                .plan(&op, now, &self.inner.name, &busy, &|m| self.reachability(m))
        };
        let plan = match planned {
            Ok(p) => p,
            Err(refusal) => {
                let err = CommandError::from(refusal);
                self.record_refusal(&cmd, now, &err).await;
                return Err(err);
            }
        };
        let involved: Vec<String> = plan.updates.iter().map(|r| r.name.clone()).collect();
        let claimed = {
            let mut b = self.inner.busy.lock().unwrap_or_else(|p| p.into_inner());
            let free = !involved.iter().any(|m| b.contains(m));
            if free {
                b.extend(involved.iter().cloned());
            }
            free
        };
        {
            if !claimed {
                let err = CommandError::from(crate::group::Refusal::Preconditions(vec![
                    crate::group::Precondition::OperationInProgress,
                ]));
                self.record_refusal(&cmd, now, &err).await;
                return Err(err);
            }
        }
        let result = self.execute(&cmd, &plan, now).await;
        {
            let mut b = self.inner.busy.lock().unwrap_or_else(|p| p.into_inner());
            for m in &involved {
                b.remove(m);
            }
        }
        result
    }

    fn event(&self, cmd: &Command, id: String, now: Millis) -> Event {
        Event {
            id,
            at: now,
            kind: cmd.operation.kind(),
            operation: cmd.operation.clone(),
            requested_by: cmd.requested_by.clone(),
            members: cmd
                .operation
                .named_members()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            reason: cmd.reason.clone(),
            coordinator: self.inner.name.clone(),
            outcome: OutcomeKind::Done,
            failed: Vec::new(),
            message: String::new(),
        }
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
        now: Millis,
    ) -> CommandResult {
        let mut event = self.event(cmd, plan.id.clone(), now);
        event.message = describe_done(&plan.operation);
        let (takeover_main, is_takeover) = match &plan.operation {
            Operation::Takeover { main, .. } | Operation::Failover { main, .. } => {
                (Some(main.clone()), true)
            }
            _ => (None, false),
        };
        for rec in &plan.updates {
            if rec.name == self.inner.name {
                if let Err(e) = self.adopt_own(rec.clone(), Some(event.clone())).await {
                    return self.abort(cmd, now, e).await;
                }
                continue;
            }
            let req = ApplyRequest {
                protocol: PROTOCOL,
                group: self.inner.cfg.file.group.clone(),
                from: self.inner.name.clone(),
                record: rec.clone(),
                event: Some(event.clone()),
            };
            match self.inner.peers.apply(&rec.name, &req).await {
                Ok(reply) => {
                    self.absorb(std::slice::from_ref(&reply.record)).await;
                }
                Err(PeerError::Unreachable { detail, .. })
                    if is_takeover && takeover_main.as_deref() == Some(rec.name.as_str()) =>
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
                    let mut st = self.inner.state.lock().await;
                    st.view.merge(rec);
                }
                Err(e) => {
                    return self
                        .abort(
                            cmd,
                            now,
                            format!("{} did not apply its part: {e}", rec.name),
                        )
                        .await;
                }
            }
        }
        {
            let mut st = self.inner.state.lock().await;
            for rec in &plan.updates {
                st.view.merge(rec);
            }
            st.count_op(&plan.id, plan.operation.kind());
            st.record_event(event.clone());
            self.persist_or_log(&st);
        }
        info!(member = %self.inner.name, op = %event.kind, requested_by = %event.requested_by,
            members = ?event.members, reason = ?event.reason, "{}", event.message);
        self.publish().await;
        self.gossip_round().await;
        Ok(event)
    }

    async fn abort(&self, cmd: &Command, now: Millis, why: String) -> CommandResult {
        let err = CommandError::Unavailable(format!("operation stopped: {why}"));
        error!(member = %self.inner.name, op = %cmd.operation.kind(), error = %why,
            "operation stopped part way; the records already applied are consistent");
        self.record_refusal(cmd, now, &err).await;
        self.gossip_round().await;
        Err(err)
    }

    /// A coordinator hands this agent its new record (the takeover handshake). The record is
    /// persisted first, then the address is moved, then the new record is acknowledged.
    pub async fn handle_apply(&self, req: ApplyRequest) -> Result<ApplyReply, CommandError> {
        if req.protocol != PROTOCOL || req.group != self.inner.cfg.file.group {
            return Err(CommandError::Invalid("wrong protocol or group".into()));
        }
        if req.record.name != self.inner.name {
            return Err(CommandError::Invalid(format!(
                "record for {} sent to {}",
                req.record.name, self.inner.name
            )));
        }
        self.adopt_own(req.record, req.event)
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
    async fn adopt_own(&self, rec: MemberRecord, event: Option<Event>) -> Result<(), String> {
        let mut st = self.inner.state.lock().await;
        let Some(old) = st.view.member(&self.inner.name).cloned() else {
            return Err("own record missing".into());
        };
        let same_write = rec.stamp() == old.stamp()
            && rec.role == old.role
            && rec.state == old.state
            && rec.current_address == old.current_address
            && rec.acting_for == old.acting_for
            && rec.auto_failover == old.auto_failover;
        if same_write {
            // The same write again (a stamp names one write): a coordinator retrying on
            // another path after a timeout. Already persisted and acted on; acknowledge it.
            return Ok(());
        }
        if rec.stamp() <= old.stamp() {
            return Err(format!(
                "{}'s record changed meanwhile (held version {} by {}, offered {} by {}); \
                 retry the operation",
                self.inner.name, old.version, old.writer, rec.version, rec.writer
            ));
        }
        st.view.merge(&rec);
        if let Some(op) = &rec.last_op {
            st.count_op(&op.id, op.kind);
        }
        if let Some(ev) = event {
            st.record_event(ev);
        }
        self.inner.store.save(&st).map_err(|e| e.to_string())?;
        let new = st.view.member(&self.inner.name).cloned();
        drop(st);
        if let Some(new) = new {
            self.move_address(&old, &new).await?;
            info!(member = %self.inner.name, from = %old.state, to = %new.state,
                address = ?new.current_address, "state changed");
        }
        self.publish().await;
        Ok(())
    }

    /// What the address backend is told when this member's record goes from `old` (None at
    /// start) to `new`.
    fn transition(&self, old: Option<&MemberRecord>, new: &MemberRecord) -> Transition {
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
                .acting_for
                .as_ref()
                .map(|m| replication::current_dir(&self.replica_root(), m)),
            managed,
        }
    }

    async fn move_address(&self, old: &MemberRecord, new: &MemberRecord) -> Result<(), String> {
        if old.current_address == new.current_address && old.state == new.state {
            return Ok(());
        }
        let t = self.transition(Some(old), new);
        self.inner
            .address
            .apply(&t)
            .await
            .map_err(|e| e.to_string())
    }

    /// Merges records a peer sent (heartbeat or reply). If this member's own record changed
    /// (another agent wrote it while this one was away), the change is persisted and acted on.
    pub async fn absorb(&self, records: &[MemberRecord]) {
        let mut st = self.inner.state.lock().await;
        let old_own = st.view.member(&self.inner.name).cloned();
        let mut changed = false;
        for r in records {
            if st.view.merge(r) {
                changed = true;
                if let Some(op) = &r.last_op {
                    st.count_op(&op.id, op.kind);
                }
            }
        }
        if !changed {
            return;
        }
        self.persist_or_log(&st);
        let new_own = st.view.member(&self.inner.name).cloned();
        drop(st);
        if let (Some(old), Some(new)) = (old_own, new_own) {
            if old != new && old.stamp() != new.stamp() {
                warn!(member = %self.inner.name, writer = %new.writer, to = %new.state,
                    address = ?new.current_address,
                    "this member's record was changed by a peer; adopting it");
                if let Err(e) = self.move_address(&old, &new).await {
                    error!(member = %self.inner.name, error = %e, "cannot move address");
                }
            }
        }
        self.publish().await;
    }

    /// Answers a peer's heartbeat: merge its records, reply with ours.
    pub async fn handle_heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatReply, CommandError> {
        if hb.protocol != PROTOCOL || hb.group != self.inner.cfg.file.group {
            warn!(member = %self.inner.name, from = %hb.from, protocol = hb.protocol,
                group = %hb.group, "heartbeat from another protocol or group refused");
            return Err(CommandError::Invalid(format!(
                "this agent speaks protocol {PROTOCOL} of group {:?}",
                self.inner.cfg.file.group
            )));
        }
        let known = self
            .inner
            .cfg
            .file
            .members
            .iter()
            .any(|m| m.name == hb.from);
        if !known {
            return Err(CommandError::UnknownMember(hb.from));
        }
        self.mark_seen(&hb.from, &hb.path);
        self.absorb(&hb.records).await;
        let st = self.inner.state.lock().await;
        Ok(HeartbeatReply {
            protocol: PROTOCOL,
            from: self.inner.name.clone(),
            records: st.view.newer_than(&hb.digest),
            want: st.view.wanted(&hb.digest),
        })
    }

    fn persist_or_log(&self, st: &PersistedState) {
        if let Err(e) = self.inner.store.save(st) {
            error!(member = %self.inner.name, error = %e, "cannot persist state");
        }
    }

    /// Rebuilds and publishes the snapshot (also keeps the persisted no-standby time).
    pub async fn publish(&self) {
        let mut st = self.inner.state.lock().await;
        let snap = self.build_snapshot(&mut st);
        drop(st);
        self.inner.snapshot.send_replace(Arc::new(snap));
    }

    fn build_snapshot(&self, st: &mut PersistedState) -> Snapshot {
        let now = now_ms();
        let reach = |m: &str| self.reachability(m);
        let shortfall = st.view.standby_shortfall(&reach).is_some();
        match (shortfall, st.no_standby_since) {
            (true, None) => {
                st.no_standby_since = Some(now);
                self.persist_or_log(st);
            }
            (false, Some(_)) => {
                st.no_standby_since = None;
                self.persist_or_log(st);
            }
            _ => {}
        }
        let alarms = st.view.alarms(&reach, st.no_standby_since, now);
        let redundancy = Redundancy {
            redundant: alarms.is_empty(),
            since: alarms.iter().map(|a| a.raised_at).min(),
            alarms,
        };
        let members = st
            .view
            .members
            .iter()
            .map(|r| {
                let reach = self.reachability(&r.name);
                let is_local = reach == Reachability::Local;
                MemberSnapshot {
                    record: r.clone(),
                    state: st.view.effective_state(r, reach),
                    is_local,
                    paths: self
                        .inner
                        .peers
                        .paths(&r.name)
                        .into_iter()
                        .map(|(p, _)| {
                            let up = is_local || self.path_up(&r.name, &p);
                            (p, up)
                        })
                        .collect(),
                }
            })
            .collect();
        let events = {
            let mut cache = self
                .inner
                .events_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let newest = st.events.back().map(|e| e.id.clone()).unwrap_or_default();
            if cache.0 != st.events.len() || cache.1 != newest {
                *cache = (
                    st.events.len(),
                    newest,
                    Arc::new(st.events.iter().rev().cloned().collect()),
                );
            }
            cache.2.clone()
        };
        Snapshot {
            group: st.view.group.clone(),
            local: self.inner.name.clone(),
            members,
            redundancy,
            takeovers: st.takeovers.clone(),
            events,
            replication_failures: *self
                .inner
                .replication_failures
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            boots: st.boots,
            started_at: self.inner.started_at,
        }
    }

    // ---------------------------------------------------------------- background work

    /// Runs the agent's loops until `shutdown` resolves.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) {
        // Learn from the peers before acting on the persisted record: a Main that was taken
        // over while it was down must not reclaim its address.
        let first = tokio::time::timeout(self.inner.cfg.file.failover_after, self.gossip_round());
        let _ = first.await;
        self.take_own_address().await;
        self.publish().await;
        let mut tasks = JoinSet::new();
        let me = self.clone();
        tasks.spawn(async move { me.heartbeat_loop().await });
        let me = self.clone();
        tasks.spawn(async move { me.replication_loop().await });
        for (i, _) in self.inner.cfg.file.device_checks.iter().enumerate() {
            let me = self.clone();
            tasks.spawn(async move { me.device_check_loop(i).await });
        }
        shutdown.await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        info!(member = %self.inner.name, "agent stopped");
    }

    async fn take_own_address(&self) {
        let st = self.inner.state.lock().await;
        let own = st.view.member(&self.inner.name).cloned();
        drop(st);
        if let Some(own) = own {
            let t = self.transition(None, &own);
            if let Err(e) = self.inner.address.apply(&t).await {
                error!(member = %self.inner.name, error = %e, "cannot take own address");
            }
        }
    }

    async fn heartbeat_loop(&self) {
        let mut tick = tokio::time::interval(self.inner.cfg.file.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.inner.gossip_now.notified() => {}
            }
            self.gossip_round().await;
            self.publish().await;
            self.detect_failover().await;
        }
    }

    /// One state exchange with every peer on every path, concurrently: stamps out, newer
    /// records back, and the records a peer asked for pushed right after.
    pub async fn gossip_round(&self) {
        let digest = self.inner.state.lock().await.view.digest();
        let mut set = JoinSet::new();
        for m in &self.inner.cfg.file.members {
            if m.name == self.inner.name {
                continue;
            }
            for (path, url) in &m.peer_urls {
                let hb = Heartbeat {
                    protocol: PROTOCOL,
                    group: self.inner.cfg.file.group.clone(),
                    from: self.inner.name.clone(),
                    path: path.clone(),
                    records: Vec::new(),
                    digest: digest.clone(),
                };
                let peers = self.inner.peers.clone();
                let (member, path, url) = (m.name.clone(), path.clone(), url.clone());
                set.spawn(async move {
                    let res = peers.heartbeat(&member, &url, &hb).await;
                    (member, path, url, res)
                });
            }
        }
        let mut pushed = BTreeSet::new();
        while let Some(joined) = set.join_next().await {
            let Ok((member, path, url, res)) = joined else {
                continue;
            };
            match res {
                Ok(reply) if reply.from == member => {
                    let returned = self.reachability(&member) == Reachability::Unreachable
                        && self.inner.started.elapsed() > self.inner.cfg.file.failover_after;
                    self.mark_seen(&member, &path);
                    self.absorb(&reply.records).await;
                    if !reply.want.is_empty() && pushed.insert(member.clone()) {
                        self.push(&member, &path, &url, &reply.want).await;
                    }
                    // After the records merged: a Main that was taken over while cut off has
                    // released its address by now and announces nothing.
                    if returned {
                        self.reannounce_after_return(&member).await;
                    }
                }
                Ok(reply) => {
                    warn!(member = %self.inner.name, expected = %member, answered = %reply.from,
                        %path, "a different agent answers at this peer URL");
                }
                Err(e) => debug!(member = %self.inner.name, peer = %member, %path, error = %e,
                    "heartbeat failed"),
            }
        }
    }

    /// A peer answers again after being unreachable (a healed partition, a restarted server):
    /// if this member serves an address, announce it again, so neighbours on the peer's side
    /// that still point at another holder follow this one.
    async fn reannounce_after_return(&self, member: &str) {
        let own = {
            let st = self.inner.state.lock().await;
            st.view.member(&self.inner.name).cloned()
        };
        let Some(own) = own else { return };
        if own.state != OperState::Online {
            return;
        }
        if let Some(a) = own.current_address {
            info!(member = %self.inner.name, peer = %member, address = %a,
                "peer reachable again; announcing the address again");
            self.inner.address.reannounce(a).await;
        }
    }

    /// Sends `member` the records it asked for.
    async fn push(&self, member: &str, path: &str, url: &str, names: &[String]) {
        let records: Vec<MemberRecord> = {
            let st = self.inner.state.lock().await;
            names
                .iter()
                .filter_map(|n| st.view.member(n).cloned())
                .collect()
        };
        let hb = Heartbeat {
            protocol: PROTOCOL,
            group: self.inner.cfg.file.group.clone(),
            from: self.inner.name.clone(),
            path: path.to_string(),
            records,
            digest: Vec::new(),
        };
        match self.inner.peers.heartbeat(member, url, &hb).await {
            Ok(reply) => self.absorb(&reply.records).await,
            Err(e) => debug!(member = %self.inner.name, peer = %member, error = %e,
                "push of records failed"),
        }
    }

    /// On a standby Backup: take over a Main with auto-failover on that has been silent on
    /// every path for `failover_after`, or that reports its device checks failing.
    async fn detect_failover(&self) {
        let view = self.inner.state.lock().await.view.clone();
        let Some(me) = view.member(&self.inner.name) else {
            return;
        };
        if me.role != Role::Backup || me.state != OperState::Standby {
            return;
        }
        let after = self.inner.cfg.file.failover_after;
        for m in &view.members {
            if m.role != Role::Main || !m.auto_failover || m.takeover.is_some() {
                continue;
            }
            let silent = self.silent_for(&m.name);
            let why = if silent >= after {
                format!(
                    "{} unreachable on every heartbeat path for {}",
                    m.name,
                    humantime::format_duration(Duration::from_millis(silent.as_millis() as u64))
                )
            } else if self.reachability(&m.name) == Reachability::Reachable
                && !m.failing_checks.is_empty()
            {
                format!(
                    "{} reports failing device checks: {}",
                    m.name,
                    m.failing_checks.join(", ")
                )
            } else {
                continue;
            };
            // Exactly one Backup acts: the first, in configuration order, that could.
            let designated = view.members.iter().find(|b| {
                b.role == Role::Backup
                    && b.state == OperState::Standby
                    && self.reachability(&b.name) != Reachability::Unreachable
                    && b.failing_checks.is_empty()
                    && b.replicated(&m.name).is_some()
            });
            if designated.map(|b| b.name.as_str()) != Some(self.inner.name.as_str()) {
                continue;
            }
            warn!(member = %self.inner.name, main = %m.name, reason = %why, "auto-failover");
            let cmd = Command {
                operation: Operation::Failover {
                    backup: self.inner.name.clone(),
                    main: m.name.clone(),
                },
                requested_by: Requester {
                    interface: "detector".into(),
                    identity: self.inner.name.clone(),
                },
                reason: Some(why),
            };
            if let Err(e) = self.submit(cmd).await {
                warn!(member = %self.inner.name, main = %m.name, error = %e,
                    "auto-failover refused");
            }
            return;
        }
    }

    /// On-demand replication (API, CLI): `req.backup` copies every Main it covers (or
    /// `req.main`) now and reports each result; forwarded when that Backup is another agent.
    pub async fn replicate_on_demand(
        &self,
        req: ReplicateRequest,
    ) -> Result<ReplicateReply, CommandError> {
        if req.protocol != PROTOCOL || req.group != self.inner.cfg.file.group {
            return Err(CommandError::Invalid("wrong protocol or group".into()));
        }
        let view = self.inner.state.lock().await.view.clone();
        let backup = view
            .member(&req.backup)
            .ok_or_else(|| CommandError::UnknownMember(req.backup.clone()))?;
        if backup.role != Role::Backup {
            return Err(CommandError::Invalid(format!(
                "{} is not a configured backup: only backups replicate",
                req.backup
            )));
        }
        if let Some(m) = &req.main {
            match view.member(m) {
                None => return Err(CommandError::UnknownMember(m.clone())),
                Some(r) if r.role != Role::Main => {
                    return Err(CommandError::Invalid(format!(
                        "{m} is not a configured main"
                    )))
                }
                Some(_) => {}
            }
        }
        if req.backup != self.inner.name {
            return self.inner.peers.replicate(&req.backup, &req).await;
        }
        let mains: Vec<String> = view
            .members
            .iter()
            .filter(|m| m.role == Role::Main)
            .filter(|m| match &req.main {
                Some(only) => &m.name == only,
                None => m.takeover.is_none(),
            })
            .map(|m| m.name.clone())
            .collect();
        let mut results = Vec::new();
        for main in mains {
            let res = self.replicate_with_stats(&main).await;
            let stats = res.as_ref().ok().copied().unwrap_or_default();
            results.push(ReplicateResult {
                main,
                result: if res.is_ok() {
                    ReplicationResult::Success
                } else {
                    ReplicationResult::Failed
                },
                error: res.err(),
                files: stats.files,
                fetched: stats.fetched,
                bytes_fetched: stats.bytes_fetched,
            });
        }
        self.inner.gossip_now.notify_one();
        Ok(ReplicateReply {
            backup: self.inner.name.clone(),
            results,
        })
    }

    /// Asks the replication loop to copy every Main now.
    pub fn replicate_now(&self) {
        self.inner.replicate_now.notify_one();
    }

    fn replica_root(&self) -> PathBuf {
        self.inner.cfg.file.state_dir.join("replicas")
    }

    async fn replication_loop(&self) {
        let interval = self.inner.cfg.file.replication.interval;
        let retry = interval.min(Duration::from_secs(5));
        let mut due: HashMap<String, Instant> = HashMap::new();
        loop {
            let view = self.inner.state.lock().await.view.clone();
            let standby_backup = view
                .member(&self.inner.name)
                .is_some_and(|me| me.role == Role::Backup && me.state == OperState::Standby);
            if standby_backup {
                for m in &view.members {
                    if m.role != Role::Main || m.takeover.is_some() {
                        continue;
                    }
                    if due.get(&m.name).is_some_and(|t| Instant::now() < *t) {
                        continue;
                    }
                    if self.reachability(&m.name) != Reachability::Reachable
                        && self.inner.started.elapsed() < self.inner.cfg.file.failover_after
                    {
                        // Give the group a moment to meet before the first attempt.
                        continue;
                    }
                    let ok = self.replicate_one(&m.name).await;
                    due.insert(
                        m.name.clone(),
                        Instant::now() + if ok { interval } else { retry },
                    );
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = self.inner.replicate_now.notified() => due.clear(),
            }
        }
    }

    /// Copies one Main's data now and records the result on this member's record.
    pub async fn replicate_one(&self, main: &str) -> bool {
        self.replicate_with_stats(main).await.is_ok()
    }

    /// As [`Agent::replicate_one`], with what was transferred (or why it failed).
    pub async fn replicate_with_stats(&self, main: &str) -> Result<replication::Stats, String> {
        let _one_at_a_time = self.inner.replicating.lock().await;
        let now = now_ms();
        let res = replication::replicate(&self.inner.peers, main, &self.replica_root(), now).await;
        let (result, error) = match &res {
            Ok(stats) => {
                info!(member = %self.inner.name, %main, files = stats.files,
                    fetched = stats.fetched, bytes = stats.bytes_fetched, "replicated");
                (ReplicationResult::Success, None)
            }
            Err(e) => {
                *self
                    .inner
                    .replication_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) += 1;
                warn!(member = %self.inner.name, %main, error = %e, "replication failed");
                (ReplicationResult::Failed, Some(e.to_string()))
            }
        };
        let mut st = self.inner.state.lock().await;
        let name = self.inner.name.clone();
        if let Some(me) = st.view.members.iter_mut().find(|r| r.name == name) {
            let mut rep = me.replication.clone().unwrap_or(Replication {
                at: now,
                result,
                main: main.to_string(),
                last_success: BTreeMap::new(),
                error: None,
            });
            rep.at = now;
            rep.result = result;
            rep.main = main.to_string();
            rep.error = error;
            if result == ReplicationResult::Success {
                rep.last_success.insert(main.to_string(), now);
            }
            me.replication = Some(rep);
            me.status_version += 1;
        }
        self.persist_or_log(&st);
        drop(st);
        self.publish().await;
        res.map_err(|e| e.to_string())
    }

    async fn device_check_loop(&self, index: usize) {
        let Some(check) = self.inner.cfg.file.device_checks.get(index).cloned() else {
            return;
        };
        let mut tick = tokio::time::interval(check.interval);
        let mut consecutive_failures: u32 = 0;
        loop {
            tick.tick().await;
            let result = device_check::run(&check).await;
            if let Err(e) = &result {
                consecutive_failures = consecutive_failures.saturating_add(1);
                warn!(member = %self.inner.name, check = %check.name, error = %e,
                    failures = consecutive_failures, fail_after = check.fail_after,
                    "device check probe failed");
            } else {
                consecutive_failures = 0;
            }
            // A check is reported failing (gating takeover on a Backup, triggering failover
            // from a Main) only once it keeps failing: `fail_after` probes in a row.
            let failing = consecutive_failures >= check.fail_after.max(1);
            let mut st = self.inner.state.lock().await;
            let name = self.inner.name.clone();
            let Some(me) = st.view.members.iter_mut().find(|r| r.name == name) else {
                return;
            };
            let listed = me.failing_checks.contains(&check.name);
            if failing == listed {
                continue;
            }
            if failing {
                me.failing_checks.push(check.name.clone());
                me.failing_checks.sort();
            } else {
                me.failing_checks.retain(|c| c != &check.name);
                info!(member = %self.inner.name, check = %check.name, "device check passing");
            }
            me.status_version += 1;
            self.persist_or_log(&st);
            drop(st);
            self.publish().await;
            self.inner.gossip_now.notify_one();
        }
    }

    /// Where this member publishes its data for Backups (None when not configured).
    pub fn data_dir(&self) -> Option<PathBuf> {
        self.inner.cfg.file.replication.data_dir.clone()
    }
}

/// The agent that carries an operation out.
pub fn coordinator_of(op: &Operation) -> &str {
    match op {
        Operation::Takeover { backup, .. } | Operation::Failover { backup, .. } => backup,
        Operation::ReverseTakeover { main } => main,
        Operation::Reconfigure { backup, .. } => backup,
        Operation::ReplaceTakeover { replacement, .. } => replacement,
        Operation::SetAutoFailover { member, .. } => member,
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
        Operation::ReplaceTakeover { main, replacement } => {
            format!("{replacement} replaced {main}; the backup is in standby")
        }
        Operation::SetAutoFailover { member, enabled } => format!(
            "auto-failover {} on {member}",
            if *enabled { "enabled" } else { "disabled" }
        ),
    }
}

/// The group as configuration describes it, before anything happened.
pub fn initial_view(cfg: &Config) -> GroupView {
    GroupView {
        group: cfg.file.group.clone(),
        members: cfg
            .file
            .members
            .iter()
            .map(|m| MemberRecord::initial(&m.name, m.role, m.address, m.extra(), m.auto_failover))
            .collect(),
    }
}

/// Keeps the persisted records of members still configured (in configuration order) and adds
/// new members from configuration.
fn reconcile(view: &mut GroupView, configured: &GroupView) {
    let mut by_name: BTreeMap<String, MemberRecord> = view
        .members
        .drain(..)
        .map(|r| (r.name.clone(), r))
        .collect();
    view.members = configured
        .members
        .iter()
        .map(|c| by_name.remove(&c.name).unwrap_or_else(|| c.clone()))
        .collect();
    view.group = configured.group.clone();
}
