//! The objects the SNMP agent serves, as one sorted OID table built from a published
//! [`Snapshot`]: UNDERSTUDY-MIB (scalars, `rgMemberTable`, `rgAlarmTable`), the SNMPv2-MIB
//! `system` and `snmp` groups, and the SNMP engine, MPD and USM statistics. Values that change
//! between snapshots (uptime, counters) are [`Live`] cells that the caller resolves at request
//! time. Pure: no I/O, no clock; also the OIDs notifications use.

use bytes::Bytes;

use crate::group::{Alarm, AlarmKind, Millis, OperState, ReplicationResult, Role};
use crate::snapshot::{FenceOutcome, LeaseView, Snapshot, VERSION};

/// An OID as its arcs. Slices of arcs order like OIDs (arc by arc, a prefix first).
pub type Oid = Vec<u32>;

/// The SMI values the agent serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Integer(i32),
    Octets(Bytes),
    ObjectId(Oid),
    Counter32(u32),
    Gauge32(u32),
    TimeTicks(u32),
}

impl Value {
    pub fn text(s: &str) -> Value {
        Value::Octets(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// A `DisplayString` (at most 255 octets): a longer text is cut at a character boundary
    /// and ends with "..." (the HTTP API and the status page show it whole).
    pub fn display(s: &str) -> Value {
        const MAX: usize = 255;
        if s.len() <= MAX {
            return Value::text(s);
        }
        let mut end = MAX - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        Value::text(&format!("{}...", &s[..end]))
    }
}

/// A value that is read when a request asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// `sysUpTime.0`: hundredths of a second since the SNMP agent started.
    SysUpTime,
    InPkts,
    InBadVersions,
    InBadCommunityNames,
    InBadCommunityUses,
    InAsnParseErrs,
    SilentDrops,
    EngineBoots,
    EngineTime,
    UnknownSecurityModels,
    InvalidMsgs,
    UsmUnsupportedSecLevels,
    UsmNotInTimeWindows,
    UsmUnknownUserNames,
    UsmUnknownEngineIds,
    UsmWrongDigests,
    UsmDecryptionErrors,
}

/// One object instance of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Fixed(Value),
    Live(Live),
}

/// What the table needs besides the snapshot.
#[derive(Debug, Clone)]
pub struct MibInfo {
    /// Where UNDERSTUDY-MIB is rooted (`understudyMIB`).
    pub root: Oid,
    pub contact: String,
    pub location: String,
    pub engine_id: Bytes,
    pub max_message_size: u32,
}

/// The sorted table of every object instance the agent serves.
#[derive(Debug, Clone, Default)]
pub struct Table {
    entries: Vec<(Oid, Cell)>,
}

impl Table {
    /// The instance at exactly `oid`.
    pub fn get(&self, oid: &[u32]) -> Option<&Cell> {
        self.entries
            .binary_search_by(|(o, _)| o.as_slice().cmp(oid))
            .ok()
            .map(|i| &self.entries[i].1)
    }

    /// The first instance after `oid` (GETNEXT).
    pub fn next(&self, oid: &[u32]) -> Option<(&Oid, &Cell)> {
        let i = self.entries.partition_point(|(o, _)| o.as_slice() <= oid);
        self.entries.get(i).map(|(o, c)| (o, c))
    }

    pub fn entries(&self) -> &[(Oid, Cell)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

// ------------------------------------------------------------------ well-known OIDs

/// SNMPv2-MIB `system` group.
pub const SYSTEM: &[u32] = &[1, 3, 6, 1, 2, 1, 1];
/// SNMPv2-MIB `snmp` group.
pub const SNMP: &[u32] = &[1, 3, 6, 1, 2, 1, 11];
/// `sysUpTime.0`.
pub const SYS_UP_TIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// `sysName.0`.
pub const SYS_NAME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
/// `coldStart` (SNMPv2-MIB snmpTraps 1).
pub const COLD_START: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5, 1];
const SNMP_ENGINE: &[u32] = &[1, 3, 6, 1, 6, 3, 10, 2, 1];
const MPD_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 11, 2, 1];
const USM_STATS: &[u32] = &[1, 3, 6, 1, 6, 3, 15, 1, 1];

/// `sysServices`: applications (64) and end-to-end (8).
pub const SYS_SERVICES: i32 = 72;

fn join(prefix: &[u32], tail: &[u32]) -> Oid {
    let mut o = Vec::with_capacity(prefix.len() + tail.len());
    o.extend_from_slice(prefix);
    o.extend_from_slice(tail);
    o
}

/// Columns of `rgMemberEntry`.
pub mod member_col {
    pub const NAME: u32 = 2;
    pub const CONFIGURED_ROLE: u32 = 3;
    pub const OPER_STATE: u32 = 4;
    pub const CONFIGURED_ADDRESS: u32 = 5;
    pub const CURRENT_ADDRESS: u32 = 6;
    pub const EXTRA_ADDRESS: u32 = 7;
    pub const AUTO_FAILOVER: u32 = 8;
    pub const LAST_REPLICATION_TIME: u32 = 9;
    pub const LAST_REPLICATION_RESULT: u32 = 10;
    pub const TAKEOVER_FLAG: u32 = 11;
    pub const MANUAL_TAKEOVER: u32 = 12;
    pub const REVERSE_TAKEOVER: u32 = 13;
    pub const ACTING_FOR: u32 = 14;
    pub const LEASE_EXPIRY: u32 = 15;
    pub const LEASE_ENFORCED_BY: u32 = 16;
    pub const LAST_CHANGE: u32 = 17;
}

/// Scalars of `rgCoordination` (instance `.0` is added by [`coordination_scalar`]).
pub mod coordination_arc {
    pub const STATUS: u32 = 1;
    pub const BACKEND: u32 = 2;
    pub const SINCE: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const SESSION_EXPIRY: u32 = 5;
}

