//! One member's agent at run time: owns the member's durable state, carries out commands (the
//! one command path), exchanges state with its peers, replicates, runs device checks and the
//! failover detector, and publishes a [`Snapshot`] that every interface reads. Does I/O; the
//! decisions themselves are made by the pure [`crate::group`] module.
//!
//! This file holds the agent's state, the snapshot it publishes and its start-up; the
//! `impl Agent` blocks of the submodules hold the rest: `command` (the command path and the
//! takeover handshake), `gossip` (heartbeats, merging, the failover detector), `fencing` (the
//! fence command between the detector's decision and the failover), `replicas`
//! (replication) and `checks` (device checks). They share the parent's imports.

mod checks;
mod claims;
mod command;
mod fencing;
mod gossip;
mod lease;
mod maintenance;
mod quorum;
mod replicas;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::address::{AddressBackend, AddressError, Transition};
use crate::command::{Command, CommandError, CommandResult};
use crate::command::{Event, OutcomeKind};
use crate::config::Config;
use crate::device_check;
use crate::group::{
    state_not_writable, Agreement, AlarmState, Backoff, GroupView, Liveness, MemberRecord, Millis,
    Mono, OperState, Operation, Publishes, Reachability, ReplicationResult, Requester, Role,
};
use crate::peer::{
    ApplyReply, ApplyRequest, CommandRequest, Heartbeat, HeartbeatReply, PeerClient, PeerError,
    ReplicateReply, ReplicateRequest, ReplicateResult, PROTOCOL,
};
use crate::replication;
use crate::snapshot::{MemberSnapshot, NotificationCounts, Redundancy, Snapshot};
use crate::store::{PersistedState, Store, StoreError};

/// Wall-clock time in milliseconds since the epoch: the only clock the agent reads for
/// recorded times.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
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
    /// Why the last write of the state failed (None once a write succeeds).
    /// Since when (wall clock), while it keeps failing.
    state_error: StdMutex<Option<(String, Millis)>>,
    /// This agent's group definition and the peers whose definitions differ from it.
    agreement: StdMutex<Agreement>,
    /// The failover detector's back-off, per Main, after attempts that were not carried out.
    failover_backoff: StdMutex<BTreeMap<String, Backoff>>,
    /// Per peer and path: the back-off after heartbeats the peer refused.
    heartbeat_backoff: StdMutex<BTreeMap<(String, String), Backoff>>,
    /// Operations this agent coordinates that run now (their intents are theirs to end).
    running_ops: StdMutex<BTreeSet<String>>,
    events_cache: StdMutex<(usize, String, Arc<Vec<Event>>)>,
    snapshot: watch::Sender<Arc<Snapshot>>,
    started: Instant,
    started_at: Millis,
    replication_failures: StdMutex<u64>,
    /// SNMP notification counts (None until an SNMP notifier starts counting).
    notifications: StdMutex<Option<NotificationCounts>>,
    gossip_now: Notify,
    /// One replication at a time (the loop and on-demand requests share the replica dirs).
    replicating: Mutex<()>,
    /// Operations under way, each a task of its own (they outlive their requester).
    operations: TaskTracker,
    /// The lease on the address this member holds (renewals wait while the address moves).
    lease: Mutex<lease::LeaseState>,
    /// The lease held, as the snapshot reads it.
    lease_seen: StdMutex<Option<crate::group::lease::Lease>>,
    /// The quorum source (`[coordination]`), if configured.
    quorum: Option<Arc<dyn crate::coordination::Quorum>>,
    /// Each peer's lease as its last heartbeat or reply reported it.
    peer_leases: StdMutex<BTreeMap<String, crate::snapshot::LeaseView>>,
    /// The fence command, its gate and its runs (`None` without `[fencing]`).
    fencing: Option<crate::fence::Fencing>,
    /// The service manager (`understudy run` under systemd): READY, WATCHDOG (`run`,
    /// `heartbeat_loop`).
    service: std::sync::OnceLock<Arc<crate::sd_notify::Notifier>>,
}

