//! Table and property tests of the pure group state machine.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// main-1, main-2 (extra 10.0.3.7), backup-1, backup-2.
fn group() -> GroupView {
    GroupView {
        group: "g".into(),
        members: vec![
            MemberRecord::initial(
                "main-1",
                Role::Main,
                ip("192.0.2.1"),
                DEFAULT_EXTRA_ADDRESS,
                true,
            ),
            MemberRecord::initial("main-2", Role::Main, ip("192.0.2.2"), ip("10.0.3.7"), true),
            MemberRecord::initial(
                "backup-1",
                Role::Backup,
                ip("192.0.2.101"),
                ip("10.0.4.1"),
                false,
            ),
            MemberRecord::initial(
                "backup-2",
                Role::Backup,
                ip("192.0.2.102"),
                ip("10.0.4.2"),
                false,
            ),
        ],
        maintenance: Default::default(),
    }
}

fn replicated(view: &mut GroupView, backup: &str, main: &str, at: Millis) {
    let b = view
        .members
        .iter_mut()
        .find(|m| m.name == backup)
        .expect("member");
    let rep = b.replication.get_or_insert(Replication {
        at,
        result: ReplicationResult::Success,
        main: main.into(),
        last_success: BTreeMap::new(),
        error: None,
    });
    rep.at = at;
    rep.result = ReplicationResult::Success;
    rep.last_success.insert(main.into(), at);
    b.status_version += 1;
}

fn all_reachable(_: &str) -> Reachability {
    Reachability::Reachable
}

fn plan(view: &GroupView, op: Operation) -> Result<Plan, Refusal> {
    view.plan(
        &op,
        1_000,
        "coordinator",
        &BTreeSet::new(),
        &all_reachable,
        &BTreeSet::new(),
    )
}

/// Plans `op` as an agent that cannot reach `unreachable`.
fn plan_without(view: &GroupView, op: Operation, unreachable: &str) -> Result<Plan, Refusal> {
    let reach = |m: &str| {
        if m == unreachable {
            Reachability::Unreachable
        } else {
            Reachability::Reachable
        }
    };
    view.plan(&op, 5, "c", &BTreeSet::new(), &reach, &BTreeSet::new())
}

fn takeover(backup: &str, main: &str) -> Operation {
    Operation::Takeover {
        backup: backup.into(),
        main: main.into(),
    }
}

fn reconfigure(main: &str, backup: &str) -> Operation {
    Operation::Reconfigure {
        main: main.into(),
        backup: backup.into(),
    }
}

fn replace(main: &str, replacement: &str) -> Operation {
    Operation::ReplaceTakeover {
        main: main.into(),
        replacement: replacement.into(),
    }
}

fn reverse(main: &str) -> Operation {
    Operation::ReverseTakeover { main: main.into() }
}

/// `name`'s operational state and current address in `view`.
fn placed(view: &GroupView, name: &str) -> (OperState, Option<IpAddr>) {
    let r = view.member(name).expect("member");
    (r.state, r.current_address)
}

/// The group once every Backup has replicated every Main: redundant.
fn redundant_group() -> GroupView {
    let mut v = group();
    for b in ["backup-1", "backup-2"] {
        for m in ["main-1", "main-2"] {
            replicated(&mut v, b, m, 10);
        }
    }
    assert!(v
        .alarms(&all_reachable, &Agreement::default(), None, 10)
        .is_empty());
    v
}

/// A redundant group after backup-1 took main-1 over.
fn taken_over_group() -> GroupView {
    let mut v = redundant_group();
    let p = plan(&v, takeover("backup-1", "main-1")).expect("takeover accepted");
    v.apply(&p);
    v
}

/// The reasons of the alarms of `v` (every member reachable, no definition differs).
fn alarm_reasons(v: &GroupView) -> Vec<String> {
    v.alarms(&all_reachable, &Agreement::default(), None, 5_000)
        .into_iter()
        .map(|a| a.reason)
        .collect()
}

