//! The SNMP agent of a real demo group (the `understudy` binary, started by each test on
//! ephemeral loopback ports) queried and driven with net-snmp's own tools: snmpget, snmpwalk,
//! snmpbulkwalk and snmpset, with names resolved through mibs/UNDERSTUDY-MIB.txt. A missing
//! tool fails the test (run ./scripts/test).

mod support;

use std::time::Duration;

use support::snmp::*;
use support::{http_get, wait_for, Demo};

/// Walk output without the lines that may change between two walks (the replication time
/// moves every replication interval).
fn stable(walk: &str) -> Vec<&str> {
    walk.lines()
        .filter(|l| !l.contains("rgMemberLastReplicationTime"))
        .collect()
}

#[test]
fn walks_of_the_whole_mib_resolve_every_name() {
    let demo = Demo::start(&[]);
    let agent = demo.member("backup-1").snmp.clone();
    wait_replicated(&agent, 2);
    let walk = run_ok(snmp(
        "snmpwalk",
        &v2c(READ),
        &agent,
        &["UNDERSTUDY-MIB::understudyMIB"],
    ));
    for line in walk.lines() {
        assert!(
            line.starts_with("UNDERSTUDY-MIB::rg"),
            "not resolved through UNDERSTUDY-MIB: {line}"
        );
    }
    // 7 scalars, 16 columns for each of the 2 members, 5 quorum-source and 8 fencing
    // scalars (served without them too: none, zeros), 5 maintenance scalars; no alarm while
    // redundant.
    assert_eq!(walk.lines().count(), 7 + 16 * 2 + 5 + 8 + 5, "{walk}");
    for want in [
        "UNDERSTUDY-MIB::rgGroupName.0 = STRING: demo",
        "UNDERSTUDY-MIB::rgRedundancyStatus.0 = INTEGER: redundant(1)",
        "UNDERSTUDY-MIB::rgNoRedundancySince.0 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgTakeoverCount.0 = Counter32: 0",
        "UNDERSTUDY-MIB::rgLocalMemberIndex.0 = INTEGER: 2",
        "UNDERSTUDY-MIB::rgAlarmCount.0 = Gauge32: 0",
        "UNDERSTUDY-MIB::rgMemberCount.0 = Gauge32: 2",
        "UNDERSTUDY-MIB::rgMemberName.1 = STRING: main-1",
        "UNDERSTUDY-MIB::rgMemberName.2 = STRING: backup-1",
        "UNDERSTUDY-MIB::rgMemberConfiguredRole.1 = INTEGER: main(1)",
        "UNDERSTUDY-MIB::rgMemberConfiguredRole.2 = INTEGER: backup(2)",
        "UNDERSTUDY-MIB::rgMemberOperState.1 = INTEGER: online(1)",
        "UNDERSTUDY-MIB::rgMemberOperState.2 = INTEGER: standby(2)",
        "UNDERSTUDY-MIB::rgMemberConfiguredAddress.1 = STRING: 192.0.2.11",
        "UNDERSTUDY-MIB::rgMemberCurrentAddress.2 = STRING: 198.51.100.11",
        "UNDERSTUDY-MIB::rgMemberExtraAddress.1 = STRING: 10.0.3.6",
        "UNDERSTUDY-MIB::rgMemberAutoFailover.1 = INTEGER: true(1)",
        "UNDERSTUDY-MIB::rgMemberAutoFailover.2 = INTEGER: false(2)",
        "UNDERSTUDY-MIB::rgMemberLastReplicationTime.1 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgMemberLastReplicationResult.1 = INTEGER: never(1)",
        "UNDERSTUDY-MIB::rgMemberLastReplicationResult.2 = INTEGER: success(2)",
        "UNDERSTUDY-MIB::rgMemberTakeoverFlag.1 = INTEGER: false(2)",
        "UNDERSTUDY-MIB::rgMemberManualTakeover.2 = INTEGER: 0",
        "UNDERSTUDY-MIB::rgMemberReverseTakeover.1 = INTEGER: false(2)",
        "UNDERSTUDY-MIB::rgMemberActingFor.2 = INTEGER: 0",
        // The demo has no address leases, no quorum source and no fence command.
        "UNDERSTUDY-MIB::rgMemberLeaseExpiry.1 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgMemberLeaseEnforcedBy.2 = INTEGER: none(1)",
        // No member's state changed yet.
        "UNDERSTUDY-MIB::rgMemberLastChange.1 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgMemberLastChange.2 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgCoordinationStatus.0 = INTEGER: none(1)",
        "UNDERSTUDY-MIB::rgCoordinationSince.0 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgCoordinationSessionExpiry.0 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgFencingEnabled.0 = INTEGER: false(2)",
        "UNDERSTUDY-MIB::rgFencingSuccesses.0 = Counter32: 0",
        "UNDERSTUDY-MIB::rgFencingFailures.0 = Counter32: 0",
        "UNDERSTUDY-MIB::rgFencingTimeouts.0 = Counter32: 0",
        "UNDERSTUDY-MIB::rgFencingLastOutcome.0 = INTEGER: none(1)",
        "UNDERSTUDY-MIB::rgFencingLastTime.0 = STRING: 1970-1-1,0:0:0.0",
        // Maintenance mode was never set.
        "UNDERSTUDY-MIB::rgMaintenanceMode.0 = INTEGER: false(2)",
        "UNDERSTUDY-MIB::rgMaintenanceSince.0 = STRING: 1970-1-1,0:0:0.0",
        "UNDERSTUDY-MIB::rgMaintenanceChangedTime.0 = STRING: 1970-1-1,0:0:0.0",
    ] {
        assert!(
            walk.lines().any(|l| l == want),
            "walk lacks {want:?}\n{walk}"
        );
    }
    // A real time is an 11-octet UTC DateAndTime.
    let when = walk
        .lines()
        .find(|l| l.starts_with("UNDERSTUDY-MIB::rgMemberLastReplicationTime.2 = STRING: "))
        .expect("replication time of backup-1");
    assert!(when.ends_with(",+0:0"), "{when}");
    // GETBULK (several repetitions per request) sees the same objects as GETNEXT.
    for reps in ["-Cr1", "-Cr7", "-Cr50"] {
        let bulk = run_ok(snmp(
            "snmpbulkwalk",
            &v2c(READ),
            &agent,
            &[reps, "UNDERSTUDY-MIB::understudyMIB"],
        ));
        assert_eq!(stable(&bulk), stable(&walk), "snmpbulkwalk {reps}");
    }
    // The whole agent: system, snmp, UNDERSTUDY-MIB, engine and USM statistics, in order.
    let all = run_ok(snmp("snmpbulkwalk", &v2c(READ), &agent, &["-Cr20", ".1"]));
    let first = all.lines().next().unwrap_or("");
    assert!(
        first.starts_with("SNMPv2-MIB::sysDescr.0 = STRING: understudy"),
        "{first}"
    );
    assert!(
        all.contains("SNMPv2-MIB::snmpInPkts.0 = Counter32: "),
        "{all}"
    );
    assert!(
        all.contains("UNDERSTUDY-MIB::rgMemberActingFor.2 = INTEGER: 0"),
        "{all}"
    );
    assert!(
        all.contains(".15.1.1.5.0 = Counter32: "),
        "usmStatsWrongDigests\n{all}"
    );
}