/// Scalars of `rgFencing` (instance `.0` is added by [`fencing_scalar`]).
pub mod fencing_arc {
    pub const ENABLED: u32 = 1;
    pub const SUCCESSES: u32 = 2;
    pub const FAILURES: u32 = 3;
    pub const TIMEOUTS: u32 = 4;
    pub const LAST_TARGET: u32 = 5;
    pub const LAST_OUTCOME: u32 = 6;
    pub const LAST_TIME: u32 = 7;
    pub const LAST_DETAIL: u32 = 8;
}

/// Scalars of `rgMaintenance` (instance `.0` is added by [`maintenance_scalar`]).
pub mod maintenance_arc {
    pub const MODE: u32 = 1;
    pub const SINCE: u32 = 2;
    pub const CHANGED_TIME: u32 = 3;
    pub const CHANGED_BY: u32 = 4;
    pub const REASON: u32 = 5;
}

/// Columns of `rgAlarmEntry`.
pub mod alarm_col {
    pub const TYPE: u32 = 2;
    pub const RAISED_TIME: u32 = 3;
    pub const REASON: u32 = 4;
    pub const MAIN_INDEX: u32 = 5;
    pub const BACKUP_INDEX: u32 = 6;
}

/// Scalars of `rgGroup` (instance `.0` is added by [`scalar`]).
pub mod scalar_arc {
    pub const GROUP_NAME: u32 = 1;
    pub const REDUNDANCY_STATUS: u32 = 2;
    pub const NO_REDUNDANCY_SINCE: u32 = 3;
    pub const TAKEOVER_COUNT: u32 = 4;
    pub const LOCAL_MEMBER_INDEX: u32 = 5;
    pub const ALARM_COUNT: u32 = 6;
    pub const MEMBER_COUNT: u32 = 7;
}

/// Objects of `rgNotificationObjects` (accessible-for-notify).
pub mod notify_arc {
    pub const MAIN_NAME: u32 = 1;
    pub const BACKUP_NAME: u32 = 2;
    pub const REASON: u32 = 3;
    pub const REQUESTED_BY: u32 = 4;
    pub const EVENT_ID: u32 = 5;
}

/// Notifications under `rgNotifications`.
pub mod notification_arc {
    pub const TAKEOVER: u32 = 1;
    pub const FAILOVER: u32 = 2;
    pub const NO_REDUNDANCY: u32 = 3;
    pub const REDUNDANCY_RESTORED: u32 = 4;
    pub const REPLICATION_FAILED: u32 = 5;
    pub const FENCING_FAILED: u32 = 6;
    pub const COORDINATION_LOST: u32 = 7;
    pub const COORDINATION_RESTORED: u32 = 8;
    pub const MAINTENANCE_MODE_CHANGED: u32 = 9;
}

/// `rgGroup` scalar instance: root.1.1.arc.0
pub fn scalar(root: &[u32], arc: u32) -> Oid {
    join(root, &[1, 1, arc, 0])
}

/// `rgCoordination` scalar instance: root.1.5.arc.0
pub fn coordination_scalar(root: &[u32], arc: u32) -> Oid {
    join(root, &[1, 5, arc, 0])
}

/// `rgFencing` scalar instance: root.1.6.arc.0
pub fn fencing_scalar(root: &[u32], arc: u32) -> Oid {
    join(root, &[1, 6, arc, 0])
}

/// `rgMaintenance` scalar instance: root.1.7.arc.0
pub fn maintenance_scalar(root: &[u32], arc: u32) -> Oid {
    join(root, &[1, 7, arc, 0])
}

/// `rgMemberEntry` instance: root.1.2.1.col.index
pub fn member_cell(root: &[u32], col: u32, index: u32) -> Oid {
    join(root, &[1, 2, 1, col, index])
}

/// `rgAlarmEntry` instance: root.1.3.1.col.index
pub fn alarm_cell(root: &[u32], col: u32, index: u32) -> Oid {
    join(root, &[1, 3, 1, col, index])
}

/// An accessible-for-notify object with instance `.0`: root.1.4.arc.0
pub fn notify_object(root: &[u32], arc: u32) -> Oid {
    join(root, &[1, 4, arc, 0])
}

/// A notification's OID (`snmpTrapOID.0` value): root.0.arc
pub fn notification(root: &[u32], arc: u32) -> Oid {
    join(root, &[0, arc])
}

// ------------------------------------------------------------------ value encodings

/// RFC 2579 DateAndTime of `ms` since the epoch, in UTC: 11 octets with direction '+' and
/// offset 0:0.
pub fn date_and_time(ms: Millis) -> Bytes {
    let secs = ms / 1000;
    let deci = ((ms % 1000) / 100) as u8;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let year = u16::try_from(y).unwrap_or(u16::MAX);
    Bytes::from(vec![
        (year >> 8) as u8,
        (year & 0xff) as u8,
        m as u8,
        d as u8,
        (rem / 3600) as u8,
        ((rem % 3600) / 60) as u8,
        (rem % 60) as u8,
        deci,
        b'+',
        0,
        0,
    ])
}

/// The DateAndTime of "no such time": the Unix epoch, 1970-01-01,00:00:00.0, in 8 octets
/// (no time zone). Every real time is 11 octets and later. Not the 8 zero octets some MIBs
/// use: month 0 is outside DateAndTime's range, and Prometheus's snmp_exporter turns it into
/// -62169984000 (year 0) where it turns this into 0, Prometheus's "never" (mibs/README.md).
pub fn no_date_and_time() -> Bytes {
    Bytes::from_static(&[0x07, 0xb2, 1, 1, 0, 0, 0, 0])
}

