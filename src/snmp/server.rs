//! The SNMP interface of one member put together: [`SnmpServer::listen`] binds the public
//! socket (before anything else of the agent starts, so a port conflict changes nothing),
//! [`SnmpServer::build`] sets up the engine, the responder, the gate and the notifiers on it;
//! [`SnmpServer::run`] serves until shutdown. Does I/O (sockets, the engine ID file).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::info;

use crate::snmp::config::{Access, SnmpConfig};
use crate::snmp::engine::{self, Engine};
use crate::snmp::error::SnmpError;
use crate::snmp::notifier::{Delivery, Notifier, Outcome};
use crate::snmp::responder::Responder;
use crate::snmp::{gate, mib, notify, wire};

/// A bound, ready SNMP interface of one member.
#[derive(Debug)]
pub struct SnmpServer {
    agent: crate::agent::Agent,
    gate: gate::Gate,
    responder: Responder,
    notifiers: Vec<Arc<Notifier>>,
    root: mib::Oid,
    alarm_repeat: std::time::Duration,
    group_notifications: crate::snmp::config::GroupNotifications,
    local: SocketAddr,
}

impl SnmpServer {
    /// Binds the public socket `cfg` names (a port conflict fails here).
    pub async fn listen(cfg: &SnmpConfig) -> Result<UdpSocket, SnmpError> {
        UdpSocket::bind(cfg.listen)
            .await
            .map_err(|source| SnmpError::Bind {
                addr: cfg.listen,
                source,
            })
    }

    /// Sets up the engine (ID kept in the member's state directory, boots from its start
    /// count), the responder and the notification targets on the public socket `front`.
    /// Nothing is served until [`SnmpServer::run`].
    pub async fn build(
        front: UdpSocket,
        agent: crate::agent::Agent,
        cfg: &SnmpConfig,
    ) -> Result<SnmpServer, SnmpError> {
        let local = front.local_addr().unwrap_or(cfg.listen);
        let state_dir = agent.config().file.state_dir.clone();
        let engine_id = engine::load_or_create_engine_id(&state_dir, agent.name())?;
        let engine = Engine::start(&engine_id, agent.snapshot().boots)?;
        let root = cfg.root();
        let info = mib::MibInfo {
            root: root.clone(),
            contact: cfg.contact.clone(),
            location: cfg.location.clone(),
            engine_id: engine.engine_id(),
            max_message_size: u32::try_from(cfg.max_message_size).unwrap_or(u32::MAX),
        };
        let counters = Arc::new(gate::GateCounters::default());
        let responder = Responder::build(
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
            .map(|t| Notifier::new(t, cfg, &engine).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        agent.start_notification_counts(notify::zero_counts());
        Ok(SnmpServer {
            agent,
            gate,
            responder,
            notifiers,
            root,
            alarm_repeat: cfg.alarm_repeat,
            group_notifications: cfg.group_notifications,
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
                    Arc::new(move |d: Delivery, o: Outcome| {
                        agent.count_notification(d.as_str(), o.as_str())
                    })
                },
                uptime,
                alarm_repeat: self.alarm_repeat,
                group_notifications: self.group_notifications,
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