#[test]
fn takeover_moves_addresses_sets_flags_and_raises_the_alarm() {
    let v = taken_over_group();
    let m = v.member("main-1").expect("main");
    let b = v.member("backup-1").expect("backup");
    assert_eq!(m.state, OperState::Offline);
    assert_eq!(m.current_address, Some(DEFAULT_EXTRA_ADDRESS));
    assert!(
        !m.auto_failover,
        "the seed: auto-failover is disabled on the taken-over main"
    );
    assert_eq!(b.state, OperState::Online);
    assert_eq!(b.current_address, Some(ip("192.0.2.1")));
    assert!(
        m.takeover.is_some() && b.takeover.is_some(),
        "both rows yellow"
    );
    assert_eq!(b.acting_for.as_deref(), Some("main-1"));
    let alarms = v.alarms(&all_reachable, &Agreement::default(), None, 2_000);
    assert_eq!(
        alarms.len(),
        1,
        "backup-2 still covers: only the takeover alarm"
    );
    assert_eq!(alarms[0].kind, AlarmKind::Takeover);
    assert_eq!(alarms[0].raised_at, 1_000);
    assert!(alarms[0].reason.contains("main-1") && alarms[0].reason.contains("backup-1"));
    assert!(v.invariant_violations().is_empty());
}

#[test]
fn an_operation_records_when_it_changed_each_state_and_keeps_the_others() {
    let v = redundant_group();
    assert!(v.members.iter().all(|r| r.state_changed.is_none()), "never");
    let t = taken_over_group(); // planned at 1_000
    assert_eq!(
        t.member("main-1").and_then(|r| r.state_changed),
        Some(1_000)
    );
    assert_eq!(
        t.member("backup-1").and_then(|r| r.state_changed),
        Some(1_000)
    );
    assert_eq!(t.member("main-2").and_then(|r| r.state_changed), None);
    // Auto-failover off on the taken-over Main: a write, no state change.
    let mut u = t.clone();
    let p = u
        .plan(
            &Operation::SetAutoFailover {
                member: "main-1".into(),
                enabled: true,
            },
            7_000,
            "main-1",
            &BTreeSet::new(),
            &all_reachable,
            &BTreeSet::new(),
        )
        .expect("accepted");
    u.apply(&p);
    let m = u.member("main-1").expect("main");
    assert_eq!(m.version, t.member("main-1").expect("main").version + 1);
    assert_eq!(
        m.state_changed,
        Some(1_000),
        "unchanged state keeps its time"
    );
    // Reversed at 9_000: both change again.
    let p = u
        .plan(
            &reverse("main-1"),
            9_000,
            "main-1",
            &BTreeSet::new(),
            &all_reachable,
            &BTreeSet::new(),
        )
        .expect("accepted");
    u.apply(&p);
    for name in ["main-1", "backup-1"] {
        assert_eq!(u.member(name).and_then(|r| r.state_changed), Some(9_000));
    }
}

#[test]
fn a_record_without_a_state_change_time_still_loads() {
    let r = group().members[0].clone();
    let mut json = serde_json::to_value(&r).expect("json");
    assert!(json.get("state_changed").is_none(), "never: not written");
    let mut changed = r.clone();
    changed.state_changed = Some(1_234);
    let back: MemberRecord =
        serde_json::from_value(serde_json::to_value(&changed).expect("json")).expect("load");
    assert_eq!(back.state_changed, Some(1_234));
    if let Some(o) = json.as_object_mut() {
        o.remove("state_changed");
    }
    let old: MemberRecord = serde_json::from_value(json).expect("an older record loads");
    assert_eq!(old, r);
}

#[test]
fn the_main_releases_before_the_backup_takes() {
    let mut v = group();
    replicated(&mut v, "backup-1", "main-1", 10);
    let p = plan(&v, takeover("backup-1", "main-1")).expect("accepted");
    let order: Vec<&str> = p.updates.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(order, ["main-1", "backup-1"]);
}

#[test]
fn every_failed_precondition_is_reported_at_once() {
    let mut v = taken_over_group();
    // backup-1 is online (not standby), main-2 was never replicated by it, and backup-1 is
    // a backup, so: not standby, never replicated; main-1 is taken over: main_not_main.
    let e = plan(&v, takeover("backup-1", "main-1")).expect_err("refused");
    assert_eq!(
        e,
        Refusal::Preconditions(vec![
            Precondition::BackupNotStandby,
            Precondition::MainNotMain,
        ])
    );
    // A main asked to act as backup, with a failing device check and an operation under way.
    v.members[1].failing_checks = vec!["router".into()];
    let busy = BTreeSet::from(["main-1".to_string()]);
    let e = v
        .plan(
            &takeover("main-2", "main-1"),
            5,
            "c",
            &busy,
            &all_reachable,
            &BTreeSet::new(),
        )
        .expect_err("refused");
    assert_eq!(
        e,
        Refusal::Preconditions(EVERY_TAKEOVER_PRECONDITION.to_vec())
    );
}

