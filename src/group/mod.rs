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
//!
//! This file holds the view, merging and the digests heartbeats carry; `record` the member
//! records, `operation` the operations and their refusals, `plan` the operations' effects and
//! preconditions, `coverage` which Mains a Backup could take over now, `definition` the group
//! definition every member's configuration must list alike, `alarm` the alarms derived from
//! the records, `fencing` the fence gate between a failover decision and the failover. All
//! pure.

mod alarm;
mod claims;
mod coverage;
mod definition;
mod failover;
mod fencing;
mod handshake;
pub mod lease;
mod liveness;
mod maintenance;
mod operation;
mod plan;
mod record;
#[cfg(test)]
mod sim;
mod status;

pub use alarm::{
    coordination_lost, fencing_failed, no_standby_since, state_not_writable, Alarm, AlarmKind,
    AlarmState,
};
pub use claims::{
    claim_verdict, claimed_members, resolve, Claim, ClaimAnswer, ClaimRefused, Claims, Resolution,
};
pub use coverage::{Refused, Uncovered};
pub use definition::{Agreement, DefinedMember, Definition, Mismatch, Noted};
pub use failover::{Backoff, Failover, Sight};
pub use fencing::{fence_needed, FenceGate, FenceNext, FenceVerdict, GateTick};
pub use handshake::{
    after_apply_failure, judge_offer, judge_offer_planned, own_record_rewritten,
    release_not_awaited, Absorbed, Adopted, AfterApplyFailure, Offer,
};
pub use liveness::{Liveness, Mono, PAUSE_GAP};
pub use maintenance::Maintenance;
pub use operation::{OpKind, Operation, Plan, Precondition, Refusal, Requester};
pub use plan::coordinator_of;
pub use record::{
    precedence, MemberRecord, OpStamp, OperState, Publishes, Replication, ReplicationResult, Role,
    Stamp, TakeoverMark, DEFAULT_EXTRA_ADDRESS,
};
pub use status::check_failing;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. The state machine never reads a clock; callers pass this in.
pub type Millis = u64;

/// How an agent sees each member right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reachability {
    Local,
    Reachable,
    Unreachable,
}

/// The group as one agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub group: String,
    /// In configuration order.
    pub members: Vec<MemberRecord>,
    /// The group's maintenance mode (no automatic failover while on); absent from state
    /// files written before it existed: off.
    #[serde(default)]
    pub maintenance: Maintenance,
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
        if incoming.precedence() > held.precedence() {
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
                let newer = r.precedence() > record::precedence(&d.name, d.version, &d.writer)
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
                    record::precedence(&d.name, d.version, &d.writer) > r.precedence()
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

/// A view for tests: the members named, a name starting with "main" a Main with auto-failover
/// on, any other a Backup; member i on 192.0.2.(i+1), Mains' extra address the default.
#[cfg(test)]
pub(crate) fn test_view(names: &[&str]) -> GroupView {
    let record = |(i, name): (usize, &&str)| {
        let main = name.starts_with("main");
        let role = if main { Role::Main } else { Role::Backup };
        let address = IpAddr::from([192, 0, 2, i as u8 + 1]);
        let extra = if main {
            DEFAULT_EXTRA_ADDRESS
        } else {
            IpAddr::from([10, 0, 4, i as u8 + 1])
        };
        MemberRecord::initial(name, role, address, extra, main)
    };
    GroupView {
        group: "g".into(),
        members: names.iter().enumerate().map(record).collect(),
        maintenance: Maintenance::default(),
    }
}

#[cfg(test)]
mod tests;