/// A handle on the agent; cheap to clone.
#[derive(Debug, Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

impl Agent {
    /// Opens the state directory (restoring the persisted state, alarm included) and builds
    /// the agent. Nothing runs until [`Agent::run`].
    pub fn open(cfg: Config, address: Arc<dyn AddressBackend>) -> Result<Agent, StoreError> {
        Agent::open_with(cfg, address, None)
    }

    /// [`Agent::open`] with a quorum source (the `[coordination]` section).
    pub fn open_with(
        cfg: Config,
        address: Arc<dyn AddressBackend>,
        quorum: Option<Arc<dyn crate::coordination::Quorum>>,
    ) -> Result<Agent, StoreError> {
        let name = cfg.file.member.clone();
        // check-config shows these as warnings; at every start they are a note.
        for w in cfg.file.warnings() {
            info!(member = %name, "configuration: {w}");
        }
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
            cfg.tls.as_deref(),
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
            redundancy: Redundancy::default(),
            takeovers: BTreeMap::new(),
            events: Arc::new(Vec::new()),
            replication_failures: 0,
            notifications: None,
            state_error: None,
            mismatched: BTreeSet::new(),
            boots: state.boots,
            started_at,
            coordination: None,
            fencing: None,
            maintenance: state.view.maintenance.clone(),
            maintenance_alert_after: cfg.file.maintenance.alert_after.as_millis() as Millis,
        });
        let agreement = Agreement::new(&name, cfg.file.definition());
        let fencing = cfg.file.fencing.clone().map(crate::fence::Fencing::new);
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
                state_error: StdMutex::new(None),
                agreement: StdMutex::new(agreement),
                failover_backoff: StdMutex::new(BTreeMap::new()),
                heartbeat_backoff: StdMutex::new(BTreeMap::new()),
                running_ops: StdMutex::new(BTreeSet::new()),
                events_cache: StdMutex::new((usize::MAX, String::new(), Arc::new(Vec::new()))),
                snapshot,
                started: Instant::now(),
                started_at,
                replication_failures: StdMutex::new(0),
                notifications: StdMutex::new(None),
                gossip_now: Notify::new(),
                replicating: Mutex::new(()),
                operations: TaskTracker::new(),
                lease: Mutex::new(lease::LeaseState::default()),
                lease_seen: StdMutex::new(None),
                peer_leases: StdMutex::new(BTreeMap::new()),
                quorum,
                fencing,
                service: std::sync::OnceLock::new(),
            }),
        };
        // Serve the restored state from the first request on (peers show as unknown until
        // the first heartbeat).
        if let Ok(mut st) = agent.inner.state.try_lock() {
            let snap = agent.build_snapshot(&mut st);
            drop(st);
            agent.send_snapshot(snap);
        }
        Ok(agent)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Tells `service` (the service manager) when this agent is ready and, from its heartbeat
    /// loop, that it is alive. Set before [`Agent::run`]; a second call is ignored.
    pub fn notify_service_manager(&self, service: Arc<crate::sd_notify::Notifier>) {
        let _ = self.inner.service.set(service);
    }

    /// The latest published snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// Subscribe to snapshot changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// Checks an API bearer token.
    pub fn token_ok(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let want = self.inner.cfg.token.expose().as_bytes();
        want.ct_eq(presented.as_bytes()).into()
    }

    /// Monotonic milliseconds since this agent started (what [`Liveness`] counts in).
    fn mono_now(&self) -> Mono {
        self.inner.started.elapsed().as_millis() as Mono
    }

    fn liveness(&self) -> std::sync::MutexGuard<'_, Liveness> {
        self.inner
            .liveness
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn reachability(&self, member: &str) -> Reachability {
        let window = self.inner.cfg.file.failover_after.as_millis() as Millis;
        self.liveness()
            .reachability(&self.inner.name, member, self.mono_now(), window)
    }

    fn path_up(&self, member: &str, path: &str) -> bool {
        let window = self.inner.cfg.file.failover_after.as_millis() as Millis;
        self.liveness()
            .path_up(member, path, self.mono_now(), window)
    }

    fn agreement(&self) -> std::sync::MutexGuard<'_, Agreement> {
        self.inner
            .agreement
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The peers whose group definitions differ from this agent's (as last heard).
    fn mismatched(&self) -> BTreeSet<String> {
        self.agreement().mismatched()
    }

    fn mark_seen(&self, member: &str, path: &str) {
        let now = self.mono_now();
        self.liveness().heard(member, path, now);
    }

    /// Persist, then change memory: `next` (a changed copy of `st`) is written, and only then
    /// becomes the state. A failed save changes nothing; it is logged and returned.
    fn commit(&self, st: &mut PersistedState, next: PersistedState) -> Result<(), StoreError> {
        match self.save(&next) {
            Ok(()) => {
                *st = next;
                Ok(())
            }
            Err(e) => {
                error!(member = %self.inner.name, error = %e,
                    "cannot persist state; the change is not made");
                Err(e)
            }
        }
    }

    fn persist_or_log(&self, st: &PersistedState) {
        if let Err(e) = self.save(st) {
            error!(member = %self.inner.name, error = %e, "cannot persist state");
        }
    }

    /// Writes `st`, remembering whether the state directory can be written (the snapshot,
    /// `/healthz` and `understudy_state_writable` show it).
    fn save(&self, st: &PersistedState) -> Result<(), StoreError> {
        let result = self.inner.store.save(st);
        let mut error = self
            .inner
            .state_error
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *error = match (&result, error.take()) {
            (Ok(()), _) => None,
            (Err(e), Some((_, since))) => Some((e.to_string(), since)),
            (Err(e), None) => Some((e.to_string(), now_ms())),
        };
        drop(error);
        result
    }

    /// Why the last write of the state failed, while it keeps failing.
    pub fn state_error(&self) -> Option<String> {
        self.state_error_since().map(|(why, _)| why)
    }

    fn state_error_since(&self) -> Option<(String, Millis)> {
        self.inner
            .state_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// While the state cannot be written, tries again (a round of the heartbeat loop): the
    /// agent takes part in operations again as soon as it can save.
    async fn retry_save(&self) {
        if self.state_error().is_some() {
            let st = self.inner.state.lock().await;
            if self.save(&st).is_ok() {
                info!(member = %self.inner.name, "the state can be written again");
            }
        }
    }

    /// Starts counting SNMP notifications from `zeros` (every (type, outcome) pair the
    /// notifier can report); the counts travel in the snapshot from now on.
    pub fn start_notification_counts(&self, zeros: NotificationCounts) {
        *self
            .inner
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(zeros);
        self.republish_counts();
    }

    /// Counts one SNMP notification of `kind` (trap, inform) that ended with `outcome`, and
    /// shows it in the snapshot at once.
    pub fn count_notification(&self, kind: &'static str, outcome: &'static str) {
        {
            let mut n = self
                .inner
                .notifications
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *n.get_or_insert_with(Default::default)
                .entry((kind, outcome))
                .or_default() += 1;
        }
        self.republish_counts();
    }

    /// Publishes the current snapshot again with the current notification counts (no group
    /// state is read: counting never waits for an operation).
    fn republish_counts(&self) {
        self.inner.snapshot.send_modify(|s| {
            Arc::make_mut(s).notifications = self.notification_counts();
        });
    }

    /// Rebuilds and publishes the snapshot (also keeps the persisted no-standby time).
    pub async fn publish(&self) {
        let mut st = self.inner.state.lock().await;
        let snap = self.build_snapshot(&mut st);
        drop(st);
        self.send_snapshot(snap);
    }

    /// Sends `snap` to every reader with the notification counts as they are now (read under
    /// the channel's lock, so a count made meanwhile is never overwritten by an older one).
    fn send_snapshot(&self, mut snap: Snapshot) {
        self.inner.snapshot.send_modify(|s| {
            snap.notifications = self.notification_counts();
            *s = Arc::new(snap);
        });
    }

    fn notification_counts(&self) -> Option<NotificationCounts> {
        self.inner
            .notifications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn build_snapshot(&self, st: &mut PersistedState) -> Snapshot {
        let now = now_ms();
        let reach = |m: &str| self.reachability(m);
        let (
            AlarmState {
                alarms,
                no_standby_since,
            },
            mismatched,
        ) = {
            let agreement = self.agreement();
            (
                st.view
                    .alarm_state(&reach, &agreement, st.no_standby_since, now),
                agreement.mismatched(),
            )
        };
        if no_standby_since != st.no_standby_since {
            st.no_standby_since = no_standby_since;
            self.persist_or_log(st);
        }
        let mut alarms = alarms;
        if let Some((why, since)) = self.state_error_since() {
            alarms.push(state_not_writable(&self.inner.name, &why, since));
        }
        let (coordination, lost) = match self.coordination_view() {
            Some((view, alarm)) => (Some(view), alarm),
            None => (None, None),
        };
        alarms.extend(lost);
        if let Some(f) = &self.inner.fencing {
            alarms.extend(f.gate().alarms(&self.inner.name, &st.view));
        }
        let redundancy = Redundancy { alarms };
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
                    lease: self.member_lease(&r.name),
                }
            })
            .collect();
        let events = {
            let mut cache = self
                .inner
                .events_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let newest = st
                .events
                .back()
                .map(|e| format!("{}#{}", e.id, e.repeats))
                .unwrap_or_default();
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
            notifications: None, // filled in by send_snapshot
            state_error: self.state_error(),
            mismatched,
            boots: st.boots,
            started_at: self.inner.started_at,
            coordination,
            fencing: self.inner.fencing.as_ref().map(|f| f.view()),
            maintenance: st.view.maintenance.clone(),
            maintenance_alert_after: self.inner.cfg.file.maintenance.alert_after.as_millis()
                as Millis,
        }
    }

    // ---------------------------------------------------------------- background work

    /// Runs the agent's loops until `stop` is cancelled. Each loop stops at its next safe
    /// point (between rounds): a round, and an operation it started, runs to its end.
    pub async fn run(&self, stop: CancellationToken) {
        // Learn from the peers before acting on the persisted record: a Main that was taken
        // over while it was down must not reclaim its address.
        let (me, s) = (self.clone(), stop.clone());
        let quorum = tokio::spawn(async move { me.quorum_loops(s).await });
        let first = tokio::time::timeout(self.inner.cfg.file.failover_after, self.gossip_round());
        let answered = first.await.unwrap_or_default();
        // With a quorum source: its first session, so the take can acquire the key.
        self.await_quorum(self.inner.cfg.file.failover_after).await;
        self.take_own_address().await;
        // An operation this agent coordinated when it stopped is carried to an end from its
        // persisted intent (now if every member it involves answered, else in a later round).
        self.resolve_intent(Some(&answered)).await;
        self.publish().await;
        self.tell_ready();
        let mut tasks = JoinSet::new();
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.heartbeat_loop(s).await });
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.failover_loop(s).await });
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.pause_watch(s).await });
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.lease_loop(s).await });
        let (me, s) = (self.clone(), stop.clone());
        tasks.spawn(async move { me.replication_loop(s).await });
        for (i, _) in self.inner.cfg.file.device_checks.iter().enumerate() {
            let (me, s) = (self.clone(), stop.clone());
            tasks.spawn(async move { me.device_check_loop(i, s).await });
        }
        while tasks.join_next().await.is_some() {}
        let _ = quorum.await;
        debug!(member = %self.inner.name, "agent loops stopped");
    }

    /// After the first heartbeat round and the address set-up: start-up is complete (the
    /// service manager hears READY=1 with this member's state).
    fn tell_ready(&self) {
        let snap = self.snapshot();
        let state = snap
            .members
            .iter()
            .find(|m| m.record.name == self.inner.name)
            .map(|m| {
                let address = m
                    .record
                    .current_address
                    .map_or_else(|| "no address".to_string(), |a| a.to_string());
                format!("{} ({address})", m.state)
            })
            .unwrap_or_default();
        info!(member = %self.inner.name, %state,
            "ready: first heartbeat round done, address set up");
        if let Some(s) = self.inner.service.get() {
            s.ready(&format!("{}: {state}", self.inner.name));
        }
    }

    /// Sends WATCHDOG=1 (the heartbeat loop, between rounds).
    fn watchdog_ping(&self) {
        if let Some(s) = self.inner.service.get() {
            s.watchdog();
        }
    }

    /// How often the heartbeat loop pings the service manager's watchdog (None: no watchdog).
    fn watchdog_every(&self) -> Option<Duration> {
        self.inner.service.get().and_then(|s| s.watchdog_every())
    }

    /// Waits until no operation (command, forwarded command, apply) is running, including
    /// those whose requester has gone.
    pub async fn drain(&self) {
        self.inner.operations.close();
        self.inner.operations.wait().await;
    }

    /// Writes the state once more (the last thing a stopping node does).
    pub async fn flush(&self) {
        let st = self.inner.state.lock().await;
        self.persist_or_log(&st);
    }

    async fn take_own_address(&self) {
        let st = self.inner.state.lock().await;
        let own = st.view.member(&self.inner.name).cloned();
        drop(st);
        if let Some(own) = own {
            let t = self.transition(None, &own);
            if let Err(e) = self.change_address(&t).await {
                error!(member = %self.inner.name, error = %e,
                    "cannot take own address; trying again after the next heartbeat round");
                self.inner.lease.lock().await.lost_at = Some(self.mono_now());
            }
        }
    }

    /// The directory this member publishes for its Backups now, or why it publishes nothing
    /// (the core decides from its record: [`MemberRecord::publishes`]).
    /// This agent's replica of `main` (`state_dir/replicas/<main>/current`), served to the
    /// Main's new server by a replace takeover; why not when it has none.
    pub async fn replica_of(&self, main: &str) -> Result<PathBuf, String> {
        if self.inner.state.lock().await.view.member(main).is_none() {
            return Err(format!("{main:?} is not a member of the group"));
        }
        let dir = replication::current_dir(&self.replica_root(), main);
        if dir.exists() {
            Ok(dir)
        } else {
            Err(format!(
                "{} holds no replica of {main} ({})",
                self.inner.name,
                dir.display()
            ))
        }
    }

    pub async fn published_dir(&self) -> Result<PathBuf, String> {
        let own = {
            let st = self.inner.state.lock().await;
            st.view.member(&self.inner.name).cloned()
        };
        let own = own.ok_or_else(|| format!("{} has no record", self.inner.name))?;
        let data_dir = &self.inner.cfg.file.replication.data_dir;
        match own.publishes(data_dir.is_some()) {
            Publishes::DataDir => data_dir
                .clone()
                .ok_or_else(|| format!("{} has no data_dir", self.inner.name)),
            Publishes::ReplicaOf(main) => {
                let dir = replication::current_dir(&self.replica_root(), &main);
                if dir.exists() {
                    Ok(dir)
                } else {
                    Err(format!(
                        "{} publishes its replica of {main}, which it does not have ({})",
                        self.inner.name,
                        dir.display()
                    ))
                }
            }
            Publishes::Nothing(why) => Err(why),
        }
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
        maintenance: Default::default(),
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
