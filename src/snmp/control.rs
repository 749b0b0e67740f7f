//! SNMP SET on the control columns of `rgMemberTable` and on `rgMaintenanceMode` turned into
//! operations of the one command path: which object, which value, which error when it cannot be; and the dry run of an
//! operation's preconditions against the published snapshot, so that a SET that would be
//! refused fails its test phase with `inconsistentValue`. Pure.

use std::collections::BTreeSet;

use crate::group::{GroupView, Millis, OperState, Operation, Reachability, Refusal, Role};
use crate::snapshot::Snapshot;
use crate::snmp::mib::{maintenance_arc, member_col, Value};

/// Why a SET varbind is refused before anything is asked of the agent. Each maps to the SNMP
/// error status of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// The object exists and is read-only, or is no object of this agent.
    NotWritable,
    /// A writable column, but no such row.
    NoCreation,
    WrongType,
    WrongValue,
    /// The value names no suitable member, or a precondition fails.
    InconsistentValue(String),
}

/// The operation a SET of `value` at `oid` asks for.
pub fn decode_set(
    snap: &Snapshot,
    root: &[u32],
    oid: &[u32],
    value: &Value,
) -> Result<Operation, SetError> {
    let Some(rest) = oid.strip_prefix(root) else {
        return Err(SetError::NotWritable);
    };
    // root.1.7.1.0: rgMaintenanceMode, true(1) or false(2).
    if rest == [1, 7, maintenance_arc::MODE, 0] {
        return match value {
            Value::Integer(v @ (1 | 2)) => Ok(Operation::SetMaintenance { enabled: *v == 1 }),
            Value::Integer(_) => Err(SetError::WrongValue),
            _ => Err(SetError::WrongType),
        };
    }
    // root.1.2.1.COL.INDEX
    let (col, index) = match rest {
        [1, 2, 1, col, index] => (*col, *index),
        _ => return Err(SetError::NotWritable),
    };
    let writable = [
        member_col::AUTO_FAILOVER,
        member_col::MANUAL_TAKEOVER,
        member_col::REVERSE_TAKEOVER,
    ];
    if !writable.contains(&col) {
        return Err(SetError::NotWritable);
    }
    let Some(row) = usize::try_from(index)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| snap.members.get(i))
    else {
        return Err(SetError::NoCreation);
    };
    let Value::Integer(v) = value else {
        return Err(SetError::WrongType);
    };
    let name = row.record.name.clone();
    match col {
        member_col::AUTO_FAILOVER => match v {
            1 | 2 => Ok(Operation::SetAutoFailover {
                member: name,
                enabled: *v == 1,
            }),
            _ => Err(SetError::WrongValue),
        },
        member_col::REVERSE_TAKEOVER => match v {
            1 => Ok(Operation::ReverseTakeover { main: name }),
            _ => Err(SetError::WrongValue),
        },
        _ => {
            // member_col::MANUAL_TAKEOVER: the Main's rgMemberIndex.
            if *v < 0 {
                return Err(SetError::WrongValue);
            }
            let main = usize::try_from(*v)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| snap.members.get(i));
            match main {
                Some(m) if m.record.role == Role::Main => Ok(Operation::Takeover {
                    backup: name,
                    main: m.record.name.clone(),
                }),
                Some(m) => Err(SetError::InconsistentValue(format!(
                    "rgMemberIndex {v} is {}, which is not a configured main",
                    m.record.name
                ))),
                None if *v == 0 => Err(SetError::InconsistentValue(
                    "0 names no main: set the rgMemberIndex of the main to take over".into(),
                )),
                None => Err(SetError::InconsistentValue(format!(
                    "no member has rgMemberIndex {v}"
                ))),
            }
        }
    }
}

