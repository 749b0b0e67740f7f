//! The peer protocol's messages, and the envelope every request carries (protocol version,
//! group name, sender), checked once by the server before a message reaches the agent. Pure.

use serde::{Deserialize, Serialize};

use crate::command::{Command, CommandError, Event};
pub use crate::group::ClaimAnswer;
use crate::group::{Definition, Maintenance, MemberRecord, Millis, Stamp};

/// Version of the peer protocol; a peer speaking another one is refused. Version 2 signs
/// every request (HMAC-SHA256) instead of sending the group secret in a header.
pub const PROTOCOL: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub protocol: u32,
    pub group: String,
    pub from: String,
    pub path: String,
    /// Records pushed to the peer (those it asked for in its last reply).
    #[serde(default)]
    pub records: Vec<MemberRecord>,
    /// The stamps of the sender's records: the peer answers with the records it holds newer
    /// and asks for those it holds older, so a quiet group exchanges stamps only.
    #[serde(default)]
    pub digest: Vec<Stamp>,
    /// The operations the sender coordinates and holds claims for, and when it sent this
    /// (its clock): a peer drops the sender's claims made before `sent_at` that are not
    /// listed (the operation ended; its release was lost).
    #[serde(default)]
    pub operations: Vec<String>,
    #[serde(default)]
    pub sent_at: Millis,
    /// The digest of the group as the sender's configuration lists it (absent from older
    /// agents: then nothing is compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_digest: Option<String>,
    /// The sender's group definition itself, sent while the sender knows the peer's differs
    /// (so the peer can say how).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Definition>,
    /// The lease under which the sender holds its current address now (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseWire>,
    /// The group's maintenance setting as the sender holds it (absent: never set, or an older
    /// agent). Small enough to travel whole; the receiver keeps the higher stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

/// A member's lease on its address, as it reports it to its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseWire {
    /// When it runs out unless renewed (the sender's wall clock, ms since the epoch).
    pub until: Millis,
    /// `kernel` or `agent`.
    pub enforced_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    pub protocol: u32,
    pub from: String,
    /// Records the replier holds newer than the heartbeat's digest.
    pub records: Vec<MemberRecord>,
    /// Records the replier wants: the sender holds them newer.
    #[serde(default)]
    pub want: Vec<String>,
    /// The digest of the group as the replier's configuration lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_digest: Option<String>,
    /// The replier's group definition, when its digest differs from the heartbeat's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<Definition>,
    /// The lease under which the replier holds its current address now (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseWire>,
    /// The group's maintenance setting as the replier holds it (see [`Heartbeat`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRequest {
    pub protocol: u32,
    pub group: String,
    pub from: String,
    pub record: MemberRecord,
    /// The `(version, writer)` of the record the coordinator planned from: the member applies
    /// `record` only while it still holds that one (absent from older coordinators: then only
    /// "newer than held" is checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_from: Option<(u64, String)>,
    pub event: Option<Event>,
    /// The digest of the coordinator's group definition: a member whose own differs refuses
    /// the record (`group_definition_mismatch`). Absent from older coordinators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyReply {
    pub record: MemberRecord,
}

/// Claims `members` for operation `op` until `duration_ms` from its arrival (the group-wide
/// serialization of operations, `group::claims`), or releases the claim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    pub protocol: u32,
    pub group: String,
    pub from: String,
    pub op: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub duration_ms: u64,
    /// When the coordinator made the claim (its clock).
    #[serde(default)]
    pub since: Millis,
    /// Release the claim of `op` instead.
    #[serde(default)]
    pub release: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRequest {
    pub protocol: u32,
    pub group: String,
    pub from: String,
    pub command: Command,
    /// The digest of the forwarding agent's group definition: a coordinator whose own differs
    /// refuses the command (the forwarder may have read row indexes of another group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_digest: Option<String>,
}

/// Asks a Backup's agent to replicate now (all its Mains, or `main`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicateRequest {
    pub protocol: u32,
    pub group: String,
    pub from: String,
    pub backup: String,
    #[serde(default)]
    pub main: Option<String>,
}

/// The outcome of one on-demand replication of one Main.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplicateResult {
    pub main: String,
    /// `success` or `failed`.
    pub result: crate::group::ReplicationResult,
    pub error: Option<String>,
    /// Files in the Main's manifest, files transferred (changed ones only), bytes transferred.
    #[serde(default)]
    pub files: usize,
    #[serde(default)]
    pub fetched: usize,
    #[serde(default)]
    pub bytes_fetched: u64,
    /// When this replication was recorded on the Backup's record (its "last replication"
    /// time); absent when nothing was recorded (a Main that is taken over) or from an agent
    /// that does not send it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Millis>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicateReply {
    pub backup: String,
    pub results: Vec<ReplicateResult>,
}

/// What every peer request carries besides its content: who sends it, in which group, in
/// which protocol version.
pub trait Envelope {
    fn protocol(&self) -> u32;
    fn group(&self) -> &str;
    fn from(&self) -> &str;
}

macro_rules! envelope {
    ($($t:ty),*) => {$(
        impl Envelope for $t {
            fn protocol(&self) -> u32 {
                self.protocol
            }
            fn group(&self) -> &str {
                &self.group
            }
            fn from(&self) -> &str {
                &self.from
            }
        }
    )*};
}

envelope!(
    Heartbeat,
    ApplyRequest,
    ClaimRequest,
    CommandRequest,
    ReplicateRequest
);

/// Accepts a request only from a configured member (`members`) of this agent's `group`
/// speaking this protocol version. Checked once, by the server, for every message.
pub fn check_envelope<'a>(
    msg: &impl Envelope,
    group: &str,
    mut members: impl Iterator<Item = &'a str>,
) -> Result<(), CommandError> {
    if msg.protocol() != PROTOCOL || msg.group() != group {
        return Err(CommandError::Invalid(format!(
            "{} speaks protocol {} of group {:?}; this agent speaks protocol {PROTOCOL} of \
             group {group:?}",
            msg.from(),
            msg.protocol(),
            msg.group()
        )));
    }
    if !members.any(|m| m == msg.from()) {
        return Err(CommandError::UnknownMember(msg.from().to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(protocol: u32, group: &str, from: &str) -> Heartbeat {
        Heartbeat {
            protocol,
            group: group.into(),
            from: from.into(),
            path: "lan".into(),
            records: Vec::new(),
            digest: Vec::new(),
            operations: Vec::new(),
            sent_at: 0,
            definition_digest: None,
            definition: None,
            lease: None,
            maintenance: None,
        }
    }

    #[test]
    fn the_envelope_check_refuses_other_protocols_groups_and_strangers() {
        let members = ["main-1", "backup-1"];
        let table = [
            (hb(PROTOCOL, "g", "main-1"), Ok(())),
            (hb(PROTOCOL - 1, "g", "main-1"), Err("bad_request")),
            (hb(PROTOCOL, "other", "main-1"), Err("bad_request")),
            (hb(PROTOCOL, "g", "stranger"), Err("unknown_member")),
        ];
        for (msg, want) in table {
            let got = check_envelope(&msg, "g", members.iter().copied()).map_err(|e| e.code());
            assert_eq!(got, want, "{msg:?}");
        }
    }
}
