//! The quorum source (`[coordination]`): an existing distributed engine (etcd) that decides
//! which member may hold each service address, so two members cut off from each other never
//! both hold one. Optional: without the section the peer protocol alone decides, and the docs
//! state the partition risk (docs/multi-server.md).
//!
//! The agent sees the quorum source through [`Quorum`]: one session per agent (an etcd lease
//! kept alive in the background), one key per service address held under that session, one
//! key serializing the group's operations. The etcd implementation is behind the cargo feature
//! `etcd` ([`etcd`]); a configuration with the section and a build without the feature is
//! refused at load.

pub mod config;
#[cfg(feature = "etcd")]
pub mod etcd;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

/// A future returned by a quorum source (boxed: the trait is used as `dyn Quorum`).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub use config::CoordinationConfig;

/// What the quorum source refused or could not do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// The address's key is held by another member (its session is alive).
    #[error("{address} is held by {holder} in {backend}")]
    HeldBy {
        backend: &'static str,
        address: IpAddr,
        holder: String,
    },
    /// The group's operation key is held by another operation.
    #[error("operation {holder} holds the group's operation lock in {backend}")]
    Busy {
        backend: &'static str,
        holder: String,
    },
    /// The quorum source could not be reached or answered with an error.
    #[error("{backend} unreachable: {message}")]
    Unreachable {
        backend: &'static str,
        message: String,
    },
}

/// The quorum source as the agent last saw it; cheap to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// `etcd`.
    pub backend: &'static str,
    /// The last keep-alive of this agent's session succeeded and the session is valid now.
    pub up: bool,
    /// Since when `up` has had its value (monotonic).
    pub since: Instant,
    /// The last error, while down.
    pub error: Option<String>,
    /// Until when this agent's session (etcd lease) is known to be valid: the send time of
    /// the last keep-alive that was answered, plus the TTL the answer gave. `None` without a
    /// session.
    pub session_until: Option<Instant>,
    /// Service address → member, from the last read of the address keys.
    pub holders: BTreeMap<IpAddr, String>,
}

/// The quorum source, as the agent uses it. Every method is safe to call concurrently.
pub trait Quorum: Send + Sync + std::fmt::Debug {
    /// The latest status (no I/O).
    fn status(&self) -> QuorumStatus;

    /// Keeps the session alive until `stop`: grants a lease, keeps it alive (every TTL/6,
    /// counting validity from when each keep-alive was sent), grants a new one when it was
    /// lost, and rereads the address keys after each keep-alive.
    fn run(&self, stop: CancellationToken) -> BoxFuture<'_, ()>;

    /// Makes this member the holder of `address` in one transaction: succeeds when the key is
    /// absent or already this member's (then attached to the current session), fails with
    /// `HeldBy` while another member's key is there. Retries every 100 ms for at most `wait`
    /// while it is held by another member or the source is unreachable (a failed Main's key
    /// goes away when its session's TTL runs out).
    fn acquire(
        &self,
        address: IpAddr,
        wait: std::time::Duration,
    ) -> BoxFuture<'_, Result<(), QuorumError>>;

    /// Deletes the key of `address` if this member holds it (a transaction: never another
    /// member's key). Succeeds when the key is absent.
    fn release(&self, address: IpAddr) -> BoxFuture<'_, Result<(), QuorumError>>;

    /// Takes the group's operation lock for operation `op` (a key under this member's
    /// session: a crashed coordinator's lock goes away with its session). Fails with `Busy`
    /// while another operation holds it; taking it again for the same operation (from the
    /// same member) succeeds.
    fn lock_operation<'a>(&'a self, op: &'a str) -> BoxFuture<'a, Result<(), QuorumError>>;

    /// Deletes the operation lock if `op` holds it.
    fn unlock_operation<'a>(&'a self, op: &'a str) -> BoxFuture<'a, Result<(), QuorumError>>;
}
