//! Moving a service address onto or off this host, and telling the operator's services. The
//! backend is chosen in configuration (`[address] backend`):
//! - `simulated` (the demo's) records the change in the log and configures nothing;
//! - `linux` adds/removes the address on an interface through netlink, then announces it
//!   (gratuitous ARP for IPv4, unsolicited neighbour advertisement for IPv6) — [`linux`];
//! - `hooks` configures no address itself and only runs the operator's commands — [`hooks`].
//!
//! The `[hooks]` commands (on_online / on_standby / on_offline) run after the address change
//! in every mode, so an operator can start and stop the application's services. Does network
//! (netlink, raw frames) and process I/O in the `linux` and `hooks` backends.

pub mod hooks;
pub mod linux;

use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

use tracing::info;

use crate::config::{AddressBackendKind, Config};
use crate::group::OperState;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("cannot {action} {address}: {message}")]
    Failed {
        action: &'static str,
        address: IpAddr,
        message: String,
    },
    #[error("address backend unusable: {0}")]
    Setup(String),
}

/// A future returned by an address backend.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One change of this member's operational state and/or current address, with everything a
/// hook needs to know. `previous_state` is `None` at agent start (the first apply of the
/// persisted record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub group: String,
    pub member: String,
    pub previous_state: Option<OperState>,
    pub state: OperState,
    pub previous_address: Option<IpAddr>,
    pub address: Option<IpAddr>,
    pub configured_address: IpAddr,
    /// The Main this member serves for (a Backup after a takeover).
    pub acting_for: Option<String>,
    /// The replica this member serves from: `acting_for`'s data, or on a Main made one by a
    /// reconfigure the replica of the Main it acted for then.
    pub replica_dir: Option<PathBuf>,
    /// Every address the group moves around (configured and extra addresses of all members):
    /// at start, a real backend removes those it finds on the host other than `address`, so a
    /// crash between "persist" and "move" never leaves an address held twice.
    pub managed: Vec<IpAddr>,
    /// The lease on `address` in whole seconds (the kernel's valid and preferred lifetime in
    /// the linux backend); `None`: held without a lease (the simulated backend).
    pub lifetime: Option<u32>,
}

impl Transition {
    /// The address to give up, if any.
    pub fn release(&self) -> Option<IpAddr> {
        self.previous_address.filter(|p| Some(*p) != self.address)
    }
}

/// What the agent needs from an address backend. `apply` must be idempotent: taking an address
/// already held, or releasing one not held, succeeds. An error means the address could not be
/// moved (the operation stops); a failing hook is logged, not an error.
pub trait AddressBackend: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn apply<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, Result<(), AddressError>>;
    /// Announces an address this member holds again (after a peer came back: its side of a
    /// healed partition may still point at the other holder). Nothing by default.
    fn reannounce(&self, _address: IpAddr) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Who ends a lease that is not renewed: `Some("kernel")` (the address has a finite
    /// lifetime), `Some("agent")` (the agent runs `on_lease_lost`), `None`: no leases.
    fn lease_enforced_by(&self) -> Option<&'static str> {
        None
    }
    /// Renews the lease on `address`, held now, for `seconds`. Must not add the address if it
    /// is gone (the agent only renews a lease it knows has not ended).
    fn renew(&self, _address: IpAddr, _seconds: u32) -> BoxFuture<'_, Result<(), AddressError>> {
        Box::pin(async { Ok(()) })
    }
    /// The lease on `address` ended without renewal: make sure the address is gone.
    fn remove_lapsed(&self, _address: IpAddr) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    /// Tells the operator's services that the lease on `t.previous_address` ended
    /// (`on_lease_lost`).
    fn lease_lost_hook<'a>(&'a self, _t: &'a Transition) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// Moves the address as `t` says, without running the hooks (the agent runs them with
    /// [`AddressBackend::run_hooks`] once it has recorded the lease). By default `apply`, for
    /// a backend without hooks.
    fn move_address<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, Result<(), AddressError>> {
        self.apply(t)
    }
    /// Runs the operator's hook for `t` (after [`AddressBackend::move_address`]).
    fn run_hooks<'a>(&'a self, _t: &'a Transition) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Configures nothing: the address is only recorded in the member's state.
