//! Moving a service address onto or off this host. The backend is chosen in configuration;
//! `simulated` (the demo's) records the change in the log and configures nothing on the host.
//! Real backends (netlink on Linux, operator hooks) plug in behind the same trait.

use std::net::IpAddr;

use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("cannot {action} {address}: {message}")]
    Failed {
        action: &'static str,
        address: IpAddr,
        message: String,
    },
}

/// What the agent needs from an address backend. Both calls must be idempotent: taking an
/// address already held, or releasing one not held, succeeds.
pub trait AddressBackend: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &'static str;
    fn take(&self, address: IpAddr) -> Result<(), AddressError>;
    fn release(&self, address: IpAddr) -> Result<(), AddressError>;
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

    fn take(&self, address: IpAddr) -> Result<(), AddressError> {
        info!(member = %self.member, %address, backend = "simulated", "address taken");
        Ok(())
    }

    fn release(&self, address: IpAddr) -> Result<(), AddressError> {
        info!(member = %self.member, %address, backend = "simulated", "address released");
        Ok(())
    }
}