#[test]
fn snmpget_of_the_system_group_and_the_snmp_counters() {
    let demo = Demo::start(&[]);
    let agent = demo.member("main-1").snmp.clone();
    let out = run_ok(snmp(
        "snmpget",
        &v2c(READ),
        &agent,
        &[
            "SNMPv2-MIB::sysDescr.0",
            "SNMPv2-MIB::sysObjectID.0",
            "SNMPv2-MIB::sysUpTime.0",
            "SNMPv2-MIB::sysName.0",
            "SNMPv2-MIB::sysServices.0",
            "SNMPv2-MIB::snmpEnableAuthenTraps.0",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(
        lines[0].starts_with("SNMPv2-MIB::sysDescr.0 = STRING: understudy ")
            && lines[0].contains("member main-1 of group demo"),
        "{out}"
    );
    assert_eq!(
        lines[1],
        "SNMPv2-MIB::sysObjectID.0 = OID: UNDERSTUDY-MIB::understudyMIB"
    );
    assert!(
        lines[2].starts_with("SNMPv2-MIB::sysUpTime.0 = Timeticks: ("),
        "{out}"
    );
    assert_eq!(lines[3], "SNMPv2-MIB::sysName.0 = STRING: main-1");
    assert_eq!(lines[4], "SNMPv2-MIB::sysServices.0 = INTEGER: 72");
    assert_eq!(
        lines[5],
        "SNMPv2-MIB::snmpEnableAuthenTraps.0 = INTEGER: disabled(2)"
    );
    // sysUpTime moves.
    let ticks = |s: &str| -> u64 {
        s.split(['(', ')'])
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no ticks in {s}"))
    };
    let t0 = ticks(&get(&agent, "SNMPv2-MIB::sysUpTime.0"));
    std::thread::sleep(Duration::from_millis(300));
    let t1 = ticks(&get(&agent, "SNMPv2-MIB::sysUpTime.0"));
    assert!(t1 >= t0 + 20, "sysUpTime {t0} then {t1}");
    // sysORTable lists the modules, ours included.
    let or = run_ok(snmp(
        "snmpwalk",
        &v2c(READ),
        &agent,
        &["SNMPv2-MIB::sysORTable"],
    ));
    assert!(
        or.contains("SNMPv2-MIB::sysORID.4 = OID: SNMPv2-MIB::snmpMIB"),
        "{or}"
    );
    assert!(
        or.contains("SNMPv2-MIB::sysORID.5 = OID: UNDERSTUDY-MIB::rgFullCompliance"),
        "{or}"
    );
    assert!(or.contains("SNMPv2-MIB::sysORDescr.5 = STRING: "), "{or}");
    // Every request counts in snmpInPkts.
    let p0 = counter(&agent, "SNMPv2-MIB::snmpInPkts.0");
    let p1 = counter(&agent, "SNMPv2-MIB::snmpInPkts.0");
    assert_eq!(p1, p0 + 1);
    // Absent instances and objects.
    let out = run_ok(snmp(
        "snmpget",
        &v2c(READ),
        &agent,
        &[
            "SNMPv2-MIB::sysName.1",
            "UNDERSTUDY-MIB::rgMemberName.9",
            "UNDERSTUDY-MIB::rgNotifyReason.0",
            ".1.3.6.1.4.1.99999.1.0",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains("No Such Instance"), "{out}");
    assert!(lines[1].contains("No Such Instance"), "{out}");
    assert!(lines[2].contains("No Such Object"), "{out}");
    assert!(lines[3].contains("No Such Object"), "{out}");
}

#[test]
fn v1_v2c_and_v3_authpriv_walks_see_the_same_group() {
    let demo = Demo::start(&[]);
    let agent = demo.member("backup-1").snmp.clone();
    wait_replicated(&agent, 2);
    let root = ["UNDERSTUDY-MIB::understudyMIB"];
    let w2 = run_ok(snmp("snmpwalk", &v2c(READ), &agent, &root));
    let w1 = run_ok(snmp("snmpwalk", &v1(READ), &agent, &root));
    let w3 = run_ok(snmp("snmpwalk", &v3(V3_AUTH), &agent, &root));
    let b3 = run_ok(snmp(
        "snmpbulkwalk",
        &v3(V3_AUTH),
        &agent,
        &["-Cr10", root[0]],
    ));
    assert!(w2.lines().count() >= 33, "{w2}");
    assert_eq!(stable(&w1), stable(&w2), "SNMPv1 walk");
    assert_eq!(stable(&w3), stable(&w2), "SNMPv3 authPriv walk");
    assert_eq!(stable(&b3), stable(&w2), "SNMPv3 authPriv bulk walk");
    let sys = run_ok(snmp(
        "snmpwalk",
        &v3(V3_AUTH),
        &agent,
        &["SNMPv2-MIB::system"],
    ));
    assert!(
        sys.contains("SNMPv2-MIB::sysName.0 = STRING: backup-1"),
        "{sys}"
    );
    // The engine ID is kept in the member's state directory and served as snmpEngineID.
    let id_file = demo
        .state_dir
        .join("backup-1")
        .join("state")
        .join("snmp-engine-id");
    let id =
        std::fs::read_to_string(&id_file).unwrap_or_else(|e| panic!("{}: {e}", id_file.display()));
    let served = run_ok(snmp(
        "snmpget",
        &v2c(READ),
        &agent,
        &["-Ov", ".1.3.6.1.6.3.10.2.1.1.0"],
    ));
    let served: String = served
        .trim_start_matches("Hex-STRING: ")
        .split_whitespace()
        .collect::<String>()
        .to_ascii_lowercase();
    assert_eq!(served, id.trim(), "snmpEngineID.0");
    assert!(id.trim().starts_with("80007ed905"), "{id}");
}

#[test]
fn a_wrong_community_gets_no_answer_and_is_counted() {
    let demo = Demo::start(&[]);
    let agent = demo.member("main-1").snmp.clone();
    let before = counter(&agent, "SNMPv2-MIB::snmpInBadCommunityNames.0");
    for version in ["-v2c", "-v1"] {
        let mut c = netsnmp("snmpget");
        c.args([version, "-c", "not-the-community", "-t", "1", "-r", "0"])
            .arg(&agent)
            .arg("SNMPv2-MIB::sysName.0");
        let (ok, out, err) = run(c);
        assert!(
            !ok && format!("{out}{err}").contains("Timeout: No Response"),
            "a wrong community was answered\nstdout: {out}\nstderr: {err}"
        );
    }
    let after = counter(&agent, "SNMPv2-MIB::snmpInBadCommunityNames.0");
    assert_eq!(after, before + 2, "snmpInBadCommunityNames");
    // Garbage is a parse error, counted too, and the agent keeps answering.
    let before = counter(&agent, "SNMPv2-MIB::snmpInASNParseErrs.0");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.send_to(b"\x30\x84\xff\xff\xff\xffnot snmp", &agent)
        .expect("send");
    wait_for(Duration::from_secs(5), "snmpInASNParseErrs", || {
        (counter(&agent, "SNMPv2-MIB::snmpInASNParseErrs.0") == before + 1).then_some(())
    });
}

#[test]
fn a_wrong_v3_key_gets_a_usm_stats_wrong_digests_report() {
    let demo = Demo::start(&[]);
    let agent = demo.member("main-1").snmp.clone();
    // usmStatsWrongDigests.0 (SNMP-USER-BASED-SM-MIB is not among the loaded modules).
    let digests = ".1.3.6.1.6.3.15.1.1.5.0";
    let before = counter(&agent, digests);
    let (ok, out, err) = run(snmp(
        "snmpget",
        &v3("not-the-auth-pass"),
        &agent,
        &["SNMPv2-MIB::sysName.0"],
    ));
    assert!(
        !ok && err.contains("Authentication failure"),
        "a wrong key was not reported\nstdout: {out}\nstderr: {err}"
    );
    assert_eq!(counter(&agent, digests), before + 1, "usmStatsWrongDigests");
    // An unknown user gets the usmStatsUnknownUserNames report.
    let mut c = netsnmp("snmpget");
    c.args([
        "-v3", "-l", "authPriv", "-u", "mallory", "-a", "SHA-256", "-A",
    ])
    .args([V3_AUTH, "-x", "AES", "-X", V3_PRIV, "-t", "2", "-r", "0"])
    .arg(&agent)
    .arg("SNMPv2-MIB::sysName.0");
    let (ok, out, err) = run(c);
    assert!(
        !ok && err.contains("Unknown user name"),
        "an unknown user was not reported\nstdout: {out}\nstderr: {err}"
    );
    // The right key works.
    let ok = run_ok(snmp(
        "snmpget",
        &v3(V3_AUTH),
        &agent,
        &["SNMPv2-MIB::sysName.0"],
    ));
    assert_eq!(ok.trim(), "SNMPv2-MIB::sysName.0 = STRING: main-1");
}

#[test]
fn snmpset_drives_takeover_and_reverse_takeover_through_the_command_path() {
    let demo = Demo::start(&[]);
    let backup = demo.member("backup-1").clone();
    let main = demo.member("main-1").clone();
    wait_replicated(&backup.snmp, 2);
    let take = "UNDERSTUDY-MIB::rgMemberManualTakeover.2";

    // The read community may not SET.
    let before = counter(&backup.snmp, "SNMPv2-MIB::snmpInBadCommunityUses.0");
    let (ok, out, err) = set(&v2c(READ), &backup.snmp, take, "1");
    assert!(
        !ok && (err.contains("noAccess") || err.contains("authorizationError")),
        "SET with the read community\nstdout: {out}\nstderr: {err}"
    );
    assert_eq!(
        counter(&backup.snmp, "SNMPv2-MIB::snmpInBadCommunityUses.0"),
        before + 1
    );
    assert_eq!(
        get(&backup.snmp, "UNDERSTUDY-MIB::rgMemberOperState.2"),
        "INTEGER: standby(2)",
        "a refused SET changed something"
    );

    // The write community takes backup-1 over main-1: the seed's drop-down and Go.
    let out = set_ok(
        "SET with the write community",
        &v2c(WRITE),
        &backup.snmp,
        take,
        "1",
    );
    assert_eq!(
        out.trim(),
        "UNDERSTUDY-MIB::rgMemberManualTakeover.2 = INTEGER: 1"
    );
    for (object, want) in [
        ("UNDERSTUDY-MIB::rgMemberOperState.1", "INTEGER: offline(3)"),
        ("UNDERSTUDY-MIB::rgMemberOperState.2", "INTEGER: online(1)"),
        (
            "UNDERSTUDY-MIB::rgMemberCurrentAddress.1",
            "STRING: 10.0.3.6",
        ),
        (
            "UNDERSTUDY-MIB::rgMemberCurrentAddress.2",
            "STRING: 192.0.2.11",
        ),
        ("UNDERSTUDY-MIB::rgMemberTakeoverFlag.1", "INTEGER: true(1)"),
        ("UNDERSTUDY-MIB::rgMemberActingFor.2", "INTEGER: 1"),
        (
            "UNDERSTUDY-MIB::rgMemberAutoFailover.1",
            "INTEGER: false(2)",
        ),
        (
            "UNDERSTUDY-MIB::rgRedundancyStatus.0",
            "INTEGER: notRedundant(2)",
        ),
        ("UNDERSTUDY-MIB::rgAlarmType.1", "INTEGER: takeover(1)"),
        ("UNDERSTUDY-MIB::rgAlarmMainIndex.1", "INTEGER: 1"),
        ("UNDERSTUDY-MIB::rgAlarmBackupIndex.1", "INTEGER: 2"),
        ("UNDERSTUDY-MIB::rgTakeoverCount.0", "Counter32: 1"),
    ] {
        assert_eq!(get(&backup.snmp, object), want, "{object} on backup-1");
    }
    // Both states changed with the takeover, at its time: one real UTC DateAndTime.
    let changed = get(&backup.snmp, "UNDERSTUDY-MIB::rgMemberLastChange.2");
    assert!(
        changed.starts_with("STRING: 20") && changed.ends_with(",+0:0"),
        "rgMemberLastChange.2: {changed}"
    );
    assert_eq!(
        get(&backup.snmp, "UNDERSTUDY-MIB::rgMemberLastChange.1"),
        changed
    );
    // main-1's agent shows the same (it applied its part of the takeover).
    wait_value(
        Duration::from_secs(5),
        "main-1's view of the takeover",
        (&main.snmp, "UNDERSTUDY-MIB::rgMemberOperState.2"),
        "INTEGER: online(1)",
    );
    let events = http_get(&format!("{}/api/v1/events", backup.http));
    assert!(
        events.contains(r#""requested_by":{"identity":"demo-write","interface":"snmp"}"#)
            || events.contains(r#""requested_by":{"interface":"snmp","identity":"demo-write"}"#),
        "the event names the SNMP community by its name\n{events}"
    );
    assert!(
        !events.contains(WRITE),
        "the community string leaked into the events\n{events}"
    );

    // The same SET again is refused, changes nothing, and the event history says why.
    let (ok, out, err) = set(&v2c(WRITE), &backup.snmp, take, "1");
    assert!(
        !ok && err.contains("inconsistentValue"),
        "repeated takeover\nstdout: {out}\nstderr: {err}"
    );
    let events = http_get(&format!("{}/api/v1/events", backup.http));
    assert!(
        events.contains("\"refused\"") && events.contains("backup_not_standby"),
        "{events}"
    );
    assert_eq!(
        get(&backup.snmp, "UNDERSTUDY-MIB::rgMemberOperState.2"),
        "INTEGER: online(1)"
    );
    // 0 names no Main; false(2) is no reverse takeover; a read-only object is not writable.
    for (object, value, error) in [
        (take, "0", "inconsistentValue"),
        (
            "UNDERSTUDY-MIB::rgMemberReverseTakeover.1",
            "2",
            "wrongValue",
        ),
        ("UNDERSTUDY-MIB::rgMemberOperState.1", "1", "notWritable"),
    ] {
        let (ok, _, err) = set(&v2c(WRITE), &backup.snmp, object, value);
        assert!(!ok && err.contains(error), "{object} = {value}: {err}");
    }

    // The reverse takeover, by the SNMPv3 user on main-1's agent; then auto-failover back on,
    // with the write community over SNMPv1. Each SET, then what main-1's agent shows after it.
    let steps = [
        (
            "reverse takeover",
            v3(V3_AUTH),
            &main.snmp,
            "UNDERSTUDY-MIB::rgMemberReverseTakeover.1",
            Duration::from_secs(10),
            "UNDERSTUDY-MIB::rgRedundancyStatus.0",
            "INTEGER: redundant(1)",
        ),
        (
            "auto-failover on",
            v1(WRITE),
            &backup.snmp,
            "UNDERSTUDY-MIB::rgMemberAutoFailover.1",
            Duration::from_secs(5),
            "UNDERSTUDY-MIB::rgMemberAutoFailover.1",
            "INTEGER: true(1)",
        ),
    ];
    for (what, auth, agent, object, limit, shows, want) in steps {
        set_ok(what, &auth, agent, object, "1");
        wait_value(limit, what, (&main.snmp, shows), want);
    }
    assert_eq!(
        get(&main.snmp, "UNDERSTUDY-MIB::rgMemberOperState.2"),
        "INTEGER: standby(2)"
    );
    let events = http_get(&format!("{}/api/v1/events", main.http));
    assert!(events.contains(r#""identity":"noc""#), "{events}");
}

#[test]
fn the_engine_id_is_kept_and_the_boots_counted_across_restarts() {
    let demo = Demo::start(&[]);
    let agent = demo.member("main-1").snmp.clone();
    let engine = |agent: &str| {
        run_ok(snmp(
            "snmpget",
            &v2c(READ),
            agent,
            &["-Ov", ".1.3.6.1.6.3.10.2.1.1.0", ".1.3.6.1.6.3.10.2.1.2.0"],
        ))
    };
    let first = engine(&agent);
    assert!(
        first.contains("INTEGER: 1"),
        "first start: boots 1\n{first}"
    );
    let demo = demo.restart(&[]);
    let agent = demo.member("main-1").snmp.clone();
    let second = engine(&agent);
    let id = |s: &str| s.split("INTEGER").next().unwrap_or("").to_string();
    assert_eq!(id(&second), id(&first), "the engine ID changed");
    assert!(
        second.contains("INTEGER: 2"),
        "second start: boots 2\n{second}"
    );
    // SNMPv3 works after the restart (managers keep the engine ID they discovered).
    let out = run_ok(snmp(
        "snmpget",
        &v3(V3_AUTH),
        &agent,
        &["SNMPv2-MIB::sysName.0"],
    ));
    assert_eq!(out.trim(), "SNMPv2-MIB::sysName.0 = STRING: main-1");
}
