//! The command responder on the `async-snmp` crate: one MIB handler answers GET, GETNEXT and
//! GETBULK from the [`crate::snmp::mib`] table of the current snapshot, and takes a SET through
//! the one command path ([`crate::snmp::control`], then [`crate::agent::Agent::submit`]) in the
//! name of the community or user that asked. It listens on a loopback port behind
//! [`crate::snmp::gate`]; who may do what is set up by [`crate::snmp::engine`]. One of the three
//! files that use `async-snmp` (with [`crate::snmp::engine`] and [`crate::snmp::notifier`]).
//! Does I/O.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use async_snmp as snmp;
use snmp::handler::{
    BoxFuture, GetNextResult, GetResult, HandlerResult, MibHandler, PreparedSet, RequestContext,
    SecurityName, SetCommitError, SetCommitResult, SetTestError, SetTestResult, SetUndoResult,
};
use snmp::SecurityLevel;
use tracing::{info, warn};

use crate::agent::{now_ms, Agent};
use crate::command::{Command, CommandError};
use crate::group::Requester;
use crate::snapshot::Snapshot;
use crate::snmp::config::{Access, SnmpConfig};
use crate::snmp::control::{self, SetError};
use crate::snmp::engine::{self, from_value, to_oid, to_value, Engine};
use crate::snmp::error::SnmpError;
use crate::snmp::gate::GateCounters;
use crate::snmp::mib::{self, Cell, Live, MibInfo, Value};
use crate::snmp::wire;

/// One compiled snapshot: the MIB table in the crate's types.
#[derive(Debug)]
struct Compiled {
    snap: Arc<Snapshot>,
    entries: Vec<(snmp::Oid, CompiledCell)>,
}

#[derive(Debug)]
enum CompiledCell {
    Fixed(snmp::Value),
    Live(Live),
}

fn compile(snap: Arc<Snapshot>, info: &MibInfo) -> Compiled {
    let table = mib::build(&snap, info);
    let entries = table
        .entries()
        .iter()
        .map(|(o, c)| {
            let cell = match c {
                Cell::Fixed(v) => CompiledCell::Fixed(to_value(v)),
                Cell::Live(l) => CompiledCell::Live(*l),
            };
            (to_oid(o), cell)
        })
        .collect();
    Compiled { snap, entries }
}

/// Who is asking, as the event history names them, and what they may do.
#[derive(Debug, Clone)]
struct Principal {
    name: String,
    access: Access,
}

impl Principal {
    /// `snmp:NAME`, as the event history and logs name who asked.
    fn requester(&self) -> Requester {
        Requester {
            interface: "snmp".into(),
            identity: self.name.clone(),
        }
    }
}

type SetKey = (SocketAddr, i32);

/// Serialised SET bookkeeping (async-snmp runs one SET at a time).
#[derive(Debug, Default)]
struct SetState {
    /// The SET whose object passed its test and waits for its commit.
    current: Option<SetKey>,
    /// Recent outcomes, so that a retransmitted SET is answered without acting twice.
    recent: VecDeque<(Instant, SetKey, snmp::Oid, Replay)>,
}

#[derive(Debug, Clone, Copy)]
enum Replay {
    Done,
    Refused(SetTestError),
    CommitFailed,
}

const REPLAY_WINDOW: Duration = Duration::from_secs(60);
const REPLAY_ENTRIES: usize = 64;