fn date_or_zero(ms: Option<Millis>) -> Value {
    Value::Octets(ms.map_or_else(no_date_and_time, date_and_time))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn truth(b: bool) -> Value {
    Value::Integer(if b { 1 } else { 2 })
}

pub fn role_value(r: Role) -> i32 {
    match r {
        Role::Main => 1,
        Role::Backup => 2,
    }
}

pub fn state_value(s: OperState) -> i32 {
    match s {
        OperState::Online => 1,
        OperState::Standby => 2,
        OperState::Offline => 3,
        OperState::Unknown => 4,
    }
}

pub fn replication_value(r: ReplicationResult) -> i32 {
    match r {
        ReplicationResult::Never => 1,
        ReplicationResult::Success => 2,
        ReplicationResult::Failed => 3,
    }
}

pub fn alarm_type_value(k: AlarmKind) -> i32 {
    match k {
        AlarmKind::Takeover => 1,
        AlarmKind::Failover => 2,
        AlarmKind::NoStandbyBackup => 3,
        AlarmKind::GroupDefinitionMismatch => 4,
        AlarmKind::StateNotWritable => 5,
        AlarmKind::CoordinationLost => 6,
        AlarmKind::FencingFailed => 7,
    }
}

/// `rgCoordinationStatus`: none(1) without a quorum source, up(2), down(3).
pub fn coordination_status(snap: &Snapshot) -> i32 {
    match &snap.coordination {
        None => 1,
        Some(c) if c.up => 2,
        Some(_) => 3,
    }
}

/// `rgFencingLastOutcome`: none(1) before any run (or without a fence command), success(2),
/// failed(3), timeout(4).
pub fn fence_outcome_value(o: Option<FenceOutcome>) -> i32 {
    match o {
        None => 1,
        Some(FenceOutcome::Success) => 2,
        Some(FenceOutcome::Failed) => 3,
        Some(FenceOutcome::Timeout) => 4,
    }
}

/// `rgMemberLeaseEnforcedBy`: none(1) without a lease, kernel(2), agent(3).
pub fn lease_enforced_by_value(lease: Option<&LeaseView>) -> i32 {
    match lease.map(|l| l.enforced_by) {
        None => 1,
        Some("kernel") => 2,
        Some(_) => 3,
    }
}

/// A Counter32 of a count that may exceed it (wraps, as counters do).
fn counter32(n: u64) -> Value {
    Value::Counter32((n & 0xffff_ffff) as u32)
}

fn index32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn int32(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

/// `rgMemberIndex` of `name` (1-based, configuration order), 0 when unknown.
pub fn member_index(snap: &Snapshot, name: &str) -> u32 {
    snap.index_of(name).map_or(0, index32)
}

/// `rgAlarmIndex` of an alarm: the Main's `rgMemberIndex` for a takeover or failover (one
/// alarm per taken-over Main), `rgMemberCount + 1` for noStandbyBackup, `rgMemberCount + 2`
/// for groupDefinitionMismatch, `rgMemberCount + 3` for stateNotWritable, `+ 4` for
/// coordinationLost, `+ 5` for fencingFailed. Stable while the alarm is raised, restarts included, as long
/// as the configured members stay the same.
pub fn alarm_index(snap: &Snapshot, alarm: &Alarm) -> u32 {
    match (&alarm.kind, &alarm.main) {
        (AlarmKind::Takeover | AlarmKind::Failover, Some(main))
            if snap.index_of(main).is_some() =>
        {
            member_index(snap, main)
        }
        (AlarmKind::GroupDefinitionMismatch, _) => index32(snap.members.len() + 2),
        (AlarmKind::StateNotWritable, _) => index32(snap.members.len() + 3),
        (AlarmKind::CoordinationLost, _) => index32(snap.members.len() + 4),
        (AlarmKind::FencingFailed, _) => index32(snap.members.len() + 5),
        _ => index32(snap.members.len() + 1),
    }
}

/// Takeovers and failovers counted by this agent (`rgTakeoverCount`): the persisted
/// group-wide counts behind `understudy_takeovers_total`.
pub fn takeover_count(snap: &Snapshot) -> u32 {
    use crate::group::OpKind;
    let n = snap.takeovers.get(&OpKind::Manual).copied().unwrap_or(0)
        + snap.takeovers.get(&OpKind::Failover).copied().unwrap_or(0);
    (n & 0xffff_ffff) as u32
}

/// `rgRedundancyStatus`: redundant(1) or notRedundant(2).
pub fn redundancy_status(snap: &Snapshot) -> Value {
    truth(snap.redundancy.redundant())
}

/// `rgNoRedundancySince`: when the group stopped being redundant; no date while it is.
pub fn no_redundancy_since(snap: &Snapshot) -> Value {
    let red = &snap.redundancy;
    date_or_zero(if red.redundant() { None } else { red.since() })
}

/// `sysDescr.0`.
pub fn sys_descr(snap: &Snapshot) -> String {
    format!(
        "understudy {VERSION} redundancy agent: member {} of group {}",
        snap.local, snap.group
    )
}

// ------------------------------------------------------------------ the table

/// The `sysORTable` rows: (sysORID, sysORDescr).
fn or_table(root: &[u32]) -> Vec<(Oid, &'static str)> {
    vec![
        (
            vec![1, 3, 6, 1, 6, 3, 10, 3, 1, 1],
            "The SNMP Management Architecture MIB (snmpFrameworkMIBCompliance).",
        ),
        (
            vec![1, 3, 6, 1, 6, 3, 11, 3, 1, 1],
            "The MIB for Message Processing and Dispatching (snmpMPDCompliance).",
        ),
        (
            vec![1, 3, 6, 1, 6, 3, 15, 2, 1, 1],
            "The management information definitions for the SNMP User-based Security Model \
             (usmMIBCompliance).",
        ),
        (
            vec![1, 3, 6, 1, 6, 3, 1],
            "The MIB module for SNMP entities (SNMPv2-MIB).",
        ),
        (
            join(root, &[2, 1, 2]),
            "The redundancy group of understudy agents (UNDERSTUDY-MIB rgFullCompliance).",
        ),
    ]
}

/// Builds the whole table from one snapshot.
pub fn build(snap: &Snapshot, info: &MibInfo) -> Table {
    let mut e: Vec<(Oid, Cell)> = Vec::with_capacity(64 + 16 * snap.members.len());
    let fixed = |v: Value| Cell::Fixed(v);
    // system
    let sys = |arc: u32| join(SYSTEM, &[arc, 0]);
    e.push((sys(1), fixed(Value::text(&sys_descr(snap)))));
    e.push((sys(2), fixed(Value::ObjectId(info.root.clone()))));
    e.push((sys(3), Cell::Live(Live::SysUpTime)));
    e.push((sys(4), fixed(Value::text(&info.contact))));
    e.push((sys(5), fixed(Value::text(&snap.local))));
    e.push((sys(6), fixed(Value::text(&info.location))));
    e.push((sys(7), fixed(Value::Integer(SYS_SERVICES))));
    e.push((sys(8), fixed(Value::TimeTicks(0))));
    for (i, (id, descr)) in or_table(&info.root).into_iter().enumerate() {
        let idx = index32(i + 1);
        e.push((join(SYSTEM, &[9, 1, 2, idx]), fixed(Value::ObjectId(id))));
        e.push((join(SYSTEM, &[9, 1, 3, idx]), fixed(Value::text(descr))));
        e.push((join(SYSTEM, &[9, 1, 4, idx]), fixed(Value::TimeTicks(0))));
    }
    // snmp
    let snmp = |arc: u32| join(SNMP, &[arc, 0]);
    e.push((snmp(1), Cell::Live(Live::InPkts)));
    e.push((snmp(3), Cell::Live(Live::InBadVersions)));
    e.push((snmp(4), Cell::Live(Live::InBadCommunityNames)));
    e.push((snmp(5), Cell::Live(Live::InBadCommunityUses)));
    e.push((snmp(6), Cell::Live(Live::InAsnParseErrs)));
    // snmpEnableAuthenTraps: disabled(2); this agent sends no authenticationFailure traps.
    e.push((snmp(30), fixed(Value::Integer(2))));
    e.push((snmp(31), Cell::Live(Live::SilentDrops)));
    e.push((snmp(32), fixed(Value::Counter32(0))));
    // SNMP engine, MPD and USM statistics
    let eng = |arc: u32| join(SNMP_ENGINE, &[arc, 0]);
    e.push((eng(1), fixed(Value::Octets(info.engine_id.clone()))));
    e.push((eng(2), Cell::Live(Live::EngineBoots)));
    e.push((eng(3), Cell::Live(Live::EngineTime)));
    e.push((
        eng(4),
        fixed(Value::Integer(
            i32::try_from(info.max_message_size).unwrap_or(i32::MAX),
        )),
    ));
    let mpd = |arc: u32| join(MPD_STATS, &[arc, 0]);
    e.push((mpd(1), Cell::Live(Live::UnknownSecurityModels)));
    e.push((mpd(2), Cell::Live(Live::InvalidMsgs)));
    e.push((mpd(3), fixed(Value::Counter32(0))));
    let usm = |arc: u32| join(USM_STATS, &[arc, 0]);
    e.push((usm(1), Cell::Live(Live::UsmUnsupportedSecLevels)));
    e.push((usm(2), Cell::Live(Live::UsmNotInTimeWindows)));
    e.push((usm(3), Cell::Live(Live::UsmUnknownUserNames)));
    e.push((usm(4), Cell::Live(Live::UsmUnknownEngineIds)));
    e.push((usm(5), Cell::Live(Live::UsmWrongDigests)));
    e.push((usm(6), Cell::Live(Live::UsmDecryptionErrors)));
    // UNDERSTUDY-MIB
    understudy(snap, &info.root, &mut e);
    e.sort_by(|a, b| a.0.cmp(&b.0));
    e.dedup_by(|a, b| a.0 == b.0);
    Table { entries: e }
}

fn understudy(snap: &Snapshot, root: &[u32], e: &mut Vec<(Oid, Cell)>) {
    use member_col as c;
    use scalar_arc as s;
    let red = &snap.redundancy;
    let push = |e: &mut Vec<(Oid, Cell)>, oid: Oid, v: Value| e.push((oid, Cell::Fixed(v)));
    push(e, scalar(root, s::GROUP_NAME), Value::text(&snap.group));
    push(
        e,
        scalar(root, s::REDUNDANCY_STATUS),
        redundancy_status(snap),
    );
    push(
        e,
        scalar(root, s::NO_REDUNDANCY_SINCE),
        no_redundancy_since(snap),
    );
    push(
        e,
        scalar(root, s::TAKEOVER_COUNT),
        Value::Counter32(takeover_count(snap)),
    );
    push(
        e,
        scalar(root, s::LOCAL_MEMBER_INDEX),
        Value::Integer(snap.index_of(&snap.local).map_or(0, int32)),
    );
    push(
        e,
        scalar(root, s::ALARM_COUNT),
        Value::Gauge32(index32(red.alarms.len())),
    );
    push(
        e,
        scalar(root, s::MEMBER_COUNT),
        Value::Gauge32(index32(snap.members.len())),
    );
    for (i, m) in snap.members.iter().enumerate() {
        let idx = index32(i + 1);
        let r = &m.record;
        let cell = |col: u32| member_cell(root, col, idx);
        push(e, cell(c::NAME), Value::text(&r.name));
        push(
            e,
            cell(c::CONFIGURED_ROLE),
            Value::Integer(role_value(r.role)),
        );
        push(e, cell(c::OPER_STATE), Value::Integer(state_value(m.state)));
        push(
            e,
            cell(c::CONFIGURED_ADDRESS),
            Value::text(&r.configured_address.to_string()),
        );
        push(
            e,
            cell(c::CURRENT_ADDRESS),
            Value::text(&r.current_address.map(|a| a.to_string()).unwrap_or_default()),
        );
        push(
            e,
            cell(c::EXTRA_ADDRESS),
            Value::text(&r.extra_address.to_string()),
        );
        push(e, cell(c::AUTO_FAILOVER), truth(r.auto_failover));
        push(
            e,
            cell(c::LAST_REPLICATION_TIME),
            date_or_zero(r.replication.as_ref().map(|rep| rep.at)),
        );
        push(
            e,
            cell(c::LAST_REPLICATION_RESULT),
            Value::Integer(replication_value(r.replication_result())),
        );
        push(e, cell(c::TAKEOVER_FLAG), truth(r.takeover.is_some()));
        push(e, cell(c::MANUAL_TAKEOVER), Value::Integer(0));
        push(e, cell(c::REVERSE_TAKEOVER), truth(false));
        let acting = r
            .acting_for
            .as_deref()
            .map_or(0, |main| member_index(snap, main));
        push(
            e,
            cell(c::ACTING_FOR),
            Value::Integer(i32::try_from(acting).unwrap_or(0)),
        );
        push(
            e,
            cell(c::LEASE_EXPIRY),
            date_or_zero(m.lease.as_ref().map(|l| l.until)),
        );
        push(
            e,
            cell(c::LEASE_ENFORCED_BY),
            Value::Integer(lease_enforced_by_value(m.lease.as_ref())),
        );
        push(e, cell(c::LAST_CHANGE), date_or_zero(r.state_changed));
    }
    coordination_objects(snap, root, e);
    fencing_objects(snap, root, e);
    maintenance_objects(snap, root, e);
    for a in &red.alarms {
        use alarm_col as ac;
        let idx = alarm_index(snap, a);
        let cell = |col: u32| alarm_cell(root, col, idx);
        push(e, cell(ac::TYPE), Value::Integer(alarm_type_value(a.kind)));
        push(
            e,
            cell(ac::RAISED_TIME),
            Value::Octets(date_and_time(a.raised_at)),
        );
        push(e, cell(ac::REASON), Value::display(&a.reason));
        let idx_of = |n: &Option<String>| {
            n.as_deref()
                .map_or(0, |n| i32::try_from(member_index(snap, n)).unwrap_or(0))
        };
        push(e, cell(ac::MAIN_INDEX), Value::Integer(idx_of(&a.main)));
        push(e, cell(ac::BACKUP_INDEX), Value::Integer(idx_of(&a.backup)));
    }
}

/// `rgCoordination`: always served; `none(1)` and empty values without a quorum source.
fn coordination_objects(snap: &Snapshot, root: &[u32], e: &mut Vec<(Oid, Cell)>) {
    use coordination_arc as a;
    let c = snap.coordination.as_ref();
    let mut push = |arc: u32, v: Value| e.push((coordination_scalar(root, arc), Cell::Fixed(v)));
    push(a::STATUS, Value::Integer(coordination_status(snap)));
    push(a::BACKEND, Value::text(c.map_or("", |c| c.backend)));
    push(a::SINCE, date_or_zero(c.map(|c| c.since)));
    push(
        a::ERROR,
        Value::display(c.and_then(|c| c.error.as_deref()).unwrap_or("")),
    );
    push(
        a::SESSION_EXPIRY,
        date_or_zero(c.and_then(|c| c.session_until)),
    );
}

/// `rgMaintenance`: the group's maintenance mode, who changed it last, when and why.
fn maintenance_objects(snap: &Snapshot, root: &[u32], e: &mut Vec<(Oid, Cell)>) {
    use maintenance_arc as a;
    let m = &snap.maintenance;
    let mut push = |arc: u32, v: Value| e.push((maintenance_scalar(root, arc), Cell::Fixed(v)));
    push(a::MODE, truth(m.enabled));
    push(a::SINCE, date_or_zero(m.since.filter(|_| m.enabled)));
    push(a::CHANGED_TIME, date_or_zero(m.changed_at));
    push(
        a::CHANGED_BY,
        Value::display(
            &m.changed_by
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
        ),
    );
    push(a::REASON, Value::display(m.reason.as_deref().unwrap_or("")));
}

/// `rgFencing`: always served; `rgFencingEnabled` false(2), zeros and `none(1)` without a
/// fence command.
fn fencing_objects(snap: &Snapshot, root: &[u32], e: &mut Vec<(Oid, Cell)>) {
    use fencing_arc as a;
    let f = snap.fencing.as_ref();
    let runs = |o: FenceOutcome| f.and_then(|f| f.runs.get(&o).copied()).unwrap_or(0);
    let last = f.and_then(|f| f.last.as_ref());
    let mut push = |arc: u32, v: Value| e.push((fencing_scalar(root, arc), Cell::Fixed(v)));
    push(a::ENABLED, truth(f.is_some()));
    push(a::SUCCESSES, counter32(runs(FenceOutcome::Success)));
    push(a::FAILURES, counter32(runs(FenceOutcome::Failed)));
    push(a::TIMEOUTS, counter32(runs(FenceOutcome::Timeout)));
    push(a::LAST_TARGET, Value::text(last.map_or("", |r| &r.target)));
    push(
        a::LAST_OUTCOME,
        Value::Integer(fence_outcome_value(last.map(|r| r.outcome))),
    );
    push(a::LAST_TIME, date_or_zero(last.map(|r| r.at)));
    push(
        a::LAST_DETAIL,
        Value::display(last.map_or("", |r| &r.detail)),
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::*;
    use crate::group::{MemberRecord, OpKind, Replication, TakeoverMark};
    use crate::snapshot::{MemberSnapshot, Redundancy};

    pub(crate) const ROOT: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 36];

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// main-1 and backup-1 as after a first successful replication, seen from backup-1.
    pub(crate) fn snapshot() -> Snapshot {
        let mut main =
            MemberRecord::initial("main-1", Role::Main, ip("192.0.2.11"), ip("10.0.3.6"), true);
        main.version = 1;
        let mut backup = MemberRecord::initial(
            "backup-1",
            Role::Backup,
            ip("198.51.100.11"),
            ip("10.0.4.6"),
            false,
        );
        backup.replication = Some(Replication {
            at: 1_700_000_000_000,
            result: ReplicationResult::Success,
            main: "main-1".into(),
            last_success: BTreeMap::from([("main-1".to_string(), 1_700_000_000_000)]),
            error: None,
        });
        Snapshot {
            group: "demo".into(),
            local: "backup-1".into(),
            members: vec![
                MemberSnapshot {
                    record: main,
                    state: OperState::Online,
                    paths: vec![("lan".into(), true)],
                    lease: None,
                },
                MemberSnapshot {
                    record: backup,
                    state: OperState::Standby,
                    paths: vec![("lan".into(), true)],
                    lease: None,
                },
            ],
            redundancy: Redundancy { alarms: Vec::new() },
            takeovers: BTreeMap::new(),
            events: Arc::new(Vec::new()),
            replication_failures: 0,
            notifications: None,
            state_error: None,
            mismatched: Default::default(),
            boots: 3,
            started_at: 1_700_000_000_000,
            coordination: None,
            fencing: None,
            maintenance: Default::default(),
            maintenance_alert_after: 4 * 3600 * 1000,
        }
    }

    /// The same group after backup-1 took main-1 over at `at`.
    pub(crate) fn taken_over(at: Millis) -> Snapshot {
        let mut s = snapshot();
        let mark = TakeoverMark {
            kind: OpKind::Manual,
            main: "main-1".into(),
            backup: "backup-1".into(),
            at,
        };
        {
            let m = &mut s.members[0];
            m.state = OperState::Offline;
            m.record.state = OperState::Offline;
            m.record.current_address = Some(ip("10.0.3.6"));
            m.record.auto_failover = false;
            m.record.takeover = Some(mark.clone());
            m.record.version += 1;
        }
        {
            let b = &mut s.members[1];
            b.state = OperState::Online;
            b.record.state = OperState::Online;
            b.record.current_address = Some(ip("192.0.2.11"));
            b.record.takeover = Some(mark);
            b.record.acting_for = Some("main-1".into());
            b.record.version += 1;
        }
        s.redundancy = Redundancy {
            alarms: vec![Alarm {
                kind: AlarmKind::Takeover,
                raised_at: at,
                reason: "manual takeover: main-1 was taken over by backup-1".into(),
                main: Some("main-1".into()),
                backup: Some("backup-1".into()),
            }],
        };
        s.takeovers.insert(OpKind::Manual, 1);
        s
    }

    pub(crate) fn info() -> MibInfo {
        MibInfo {
            root: ROOT.to_vec(),
            contact: "noc@example.net".into(),
            location: "rack 4".into(),
            engine_id: Bytes::from_static(&[0x80, 0, 0x7e, 0xd9, 5, 1, 2, 3]),
            max_message_size: 1472,
        }
    }

    fn oid(s: &str) -> Oid {
        crate::snmp::config::parse_oid(s).expect("test OID")
    }

    fn text(s: &str) -> Cell {
        Cell::Fixed(Value::text(s))
    }

    fn int(i: i32) -> Cell {
        Cell::Fixed(Value::Integer(i))
    }

    #[test]
    fn date_and_time_encodes_utc() {
        // 2023-11-14 22:13:20.0 UTC
        assert_eq!(
            date_and_time(1_700_000_000_000).as_ref(),
            &[0x07, 0xe7, 11, 14, 22, 13, 20, 0, b'+', 0, 0]
        );
        // 1970-01-01 00:00:00.9
        assert_eq!(
            date_and_time(900).as_ref(),
            &[0x07, 0xb2, 1, 1, 0, 0, 0, 9, b'+', 0, 0]
        );
        // 2024-02-29 (leap day) 12:00:00.5
        assert_eq!(
            date_and_time(1_709_208_000_500).as_ref(),
            &[0x07, 0xe8, 2, 29, 12, 0, 0, 5, b'+', 0, 0]
        );
        // No time: 1970-01-01 00:00:00.0 without a time zone.
        assert_eq!(no_date_and_time().as_ref(), &[0x07, 0xb2, 1, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn table_has_these_values_in_a_redundant_group() {
        let t = build(&snapshot(), &info());
        let r = "1.3.6.1.4.1.32473.36";
        let table: Vec<(String, Cell)> = vec![
            (
                "1.3.6.1.2.1.1.2.0".into(),
                Cell::Fixed(Value::ObjectId(ROOT.to_vec())),
            ),
            ("1.3.6.1.2.1.1.3.0".into(), Cell::Live(Live::SysUpTime)),
            ("1.3.6.1.2.1.1.4.0".into(), text("noc@example.net")),
            ("1.3.6.1.2.1.1.5.0".into(), text("backup-1")),
            ("1.3.6.1.2.1.1.7.0".into(), int(72)),
            (
                "1.3.6.1.2.1.1.9.1.2.4".into(),
                Cell::Fixed(Value::ObjectId(vec![1, 3, 6, 1, 6, 3, 1])),
            ),
            (
                "1.3.6.1.2.1.11.4.0".into(),
                Cell::Live(Live::InBadCommunityNames),
            ),
            ("1.3.6.1.2.1.11.30.0".into(), int(2)),
            (
                "1.3.6.1.6.3.10.2.1.1.0".into(),
                Cell::Fixed(Value::Octets(info().engine_id)),
            ),
            (
                "1.3.6.1.6.3.15.1.1.5.0".into(),
                Cell::Live(Live::UsmWrongDigests),
            ),
            (format!("{r}.1.1.1.0"), text("demo")),
            (format!("{r}.1.1.2.0"), int(1)),
            (
                format!("{r}.1.1.3.0"),
                Cell::Fixed(Value::Octets(no_date_and_time())),
            ),
            (format!("{r}.1.1.4.0"), Cell::Fixed(Value::Counter32(0))),
            (format!("{r}.1.1.5.0"), int(2)),
            (format!("{r}.1.1.6.0"), Cell::Fixed(Value::Gauge32(0))),
            (format!("{r}.1.1.7.0"), Cell::Fixed(Value::Gauge32(2))),
            (format!("{r}.1.2.1.2.1"), text("main-1")),
            (format!("{r}.1.2.1.2.2"), text("backup-1")),
            (format!("{r}.1.2.1.3.1"), int(1)),
            (format!("{r}.1.2.1.3.2"), int(2)),
            (format!("{r}.1.2.1.4.1"), int(1)),
            (format!("{r}.1.2.1.4.2"), int(2)),
            (format!("{r}.1.2.1.5.1"), text("192.0.2.11")),
            (format!("{r}.1.2.1.6.2"), text("198.51.100.11")),
            (format!("{r}.1.2.1.7.1"), text("10.0.3.6")),
            (format!("{r}.1.2.1.8.1"), int(1)),
            (format!("{r}.1.2.1.8.2"), int(2)),
            (
                format!("{r}.1.2.1.9.1"),
                Cell::Fixed(Value::Octets(no_date_and_time())),
            ),
            (
                format!("{r}.1.2.1.9.2"),
                Cell::Fixed(Value::Octets(date_and_time(1_700_000_000_000))),
            ),
            (format!("{r}.1.2.1.10.1"), int(1)),
            (format!("{r}.1.2.1.10.2"), int(2)),
            (format!("{r}.1.2.1.11.1"), int(2)),
            (format!("{r}.1.2.1.12.2"), int(0)),
            (format!("{r}.1.2.1.13.1"), int(2)),
            (format!("{r}.1.2.1.14.2"), int(0)),
            (
                format!("{r}.1.2.1.17.1"),
                Cell::Fixed(Value::Octets(no_date_and_time())),
            ),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
        assert_eq!(t.get(&oid(&format!("{r}.1.3.1.2.3"))), None, "no alarm row");
        assert_eq!(
            t.get(&oid(&format!("{r}.1.2.1.1.1"))),
            None,
            "index is not-accessible"
        );
        assert_eq!(
            t.get(&oid(&format!("{r}.1.4.1.0"))),
            None,
            "notify-only object"
        );
    }

    #[test]
    fn table_after_a_takeover() {
        let at = 1_700_000_100_000;
        let t = build(&taken_over(at), &info());
        let r = "1.3.6.1.4.1.32473.36";
        let table: Vec<(String, Cell)> = vec![
            (format!("{r}.1.1.2.0"), int(2)),
            (
                format!("{r}.1.1.3.0"),
                Cell::Fixed(Value::Octets(date_and_time(at))),
            ),
            (format!("{r}.1.1.4.0"), Cell::Fixed(Value::Counter32(1))),
            (format!("{r}.1.1.6.0"), Cell::Fixed(Value::Gauge32(1))),
            (format!("{r}.1.2.1.4.1"), int(3)),
            (format!("{r}.1.2.1.4.2"), int(1)),
            (format!("{r}.1.2.1.6.1"), text("10.0.3.6")),
            (format!("{r}.1.2.1.6.2"), text("192.0.2.11")),
            (format!("{r}.1.2.1.8.1"), int(2)),
            (format!("{r}.1.2.1.11.1"), int(1)),
            (format!("{r}.1.2.1.11.2"), int(1)),
            (format!("{r}.1.2.1.14.2"), int(1)),
            // the alarm row takes the Main's index
            (format!("{r}.1.3.1.2.1"), int(1)),
            (
                format!("{r}.1.3.1.3.1"),
                Cell::Fixed(Value::Octets(date_and_time(at))),
            ),
            (
                format!("{r}.1.3.1.4.1"),
                text("manual takeover: main-1 was taken over by backup-1"),
            ),
            (format!("{r}.1.3.1.5.1"), int(1)),
            (format!("{r}.1.3.1.6.1"), int(2)),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
    }

    /// [`snapshot`] with a kernel lease on main-1, the quorum source down since `at` and a
    /// fence run against main-1 that failed at `at`.
    pub(crate) fn with_safety(at: Millis) -> Snapshot {
        use crate::snapshot::{CoordinationView, FenceRun, FencingView, LeaseView};
        let mut s = snapshot();
        s.members[0].lease = Some(LeaseView {
            until: at + 30_000,
            enforced_by: "kernel",
        });
        s.coordination = Some(CoordinationView {
            backend: "etcd",
            up: false,
            since: at,
            error: Some("connection refused".into()),
            session_until: Some(at + 10_000),
            holders: BTreeMap::new(),
        });
        s.fencing = Some(FencingView {
            runs: BTreeMap::from([
                (FenceOutcome::Success, 3),
                (FenceOutcome::Failed, 1),
                (FenceOutcome::Timeout, 0),
            ]),
            last: Some(FenceRun {
                target: "main-1".into(),
                outcome: FenceOutcome::Failed,
                at,
                duration_ms: 120,
                detail: "exit status 1: power controller refused".into(),
            }),
        });
        s
    }

    #[test]
    fn leases_quorum_and_fencing_objects_without_them() {
        let t = build(&snapshot(), &info());
        let r = "1.3.6.1.4.1.32473.36";
        let zero = || Cell::Fixed(Value::Octets(no_date_and_time()));
        let table: Vec<(String, Cell)> = vec![
            (format!("{r}.1.2.1.15.1"), zero()),
            (format!("{r}.1.2.1.15.2"), zero()),
            (format!("{r}.1.2.1.16.1"), int(1)),
            (format!("{r}.1.5.1.0"), int(1)),
            (format!("{r}.1.5.2.0"), text("")),
            (format!("{r}.1.5.3.0"), zero()),
            (format!("{r}.1.5.4.0"), text("")),
            (format!("{r}.1.5.5.0"), zero()),
            (format!("{r}.1.6.1.0"), int(2)),
            (format!("{r}.1.6.2.0"), Cell::Fixed(Value::Counter32(0))),
            (format!("{r}.1.6.3.0"), Cell::Fixed(Value::Counter32(0))),
            (format!("{r}.1.6.4.0"), Cell::Fixed(Value::Counter32(0))),
            (format!("{r}.1.6.5.0"), text("")),
            (format!("{r}.1.6.6.0"), int(1)),
            (format!("{r}.1.6.7.0"), zero()),
            (format!("{r}.1.6.8.0"), text("")),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
    }

    #[test]
    fn leases_quorum_and_fencing_objects_with_them() {
        let at = 1_700_000_100_000;
        let t = build(&with_safety(at), &info());
        let r = "1.3.6.1.4.1.32473.36";
        let date = |ms| Cell::Fixed(Value::Octets(date_and_time(ms)));
        let table: Vec<(String, Cell)> = vec![
            (format!("{r}.1.2.1.15.1"), date(at + 30_000)),
            (
                format!("{r}.1.2.1.15.2"),
                Cell::Fixed(Value::Octets(no_date_and_time())),
            ),
            (format!("{r}.1.2.1.16.1"), int(2)),
            (format!("{r}.1.2.1.16.2"), int(1)),
            (format!("{r}.1.5.1.0"), int(3)),
            (format!("{r}.1.5.2.0"), text("etcd")),
            (format!("{r}.1.5.3.0"), date(at)),
            (format!("{r}.1.5.4.0"), text("connection refused")),
            (format!("{r}.1.5.5.0"), date(at + 10_000)),
            (format!("{r}.1.6.1.0"), int(1)),
            (format!("{r}.1.6.2.0"), Cell::Fixed(Value::Counter32(3))),
            (format!("{r}.1.6.3.0"), Cell::Fixed(Value::Counter32(1))),
            (format!("{r}.1.6.4.0"), Cell::Fixed(Value::Counter32(0))),
            (format!("{r}.1.6.5.0"), text("main-1")),
            (format!("{r}.1.6.6.0"), int(3)),
            (format!("{r}.1.6.7.0"), date(at)),
            (
                format!("{r}.1.6.8.0"),
                text("exit status 1: power controller refused"),
            ),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
        let mut up = with_safety(at);
        if let Some(c) = up.coordination.as_mut() {
            c.up = true;
        }
        assert_eq!(coordination_status(&up), 2);
        assert_eq!(fence_outcome_value(Some(FenceOutcome::Timeout)), 4);
        assert_eq!(fence_outcome_value(Some(FenceOutcome::Success)), 2);
        assert_eq!(
            lease_enforced_by_value(Some(&crate::snapshot::LeaseView {
                until: 0,
                enforced_by: "agent"
            })),
            3
        );
    }

    #[test]
    fn coordination_and_fencing_alarms_take_their_indexes() {
        let mut s = snapshot();
        s.redundancy = Redundancy {
            alarms: vec![
                crate::group::coordination_lost("backup-1", "etcd", "connection refused", 5),
                crate::group::fencing_failed("backup-1", "main-1", "exit status 1", 6),
            ],
        };
        let t = build(&s, &info());
        let r = "1.3.6.1.4.1.32473.36";
        // two members: coordinationLost at 2 + 4, fencingFailed at 2 + 5
        let table = [
            (format!("{r}.1.3.1.2.6"), int(6)),
            (format!("{r}.1.3.1.5.6"), int(0)),
            (format!("{r}.1.3.1.2.7"), int(7)),
            (format!("{r}.1.3.1.5.7"), int(1)),
            (format!("{r}.1.3.1.6.7"), int(2)),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
    }

    #[test]
    fn a_display_string_is_cut_to_255_octets_at_a_character_boundary() {
        let octets = |v: Value| match v {
            Value::Octets(b) => String::from_utf8(b.to_vec()).expect("UTF-8"),
            other => panic!("{other:?}"),
        };
        // (text, what is sent)
        let long = "x".repeat(300);
        let accented = format!("{}é{}", "y".repeat(251), "z".repeat(10));
        let rows = [
            ("short".to_string(), "short".to_string()),
            ("a".repeat(255), "a".repeat(255)),
            (long, format!("{}...", "x".repeat(252))),
            // é takes octets 252-253: cut before it rather than through it.
            (accented, format!("{}...", "y".repeat(251))),
        ];
        for (text, want) in rows {
            let got = octets(Value::display(&text));
            assert!(got.len() <= 255, "{}", got.len());
            assert_eq!(got, want);
        }
    }

    #[test]
    fn group_alarms_take_the_indexes_after_the_members() {
        let mut s = snapshot();
        let alarm = |kind, reason: &str| Alarm {
            kind,
            raised_at: 5,
            reason: reason.into(),
            main: None,
            backup: None,
        };
        s.redundancy = Redundancy {
            alarms: vec![
                alarm(
                    AlarmKind::NoStandbyBackup,
                    "no backup could take over main-1",
                ),
                alarm(
                    AlarmKind::GroupDefinitionMismatch,
                    "main-1's group definition differs from backup-1's",
                ),
            ],
        };
        let t = build(&s, &info());
        let r = "1.3.6.1.4.1.32473.36";
        // (rgAlarmType.i, its type) and (rgAlarmReason.i, its reason): two members, so 3 and 4.
        let table = [
            (format!("{r}.1.3.1.2.3"), int(3)),
            (format!("{r}.1.3.1.5.3"), int(0)),
            (
                format!("{r}.1.3.1.4.3"),
                text("no backup could take over main-1"),
            ),
            (format!("{r}.1.3.1.2.4"), int(4)),
            (
                format!("{r}.1.3.1.4.4"),
                text("main-1's group definition differs from backup-1's"),
            ),
        ];
        for (o, want) in table {
            assert_eq!(t.get(&oid(&o)), Some(&want), "value of {o}");
        }
    }

    #[test]
    fn getnext_walks_in_oid_order_and_crosses_subtrees() {
        let t = build(&snapshot(), &info());
        let entries = t.entries();
        assert!(
            entries.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        // from nothing to the first object
        assert_eq!(
            t.next(&[]).map(|(o, _)| o.clone()),
            Some(oid("1.3.6.1.2.1.1.1.0"))
        );
        // a column ends: the next column's first row
        assert_eq!(
            t.next(&oid("1.3.6.1.4.1.32473.36.1.2.1.2.2"))
                .map(|(o, _)| o.clone()),
            Some(oid("1.3.6.1.4.1.32473.36.1.2.1.3.1"))
        );
        // a prefix that is not an instance
        assert_eq!(
            t.next(&oid("1.3.6.1.4.1.32473.36")).map(|(o, _)| o.clone()),
            Some(oid("1.3.6.1.4.1.32473.36.1.1.1.0"))
        );
        // system ends, snmp follows
        assert_eq!(
            t.next(&oid("1.3.6.1.2.1.1.9.1.4.5"))
                .map(|(o, _)| o.clone()),
            Some(oid("1.3.6.1.2.1.11.1.0"))
        );
        // after the last object: the end of the MIB view
        let last = entries.last().map(|(o, _)| o.clone()).expect("not empty");
        assert_eq!(last, oid("1.3.6.1.6.3.15.1.1.6.0"));
        assert!(t.next(&last).is_none());
        // walking with next visits every entry once
        let mut seen = 0;
        let mut at: Oid = Vec::new();
        while let Some((o, _)) = t.next(&at) {
            at = o.clone();
            seen += 1;
        }
        assert_eq!(seen, t.len());
    }
}
