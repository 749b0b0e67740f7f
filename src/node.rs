//! One agent assembled from its configuration and run until it is told to stop: the one place
//! that binds the listeners, builds the address backend, opens the state, and starts HTTP,
//! SNMP and the agent's loops — for `understudy run`, each member of the demo, the tests and
//! the benchmarks alike — and the one shutdown path.
//!
//! Shutdown, on one cancellation signal: HTTP and SNMP stop accepting; a request or an
//! operation already under way (a command, a failover, a replication) runs to its end or to
//! its next safe point, for at most the grace period; the state is written once more; then
//! the node returns. What is still running after the grace period is dropped, which is what a
//! crash would do — and every step of an operation is safe against a crash (ARCHITECTURE.md).
//! Does I/O.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::address::{AddressBackend, AddressError, Configured};
use crate::agent::Agent;
use crate::cli::exit;
use crate::config::Config;
use crate::snmp::{SnmpError, SnmpServer};
use crate::store::StoreError;

/// Why a node could not start. Nothing was started; the state file was opened (its start
/// count raised) only if every listener (HTTP, SNMP) was bound and the address backend is
/// usable.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot listen on {addr}: {source}{}", listen_hint(.addr, .source))]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error(transparent)]
    AddressUnusable(AddressError),
    #[error(transparent)]
    State(#[from] StoreError),
    #[error(transparent)]
    Snmp(#[from] SnmpError),
    #[error("quorum source unusable: {0}")]
    Quorum(String),
}

impl NodeError {
    /// The process exit status for this error (sysexits: 64 configuration, 65 state).
    pub fn exit_code(&self) -> i32 {
        match self {
            NodeError::State(_) => exit::STATE,
            _ => exit::CONFIG,
        }
    }

    /// What the log says about it.
    pub fn summary(&self) -> &'static str {
        match self {
            NodeError::Listen { .. } => "cannot listen",
            NodeError::Address(_) => "configuration error",
            NodeError::AddressUnusable(_) => "address backend unusable",
            NodeError::State(_) => "cannot open state",
            NodeError::Snmp(_) => "cannot start SNMP",
            NodeError::Quorum(_) => "quorum source unusable",
        }
    }
}

/// What an operator can do about a listener that cannot be bound, to follow the error (empty
/// when there is nothing to add): a port below 1024 refused for want of privilege, or a port
/// another process holds. Pure.
pub fn listen_hint(addr: &SocketAddr, e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (a port below 1024 needs root or the capability CAP_NET_BIND_SERVICE, which the \
             packaged systemd unit grants; or choose a port of 1024 or above)"
        }
        std::io::ErrorKind::AddrInUse => " (another process uses it: choose another port)",
        _ => "",
    }
}

/// The quorum source `cfg` names (none without a `[coordination]` section). Connects
/// lazily: an etcd that cannot be reached at start is the failsafe case, not a failed start.
#[cfg(feature = "etcd")]
fn quorum_source(cfg: &Config) -> Result<Option<Arc<dyn crate::coordination::Quorum>>, NodeError> {
    let Some(c) = &cfg.file.coordination else {
        return Ok(None);
    };
    let etcd = crate::coordination::etcd::Etcd::connect(c, &cfg.file.group, &cfg.file.member)
        .map_err(|e| NodeError::Quorum(e.to_string()))?;
    info!(member = %cfg.file.member, endpoints = ?c.endpoints, "quorum source: etcd");
    Ok(Some(Arc::new(etcd)))
}

/// Without the `etcd` feature a `[coordination]` section is refused when the configuration
/// is loaded; nothing to build here.
#[cfg(not(feature = "etcd"))]
fn quorum_source(_cfg: &Config) -> Result<Option<Arc<dyn crate::coordination::Quorum>>, NodeError> {
    Ok(None)
}

/// An agent with its listeners bound, ready to run.
#[derive(Debug)]
pub struct Node {
    agent: Agent,
    http: TcpListener,
    snmp: Option<SnmpServer>,
    grace: Duration,
}

impl Node {
    /// Assembles the agent `cfg` describes: binds its HTTP listener (or takes `http`, already
    /// bound by the caller) and its SNMP socket when configured, builds and checks the
    /// configured address backend, opens the state, and sets SNMP up on its socket. Nothing
    /// runs until [`Node::run`].
    pub async fn start(cfg: Config, http: Option<TcpListener>) -> Result<Node, NodeError> {
        let listen = cfg.file.http.listen;
        let http = match http {
            Some(l) => l,
            None => TcpListener::bind(listen)
                .await
                .map_err(|source| NodeError::Listen {
                    addr: listen,
                    source,
                })?,
        };
        let http_addr = http.local_addr().unwrap_or(listen);
        let snmp_socket = match &cfg.file.snmp {
            Some(c) => Some((SnmpServer::listen(c).await?, c.clone())),
            None => None,
        };
        let backend = Configured::from_config(&cfg)?;
        backend.check().await.map_err(NodeError::AddressUnusable)?;
        info!(member = %cfg.file.member, backend = backend.name(), "address backend");
        let grace = grace_period(&cfg);
        let quorum = quorum_source(&cfg)?;
        let agent = Agent::open_with(cfg, Arc::new(backend), quorum)?;
        info!(member = %agent.name(), http = %http_addr, "listening on {http_addr}");
        let snmp = match snmp_socket {
            Some((front, c)) => Some(SnmpServer::build(front, agent.clone(), &c).await?),
            None => None,
        };
        Ok(Node {
            agent,
            http,
            snmp,
            grace,
        })
    }

    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Where SNMP listens, when configured.
    pub fn snmp_addr(&self) -> Option<SocketAddr> {
        self.snmp.as_ref().map(SnmpServer::local_addr)
    }