/// Every precondition of a manual takeover, in the order they are reported.
const EVERY_TAKEOVER_PRECONDITION: [Precondition; 6] = [
    Precondition::BackupNotBackup,
    Precondition::BackupNotStandby,
    Precondition::NeverReplicated,
    Precondition::MainNotMain,
    Precondition::DeviceCheckFailed,
    Precondition::OperationInProgress,
];

#[test]
fn the_coordinator_is_the_member_that_takes_or_gives_back() {
    let rows = [
        (takeover("backup-1", "main-1"), "backup-1"),
        (
            Operation::Failover {
                backup: "backup-2".into(),
                main: "main-1".into(),
            },
            "backup-2",
        ),
        (reverse("main-2"), "main-2"),
        (reconfigure("main-1", "backup-1"), "backup-1"),
        (replace("main-1", "main-1"), "main-1"),
        (
            Operation::SetAutoFailover {
                member: "main-2".into(),
                enabled: false,
            },
            "main-2",
        ),
    ];
    for (op, coordinator) in rows {
        assert_eq!(coordinator_of(&op), coordinator, "{op:?}");
    }
}

#[test]
fn precondition_codes_are_the_contract() {
    let codes: Vec<&str> = EVERY_TAKEOVER_PRECONDITION
        .iter()
        .map(|p| p.code())
        .collect();
    assert_eq!(
        codes,
        [
            "backup_not_backup",
            "backup_not_standby",
            "never_replicated",
            "main_not_main",
            "device_check_failed",
            "operation_in_progress"
        ]
    );
    // serde uses the same spelling
    assert_eq!(
        serde_json::to_string(&Precondition::NeverReplicated).expect("json"),
        "\"never_replicated\""
    );
}

#[test]
fn unknown_member_and_same_member_twice_are_input_errors() {
    let v = group();
    assert_eq!(
        plan(&v, takeover("backup-9", "main-1")),
        Err(Refusal::UnknownMember("backup-9".into()))
    );
    assert!(matches!(
        plan(&v, takeover("backup-1", "backup-1")),
        Err(Refusal::Invalid(_))
    ));
}

#[test]
fn unreachable_backup_is_not_standby() {
    let mut v = group();
    replicated(&mut v, "backup-1", "main-1", 10);
    let e = plan_without(&v, takeover("backup-1", "main-1"), "backup-1").expect_err("refused");
    assert_eq!(
        e,
        Refusal::Preconditions(vec![Precondition::BackupNotStandby])
    );
}

#[test]
fn reverse_takeover_restores_everything_and_clears_the_alarm() {
    let mut v = taken_over_group();
    let p = plan(&v, reverse("main-1")).expect("accepted");
    // The backup gives the address back before the main takes it.
    assert_eq!(p.updates[0].name, "backup-1");
    v.apply(&p);
    assert_eq!(
        placed(&v, "main-1"),
        (OperState::Online, Some(ip("192.0.2.1")))
    );
    assert_eq!(
        placed(&v, "backup-1"),
        (OperState::Standby, Some(ip("192.0.2.101")))
    );
    let m = v.member("main-1").expect("main");
    let b = v.member("backup-1").expect("backup");
    assert!(m.takeover.is_none() && b.takeover.is_none() && b.acting_for.is_none());
    assert!(v
        .alarms(&all_reachable, &Agreement::default(), None, 3_000)
        .is_empty());
    // A second reverse has nothing to reverse.
    assert_eq!(
        plan(&v, reverse("main-1")),
        Err(Refusal::Preconditions(vec![Precondition::MainNotTakenOver]))
    );
}

