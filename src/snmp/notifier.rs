//! The notification originators on the `async-snmp` crate: one [`Notifier`] per configured
//! target sends it traps, or informs retried with back-off until acknowledged or given up, and
//! tells what became of each ([`Outcome`]). One of the three files that use `async-snmp` (with
//! [`crate::snmp::engine`] and [`crate::snmp::responder`]). Does I/O.

use std::net::SocketAddr;
use std::time::Duration;

use async_snmp as snmp;
use bytes::Bytes;
use tracing::warn;

use crate::snmp::config::{NotifyKind, SnmpConfig, TargetConfig};
use crate::snmp::engine::{auth_protocol, to_oid, to_value, Engine};
use crate::snmp::error::SnmpError;
use crate::snmp::transitions::Notification;

/// Trap or inform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Trap,
    Inform,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Trap => "trap",
            Delivery::Inform => "inform",
        }
    }
}

/// Sends notifications to one target, through an async-snmp agent of its own (built when
/// first needed, so that a receiver's name that does not resolve yet only delays delivery).
pub struct Notifier {
    target: String,
    delivery: Delivery,
    auth: snmp::Auth,
    engine: Engine,
    timeout: Duration,
    retries: u32,
    built: tokio::sync::Mutex<Option<snmp::Agent>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("target", &self.target)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(t: &TargetConfig, cfg: &SnmpConfig, engine: &Engine) -> Result<Notifier, SnmpError> {
        let auth = match (&t.user, &t.community_file) {
            (Some(name), _) => {
                let u = cfg.users.iter().find(|u| &u.name == name).ok_or_else(|| {
                    SnmpError::Agent(format!("target user {name:?} not configured"))
                })?;
                let base = snmp::UsmConfig::new(Bytes::copy_from_slice(u.name.as_bytes()));
                let auth = auth_protocol(u.auth);
                let usm = match u.privacy {
                    Some(_) => base.auth_priv(
                        auth,
                        u.auth_password.expose(),
                        snmp::PrivProtocol::Aes128,
                        u.privacy_password.expose(),
                    ),
                    None => base.auth(auth, u.auth_password.expose()),
                }
                .map_err(|e| SnmpError::Agent(format!("target user {name:?}: {e}")))?;
                snmp::Auth::from(usm)
            }
            (None, _) => snmp::Auth::v2c(t.community.expose()),
        };
        Ok(Notifier {
            target: t.address.clone(),
            delivery: match t.notify {
                NotifyKind::Trap => Delivery::Trap,
                NotifyKind::Inform => Delivery::Inform,
            },
            auth,
            engine: engine.clone(),
            timeout: t.timeout,
            retries: t.retries,
            built: tokio::sync::Mutex::new(None),
        })
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn delivery(&self) -> Delivery {
        self.delivery
    }

    async fn originator(&self) -> Result<snmp::Agent, String> {
        let mut built = self.built.lock().await;
        if let Some(a) = built.as_ref() {
            return Ok(a.clone());
        }
        let bind = match self.target.parse::<SocketAddr>() {
            Ok(SocketAddr::V6(_)) => "[::]:0",
            _ => "0.0.0.0:0",
        };
        let id = snmp::NotificationSinkId::new("target").map_err(|e| e.to_string())?;
        let retry = snmp::Retry::exponential(self.retries)
            .initial_delay(Duration::from_millis(500))
            .max_delay(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let originator = snmp::Agent::builder()
            .bind(bind)
            .authoritative_engine(self.engine.authoritative())
            .without_builtin_handlers()
            .trap_sink(id, self.target.clone(), self.auth.clone())
            .inform_timeout(self.timeout)
            .inform_retry(retry)
            .allow_all_access()
            .build()
            .await
            .map_err(|e| e.to_string())?;
        *built = Some(originator.clone());
        Ok(originator)
    }

    /// Sends one notification; for an inform, waits until it is acknowledged or given up.
    pub async fn send(&self, n: &Notification, uptime: u32) -> Outcome {
        let originator = match self.originator().await {
            Ok(a) => a,
            Err(e) => {
                warn!(target_addr = %self.target, error = %e, "cannot set up the notification target");
                return Outcome::Failed;
            }
        };
        let trap_oid = to_oid(&n.trap_oid);
        let varbinds: Vec<snmp::VarBind> = n
            .varbinds
            .iter()
            .map(|(o, v)| snmp::VarBind::new(to_oid(o), to_value(v)))
            .collect();
        let outcome = match self.delivery {
            Delivery::Trap => originator.send_trap(&trap_oid, uptime, varbinds).await,
            Delivery::Inform => originator.send_inform(&trap_oid, uptime, varbinds).await,
        };
        let Some(sink) = outcome.sinks().first() else {
            return Outcome::Failed;
        };
        match (&sink.status, self.delivery) {
            (snmp::SinkStatus::Succeeded, Delivery::Trap) => Outcome::Sent,
            (snmp::SinkStatus::Succeeded, Delivery::Inform) => Outcome::Acknowledged,
            (snmp::SinkStatus::Failed(e), Delivery::Inform)
                if e.kind() == snmp::ErrorKind::Timeout =>
            {
                warn!(target_addr = %self.target, notification = n.kind.name(), retries = self.retries,
                    "inform not acknowledged: given up");
                Outcome::GivenUp
            }
            (snmp::SinkStatus::Failed(e), _) => {
                warn!(target_addr = %self.target, notification = n.kind.name(), error = %e,
                    "notification not sent");
                Outcome::Failed
            }
            (snmp::SinkStatus::Skipped(why), _) => {
                warn!(target_addr = %self.target, notification = n.kind.name(), reason = %why,
                    "notification skipped");
                Outcome::Failed
            }
        }
    }
}

/// What became of a notification sent to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// A trap was handed to the network.
    Sent,
    /// An inform was acknowledged by the receiver.
    Acknowledged,
    /// An inform was not acknowledged after every retry.
    GivenUp,
    /// It could not be sent at all (no route, name not resolved, ...).
    Failed,
    /// The target's queue was full.
    Dropped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Acknowledged => "acknowledged",
            Outcome::GivenUp => "given_up",
            Outcome::Failed => "failed",
            Outcome::Dropped => "dropped",
        }
    }
}
