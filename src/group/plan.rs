//! Planning an operation against a view: its preconditions and the records it writes, in the
//! order they must be applied (whoever releases an address before whoever takes it). One
//! function per operation, sharing the precondition checks. Pure.

use std::collections::BTreeSet;

use super::{
    GroupView, MemberRecord, Millis, OpKind, OpStamp, OperState, Operation, Plan, Precondition,
    Reachability, Refusal, Role, TakeoverMark,
};

/// How far a takeover or failover moves the Main's record version: further than any number
/// of writes the Main can make by itself while it cannot be reached (only its auto-failover
/// flag, one version each), so its release wins over them when it returns, whoever's records
/// it hears first.
pub const RELEASE_VERSION_STEP: u64 = 1 << 20;

impl GroupView {
    /// Plans `op` against this view. `busy` names members with an operation under way;
    /// `reach` tells which members this agent can reach; `mismatched` names the members whose
    /// group definition differs from this agent's (see [`super::Agreement`]): no operation
    /// involving one is carried out. All failed preconditions are reported together. Nothing
    /// is changed: the caller applies the plan's records.
    pub fn plan(
        &self,
        op: &Operation,
        now: Millis,
        writer: &str,
        busy: &BTreeSet<String>,
        reach: &dyn Fn(&str) -> Reachability,
        mismatched: &BTreeSet<String>,
    ) -> Result<Plan, Refusal> {
        if let Some(refusal) = op.malformed() {
            return Err(refusal);
        }
        let names = op.named_members();
        for name in &names {
            self.require(name)?;
        }
        if names.len() == 2 && names[0] == names[1] {
            return Err(Refusal::Invalid(format!(
                "the operation names {:?} twice",
                names[0]
            )));
        }
        // Unique per operation: two operations by one coordinator in the same millisecond
        // still differ in kind or in the versions of the records they start from.
        let versions: u64 = names
            .iter()
            .filter_map(|n| self.member(n))
            .map(|r| r.version)
            .sum();
        let mut p = Planning {
            view: self,
            writer,
            stamp: OpStamp {
                id: format!("{writer}-{now}-{}-{versions}", op.kind()),
                kind: op.kind(),
                at: now,
            },
            busy,
            reach,
            failed: BTreeSet::new(),
        };
        p.check(
            names.iter().any(|n| busy.contains(*n)),
            Precondition::OperationInProgress,
        );
        // Only the detector submits a failover: one decided just before maintenance mode
        // was switched on (or by an agent that has not heard of it) is refused here.
        p.check(
            matches!(op, Operation::Failover { .. }) && self.maintenance.enabled,
            Precondition::MaintenanceMode,
        );
        let updates = match op {
            Operation::Takeover { backup, main } | Operation::Failover { backup, main } => {
                p.takeover(op.kind(), backup, main, now)?
            }
            Operation::ReverseTakeover { main } => p.reverse_takeover(main)?,
            Operation::Reconfigure { main, backup } => p.reconfigure(main, backup)?,
            Operation::ReplaceTakeover { main, .. } => p.replace_takeover(main)?,
            Operation::SetAutoFailover { member, enabled } => {
                p.set_auto_failover(member, *enabled)?
            }
            Operation::SetMaintenance { .. } => {
                return Err(Refusal::Invalid(
                    "maintenance mode is a group setting, not an operation on members".into(),
                ))
            }
        };
        // Every member the request names or the plan writes: a member that lists the group
        // otherwise would apply records (and read row indexes) against another group.
        p.check(
            names
                .iter()
                .copied()
                .chain(updates.iter().map(|u| u.name.as_str()))
                .any(|n| mismatched.contains(n)),
            Precondition::GroupDefinitionMismatch,
        );
        // Every record whose state the operation changes says when: now.
        let updates: Vec<MemberRecord> = updates
            .into_iter()
            .map(|u| match self.member(&u.name) {
                Some(before) => u.state_written(before, now),
                None => u,
            })
            .collect();
        if p.failed.is_empty() {
            let planned_from = updates
                .iter()
                .map(|u| {
                    self.member(&u.name)
                        .map_or((0, String::new()), |r| (r.version, r.writer.clone()))
                })
                .collect();
            Ok(Plan {
                id: p.stamp.id,
                operation: op.clone(),
                updates,
                planned_from,
            })
        } else {
            Err(Refusal::Preconditions(p.failed.into_iter().collect()))
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

/// The agent that carries an operation out: the Backup for a takeover, failover or
/// reconfigure, the Main for a reverse takeover, the Main's new server (the replacement,
/// running as the Main) for a replace takeover, the member itself for auto-failover.
/// Maintenance mode names no member: no agent coordinates it (the agent asked sets it and
/// never forwards it), so its coordinator is no member's name (empty).
pub fn coordinator_of(op: &Operation) -> &str {
    match op {
        Operation::Takeover { backup, .. } | Operation::Failover { backup, .. } => backup,
        Operation::ReverseTakeover { main } => main,
        Operation::Reconfigure { backup, .. } => backup,
        Operation::ReplaceTakeover { main, .. } => main,
        Operation::SetAutoFailover { member, .. } => member,
        Operation::SetMaintenance { .. } => "",
    }
}

/// One operation being planned: the view it is planned against, the stamp its records get,
/// and the preconditions found failing so far.
struct Planning<'a> {
    view: &'a GroupView,
    writer: &'a str,
    stamp: OpStamp,
    busy: &'a BTreeSet<String>,
    reach: &'a dyn Fn(&str) -> Reachability,
    failed: BTreeSet<Precondition>,
}

impl<'a> Planning<'a> {
    fn member(&self, name: &str) -> Result<&'a MemberRecord, Refusal> {
        self.view.require(name)
    }

    fn unreachable(&self, name: &str) -> bool {
        (self.reach)(name) == Reachability::Unreachable
    }

    fn check(&mut self, fails: bool, p: Precondition) {
        if fails {
            self.failed.insert(p);
        }
    }

    /// The next version of `r`, written by this operation.
    fn bump(&self, r: &MemberRecord) -> MemberRecord {
        let mut r = r.clone();
        r.version += 1;
        r.writer = self.writer.to_string();
        r.last_op = Some(self.stamp.clone());
        r
    }

    /// The Backup acting for a Main must answer, and be free, to hand the address back.
    fn check_acting_backup(&mut self, b: &MemberRecord) {
        self.check(self.unreachable(&b.name), Precondition::BackupUnreachable);
        self.check(
            self.busy.contains(&b.name),
            Precondition::OperationInProgress,
        );
    }

    /// Takeover and failover: the Main releases its address (offline on its extra address,
    /// auto-failover off), then the Backup takes it; both carry the takeover mark.
    fn takeover(
        &mut self,
        kind: OpKind,
        backup: &str,
        main: &str,
        now: Millis,
    ) -> Result<Vec<MemberRecord>, Refusal> {
        let b = self.member(backup)?;
        let m = self.member(main)?;
        self.check(b.role != Role::Backup, Precondition::BackupNotBackup);
        self.check(
            b.state != OperState::Standby || self.unreachable(backup),
            Precondition::BackupNotStandby,
        );
        self.check(b.replicated(main).is_none(), Precondition::NeverReplicated);
        self.check(
            m.role != Role::Main || m.takeover.is_some() || m.state == OperState::Offline,
            Precondition::MainNotMain,
        );
        self.check(
            !b.failing_checks.is_empty(),
            Precondition::DeviceCheckFailed,
        );
        let mark = TakeoverMark {
            kind,
            main: main.to_string(),
            backup: backup.to_string(),
            at: now,
        };
        let mut m2 = released(self.bump(m));
        // The Main may not be asked (a failover): whatever it writes by itself while cut off
        // (its auto-failover flag, one version at a time) must not outrank its release.
        m2.version = m.version + RELEASE_VERSION_STEP;
        m2.takeover = Some(mark.clone());
        let mut b2 = self.bump(b);
        b2.state = OperState::Online;
        b2.current_address = Some(m.configured_address);
        b2.takeover = Some(mark);
        b2.acting_for = Some(main.to_string());
        Ok(vec![m2, b2])
    }

    /// Reverse takeover: the acting Backup returns to standby on its own address, then the
    /// Main takes its address back.
    fn reverse_takeover(&mut self, main: &str) -> Result<Vec<MemberRecord>, Refusal> {
        let m = self.member(main)?;
        self.check(m.role != Role::Main, Precondition::MainNotMain);
        Ok(match self.view.acting_backup(main) {
            // An interrupted takeover: the Main released its address, but no Backup
            // took it. The Main may take it back if nobody holds it.
            None if m.takeover.is_some() => {
                let held =
                    self.view.members.iter().any(|o| {
                        o.name != m.name && o.current_address == Some(m.configured_address)
                    });
                self.check(held, Precondition::BackupNotActingForMain);
                vec![restored_main(self.bump(m))]
            }
            None => {
                self.check(true, Precondition::MainNotTakenOver);
                vec![]
            }
            Some(b) => {
                self.check_acting_backup(b);
                vec![restored_backup(self.bump(b)), restored_main(self.bump(m))]
            }
        })
    }

    /// Reconfigure: the roles swap. B becomes the configured Main on M's address (which it
    /// already holds); M becomes a configured Backup on B's former address, in standby.
    fn reconfigure(&mut self, main: &str, backup: &str) -> Result<Vec<MemberRecord>, Refusal> {
        let m = self.member(main)?;
        let b = self.member(backup)?;
        self.check(m.role != Role::Main, Precondition::MainNotMain);
        self.check(b.role != Role::Backup, Precondition::BackupNotBackup);
        self.check(!m.is_taken_over(), Precondition::MainNotTakenOver);
        self.check(
            b.acting_for.as_deref() != Some(main),
            Precondition::BackupNotActingForMain,
        );
        let mut b2 = restored_main(with_identity(
            self.bump(b),
            Role::Main,
            m.configured_address,
        ));
        let mut m2 = restored_backup(with_identity(
            self.bump(m),
            Role::Backup,
            b.configured_address,
        ));
        m2.auto_failover = false;
        // B goes on serving from its replica of M: that is the data it publishes now.
        b2.serves_replica_of = Some(main.to_string());
        m2.serves_replica_of = None;
        // B keeps M's address throughout; M only moves from its extra address to B's
        // former one, which B gave up when it took over. No address is held twice.
        Ok(vec![b2, m2])
    }

    /// Replace takeover: the defective Main's server was replaced by a new one that runs its
    /// member configuration (same name and addresses) and joined the group as the taken-over
    /// Main (offline on its extra address). The acting Backup returns to standby on its own
    /// address first; then the Main, on the new server, takes its address back and goes
    /// online, serving its own `data_dir`. Between the two steps the coordinator (the new
    /// server) copies the data the Backup served into that `data_dir`: that copy is the
    /// agent's (it is I/O), the records are these.
    fn replace_takeover(&mut self, main: &str) -> Result<Vec<MemberRecord>, Refusal> {
        let m = self.member(main)?;
        self.check(m.role != Role::Main, Precondition::MainNotMain);
        let Some(b) = self.view.acting_backup(main) else {
            // No Backup acts for it: no data to take over from (an interrupted takeover is
            // restored by a reverse takeover).
            self.check(true, Precondition::MainNotTakenOver);
            return Ok(vec![]);
        };
        self.check_acting_backup(b);
        let mut m2 = restored_main(self.bump(m));
        // The new server serves the data copied into its own data_dir.
        m2.serves_replica_of = None;
        Ok(vec![restored_backup(self.bump(b)), m2])
    }

    fn set_auto_failover(
        &mut self,
        member: &str,
        enabled: bool,
    ) -> Result<Vec<MemberRecord>, Refusal> {
        let mut r2 = self.bump(self.member(member)?);
        r2.auto_failover = enabled;
        Ok(vec![r2])
    }
}

/// `r` with another configured role and address (reconfigure).
fn with_identity(
    mut r: MemberRecord,
    role: Role,
    configured_address: std::net::IpAddr,
) -> MemberRecord {
    r.role = role;
    r.configured_address = configured_address;
    r
}

/// A Main that gave its address up: offline on its extra address, auto-failover off.
fn released(mut m: MemberRecord) -> MemberRecord {
    m.state = OperState::Offline;
    m.current_address = Some(m.extra_address);
    m.auto_failover = false;
    m
}

/// `r` back on its configured address in `state`, takeover mark and acting-for cleared.
fn restored(mut r: MemberRecord, state: OperState) -> MemberRecord {
    r.state = state;
    r.current_address = Some(r.configured_address);
    r.takeover = None;
    r.acting_for = None;
    r
}

fn restored_backup(b: MemberRecord) -> MemberRecord {
    restored(b, OperState::Standby)
}

fn restored_main(m: MemberRecord) -> MemberRecord {
    restored(m, OperState::Online)
}
