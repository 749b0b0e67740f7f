//! A member's record as the group knows it: configured role and addresses, operational state,
//! takeover mark, the owner-written status (replication, device checks) and the stamps that
//! decide which copy wins. Pure data.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::{Millis, OpKind};

/// Where a taken-over Main goes when no extra address is configured (the seed's factory default).
pub const DEFAULT_EXTRA_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 3, 6));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Main,
    Backup,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Role::Main => "main",
            Role::Backup => "backup",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum OperState {
    Online,
    Standby,
    Offline,
    Unknown,
}

impl OperState {
    pub const ALL: [OperState; 4] = [
        OperState::Online,
        OperState::Standby,
        OperState::Offline,
        OperState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperState::Online => "online",
            OperState::Standby => "standby",
            OperState::Offline => "offline",
            OperState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for OperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplicationResult {
    Never,
    Success,
    Failed,
}

impl ReplicationResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationResult::Never => "never",
            ReplicationResult::Success => "success",
            ReplicationResult::Failed => "failed",
        }
    }
}

/// The seed's "yellow row": set on both members of a takeover or failover, cleared when the
/// pair is restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverMark {
    pub kind: OpKind,
    pub main: String,
    pub backup: String,
    pub at: Millis,
}

/// Identifies one operation across every record it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStamp {
    pub id: String,
    pub kind: OpKind,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    /// Time of the last attempt, any Main.
    pub at: Millis,
    pub result: ReplicationResult,
    /// The Main whose data the last attempt copied.
    pub main: String,
    /// Per Main: time of the last successful copy.
    #[serde(default)]
    pub last_success: BTreeMap<String, Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One member as the group knows it. Written by its owner, or by the coordinator of an
/// operation that involves it; the higher `(version, writer)` wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub name: String,
    pub role: Role,
    pub configured_address: IpAddr,
    pub extra_address: IpAddr,
    /// The member's own operational state (never `unknown`: that is a view of reachability).
    pub state: OperState,
    /// When `state` last changed (the time of the operation that changed it), `None` while it
    /// never did. Part of the operational part: written with `state`, carried and merged with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_changed: Option<Millis>,
    pub current_address: Option<IpAddr>,
    pub auto_failover: bool,
    pub takeover: Option<TakeoverMark>,
    /// On a Backup that took over: the Main it is acting for.
    pub acting_for: Option<String>,
    /// On a Main made one by a reconfigure: the Main whose replica it served from while it
    /// acted for it, and serves from (and publishes) still. `None`: its own `data_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves_replica_of: Option<String>,
    pub replication: Option<Replication>,
    /// Device checks failing on this member, by name (empty = all pass or none configured).
    #[serde(default)]
    pub failing_checks: Vec<String>,
    /// Stamp of the owner-written status (`replication`, `failing_checks`). Only the member
    /// itself writes these, so they merge on their own counter, independently of operations.
    #[serde(default)]
    pub status_version: u64,
    /// The last operation that wrote this record (every agent counts each operation once).
    #[serde(default)]
    pub last_op: Option<OpStamp>,
    pub version: u64,
    pub writer: String,
}

impl MemberRecord {
    /// A member's record before anything happened: a Main online on its address, a Backup in
    /// standby on its own address.
    pub fn initial(
        name: &str,
        role: Role,
        configured_address: IpAddr,
        extra_address: IpAddr,
        auto_failover: bool,
    ) -> Self {
        MemberRecord {
            name: name.to_string(),
            role,
            configured_address,
            extra_address,
            state: match role {
                Role::Main => OperState::Online,
                Role::Backup => OperState::Standby,
            },
            state_changed: None,
            current_address: Some(configured_address),
            auto_failover,
            takeover: None,
            acting_for: None,
            serves_replica_of: None,
            replication: None,
            failing_checks: Vec::new(),
            status_version: 0,
            last_op: None,
            version: 0,
            writer: name.to_string(),
        }
    }

    /// This record as written at `now` over `before` (the same member's record it replaces):
    /// `state_changed` is `now` if the state differs from `before`'s, else `before`'s.
    pub fn state_written(mut self, before: &MemberRecord, now: Millis) -> Self {
        self.state_changed = if self.state == before.state {
            before.state_changed
        } else {
            Some(now)
        };
        self
    }

    pub fn stamp(&self) -> (u64, &str) {
        (self.version, self.writer.as_str())
    }

    /// The order in which writes of this record win: see [`precedence`].
    pub fn precedence(&self) -> (u64, bool, &str) {
        precedence(&self.name, self.version, &self.writer)
    }

    pub fn is_taken_over(&self) -> bool {
        self.role == Role::Main && self.takeover.is_some() && self.acting_for.is_none()
    }

    /// The replica this member serves from: the Main it acts for, or, on a Main made one by
    /// a reconfigure, the Main it acted for then.
    pub fn replica_served(&self) -> Option<&str> {
        self.acting_for
            .as_deref()
            .or(self.serves_replica_of.as_deref())
    }

    /// What this member publishes for its Backups to replicate, `has_data_dir` telling whether
    /// its configuration names a `data_dir`. Only a Main publishes; a Main made one by a
    /// reconfigure publishes the replica it serves from (it has no data of its own there).
    pub fn publishes(&self, has_data_dir: bool) -> Publishes {
        if self.role != Role::Main {
            return Publishes::Nothing(format!(
                "{} publishes nothing: it is a configured backup",
                self.name
            ));
        }
        match (&self.serves_replica_of, has_data_dir) {
            (Some(main), _) => Publishes::ReplicaOf(main.clone()),
            (None, true) => Publishes::DataDir,
            (None, false) => Publishes::Nothing(format!(
                "{} publishes nothing: no [replication] data_dir is configured for it",
                self.name
            )),
        }
    }

    /// Last successful replication of `main` by this member.
    pub fn replicated(&self, main: &str) -> Option<Millis> {
        self.replication
            .as_ref()
            .and_then(|r| r.last_success.get(main).copied())
    }

    /// The summary result for metrics and the status page.
    pub fn replication_result(&self) -> ReplicationResult {
        self.replication
            .as_ref()
            .map_or(ReplicationResult::Never, |r| r.result)
    }
}

/// What a member publishes for its Backups ([`MemberRecord::publishes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publishes {
    /// Its configured `data_dir`.
    DataDir,
    /// Its replica of this Main (`state_dir/replicas/<main>/current`).
    ReplicaOf(String),
    /// Nothing, and why.
    Nothing(String),
}

/// What a heartbeat says about one record: enough to tell who holds the newer copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub name: String,
    pub version: u64,
    pub writer: String,
    pub status_version: u64,
}

/// The order in which two writes of `member`'s record win: the higher version, then — of two
/// writes of the same version, planned from the same record by two agents that did not see
/// each other's (a member that wrote its own record from a view that missed an operation on
/// it, while the operation's other members were down) — the write by another member's
/// operation over the member's own, then the writer's name. Another member writes this record
/// only as the coordinator of a takeover, reverse takeover, reconfiguration or replacement that
/// this member was part of; its own write (auto-failover, its own step) must not undo such an
/// operation by the tie. A total order on one member's records, so every view converges.
pub fn precedence<'a>(member: &str, version: u64, writer: &'a str) -> (u64, bool, &'a str) {
    (version, writer != member, writer)
}
