//! The redundancy group as a pure state machine: member records, the operations of the
//! product contract with their preconditions, record merging between agents, and the
//! no-redundancy alarm derived from the records. No I/O and no clock: time comes in as a value.
//!
//! Each agent holds a [`GroupView`]: one [`MemberRecord`] per configured member. A record is
//! owned by its member, but an operation's coordinator (the Backup for a takeover, the Main for
//! a reverse takeover, ...) writes new records for every member the operation touches. Records
//! carry a `(version, writer)` stamp; when two agents disagree the higher stamp wins
//! ([`GroupView::merge`]). That is how a taken-over Main that was unreachable during the
//! takeover learns, when it comes back, that it must stay offline on its extra address.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// Where a taken-over Main goes when no extra address is configured (the seed's factory default).
pub const DEFAULT_EXTRA_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 3, 6));

/// Milliseconds since the Unix epoch. The state machine never reads a clock; callers pass this in.
pub type Millis = u64;

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
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub current_address: Option<IpAddr>,
    pub auto_failover: bool,
    pub takeover: Option<TakeoverMark>,
    /// On a Backup that took over: the Main it is acting for.
    pub acting_for: Option<String>,
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
            current_address: Some(configured_address),
            auto_failover,
            takeover: None,
            acting_for: None,
            replication: None,
            failing_checks: Vec::new(),
            status_version: 0,
            last_op: None,
            version: 0,
            writer: name.to_string(),
        }
    }

    pub fn stamp(&self) -> (u64, &str) {
        (self.version, self.writer.as_str())
    }

    pub fn is_taken_over(&self) -> bool {
        self.role == Role::Main && self.takeover.is_some() && self.acting_for.is_none()
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

/// What a heartbeat says about one record: enough to tell who holds the newer copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub name: String,
    pub version: u64,
    pub writer: String,
    pub status_version: u64,
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
    Takeover { backup: String, main: String },
    Failover { backup: String, main: String },
    ReverseTakeover { main: String },
    Reconfigure { main: String, backup: String },
    ReplaceTakeover { main: String, replacement: String },
    SetAutoFailover { member: String, enabled: bool },
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
            Operation::ReplaceTakeover { main, replacement } => vec![main, replacement],
            Operation::SetAutoFailover { member, .. } => vec![member],
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
    ReplacementNotStandby,
    ReplacementIsBackup,
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
            Precondition::ReplacementNotStandby => "replacement_not_standby",
            Precondition::ReplacementIsBackup => "replacement_is_acting_backup",
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
            Precondition::ReplacementNotStandby => "the replacement is not in standby",
            Precondition::ReplacementIsBackup => {
                "the replacement is the backup acting for the main"
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: String,
    pub operation: Operation,
    pub updates: Vec<MemberRecord>,
}

/// How an agent sees each member right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    Local,
    Reachable,
    Unreachable,
}

/// One active alarm (a row of `rgAlarmTable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    #[serde(rename = "type")]
    pub kind: AlarmKind,
    pub raised_at: Millis,
    pub reason: String,
    pub main: Option<String>,
    pub backup: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    Takeover,
    Failover,
    NoStandbyBackup,
}

/// The group as one agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub group: String,
    /// In configuration order.
    pub members: Vec<MemberRecord>,
}

