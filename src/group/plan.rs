//! Planning an operation against a view: its preconditions and the records it writes, in the
//! order they must be applied. Pure.

use std::collections::BTreeSet;

use super::{
    GroupView, MemberRecord, Millis, OpStamp, OperState, Operation, Plan, Precondition,
    Reachability, Refusal, Role, TakeoverMark,
};

impl GroupView {
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