#[test]
fn an_interrupted_takeover_can_be_reversed() {
    // The main released (its record was written) but the backup crashed before taking over.
    let mut v = redundant_group();
    let p = plan(&v, takeover("backup-1", "main-1")).expect("accepted");
    v.merge(&p.updates[0]);
    assert!(v.invariant_violations().is_empty());
    assert!(
        !v.alarms(&all_reachable, &Agreement::default(), None, 2_000)
            .is_empty(),
        "the alarm is raised"
    );
    let p = plan(&v, reverse("main-1")).expect("accepted");
    v.apply(&p);
    assert_eq!(
        placed(&v, "main-1"),
        (OperState::Online, Some(ip("192.0.2.1")))
    );
    assert!(v
        .alarms(&all_reachable, &Agreement::default(), None, 3_000)
        .is_empty());
}

#[test]
fn reverse_takeover_refused_while_the_acting_backup_is_unreachable() {
    let v = taken_over_group();
    let e = plan_without(&v, reverse("main-1"), "backup-1").expect_err("refused");
    assert_eq!(
        e,
        Refusal::Preconditions(vec![Precondition::BackupUnreachable])
    );
}

#[test]
fn reconfigure_swaps_roles_and_addresses() {
    let mut v = taken_over_group();
    let p = plan(&v, reconfigure("main-1", "backup-1")).expect("accepted");
    v.apply(&p);
    let old_main = v.member("main-1").expect("m");
    let old_backup = v.member("backup-1").expect("b");
    assert_eq!(old_backup.role, Role::Main);
    assert_eq!(old_backup.configured_address, ip("192.0.2.1"));
    assert_eq!(old_backup.state, OperState::Online);
    assert_eq!(old_main.role, Role::Backup);
    assert_eq!(old_main.configured_address, ip("192.0.2.101"));
    assert_eq!(old_main.current_address, Some(ip("192.0.2.101")));
    assert_eq!(old_main.state, OperState::Standby);
    assert!(old_main.takeover.is_none() && old_backup.takeover.is_none());
    assert!(v.invariant_violations().is_empty());
    // The new Main serves from, and publishes, its replica of main-1 (it has no data of its
    // own there); the new Backup publishes nothing.
    assert_eq!(old_backup.serves_replica_of.as_deref(), Some("main-1"));
    assert_eq!(old_backup.replica_served(), Some("main-1"));
    assert_eq!(
        old_backup.publishes(false),
        Publishes::ReplicaOf("main-1".into())
    );
    assert!(matches!(old_main.publishes(true), Publishes::Nothing(_)));
    // Nobody has replicated the new Main yet: no Backup could take it over, and the alarm
    // says so until one has.
    assert_eq!(
        alarm_reasons(&v),
        [
            "no backup in standby could take over backup-1 (main-1: never_replicated; \
          backup-2: never_replicated)"
        ]
    );
    replicated(&mut v, "main-1", "backup-1", 4_000);
    assert!(alarm_reasons(&v).is_empty(), "{:?}", alarm_reasons(&v));
}

#[test]
fn replace_takeover_returns_the_backup_to_standby_and_the_main_online() {
    let mut v = taken_over_group();
    let op = replace("main-1", "main-1");
    // The new server runs main-1's configuration: it is main-1's agent that coordinates.
    assert_eq!(coordinator_of(&op), "main-1");
    let p = plan(&v, op).expect("accepted");
    let order: Vec<&str> = p.updates.iter().map(|r| r.name.as_str()).collect();
    // Whoever gives the address up first: the Backup, then the Main on its new server.
    assert_eq!(order, ["backup-1", "main-1"]);
    v.apply(&p);
    assert_eq!(
        placed(&v, "main-1"),
        (OperState::Online, Some(ip("192.0.2.1")))
    );
    assert_eq!(
        placed(&v, "backup-1"),
        (OperState::Standby, Some(ip("192.0.2.101")))
    );
    let m = v.member("main-1").expect("m");
    assert_eq!(
        (m.role, m.configured_address),
        (Role::Main, ip("192.0.2.1"))
    );
    assert_eq!(m.publishes(true), Publishes::DataDir);
    assert!(v.members.iter().all(|x| x.takeover.is_none()));
    assert!(v.members.iter().all(|x| x.acting_for.is_none()));
    assert!(v.invariant_violations().is_empty());
    // backup-1's replica is the data main-1 now serves (copied from it): covered at once.
    assert!(alarm_reasons(&v).is_empty(), "{:?}", alarm_reasons(&v));
    let kinds: Vec<OpKind> = p
        .updates
        .iter()
        .filter_map(|r| r.last_op.as_ref().map(|o| o.kind))
        .collect();
    assert_eq!(kinds, [OpKind::Replace, OpKind::Replace]);
}

