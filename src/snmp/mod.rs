//! The SNMP interface of a member's agent: GET/GETNEXT/GETBULK/SET over v1, v2c and v3 on
//! UNDERSTUDY-MIB and the SNMPv2-MIB `system` and `snmp` groups, read from the same published
//! snapshot as HTTP and metrics; SETs go through the one command path; notifications go to the
//! configured targets. Does I/O (sockets, the engine ID file).
//!
//! The parts:
//! - [`config`]: the `[snmp]` section (pure);
//! - [`mib`]: snapshot to OID table (pure); [`control`]: SET to operation (pure);
//! - [`wire`]: the first look at a datagram (pure); [`gate`]: the public socket and counters;
//! - [`agent`]: the `async-snmp` wiring (the only file that uses the crate);
//! - [`notify`]: which notifications a snapshot change calls for, and their delivery.
//!
//! A request travels: public socket ([`gate`]) → responder on a loopback port ([`agent`]) →
//! [`mib`] table of the current snapshot, or for a SET [`control`] → [`crate::agent::Agent::submit`].

pub mod agent;
pub mod config;
pub mod control;
pub mod gate;
pub mod mib;
pub mod notify;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::info;

use crate::snmp::config::{Access, SnmpConfig};

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("cannot listen for SNMP on udp {addr}: {source} (choose another port)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SNMP engine ID file {path}: {message}")]
    EngineId { path: PathBuf, message: String },
    #[error("SNMP engine: {0}")]
    Engine(String),
    #[error("SNMP agent: {0}")]
    Agent(String),
}

/// The file, in the state directory, that keeps the SNMP engine ID across restarts.
pub const ENGINE_ID_FILE: &str = "snmp-engine-id";

/// Reads the engine ID kept in `state_dir`, or makes one and keeps it: RFC 3411 format 5
/// (administratively assigned octets) under enterprise 32473, with 12 octets unique to this
/// member and installation.
pub fn load_or_create_engine_id(state_dir: &Path, member: &str) -> Result<Vec<u8>, SnmpError> {
    let path = state_dir.join(ENGINE_ID_FILE);
    let err = |message: String| SnmpError::EngineId {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = hex::decode(text.trim()).map_err(|e| {
                err(format!(
                    "not hexadecimal ({e}); remove the file to make a new engine ID \
                     (SNMPv3 managers then rediscover it)"
                ))
            })?;
            if !(5..=32).contains(&id.len()) {
                return Err(err(format!(
                    "{} octets, an engine ID has 5 to 32; remove the file to make a new one",
                    id.len()
                )));
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut h = Sha256::new();
            h.update(member.as_bytes());
            h.update(state_dir.as_os_str().as_encoded_bytes());
            h.update(std::process::id().to_le_bytes());
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.update(nanos.to_le_bytes());
            let digest = h.finalize();
            let mut id = vec![0x80, 0x00, 0x7e, 0xd9, 0x05];
            id.extend_from_slice(&digest[..12]);
            std::fs::create_dir_all(state_dir).map_err(|e| err(e.to_string()))?;
            let tmp = state_dir.join(format!(".{ENGINE_ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{}\n", hex::encode(&id)))
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| err(e.to_string()))?;
            Ok(id)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// A bound, ready SNMP interface of one member.
#[derive(Debug)]
pub struct SnmpServer {
    agent: crate::agent::Agent,
    gate: gate::Gate,
    responder: agent::Responder,
    notifiers: Vec<Arc<agent::Notifier>>,
    root: mib::Oid,
    alarm_repeat: std::time::Duration,
    local: SocketAddr,
}

impl SnmpServer {
    /// Binds the public socket (a port conflict fails here), sets up the engine (ID kept in
    /// the member's state directory, boots from its start count), the responder and the
    /// notification targets. Nothing is served until [`SnmpServer::run`].
    pub async fn bind(
        agent: crate::agent::Agent,
        cfg: &SnmpConfig,
    ) -> Result<SnmpServer, SnmpError> {
        let front = UdpSocket::bind(cfg.listen)
            .await
            .map_err(|source| SnmpError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let local = front.local_addr().unwrap_or(cfg.listen);
        let state_dir = agent.config().file.state_dir.clone();
        let engine_id = load_or_create_engine_id(&state_dir, agent.name())?;
        let engine = agent::Engine::start(&engine_id, agent.snapshot().boots)?;
        let root = cfg.root();
        let info = mib::MibInfo {
            root: root.clone(),
            contact: cfg.contact.clone(),
            location: cfg.location.clone(),
            engine_id: engine.engine_id(),
            max_message_size: u32::try_from(cfg.max_message_size).unwrap_or(u32::MAX),
        };
        let counters = Arc::new(gate::GateCounters::default());
        let responder = agent::Responder::build(
            agent.clone(),
            cfg,
            &engine,
            info,
            counters.clone(),
            Instant::now(),
        )
        .await?;
        let communities = cfg
            .communities
            .iter()
            .map(|c| wire::GateCommunity {
                secret: c.secret.expose().as_bytes().to_vec(),
                may_write: c.access == Access::ReadWrite,
            })
            .collect();
        let gate = gate::Gate::new(front, responder.local_addr(), communities, counters);
        let notifiers = cfg
            .targets
            .iter()
            .map(|t| agent::Notifier::new(t, cfg, &engine).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        agent.start_notification_counts(notify::zero_counts());
        Ok(SnmpServer {
            agent,
            gate,
            responder,
            notifiers,
            root,
            alarm_repeat: cfg.alarm_repeat,
            local,
        })
    }

    /// The public address (useful when the configured port is 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves SNMP and sends notifications until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, _) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        info!(member = %self.agent.name(), snmp = %self.local, targets = self.notifiers.len(),
            "SNMP listening on udp {}", self.local);
        let mut tasks = tokio::task::JoinSet::new();
        let uptime = self.responder.uptime();
        tasks.spawn(self.gate.run(stopped(stop.subscribe())));
        tasks.spawn(self.responder.run(stopped(stop.subscribe())));
        let settle = self.agent.config().file.failover_after;
        tasks.spawn(notify::run(
            self.agent.subscribe(),
            notify::Setup {
                root: self.root,
                notifiers: self.notifiers,
                count: {
                    let agent = self.agent.clone();
                    Arc::new(move |d: self::agent::Delivery, o: notify::Outcome| {
                        agent.count_notification(d.as_str(), o.as_str())
                    })
                },
                uptime,
                alarm_repeat: self.alarm_repeat,
                settle,
            },
            stopped(stop.subscribe()),
        ));
        shutdown.await;
        let _ = stop.send(true);
        while tasks.join_next().await.is_some() {}
        info!(member = %self.agent.name(), "SNMP stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_engine_id(dir.path(), "main-1").expect("created");
        assert_eq!(a.len(), 17);
        assert_eq!(&a[..5], &[0x80, 0x00, 0x7e, 0xd9, 0x05]);
        let b = load_or_create_engine_id(dir.path(), "main-1").expect("read back");
        assert_eq!(a, b);
        std::fs::write(dir.path().join(ENGINE_ID_FILE), "zz").expect("write");
        let e = load_or_create_engine_id(dir.path(), "main-1").expect_err("corrupt");
        assert!(e.to_string().contains("remove the file"), "{e}");
    }
}