struct Shared {
    agent: Agent,
    info: MibInfo,
    cache: RwLock<Arc<Compiled>>,
    started: Instant,
    gate: Arc<GateCounters>,
    snmp_agent: OnceLock<snmp::Agent>,
    communities: Vec<(Vec<u8>, Principal)>,
    users: Vec<Principal>,
    sets: Mutex<SetState>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("member", &self.agent.name())
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn compiled(&self) -> Arc<Compiled> {
        let snap = self.agent.snapshot();
        {
            let c = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&c.snap, &snap) {
                return c.clone();
            }
        }
        let fresh = Arc::new(compile(snap, &self.info));
        *self.cache.write().unwrap_or_else(|p| p.into_inner()) = fresh.clone();
        fresh
    }

    fn uptime(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_millis() / 10).unwrap_or(u32::MAX)
    }

    fn live(&self, l: Live) -> snmp::Value {
        use std::sync::atomic::Ordering::Relaxed;
        let g = &self.gate;
        let a = self.snmp_agent.get();
        let from_agent = |f: fn(&snmp::Agent) -> u32| a.map_or(0, f);
        let boots_time = || a.and_then(|a| a.engine_boots_time().ok()).unwrap_or((0, 0));
        let int = |n: u32| snmp::Value::Integer(i32::try_from(n).unwrap_or(i32::MAX));
        let counter = match l {
            Live::SysUpTime => return snmp::Value::TimeTicks(self.uptime()),
            Live::EngineBoots => return int(boots_time().0),
            Live::EngineTime => return int(boots_time().1),
            Live::InPkts => g.in_pkts.load(Relaxed),
            Live::InBadVersions => g.bad_versions.load(Relaxed),
            Live::InBadCommunityNames => g.bad_community_names.load(Relaxed),
            Live::InBadCommunityUses => g.bad_community_uses.load(Relaxed),
            Live::InAsnParseErrs => g
                .asn_parse_errs
                .load(Relaxed)
                .wrapping_add(from_agent(snmp::Agent::snmp_in_asn_parse_errs)),
            Live::SilentDrops => from_agent(snmp::Agent::snmp_silent_drops),
            Live::UnknownSecurityModels => from_agent(snmp::Agent::snmp_unknown_security_models),
            Live::InvalidMsgs => from_agent(snmp::Agent::snmp_invalid_msgs),
            Live::UsmUnsupportedSecLevels => from_agent(snmp::Agent::usm_unsupported_sec_levels),
            Live::UsmNotInTimeWindows => from_agent(snmp::Agent::usm_not_in_time_windows),
            Live::UsmUnknownUserNames => from_agent(snmp::Agent::usm_unknown_usernames),
            Live::UsmUnknownEngineIds => from_agent(snmp::Agent::usm_unknown_engine_ids),
            Live::UsmWrongDigests => from_agent(snmp::Agent::usm_wrong_digests),
            Live::UsmDecryptionErrors => from_agent(snmp::Agent::usm_decryption_errors),
        };
        snmp::Value::Counter32(counter)
    }

    fn value(&self, c: &CompiledCell) -> snmp::Value {
        match c {
            CompiledCell::Fixed(v) => v.clone(),
            CompiledCell::Live(l) => self.live(*l),
        }
    }

    fn get(&self, oid: &snmp::Oid) -> GetResult {
        let c = self.compiled();
        match c.entries.binary_search_by(|(o, _)| o.cmp(oid)) {
            Ok(i) => GetResult::Value(self.value(&c.entries[i].1)),
            Err(i) => {
                // An instance of an object this agent has is noSuchInstance; anything else
                // is noSuchObject.
                let arcs = oid.arcs();
                let object = &arcs[..arcs.len().saturating_sub(1)];
                let known = [i.checked_sub(1), Some(i)]
                    .into_iter()
                    .flatten()
                    .filter_map(|j| c.entries.get(j))
                    .any(|(o, _)| !object.is_empty() && o.arcs().starts_with(object));
                if known {
                    GetResult::NoSuchInstance
                } else {
                    GetResult::NoSuchObject
                }
            }
        }
    }

    fn get_next(&self, oid: &snmp::Oid) -> GetNextResult {
        let c = self.compiled();
        let i = c.entries.partition_point(|(o, _)| o <= oid);
        match c.entries.get(i) {
            Some((o, cell)) => {
                GetNextResult::Value(snmp::VarBind::new(o.clone(), self.value(cell)))
            }
            None => GetNextResult::EndOfMibView,
        }
    }

    fn principal(&self, ctx: &RequestContext) -> Option<Principal> {
        match ctx.security_name() {
            SecurityName::Community(c) => wire::find_community(
                c.as_bytes(),
                self.communities.iter().map(|(s, p)| (s.as_slice(), p)),
            )
            .cloned(),
            SecurityName::Usm(user) => {
                if ctx.security_level() == SecurityLevel::NoAuthNoPriv {
                    return None;
                }
                self.users
                    .iter()
                    .find(|u| u.name.as_bytes() == user.as_ref())
                    .cloned()
            }
        }
    }

    fn replay(&self, key: SetKey, oid: &snmp::Oid) -> Option<Replay> {
        let mut st = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        st.recent.retain(|(t, ..)| t.elapsed() < REPLAY_WINDOW);
        st.recent
            .iter()
            .find(|(_, k, o, _)| *k == key && o == oid)
            .map(|(.., r)| *r)
    }

    fn remember(&self, key: SetKey, oid: &snmp::Oid, r: Replay) {
        let mut st = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        st.recent.push_back((Instant::now(), key, oid.clone(), r));
        while st.recent.len() > REPLAY_ENTRIES {
            st.recent.pop_front();
        }
    }

    fn release(&self, key: SetKey) {
        let mut st = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if st.current == Some(key) {
            st.current = None;
        }
    }

    fn pending(self: &Arc<Self>, key: SetKey, oid: &snmp::Oid, work: Work) -> Box<dyn PreparedSet> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).current = Some(key);
        Box::new(Pending {
            shared: Some(self.clone()),
            key,
            oid: oid.clone(),
            work,
        })
    }

    async fn test_set(
        self: &Arc<Self>,
        ctx: &RequestContext,
        oid: &snmp::Oid,
        value: &snmp::Value,
    ) -> SetTestResult {
        let Some(who) = self.principal(ctx) else {
            return Err(SetTestError::NoAccess);
        };
        if who.access != Access::ReadWrite {
            return Err(SetTestError::NoAccess);
        }
        let key = (ctx.source(), ctx.request_id());
        {
            let st = self.sets.lock().unwrap_or_else(|p| p.into_inner());
            if st.current == Some(key) {
                warn!(member = %self.agent.name(), requested_by = %who.requester(),
                    "SNMP SET refused: each control object must be set alone");
                return Err(SetTestError::InconsistentValue);
            }
        }
        if let Some(r) = self.replay(key, oid) {
            return match r {
                Replay::Done => Ok(self.pending(key, oid, Work::Nothing)),
                Replay::CommitFailed => Ok(self.pending(key, oid, Work::Fail)),
                Replay::Refused(e) => Err(e),
            };
        }
        let Some(v) = from_value(value) else {
            return Err(SetTestError::WrongType);
        };
        let snap = self.agent.snapshot();
        let op = match control::decode_set(&snap, &self.info.root, oid.arcs(), &v) {
            Ok(op) => op,
            Err(e) => {
                let status = match e {
                    SetError::NotWritable => SetTestError::NotWritable,
                    SetError::NoCreation => SetTestError::NoCreation,
                    SetError::WrongType => SetTestError::WrongType,
                    SetError::WrongValue => SetTestError::WrongValue,
                    SetError::InconsistentValue(why) => {
                        info!(member = %self.agent.name(), requested_by = %who.requester(),
                            object = %control::describe(&self.info.root, oid.arcs()), %why,
                            "SNMP SET refused");
                        SetTestError::InconsistentValue
                    }
                };
                return Err(status);
            }
        };
        let cmd = Command {
            operation: op.clone(),
            requested_by: who.requester(),
            reason: Some(format!(
                "SNMP SET {} = {}",
                control::describe(&self.info.root, oid.arcs()),
                match &v {
                    Value::Integer(i) => i.to_string(),
                    other => format!("{other:?}"),
                }
            )),
        };
        if control::dry_run(&snap, &op, now_ms()).is_ok() {
            return Ok(self.pending(key, oid, Work::Submit(cmd)));
        }
        // This agent's view says the command would be refused: let the command path decide
        // (and record why in the event history) now, so a refusal is inconsistentValue.
        match self.agent.submit(cmd).await {
            Ok(ev) => {
                info!(member = %self.agent.name(), event = %ev.id,
                    "SNMP SET carried out (this agent's view was behind)");
                self.remember(key, oid, Replay::Done);
                Ok(self.pending(key, oid, Work::Nothing))
            }
            Err(CommandError::Unavailable(why)) => {
                warn!(member = %self.agent.name(), %why, "SNMP SET: the agent cannot act now");
                self.remember(key, oid, Replay::CommitFailed);
                Ok(self.pending(key, oid, Work::Fail))
            }
            Err(e) => {
                info!(member = %self.agent.name(), error = %e, "SNMP SET refused");
                self.remember(key, oid, Replay::Refused(SetTestError::InconsistentValue));
                Err(SetTestError::InconsistentValue)
            }
        }
    }
}