    /// Serves HTTP and SNMP and runs the agent's loops until `stop` is cancelled, then shuts
    /// down as the module documentation describes.
    pub async fn run(self, stop: CancellationToken) {
        let Node {
            agent,
            http,
            snmp,
            grace,
            ..
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(crate::http::serve(
            http,
            agent.clone(),
            stop.clone().cancelled_owned(),
        ));
        if let Some(s) = snmp {
            let stop = stop.clone();
            tasks.spawn(async move {
                s.run(stop.cancelled_owned()).await;
                Ok(())
            });
        }
        {
            let agent = agent.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                agent.run(stop).await;
                Ok(())
            });
        }
        stop.cancelled().await;
        info!(member = %agent.name(), grace = ?grace, "shutting down");
        let drained = tokio::time::timeout(grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Ok(Err(e)) = done {
                    error!(member = %agent.name(), error = %e, "HTTP server failed");
                }
            }
            // Operations whose requester has gone run on their own: wait for them too.
            agent.drain().await;
        })
        .await;
        if drained.is_err() {
            warn!(member = %agent.name(), grace = ?grace,
                "still busy after the grace period; stopping what is left");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        agent.flush().await;
        info!(member = %agent.name(), "agent stopped");
    }
}

/// Raises this process's soft limit of open files to its hard limit (the usual soft limit,
/// 1024, is close to what a burst of SNMP managers, peers and replication can need at once;
/// an agent that cannot open its state file cannot save).
/// Called once per process, by the `run` and `demo` entry points.
pub fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => debug!(limit, "open-file limit"),
        Err(e) => warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// How long a stopping node lets work under way finish: the longest step of an operation (a
/// forwarded command waits for its coordinator's applies, each of which persists, moves an
/// address and runs a hook).
pub fn grace_period(cfg: &Config) -> Duration {
    let apply = cfg.file.peer.request_timeout + cfg.file.hooks.timeout + Duration::from_secs(2);
    apply * 3
}

/// `understudy run`: starts the node `cfg` describes and runs it until SIGINT or SIGTERM.
/// Under a service manager (`NOTIFY_SOCKET`, a `Type=notify` unit) it says READY=1 after the
/// agent's first heartbeat round and address set-up, WATCHDOG=1 from the heartbeat loop and
/// STOPPING=1 when shutdown starts ([`crate::sd_notify`]). Returns the process exit status.
pub async fn run(cfg: Config) -> i32 {
    let signal = shutdown_signal();
    raise_open_file_limit();
    let service = service_manager(&cfg);
    let node = match Node::start(cfg, None).await {
        Ok(n) => n,
        Err(e) => {
            error!(error = %e, "{}", e.summary());
            eprintln!("error: {e}");
            return e.exit_code();
        }
    };
    if let Some(s) = &service {
        node.agent().notify_service_manager(s.clone());
    }
    let stop = CancellationToken::new();
    let running = tokio::spawn(node.run(stop.clone()));
    signal.await;
    if let Some(s) = &service {
        s.stopping("shutting down");
    }
    stop.cancel();
    let _ = running.await;
    exit::OK
}

/// The service manager this process runs under, if any (an environment it cannot use is
/// logged and ignored: the agent runs as it would without one). Warns when the watchdog
/// interval is not longer than the longest heartbeat round `cfg` allows (an operation's
/// applies: the grace period), which would get a busy agent restarted.
fn service_manager(cfg: &Config) -> Option<Arc<crate::sd_notify::Notifier>> {
    let service = match crate::sd_notify::Notifier::from_env() {
        Ok(s) => s?,
        Err(e) => {
            warn!(error = %e, "not notifying the service manager");
            return None;
        }
    };
    if let Some(watchdog) = service.watchdog_interval() {
        let longest = grace_period(cfg);
        if watchdog <= longest {
            warn!(watchdog = ?watchdog, longest_round = ?longest,
                "the service manager's watchdog interval (WatchdogSec) is not longer than the \
                 longest heartbeat round this configuration allows \
                 (3 x (peer.request_timeout + hooks.timeout + 2 s)): a long operation could get \
                 the agent restarted; raise WatchdogSec");
        }
        info!(watchdog = ?watchdog, "the service manager watches the heartbeat loop");
    }
    Some(Arc::new(service))
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers at once — before anything is printed or
/// bound, so that a signal sent as soon as the process announces itself is not lost — and
/// returns a future that resolves on either.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_refused_privileged_port_names_the_capability_and_a_taken_port_says_so() {
        let low: SocketAddr = "127.0.0.1:161".parse().expect("addr");
        let high: SocketAddr = "127.0.0.1:16100".parse().expect("addr");
        let denied = Error::from(ErrorKind::PermissionDenied);
        assert!(listen_hint(&low, &denied).contains("CAP_NET_BIND_SERVICE"));
        assert_eq!(listen_hint(&high, &denied), "");
        let taken = Error::from(ErrorKind::AddrInUse);
        assert!(listen_hint(&high, &taken).contains("choose another port"));
        assert_eq!(listen_hint(&low, &Error::from(ErrorKind::Other)), "");
    }
}