/// The name of a control object instance, for logs and the event history
/// (`rgMemberManualTakeover.2`); the numeric OID for anything else.
pub fn describe(root: &[u32], oid: &[u32]) -> String {
    if oid.strip_prefix(root) == Some(&[1, 7, maintenance_arc::MODE, 0]) {
        return "rgMaintenanceMode.0".into();
    }
    if let Some([1, 2, 1, col, index]) = oid.strip_prefix(root) {
        let name = match *col {
            member_col::AUTO_FAILOVER => Some("rgMemberAutoFailover"),
            member_col::MANUAL_TAKEOVER => Some("rgMemberManualTakeover"),
            member_col::REVERSE_TAKEOVER => Some("rgMemberReverseTakeover"),
            _ => None,
        };
        if let Some(name) = name {
            return format!("{name}.{index}");
        }
    }
    oid.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks `op`'s preconditions against the snapshot as the group state machine would (a member
/// shown `unknown` counts as unreachable). The coordinator checks again when the operation is
/// submitted; this only lets a SET that is sure to be refused fail in its test phase.
pub fn dry_run(snap: &Snapshot, op: &Operation, now: Millis) -> Result<(), Refusal> {
    if let Operation::SetMaintenance { .. } = op {
        return Ok(()); // a group setting: no precondition (its save is the only way to fail)
    }
    let view = GroupView {
        group: snap.group.clone(),
        members: snap.members.iter().map(|m| m.record.clone()).collect(),
        maintenance: Default::default(),
    };
    let reach = |name: &str| match snap.member(name) {
        Some(m) if snap.is_local(m) => Reachability::Local,
        Some(m) if m.state == OperState::Unknown => Reachability::Unreachable,
        _ => Reachability::Reachable,
    };
    view.plan(
        op,
        now,
        &snap.local,
        &BTreeSet::new(),
        &reach,
        &snap.mismatched,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snmp::mib::tests::{snapshot, taken_over, ROOT};

    fn oid(col: u32, index: u32) -> Vec<u32> {
        crate::snmp::mib::member_cell(ROOT, col, index)
    }

    #[test]
    fn decodes_the_control_columns() {
        let s = snapshot();
        let i = Value::Integer;
        let cases: Vec<(Vec<u32>, Value, Result<Operation, SetError>)> = vec![
            (
                oid(member_col::MANUAL_TAKEOVER, 2),
                i(1),
                Ok(Operation::Takeover {
                    backup: "backup-1".into(),
                    main: "main-1".into(),
                }),
            ),
            (
                oid(member_col::REVERSE_TAKEOVER, 1),
                i(1),
                Ok(Operation::ReverseTakeover {
                    main: "main-1".into(),
                }),
            ),
            (
                oid(member_col::AUTO_FAILOVER, 1),
                i(2),
                Ok(Operation::SetAutoFailover {
                    member: "main-1".into(),
                    enabled: false,
                }),
            ),
            (
                oid(member_col::REVERSE_TAKEOVER, 1),
                i(2),
                Err(SetError::WrongValue),
            ),
            (
                oid(member_col::AUTO_FAILOVER, 1),
                i(3),
                Err(SetError::WrongValue),
            ),
            (
                oid(member_col::MANUAL_TAKEOVER, 2),
                i(-1),
                Err(SetError::WrongValue),
            ),
            (
                oid(member_col::MANUAL_TAKEOVER, 2),
                Value::text("1"),
                Err(SetError::WrongType),
            ),
            (
                oid(member_col::MANUAL_TAKEOVER, 3),
                i(1),
                Err(SetError::NoCreation),
            ),
            (
                oid(member_col::MANUAL_TAKEOVER, 0),
                i(1),
                Err(SetError::NoCreation),
            ),
            (
                oid(member_col::NAME, 1),
                Value::text("x"),
                Err(SetError::NotWritable),
            ),
            (
                crate::snmp::mib::scalar(ROOT, 1),
                Value::text("x"),
                Err(SetError::NotWritable),
            ),
            (
                vec![1, 3, 6, 1, 2, 1, 1, 5, 0],
                Value::text("x"),
                Err(SetError::NotWritable),
            ),
            (
                crate::snmp::mib::maintenance_scalar(ROOT, maintenance_arc::MODE),
                i(1),
                Ok(Operation::SetMaintenance { enabled: true }),
            ),
            (
                crate::snmp::mib::maintenance_scalar(ROOT, maintenance_arc::MODE),
                i(2),
                Ok(Operation::SetMaintenance { enabled: false }),
            ),
            (
                crate::snmp::mib::maintenance_scalar(ROOT, maintenance_arc::MODE),
                i(0),
                Err(SetError::WrongValue),
            ),
            (
                crate::snmp::mib::maintenance_scalar(ROOT, maintenance_arc::MODE),
                Value::text("on"),
                Err(SetError::WrongType),
            ),
            (
                crate::snmp::mib::maintenance_scalar(ROOT, maintenance_arc::SINCE),
                i(1),
                Err(SetError::NotWritable),
            ),
            (
                crate::snmp::mib::member_cell(ROOT, member_col::MANUAL_TAKEOVER, 2)
                    .into_iter()
                    .chain([7])
                    .collect(),
                i(1),
                Err(SetError::NotWritable),
            ),
        ];
        for (o, v, want) in cases {
            assert_eq!(decode_set(&s, ROOT, &o, &v), want, "SET {o:?} = {v:?}");
        }
        for (v, why) in [
            (0, "0 names no main"),
            (2, "not a configured main"),
            (9, "no member"),
        ] {
            match decode_set(&s, ROOT, &oid(member_col::MANUAL_TAKEOVER, 2), &i(v)) {
                Err(SetError::InconsistentValue(m)) => assert!(m.contains(why), "{v}: {m}"),
                other => panic!("SET of {v}: {other:?}"),
            }
        }
    }

    #[test]
    fn dry_run_applies_the_preconditions() {
        let take = Operation::Takeover {
            backup: "backup-1".into(),
            main: "main-1".into(),
        };
        assert_eq!(dry_run(&snapshot(), &take, 10), Ok(()));
        let after = taken_over(5);
        match dry_run(&after, &take, 10) {
            Err(Refusal::Preconditions(p)) => {
                let codes: Vec<&str> = p.iter().map(|p| p.code()).collect();
                assert!(codes.contains(&"backup_not_standby"), "{codes:?}");
                assert!(codes.contains(&"main_not_main"), "{codes:?}");
            }
            other => panic!("{other:?}"),
        }
        let reverse = Operation::ReverseTakeover {
            main: "main-1".into(),
        };
        assert_eq!(dry_run(&after, &reverse, 10), Ok(()));
        assert!(dry_run(&snapshot(), &reverse, 10).is_err());
        // an unreachable backup is not in standby
        let mut unknown = snapshot();
        unknown.members[1].state = OperState::Unknown;
        unknown.local = "main-1".into(); // backup-1 is not this agent
        assert!(dry_run(&unknown, &take, 10).is_err());
        // a member whose configuration lists another group (its row index may mean another
        // member there): refused in the test phase
        let mut differs = snapshot();
        differs.mismatched = ["main-1".to_string()].into();
        assert_eq!(
            dry_run(&differs, &take, 10),
            Err(Refusal::Preconditions(vec![
                crate::group::Precondition::GroupDefinitionMismatch
            ]))
        );
    }
}