/// What the commit of a tested SET does.
#[derive(Debug)]
enum Work {
    /// Submit the command.
    Submit(Command),
    /// Already carried out (a retransmission, or decided in the test phase).
    Nothing,
    /// The agent could not act: commitFailed.
    Fail,
}

struct Pending {
    shared: Option<Arc<Shared>>,
    key: SetKey,
    oid: snmp::Oid,
    work: Work,
}

impl Pending {
    fn release(&mut self) {
        if let Some(s) = self.shared.take() {
            s.release(self.key);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.release();
    }
}

impl PreparedSet for Pending {
    fn commit<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a snmp::Oid,
        _value: &'a snmp::Value,
    ) -> BoxFuture<'a, SetCommitResult> {
        Box::pin(async move {
            let Some(shared) = self.shared.clone() else {
                return Err(SetCommitError::Failed);
            };
            match std::mem::replace(&mut self.work, Work::Nothing) {
                Work::Nothing => Ok(()),
                Work::Fail => Err(SetCommitError::Failed),
                Work::Submit(cmd) => match shared.agent.submit(cmd).await {
                    Ok(ev) => {
                        info!(member = %shared.agent.name(), event = %ev.id, op = %ev.kind,
                            requested_by = %ev.requested_by, "SNMP SET carried out");
                        shared.remember(self.key, &self.oid, Replay::Done);
                        Ok(())
                    }
                    Err(e) => {
                        warn!(member = %shared.agent.name(), error = %e,
                            "SNMP SET failed in its commit phase; nothing changed");
                        shared.remember(self.key, &self.oid, Replay::CommitFailed);
                        Err(SetCommitError::Failed)
                    }
                },
            }
        })
    }

    fn undo<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a snmp::Oid,
        _value: &'a snmp::Value,
    ) -> BoxFuture<'a, SetUndoResult> {
        // Each SET carries one control object, so no later object can fail after a commit
        // that changed something; a failed commit changed nothing.
        self.release();
        Box::pin(async { Ok(()) })
    }

    fn free<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a snmp::Oid,
        _value: &'a snmp::Value,
    ) -> BoxFuture<'a, ()> {
        self.release();
        Box::pin(async {})
    }

    fn finalize<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a snmp::Oid,
        _value: &'a snmp::Value,
    ) -> BoxFuture<'a, ()> {
        self.release();
        Box::pin(async {})
    }
}

