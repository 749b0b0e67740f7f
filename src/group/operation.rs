//! The operations of the product contract, who asked for them, why one is refused, and the
//! plan an accepted one produces. Pure data.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MemberRecord;

/// The kind of an operation, as counted by `understudy_takeovers_total{kind}` and recorded in
/// the event history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Manual,
    Failover,
    Reverse,
    Replace,
    Reconfigure,
    AutoFailover,
    /// The group's maintenance mode switched on or off (not an operation on members).
    Maintenance,
}

impl OpKind {
    /// The kinds counted by `understudy_takeovers_total`.
    pub const COUNTED: [OpKind; 5] = [
        OpKind::Manual,
        OpKind::Failover,
        OpKind::Reverse,
        OpKind::Replace,
        OpKind::Reconfigure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Manual => "manual",
            OpKind::Failover => "failover",
            OpKind::Reverse => "reverse",
            OpKind::Replace => "replace",
            OpKind::Reconfigure => "reconfigure",
            OpKind::AutoFailover => "auto_failover",
            OpKind::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who asked for an operation: the interface and the identity it authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub interface: String,
    pub identity: String,
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.interface, self.identity)
    }
}

/// An operation of the product contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    Takeover {
        backup: String,
        main: String,
    },
    Failover {
        backup: String,
        main: String,
    },
    ReverseTakeover {
        main: String,
    },
    Reconfigure {
        main: String,
        backup: String,
    },
    /// `replacement` is the member the new server runs as: `main` itself (the new server runs
    /// the defective Main's member configuration). Any other name is refused as invalid.
    ReplaceTakeover {
        main: String,
        replacement: String,
    },
    SetAutoFailover {
        member: String,
        enabled: bool,
    },
    /// The group's maintenance mode: a group-wide setting, not planned against member
    /// records; the agent asked sets it ([`super::Maintenance`]).
    SetMaintenance {
        enabled: bool,
    },
}

impl Operation {
    pub fn kind(&self) -> OpKind {
        match self {
            Operation::Takeover { .. } => OpKind::Manual,
            Operation::Failover { .. } => OpKind::Failover,
            Operation::ReverseTakeover { .. } => OpKind::Reverse,
            Operation::Reconfigure { .. } => OpKind::Reconfigure,
            Operation::ReplaceTakeover { .. } => OpKind::Replace,
            Operation::SetAutoFailover { .. } => OpKind::AutoFailover,
            Operation::SetMaintenance { .. } => OpKind::Maintenance,
        }
    }

    /// Every member the request names.
    pub fn named_members(&self) -> Vec<&str> {
        match self {
            Operation::Takeover { backup, main } | Operation::Failover { backup, main } => {
                vec![backup, main]
            }
            Operation::ReverseTakeover { main } => vec![main],
            Operation::Reconfigure { main, backup } => vec![main, backup],
            // The replacement is `main` itself (see `malformed`).
            Operation::ReplaceTakeover { main, .. } => vec![main],
            Operation::SetAutoFailover { member, .. } => vec![member],
            Operation::SetMaintenance { .. } => Vec::new(),
        }
    }
}

impl Operation {
    /// Why a request can mean nothing whatever the group's state, if it cannot: a replace
    /// takeover whose replacement is not the Main (the new server takes the defective Main's
    /// identity by running its member configuration; no other member becomes it).
    pub fn malformed(&self) -> Option<Refusal> {
        match self {
            Operation::ReplaceTakeover { main, replacement } if main != replacement => {
                Some(Refusal::Invalid(format!(
                    "the replacement server runs {main}'s member configuration (its name and \
                     addresses) and joins the group as {main}: the replacement must be {main:?} \
                     (or left out), not {replacement:?}"
                )))
            }
            _ => None,
        }
    }
}

/// Why a precondition failed. The codes are part of the API (`failed` in HTTP errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    BackupNotBackup,
    BackupNotStandby,
    NeverReplicated,
    MainNotMain,
    DeviceCheckFailed,
    OperationInProgress,
    MainNotTakenOver,
    BackupUnreachable,
    BackupNotActingForMain,
    GroupDefinitionMismatch,
    MaintenanceMode,
    /// Checked by the agent (file system), not by `plan`: the replace takeover's new server
    /// must start with an empty `data_dir`, into which the Backup's data is copied.
    ReplacementHasData,
}

impl Precondition {
    pub fn code(self) -> &'static str {
        match self {
            Precondition::BackupNotBackup => "backup_not_backup",
            Precondition::BackupNotStandby => "backup_not_standby",
            Precondition::NeverReplicated => "never_replicated",
            Precondition::MainNotMain => "main_not_main",
            Precondition::DeviceCheckFailed => "device_check_failed",
            Precondition::OperationInProgress => "operation_in_progress",
            Precondition::MainNotTakenOver => "main_not_taken_over",
            Precondition::BackupUnreachable => "backup_unreachable",
            Precondition::BackupNotActingForMain => "backup_not_acting_for_main",
            Precondition::GroupDefinitionMismatch => "group_definition_mismatch",
            Precondition::MaintenanceMode => "maintenance_mode",
            Precondition::ReplacementHasData => "replacement_has_data",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Precondition::BackupNotBackup => "the backup's configured role is not backup",
            Precondition::BackupNotStandby => "the backup is not in standby",
            Precondition::NeverReplicated => "the backup has never replicated the main",
            Precondition::MainNotMain => {
                "the main's configured role is not main, or it is already taken over"
            }
            Precondition::DeviceCheckFailed => "a device check fails on the backup",
            Precondition::OperationInProgress => "another operation on these members is running",
            Precondition::MainNotTakenOver => "the main is not taken over",
            Precondition::BackupUnreachable => {
                "the backup acting for the main cannot be reached; it may still hold the address"
            }
            Precondition::BackupNotActingForMain => "the backup is not acting for this main",
            Precondition::GroupDefinitionMismatch => {
                "a member involved lists another group (members, order, roles or addresses) \
                 than this agent's configuration"
            }
            Precondition::MaintenanceMode => {
                "the group is in maintenance mode: no automatic failover (a manual takeover \
                 is still possible)"
            }
            Precondition::ReplacementHasData => {
                "the replacement's data_dir is not empty (the Backup's data is copied into an \
                 empty one)"
            }
        }
    }
}

impl fmt::Display for Precondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an operation cannot even be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("preconditions failed: {}", codes(.0))]
    Preconditions(Vec<Precondition>),
}

fn codes(p: &[Precondition]) -> String {
    p.iter().map(|p| p.code()).collect::<Vec<_>>().join(", ")
}

/// What an accepted operation does: the new records, in the order they must be applied
/// (whoever releases an address comes before whoever takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: String,
    pub operation: Operation,
    pub updates: Vec<MemberRecord>,
    /// For each update, the `(version, writer)` of the record it was planned from: a member
    /// applies its update only while it still holds that record (compare-and-swap).
    pub planned_from: Vec<(u64, String)>,
}