#[derive(Debug, Default)]
pub struct Simulated {
    pub member: String,
}

impl AddressBackend for Simulated {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn apply<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, Result<(), AddressError>> {
        Box::pin(async move {
            if let Some(a) = t.release() {
                info!(member = %self.member, address = %a, backend = "simulated",
                    "address released");
            }
            if let Some(a) = t.address.filter(|a| Some(*a) != t.previous_address) {
                info!(member = %self.member, address = %a, backend = "simulated", "address taken");
            }
            Ok(())
        })
    }
}

/// The backend a configuration asks for: an address mover plus the operator's hooks.
#[derive(Debug)]
pub struct Configured {
    kind: &'static str,
    simulated: Option<Simulated>,
    linux: Option<linux::Linux>,
    hooks: hooks::Hooks,
}

impl Configured {
    /// Builds the backend `cfg` names. Nothing is touched on the host until the first apply.
    pub fn from_config(cfg: &Config) -> Result<Configured, AddressError> {
        let a = &cfg.file.address;
        let hooks = hooks::Hooks::new(cfg.file.hooks.clone());
        let (kind, simulated, linux) = match a.backend {
            AddressBackendKind::Simulated => (
                "simulated",
                Some(Simulated {
                    member: cfg.file.member.clone(),
                }),
                None,
            ),
            AddressBackendKind::Hooks => ("hooks", None, None),
            AddressBackendKind::Linux => {
                let iface = a.interface.clone().ok_or_else(|| {
                    AddressError::Setup("backend linux needs [address] interface".into())
                })?;
                (
                    "linux",
                    None,
                    Some(linux::Linux::new(
                        iface,
                        a.prefix_len,
                        a.garp_count,
                        a.garp_interval,
                    )),
                )
            }
        };
        Ok(Configured {
            kind,
            simulated,
            linux,
            hooks,
        })
    }
}

impl Configured {
    /// Checks what can be checked before the agent starts: the `linux` interface exists.
    pub async fn check(&self) -> Result<(), AddressError> {
        match &self.linux {
            Some(l) => l.check().await,
            None => Ok(()),
        }
    }
}

impl AddressBackend for Configured {
    fn name(&self) -> &'static str {
        self.kind
    }

    fn reannounce(&self, address: IpAddr) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(l) = &self.linux {
                l.announce(address).await;
            }
        })
    }

    fn lease_enforced_by(&self) -> Option<&'static str> {
        match self.kind {
            "linux" => Some("kernel"),
            "hooks" => Some("agent"),
            _ => None,
        }
    }

    fn renew(&self, address: IpAddr, seconds: u32) -> BoxFuture<'_, Result<(), AddressError>> {
        Box::pin(async move {
            match &self.linux {
                Some(l) => l.renew(address, seconds).await,
                None => Ok(()),
            }
        })
    }

    fn remove_lapsed(&self, address: IpAddr) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(l) = &self.linux {
                if let Err(e) = l.remove(address).await {
                    tracing::error!(%address, error = %e,
                        "cannot remove an address whose lease ran out");
                }
            }
        })
    }

    fn lease_lost_hook<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.hooks.run_lease_lost(t).await;
        })
    }

    fn move_address<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, Result<(), AddressError>> {
        Box::pin(async move {
            if let Some(s) = &self.simulated {
                s.apply(t).await?;
            }
            if let Some(l) = &self.linux {
                l.apply(t).await?;
            }
            Ok(())
        })
    }

    fn run_hooks<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.hooks.run(t).await;
        })
    }

    fn apply<'a>(&'a self, t: &'a Transition) -> BoxFuture<'a, Result<(), AddressError>> {
        Box::pin(async move {
            self.move_address(t).await?;
            self.run_hooks(t).await;
            Ok(())
        })
    }
}