/// The one MIB handler: every object of the table, under `1.3.6.1`.
struct Handler(Arc<Shared>);

impl MibHandler for Handler {
    fn get<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        oid: &'a snmp::Oid,
    ) -> BoxFuture<'a, HandlerResult<GetResult>> {
        let r = self.0.get(oid);
        Box::pin(std::future::ready(Ok(r)))
    }

    fn get_next<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        oid: &'a snmp::Oid,
    ) -> BoxFuture<'a, HandlerResult<GetNextResult>> {
        let r = self.0.get_next(oid);
        Box::pin(std::future::ready(Ok(r)))
    }

    fn test_set<'a>(
        &'a self,
        ctx: &'a RequestContext,
        oid: &'a snmp::Oid,
        value: &'a snmp::Value,
    ) -> BoxFuture<'a, SetTestResult> {
        Box::pin(async move { self.0.test_set(ctx, oid, value).await })
    }
}

/// The command responder: an async-snmp agent on a loopback port behind the gate.
pub struct Responder {
    snmp_agent: snmp::Agent,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("local_addr", &self.snmp_agent.local_addr())
            .finish_non_exhaustive()
    }
}

impl Responder {
    pub async fn build(
        agent: Agent,
        cfg: &SnmpConfig,
        engine: &Engine,
        info: MibInfo,
        gate: Arc<GateCounters>,
        started: Instant,
    ) -> Result<Responder, SnmpError> {
        let communities: Vec<(Vec<u8>, Principal)> = cfg
            .communities
            .iter()
            .map(|c| {
                (
                    c.secret.expose().as_bytes().to_vec(),
                    Principal {
                        name: c.name.clone(),
                        access: c.access,
                    },
                )
            })
            .collect();
        let users: Vec<Principal> = cfg
            .users
            .iter()
            .map(|u| Principal {
                name: u.name.clone(),
                access: u.access,
            })
            .collect();
        let placeholder = Arc::new(compile(agent.snapshot(), &info));
        let shared = Arc::new(Shared {
            agent,
            info,
            cache: RwLock::new(placeholder),
            started,
            gate,
            snmp_agent: OnceLock::new(),
            communities,
            users,
            sets: Mutex::new(SetState::default()),
        });
        let b = snmp::Agent::builder()
            .bind("127.0.0.1:0")
            .max_message_size(cfg.max_message_size)
            .authoritative_engine(engine.authoritative())
            .without_builtin_handlers()
            .handler(to_oid(&[1, 3, 6, 1]), Arc::new(Handler(shared.clone())));
        let b = engine::with_access_control(b, cfg)?;
        let snmp_agent = b
            .build()
            .await
            .map_err(|e| SnmpError::Agent(e.to_string()))?;
        let _ = shared.snmp_agent.set(snmp_agent.clone());
        Ok(Responder { snmp_agent, shared })
    }

    /// The loopback address the gate forwards requests to.
    pub fn local_addr(&self) -> SocketAddr {
        self.snmp_agent.local_addr()
    }

    /// `sysUpTime` as notifications carry it.
    pub fn uptime(&self) -> Arc<dyn Fn() -> u32 + Send + Sync> {
        let s = self.shared.clone();
        Arc::new(move || s.uptime())
    }

    /// Serves requests until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let snmp_agent = self.snmp_agent.clone();
        let run = snmp_agent.run();
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => {
                if let Err(e) = r {
                    warn!(member = %self.shared.agent.name(), error = %e, "SNMP agent stopped");
                }
                return;
            }
            _ = shutdown => {}
        }
        self.snmp_agent.cancel();
        let _ = run.await;
    }
}