#[test]
fn a_fresh_replacement_learns_that_its_main_is_taken_over() {
    // The new server starts main-1's agent with no state: its own record is the initial one
    // (online on the configured address, version 0). Its first heartbeat round brings the
    // group's record of main-1, which wins: offline on the extra address, taken over.
    let group_view = taken_over_group();
    let mut fresh = redundant_group();
    let mut own = MemberRecord::initial(
        "main-1",
        Role::Main,
        ip("192.0.2.1"),
        DEFAULT_EXTRA_ADDRESS,
        true,
    );
    own.writer = "main-1".into();
    fresh.members[0] = own;
    fresh.absorb(&group_view.members);
    assert_eq!(
        placed(&fresh, "main-1"),
        (OperState::Offline, Some(DEFAULT_EXTRA_ADDRESS))
    );
    assert!(fresh.member("main-1").is_some_and(|m| m.is_taken_over()));
    // And from that view it may coordinate the replace takeover.
    assert!(plan(&fresh, replace("main-1", "main-1")).is_ok());
}

#[test]
fn replace_takeover_names_no_other_member_as_the_replacement() {
    let v = taken_over_group();
    // Another member, or a name the group does not know (the runbook's old "main-1-new"):
    // invalid, with a message that says what the replacement must be.
    for other in ["backup-2", "backup-1", "main-2", "main-1-new"] {
        match plan(&v, replace("main-1", other)) {
            Err(Refusal::Invalid(why)) => {
                assert!(why.contains("\"main-1\""), "{why}");
                assert!(why.contains(other), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn replace_takeover_preconditions() {
    // Not taken over: nothing to replace (and no Backup holds its data).
    let v = redundant_group();
    assert_eq!(
        plan(&v, replace("main-1", "main-1")),
        Err(Refusal::Preconditions(vec![Precondition::MainNotTakenOver]))
    );
    assert_eq!(
        plan(&v, replace("backup-1", "backup-1")),
        Err(Refusal::Preconditions(vec![
            Precondition::MainNotMain,
            Precondition::MainNotTakenOver
        ]))
    );
    // The acting Backup must hand the address back (and serves the data to copy).
    let v = taken_over_group();
    assert_eq!(
        plan_without(&v, replace("main-1", "main-1"), "backup-1"),
        Err(Refusal::Preconditions(vec![
            Precondition::BackupUnreachable
        ]))
    );
    let busy: BTreeSet<String> = ["backup-1".to_string()].into();
    assert_eq!(
        v.plan(
            &replace("main-1", "main-1"),
            5,
            "main-1",
            &busy,
            &all_reachable,
            &BTreeSet::new()
        ),
        Err(Refusal::Preconditions(vec![
            Precondition::OperationInProgress
        ]))
    );
}

#[test]
fn no_standby_backup_raises_the_alarm_with_a_reason() {
    let v = redundant_group();
    let reach = |m: &str| {
        if m.starts_with("backup") {
            Reachability::Unreachable
        } else {
            Reachability::Reachable
        }
    };
    let alarms = v.alarms(&reach, &Agreement::default(), Some(42), 100);
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].kind, AlarmKind::NoStandbyBackup);
    assert_eq!(alarms[0].raised_at, 42);
    assert_eq!(
        alarms[0].reason,
        "no backup in standby could take over main-1 (backup-1: backup_not_standby; \
         backup-2: backup_not_standby), nor main-2 (backup-1: backup_not_standby; \
         backup-2: backup_not_standby)"
    );
}

#[test]
fn no_operation_involving_a_member_whose_definition_differs_is_planned() {
    let redundant = redundant_group();
    let taken = taken_over_group();
    let mismatch = vec![Precondition::GroupDefinitionMismatch];
    let auto = |m: &str| Operation::SetAutoFailover {
        member: m.into(),
        enabled: false,
    };
    // (view, operation, members whose definition differs, refusal)
    type Row<'a> = (
        &'a GroupView,
        Operation,
        &'a [&'a str],
        Option<Vec<Precondition>>,
    );
    let rows: Vec<Row> = vec![
        (&redundant, takeover("backup-1", "main-1"), &[], None),
        (
            &redundant,
            takeover("backup-1", "main-1"),
            &["backup-2"],
            None,
        ),
        (
            &redundant,
            takeover("backup-1", "main-1"),
            &["backup-1"],
            Some(mismatch.clone()),
        ),
        (
            &redundant,
            takeover("backup-1", "main-1"),
            &["main-1"],
            Some(mismatch.clone()),
        ),
        (&redundant, auto("main-2"), &["main-1"], None),
        (
            &redundant,
            auto("main-2"),
            &["main-2"],
            Some(mismatch.clone()),
        ),
        // Not named, but the reverse takeover writes the acting Backup's record.
        (
            &taken,
            reverse("main-1"),
            &["backup-1"],
            Some(mismatch.clone()),
        ),
        (&taken, reverse("main-1"), &["backup-2"], None),
        // Every failed precondition at once, the mismatch with them.
        (
            &taken,
            takeover("backup-1", "main-1"),
            &["backup-1"],
            Some(vec![
                Precondition::BackupNotStandby,
                Precondition::MainNotMain,
                Precondition::GroupDefinitionMismatch,
            ]),
        ),
    ];
    for (view, op, differ, want) in rows {
        let differ: BTreeSet<String> = differ.iter().map(|m| m.to_string()).collect();
        let got = view
            .plan(&op, 9, "c", &BTreeSet::new(), &all_reachable, &differ)
            .map(|_| ())
            .map_err(|e| match e {
                Refusal::Preconditions(p) => p,
                other => panic!("{other:?}"),
            });
        assert_eq!(got, want.map_or(Ok(()), Err), "{op:?} with {differ:?}");
    }
    assert_eq!(
        Precondition::GroupDefinitionMismatch.code(),
        "group_definition_mismatch"
    );
}

#[test]
fn merge_takes_the_higher_stamp_and_owner_status_separately() {
    let mut v = taken_over_group();
    // A stale copy of main-1 (version 0) must not undo the takeover.
    let stale = group().members[0].clone();
    assert!(!v.merge(&stale));
    assert_eq!(v.member("main-1").expect("m").state, OperState::Offline);
    // The owner's newer status merges without touching the operation's fields.
    let mut status = stale.clone();
    status.failing_checks = vec!["router".into()];
    status.status_version = 9;
    assert!(v.merge(&status));
    let m = v.member("main-1").expect("m");
    assert_eq!(m.failing_checks, ["router"]);
    assert_eq!(m.state, OperState::Offline);
    // And a newer operation record keeps the newer status already held.
    let mut newer = m.clone();
    newer.version += 1;
    newer.failing_checks.clear();
    newer.status_version = 1;
    assert!(v.merge(&newer));
    assert_eq!(v.member("main-1").expect("m").failing_checks, ["router"]);
}

// ----------------------------------------------------------------- property tests

#[derive(Debug, Clone)]
enum Step {
    Op(Operation),
    Replicate(usize, usize),
    DeviceCheck(usize, bool),
}

const NAMES: [&str; 5] = ["main-1", "main-2", "backup-1", "backup-2", "nobody"];

fn name() -> impl Strategy<Value = String> {
    (0..NAMES.len()).prop_map(|i| NAMES[i].to_string())
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (name(), name()).prop_map(|(b, m)| Step::Op(Operation::Takeover { backup: b, main: m })),
        2 => (name(), name()).prop_map(|(b, m)| Step::Op(Operation::Failover { backup: b, main: m })),
        2 => name().prop_map(|m| Step::Op(Operation::ReverseTakeover { main: m })),
        1 => (name(), name()).prop_map(|(m, b)| Step::Op(Operation::Reconfigure { main: m, backup: b })),
        1 => (name(), name()).prop_map(|(m, r)| Step::Op(Operation::ReplaceTakeover { main: m, replacement: r })),
        1 => name().prop_map(|m| Step::Op(Operation::ReplaceTakeover { main: m.clone(), replacement: m })),
        1 => (name(), any::<bool>()).prop_map(|(m, e)| Step::Op(Operation::SetAutoFailover { member: m, enabled: e })),
        3 => (0..4usize, 0..4usize).prop_map(|(b, m)| Step::Replicate(b, m)),
        1 => (0..4usize, any::<bool>()).prop_map(|(i, f)| Step::DeviceCheck(i, f)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_under_random_operations(steps in prop::collection::vec(step(), 1..60)) {
        let mut v = group();
        let mut now = 1_000;
        for s in steps {
            now += 1_000;
            match s {
                Step::Replicate(b, m) => {
                    let (b, m) = (v.members[b].name.clone(), v.members[m].name.clone());
                    replicated(&mut v, &b, &m, now);
                }
                Step::DeviceCheck(i, failing) => {
                    v.members[i].failing_checks = if failing { vec!["dev".into()] } else { vec![] };
                    v.members[i].status_version += 1;
                }
                Step::Op(op) => {
                    let before = v.clone();
                    match v.plan(&op, now, "prop", &BTreeSet::new(), &all_reachable, &BTreeSet::new()) {
                        Ok(p) => {
                            v.apply(&p);
                            if matches!(op, Operation::Takeover { .. } | Operation::Failover { .. }) {
                                let alarms = v.alarms(&all_reachable, &Agreement::default(), None, now);
                                let main = &op.named_members()[1];
                                prop_assert!(
                                    alarms.iter().any(|a| a.main.as_deref() == Some(*main)),
                                    "a takeover of {} must raise the alarm: {:?}", main, alarms
                                );
                            }
                            // Every record the plan wrote was adopted, and says when its
                            // state last changed: now if the plan changed it, as before if not.
                            for r in &p.updates {
                                prop_assert_eq!(v.member(&r.name), Some(r));
                                let was = before.member(&r.name).expect("a planned member");
                                if r.state == was.state {
                                    prop_assert_eq!(r.state_changed, was.state_changed);
                                } else {
                                    prop_assert_eq!(r.state_changed, Some(now));
                                }
                            }
                        }
                        Err(_) => prop_assert_eq!(&v, &before, "a refused command changed the group"),
                    }
                }
            }
            let violations = v.invariant_violations();
            prop_assert!(violations.is_empty(), "{:?}", violations);
            // Any takeover flag on a main means no redundancy.
            if v.members.iter().any(|m| m.takeover.is_some()) {
                prop_assert!(!v.alarms(&all_reachable, &Agreement::default(), None, now).is_empty());
            }
        }
    }
}

#[test]
fn digests_tell_who_holds_the_newer_record() {
    let old = group();
    let new = taken_over_group();
    // The holder of the takeover offers the two changed records, and backup-2's whose
    // replication status is newer, and wants nothing.
    let offered: Vec<String> = new
        .newer_than(&old.digest())
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(offered, ["main-1", "backup-1", "backup-2"]);
    assert!(new.wanted(&old.digest()).is_empty());
    // The stale side asks for them (the replication result is status: it counts too).
    assert_eq!(
        old.wanted(&new.digest()),
        ["main-1", "backup-1", "backup-2"]
    );
    assert!(old.newer_than(&new.digest()).is_empty());
    // Equal views exchange stamps only.
    assert!(new.newer_than(&new.digest()).is_empty() && new.wanted(&new.digest()).is_empty());
}

proptest! {
    #[test]
    fn the_coordinator_is_a_named_member(s in step()) {
        if let Step::Op(op) = s {
            prop_assert!(op.named_members().contains(&coordinator_of(&op)));
        }
    }
}

#[test]
fn a_failover_is_refused_in_maintenance_mode_and_a_manual_takeover_is_not() {
    let mut v = redundant_group();
    let by = Requester {
        interface: "http".into(),
        identity: "ops".into(),
    };
    v.maintenance = v.maintenance.set(true, &by, None, 500, "main-2");
    let failover = Operation::Failover {
        backup: "backup-1".into(),
        main: "main-1".into(),
    };
    assert_eq!(
        plan(&v, failover.clone()),
        Err(Refusal::Preconditions(vec![Precondition::MaintenanceMode]))
    );
    assert!(plan(&v, takeover("backup-1", "main-1")).is_ok());
    v.maintenance = v.maintenance.set(false, &by, None, 600, "main-2");
    assert!(plan(&v, failover).is_ok());
}
