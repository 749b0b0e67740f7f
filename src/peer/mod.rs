//! The peer protocol between the agents of a group: JSON over HTTP under `/peer/v1`, every
//! request signed with HMAC-SHA256 keyed by the group secret (the secret itself never
//! travels). Messages: heartbeat (state exchange on every heartbeat path), apply (the
//! coordinator of an operation hands a member its new record: the takeover handshake),
//! command (an agent forwards a command to its coordinator), replicate and the replication
//! transfer.
//!
//! - [`messages`]: the messages and the envelope check (protocol version, group, sender); pure;
//! - [`signing`]: request signing and verification, the replay window; pure but for a clock
//!   read when signing;
//! - [`client`]: sends requests to the other agents; network I/O;
//! - [`server`]: the `/peer/v1` routes behind one verification layer; network I/O.

pub mod client;
pub mod messages;
pub mod server;
pub mod signing;

pub use client::{PeerClient, PeerError};
pub use messages::{
    ApplyReply, ApplyRequest, ClaimAnswer, ClaimRequest, CommandRequest, Heartbeat, HeartbeatReply,
    LeaseWire, ReplicateReply, ReplicateRequest, ReplicateResult, PROTOCOL,
};
