//! The one command path's types: what every interface (HTTP, CLI, SNMP SET, the failover
//! detector) submits, the typed error or the event it gets back, and the event history's
//! entries. Pure.

use serde::{Deserialize, Serialize};

use crate::group::{Millis, OpKind, Operation, Precondition, Refusal, Requester};

/// An operation with who asked for it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub operation: Operation,
    pub requested_by: Requester,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a command was not carried out. A refused command changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown member {0:?}")]
    UnknownMember(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{message}")]
    Refused {
        failed: Vec<String>,
        message: String,
    },
    #[error("{0}")]
    Unavailable(String),
}

impl CommandError {
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::UnknownMember(_) => "unknown_member",
            CommandError::Invalid(_) => "bad_request",
            CommandError::Refused { .. } => "precondition_failed",
            CommandError::Unavailable(_) => "unavailable",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            CommandError::UnknownMember(_) => 404,
            CommandError::Invalid(_) => 400,
            CommandError::Refused { .. } => 409,
            CommandError::Unavailable(_) => 503,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
            failed: match self {
                CommandError::Refused { failed, .. } => failed.clone(),
                _ => Vec::new(),
            },
        }
    }

    /// Rebuilds the error from a peer's (or the API's) JSON error body.
    pub fn from_body(body: ErrorBody) -> CommandError {
        match body.error.as_str() {
            "unknown_member" => CommandError::UnknownMember(body.message),
            "bad_request" => CommandError::Invalid(body.message),
            "precondition_failed" => CommandError::Refused {
                failed: body.failed,
                message: body.message,
            },
            _ => CommandError::Unavailable(body.message),
        }
    }
}

impl From<Refusal> for CommandError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::UnknownMember(m) => CommandError::UnknownMember(m),
            Refusal::Invalid(m) => CommandError::Invalid(m),
            Refusal::Preconditions(p) => CommandError::Refused {
                message: format!(
                    "refused: {}",
                    p.iter()
                        .map(|p| format!("{} ({})", p.code(), p.describe()))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                failed: p
                    .iter()
                    .map(|p| Precondition::code(*p).to_string())
                    .collect(),
            },
        }
    }
}

/// The JSON error body of the HTTP API and the peer protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default)]
    pub failed: Vec<String>,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Done,
    Refused,
    Failed,
}

/// One entry of the event history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub at: Millis,
    pub kind: OpKind,
    pub operation: Operation,
    pub requested_by: Requester,
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The agent that carried the operation out.
    pub coordinator: String,
    pub outcome: OutcomeKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    pub message: String,
    /// How many times the same refusal or failure happened again right after this one (same
    /// operation, requester, coordinator, outcome and message): folded into this entry rather
    /// than flushing the history. `last_at` is when the last of them happened.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Millis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Event {
    /// Whether `next` repeats this refusal or failure (a done operation never repeats one).
    pub fn repeated_by(&self, next: &Event) -> bool {
        self.outcome != OutcomeKind::Done
            && self.outcome == next.outcome
            && self.operation == next.operation
            && self.requested_by == next.requested_by
            && self.coordinator == next.coordinator
            && self.failed == next.failed
            && self.message == next.message
    }

    /// The entry of `cmd` carried out by `coordinator`, as done (the caller sets the message, or
    /// the outcome when it was not done).
    pub fn of(cmd: &Command, id: String, coordinator: &str, at: Millis) -> Event {
        Event {
            id,
            at,
            kind: cmd.operation.kind(),
            operation: cmd.operation.clone(),
            requested_by: cmd.requested_by.clone(),
            members: cmd
                .operation
                .named_members()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            reason: cmd.reason.clone(),
            coordinator: coordinator.to_string(),
            outcome: OutcomeKind::Done,
            failed: Vec::new(),
            message: String::new(),
            repeats: 0,
            last_at: None,
        }
    }
}

/// A command's successful result: the event it recorded.
pub type CommandResult = Result<Event, CommandError>;