impl GroupView {
    pub fn member(&self, name: &str) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.name == name)
    }

    fn require(&self, name: &str) -> Result<&MemberRecord, Refusal> {
        self.member(name)
            .ok_or_else(|| Refusal::UnknownMember(name.to_string()))
    }

    /// Adopts what is newer in `incoming`: the whole record if its `(version, writer)` stamp is
    /// higher, and the owner-written status if its `status_version` is higher. Returns whether
    /// anything changed. Records of members this view does not know are ignored.
    pub fn merge(&mut self, incoming: &MemberRecord) -> bool {
        let Some(held) = self.members.iter_mut().find(|m| m.name == incoming.name) else {
            return false;
        };
        let mut changed = false;
        let newer_status = incoming.status_version > held.status_version;
        if incoming.stamp() > held.stamp() {
            let mut next = incoming.clone();
            if !newer_status {
                next.replication = held.replication.clone();
                next.failing_checks = held.failing_checks.clone();
                next.status_version = held.status_version;
            }
            *held = next;
            changed = true;
        } else if newer_status {
            held.replication = incoming.replication.clone();
            held.failing_checks = incoming.failing_checks.clone();
            held.status_version = incoming.status_version;
            changed = true;
        }
        changed
    }

    /// The stamps of every record (what a heartbeat carries instead of the records).
    pub fn digest(&self) -> Vec<Stamp> {
        self.members
            .iter()
            .map(|r| Stamp {
                name: r.name.clone(),
                version: r.version,
                writer: r.writer.clone(),
                status_version: r.status_version,
            })
            .collect()
    }

    /// Records this view holds newer than `digest` says the peer holds (either part).
    pub fn newer_than(&self, digest: &[Stamp]) -> Vec<MemberRecord> {
        digest
            .iter()
            .filter_map(|d| {
                let r = self.member(&d.name)?;
                let newer = r.stamp() > (d.version, d.writer.as_str())
                    || r.status_version > d.status_version;
                newer.then(|| r.clone())
            })
            .collect()
    }

    /// Names of records `digest` says the peer holds newer than this view (either part).
    pub fn wanted(&self, digest: &[Stamp]) -> Vec<String> {
        digest
            .iter()
            .filter(|d| {
                self.member(&d.name).is_some_and(|r| {
                    (d.version, d.writer.as_str()) > r.stamp()
                        || d.status_version > r.status_version
                })
            })
            .map(|d| d.name.clone())
            .collect()
    }

    /// The operational state shown for `name`: the member's own state, or `unknown` when this
    /// agent cannot reach it.
    pub fn effective_state(&self, record: &MemberRecord, reach: Reachability) -> OperState {
        match reach {
            Reachability::Unreachable => OperState::Unknown,
            _ => record.state,
        }
    }

    /// Plans `op` against this view. `busy` names members with an operation under way;
    /// `reach` tells which members this agent can reach. All failed preconditions are reported
    /// together. Nothing is changed: the caller applies the plan's records.
    pub fn plan(
        &self,
        op: &Operation,
        now: Millis,
        writer: &str,
        busy: &BTreeSet<String>,
        reach: &dyn Fn(&str) -> Reachability,
    ) -> Result<Plan, Refusal> {
        for name in op.named_members() {
            self.require(name)?;
        }
        let names = op.named_members();
        if names.len() == 2 && names[0] == names[1] {
            return Err(Refusal::Invalid(format!(
                "the operation names {:?} twice",
                names[0]
            )));
        }
        let mut failed = BTreeSet::new();
        if names.iter().any(|n| busy.contains(*n)) {
            failed.insert(Precondition::OperationInProgress);
        }
        // Unique per operation: two operations by one coordinator in the same millisecond
        // still differ in kind or in the versions of the records they start from.
        let versions: u64 = names
            .iter()
            .filter_map(|n| self.member(n))
            .map(|r| r.version)
            .sum();
        let stamp = OpStamp {
            id: format!("{writer}-{now}-{}-{versions}", op.kind()),
            kind: op.kind(),
            at: now,
        };
        let bump = |r: &MemberRecord| {
            let mut r = r.clone();
            r.version += 1;
            r.writer = writer.to_string();
            r.last_op = Some(stamp.clone());
            r
        };
        let updates = match op {
            Operation::Takeover { backup, main } | Operation::Failover { backup, main } => {
                let b = self.require(backup)?;
                let m = self.require(main)?;
                if b.role != Role::Backup {
                    failed.insert(Precondition::BackupNotBackup);
                }
                if b.state != OperState::Standby || reach(backup) == Reachability::Unreachable {
                    failed.insert(Precondition::BackupNotStandby);
                }
                if b.replicated(main).is_none() {
                    failed.insert(Precondition::NeverReplicated);
                }
                if m.role != Role::Main || m.takeover.is_some() || m.state == OperState::Offline {
                    failed.insert(Precondition::MainNotMain);
                }
                if !b.failing_checks.is_empty() {
                    failed.insert(Precondition::DeviceCheckFailed);
                }
                let mark = TakeoverMark {
                    kind: op.kind(),
                    main: main.clone(),
                    backup: backup.clone(),
                    at: now,
                };
                let mut m2 = bump(m);
                m2.state = OperState::Offline;
                m2.current_address = Some(m.extra_address);
                m2.auto_failover = false;
                m2.takeover = Some(mark.clone());
                let mut b2 = bump(b);
                b2.state = OperState::Online;
                b2.current_address = Some(m.configured_address);
                b2.takeover = Some(mark);
                b2.acting_for = Some(main.clone());
                vec![m2, b2]
            }
            Operation::ReverseTakeover { main } => {
                let m = self.require(main)?;
                if m.role != Role::Main {
                    failed.insert(Precondition::MainNotMain);
                }
                match self.acting_backup(main) {
                    // An interrupted takeover: the Main released its address, but no Backup
                    // took it. The Main may take it back if nobody holds it.
                    None if m.takeover.is_some() => {
                        let held = self.members.iter().any(|o| {
                            o.name != m.name && o.current_address == Some(m.configured_address)
                        });
                        if held {
                            failed.insert(Precondition::BackupNotActingForMain);
                        }
                        vec![restored_main(bump(m))]
                    }
                    None => {
                        failed.insert(Precondition::MainNotTakenOver);
                        vec![]
                    }
                    Some(b) => {
                        if reach(&b.name) == Reachability::Unreachable {
                            failed.insert(Precondition::BackupUnreachable);
                        }
                        if busy.contains(&b.name) {
                            failed.insert(Precondition::OperationInProgress);
                        }
                        vec![restored_backup(bump(b)), restored_main(bump(m))]
                    }
                }
            }
            Operation::Reconfigure { main, backup } => {
                let m = self.require(main)?;
                let b = self.require(backup)?;
                if m.role != Role::Main {
                    failed.insert(Precondition::MainNotMain);
                }
                if b.role != Role::Backup {
                    failed.insert(Precondition::BackupNotBackup);
                }
                if !m.is_taken_over() {
                    failed.insert(Precondition::MainNotTakenOver);
                }
                if b.acting_for.as_deref() != Some(main.as_str()) {
                    failed.insert(Precondition::BackupNotActingForMain);
                }
                // The roles swap: B becomes the configured Main on M's address (which it already
                // holds); M becomes a configured Backup on B's former address, in standby.
                let mut b2 = bump(b);
                b2.role = Role::Main;
                b2.configured_address = m.configured_address;
                b2.current_address = Some(m.configured_address);
                b2.state = OperState::Online;
                b2.takeover = None;
                b2.acting_for = None;
                let mut m2 = bump(m);
                m2.role = Role::Backup;
                m2.configured_address = b.configured_address;
                m2.current_address = Some(b.configured_address);
                m2.state = OperState::Standby;
                m2.takeover = None;
                m2.acting_for = None;
                m2.auto_failover = false;
                // B keeps M's address throughout; M only moves from its extra address to B's
                // former one, which B gave up when it took over. No address is held twice.
                vec![b2, m2]
            }
            Operation::ReplaceTakeover { main, replacement } => {
                let m = self.require(main)?;
                let r = self.require(replacement)?;
                if m.role != Role::Main {
                    failed.insert(Precondition::MainNotMain);
                }
                let acting = self.acting_backup(main);
                if acting.is_none() {
                    failed.insert(Precondition::MainNotTakenOver);
                }
                if r.state != OperState::Standby
                    || r.takeover.is_some()
                    || reach(replacement) == Reachability::Unreachable
                {
                    failed.insert(Precondition::ReplacementNotStandby);
                }
                if acting.is_some_and(|b| b.name == *replacement) {
                    failed.insert(Precondition::ReplacementIsBackup);
                }
                match acting {
                    None => vec![],
                    Some(b) => {
                        if reach(&b.name) == Reachability::Unreachable {
                            failed.insert(Precondition::BackupUnreachable);
                        }
                        if busy.contains(&b.name) {
                            failed.insert(Precondition::OperationInProgress);
                        }
                        // B releases M's address first; R takes M's identity (role and
                        // configured address); the defective M takes R's former identity and
                        // stays offline on its extra address until repaired.
                        let mut r2 = bump(r);
                        r2.role = Role::Main;
                        r2.configured_address = m.configured_address;
                        r2.current_address = Some(m.configured_address);
                        r2.state = OperState::Online;
                        r2.takeover = None;
                        r2.acting_for = None;
                        let mut m2 = bump(m);
                        m2.role = r.role;
                        m2.configured_address = r.configured_address;
                        m2.state = OperState::Offline;
                        m2.current_address = Some(m.extra_address);
                        m2.takeover = None;
                        m2.acting_for = None;
                        m2.auto_failover = false;
                        vec![restored_backup(bump(b)), m2, r2]
                    }
                }
            }
            Operation::SetAutoFailover { member, enabled } => {
                let r = self.require(member)?;
                let mut r2 = bump(r);
                r2.auto_failover = *enabled;
                vec![r2]
            }
        };
        if failed.is_empty() {
            Ok(Plan {
                id: stamp.id.clone(),
                operation: op.clone(),
                updates,
            })
        } else {
            Err(Refusal::Preconditions(failed.into_iter().collect()))
        }
    }

    /// The Backup currently acting for `main`, if `main` is taken over.
    pub fn acting_backup(&self, main: &str) -> Option<&MemberRecord> {
        let m = self.member(main)?;
        m.takeover.as_ref()?;
        self.members
            .iter()
            .find(|b| b.acting_for.as_deref() == Some(main))
    }

    /// Applies a plan's records to this view (what the coordinator does once every member has
    /// acknowledged, and what property tests do directly).
    pub fn apply(&mut self, plan: &Plan) {
        for r in &plan.updates {
            self.merge(r);
        }
    }

    /// The active alarms, derived from the records: one per taken-over pair, and one when no
    /// Backup is in standby to cover the Mains. `no_standby_since` is when this agent first saw
    /// the latter condition (the caller keeps and persists it).
    pub fn alarms(
        &self,
        reach: &dyn Fn(&str) -> Reachability,
        no_standby_since: Option<Millis>,
        now: Millis,
    ) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        for m in &self.members {
            if let (Some(mark), None) = (&m.takeover, &m.acting_for) {
                alarms.push(Alarm {
                    kind: if mark.kind == OpKind::Failover {
                        AlarmKind::Failover
                    } else {
                        AlarmKind::Takeover
                    },
                    raised_at: mark.at,
                    reason: format!(
                        "{} {} was taken over by {}: no redundancy until it is restored \
                         (reverse takeover, reconfigure or replace takeover)",
                        if mark.kind == OpKind::Failover {
                            "failover:"
                        } else {
                            "manual takeover:"
                        },
                        mark.main,
                        mark.backup
                    ),
                    main: Some(mark.main.clone()),
                    backup: Some(mark.backup.clone()),
                });
            }
        }
        if let Some(reason) = self.standby_shortfall(reach) {
            alarms.push(Alarm {
                kind: AlarmKind::NoStandbyBackup,
                raised_at: no_standby_since.unwrap_or(now),
                reason,
                main: None,
                backup: None,
            });
        }
        alarms
    }

    /// Why no Backup covers the Mains, or `None` when one is in standby.
    pub fn standby_shortfall(&self, reach: &dyn Fn(&str) -> Reachability) -> Option<String> {
        let has_main = self.members.iter().any(|m| m.role == Role::Main);
        if !has_main {
            return None;
        }
        let backups: Vec<&MemberRecord> = self
            .members
            .iter()
            .filter(|m| m.role == Role::Backup)
            .collect();
        if backups.is_empty() {
            return Some("the group has no configured backup".to_string());
        }
        let standby = backups
            .iter()
            .any(|b| b.state == OperState::Standby && reach(&b.name) != Reachability::Unreachable);
        if standby {
            return None;
        }
        let why = backups
            .iter()
            .map(|b| {
                let state = self.effective_state(b, reach(&b.name));
                format!("{} is {}", b.name, state)
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "no backup is in standby to cover the mains ({why})"
        ))
    }

    /// Checks the invariants every reachable state must hold; returns what is violated.
    pub fn invariant_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut held: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for m in &self.members {
            if let Some(a) = m.current_address {
                if let Some(other) = held.insert(a, &m.name) {
                    out.push(format!("{a} held by both {other} and {}", m.name));
                }
            }
            if m.acting_for.is_some() && m.takeover.is_none() {
                out.push(format!(
                    "{} acts for a main without a takeover flag",
                    m.name
                ));
            }
        }
        out
    }
}

fn restored_backup(mut b: MemberRecord) -> MemberRecord {
    b.state = OperState::Standby;
    b.current_address = Some(b.configured_address);
    b.takeover = None;
    b.acting_for = None;
    b
}

fn restored_main(mut m: MemberRecord) -> MemberRecord {
    m.state = OperState::Online;
    m.current_address = Some(m.configured_address);
    m.takeover = None;
    m.acting_for = None;
    m
}

#[cfg(test)]
mod tests;
