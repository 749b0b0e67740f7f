//! Notifications received by a real snmptrapd (started by each test, logging to a file, MIBs
//! loaded so varbinds are decoded by name): the demo's v2c traps through a takeover and a
//! reverse takeover, and, from `understudy run` with an `[snmp]` section, v2c and v3 informs
//! acknowledged by snmptrapd, a v3 trap, the alarm repeated every `alarm_repeat`, and an inform
//! to a dead receiver given up and counted; rgFencingFailed, rgCoordinationLost and
//! rgCoordinationRestored decided from hand-built snapshots and sent by the agent's notifier;
//! rgMaintenanceModeChanged, once for the group, after a SET of rgMaintenanceMode.
//! trap volume: a replication that keeps failing announced once and then at `alarm_repeat`, and
//! one copy of each group-level notification from a two-agent group (each agent's copy with
//! `group_notifications = "every"`, the same `rgNotifyEventId` on both).
//! A missing tool fails the test (run ./scripts/test).

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use support::metric_names::sample;
use support::snmp::*;
use support::{
    block_on, command, free_tcp_port, free_udp_port, http_get, spawn_agent, text, understudy_on,
    wait_converged, wait_for, write, write_group, Deadline, Demo, Pair, Proc, GROUP_TOKEN,
};

/// snmptrapd on a free loopback port, logging every notification on one line of `log`.
struct Trapd {
    _proc: Proc,
    log: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Trapd {
    fn start(conf: &str) -> Trapd {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf_file = dir.path().join("snmptrapd.conf");
        let log = dir.path().join("traps.log");
        std::fs::write(&conf_file, conf).expect("write snmptrapd.conf");
        let persistent = dir.path().join("persistent");
        std::fs::create_dir_all(&persistent).expect("mkdir");
        let port = free_udp_port();
        let mut cmd = netsnmp("snmptrapd");
        cmd.env("SNMP_PERSISTENT_DIR", &persistent)
            .args(["-f", "-C", "-Lf"])
            .arg(&log)
            .arg("-c")
            .arg(&conf_file)
            .arg(format!("udp:127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let trapd = Trapd {
            _proc: Proc::spawn("snmptrapd", &mut cmd),
            log,
            port,
            _dir: dir,
        };
        wait_for(Duration::from_secs(10), "snmptrapd to start", || {
            trapd.text().contains("NET-SNMP version").then_some(())
        });
        trapd
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The logged notifications (snmptrapd logs a header line, then the varbinds of one
    /// notification tab-separated on the next line).
    fn notifications(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains("SNMPv2-MIB::snmpTrapOID.0 = OID: "))
            .map(str::to_string)
            .collect()
    }

    /// Waits for a notification whose line contains every one of `parts`; returns it.
    fn wait(&self, what: &str, parts: &[&str]) -> String {
        Deadline::new(Duration::from_secs(20), what).poll_with(
            || {
                format!(
                    "no {what} with {parts:?} in the snmptrapd log:\n{}",
                    self.text()
                )
            },
            || {
                self.notifications()
                    .into_iter()
                    .find(|l| parts.iter().all(|p| l.contains(p)))
            },
        )
    }

    fn count(&self, part: &str) -> usize {
        self.notifications()
            .iter()
            .filter(|l| l.contains(part))
            .count()
    }
}

const TRAP_OID: &str = "SNMPv2-MIB::snmpTrapOID.0 = OID: ";

#[test]
fn snmptrapd_decodes_the_demo_traps_through_a_takeover_and_back() {
    let trapd = Trapd::start("authCommunity log public\n");
    let target = trapd.target();
    let demo = Demo::start(&["--trap-target", &target]);
    let backup = demo.member("backup-1").clone();
    let main = demo.member("main-1").clone();
    for member in ["main-1", "backup-1"] {
        trapd.wait(
            "coldStart",
            &[
                &format!("{TRAP_OID}SNMPv2-MIB::coldStart"),
                &format!("SNMPv2-MIB::sysName.0 = STRING: {member}"),
            ],
        );
    }
    wait_replicated(&backup.snmp, 2);
    set_ok(
        "takeover SET",
        &v2c(WRITE),
        &backup.snmp,
        "UNDERSTUDY-MIB::rgMemberManualTakeover.2",
        "1",
    );
    // Both agents send to the receiver; one copy of a group event comes, by default from the
    // lowest-index member the agents hear: main-1.
    trapd.wait(
        "rgTakeover from main-1's agent",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgTakeover"),
            "UNDERSTUDY-MIB::rgGroupName.0 = STRING: demo",
            "UNDERSTUDY-MIB::rgNotifyMainName.0 = STRING: main-1",
            "UNDERSTUDY-MIB::rgNotifyBackupName.0 = STRING: backup-1",
            "UNDERSTUDY-MIB::rgMemberCurrentAddress.2 = STRING: 192.0.2.11",
            "UNDERSTUDY-MIB::rgMemberExtraAddress.1 = STRING: 10.0.3.6",
            "UNDERSTUDY-MIB::rgNotifyRequestedBy.0 = STRING: snmp:demo-write",
            "UNDERSTUDY-MIB::rgNotifyReason.0 = STRING: SNMP SET rgMemberManualTakeover.2 = 1",
            "UNDERSTUDY-MIB::rgRedundancyStatus.0 = INTEGER: notRedundant(2)",
            "UNDERSTUDY-MIB::rgNotifyEventId.0 = STRING: takeover/main-1/backup-1/",
            "SNMPv2-MIB::sysName.0 = STRING: main-1",
        ],
    );
    trapd.wait(
        "rgNoRedundancy for the takeover alarm",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgNoRedundancy"),
            "UNDERSTUDY-MIB::rgRedundancyStatus.0 = INTEGER: notRedundant(2)",
            "UNDERSTUDY-MIB::rgNoRedundancySince.0 = STRING: ",
            "UNDERSTUDY-MIB::rgAlarmType.1 = INTEGER: takeover(1)",
            "UNDERSTUDY-MIB::rgAlarmReason.1 = STRING: manual takeover: main-1",
        ],
    );
    // Reverse takeover through main-1's agent; redundancy comes back.
    set_ok(
        "reverse takeover SET",
        &v2c(WRITE),
        &main.snmp,
        "UNDERSTUDY-MIB::rgMemberReverseTakeover.1",
        "1",
    );
    trapd.wait(
        "rgRedundancyRestored",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgRedundancyRestored"),
            "UNDERSTUDY-MIB::rgRedundancyStatus.0 = INTEGER: redundant(1)",
            "UNDERSTUDY-MIB::rgNotifyRequestedBy.0 = STRING: snmp:demo-write",
            "UNDERSTUDY-MIB::rgNotifyReason.0 = STRING: main-1 is back",
        ],
    );
    // Every trap was counted as sent, none failed (the demo's metrics).
    let metrics = http_get(&format!("{}/metrics", main.http));
    let sent = metric(
        &metrics,
        r#"understudy_snmp_notifications_total{group="demo",outcome="sent",type="trap"}"#,
    );
    assert!(sent >= 4, "traps sent by main-1: {sent}\n{metrics}");
    assert_eq!(
        metric(
            &metrics,
            r#"understudy_snmp_notifications_total{group="demo",outcome="failed",type="trap"}"#,
        ),
        0
    );
}

/// The value of one sample in Prometheus text (0 when absent).
fn metric(text: &str, name: &str) -> u64 {
    sample(text, name).map_or(0, |v| v as u64)
}

/// The engine ID the test gives backup-1 (kept in its state directory), so that snmptrapd
/// can be told the user of its v3 traps before the agent starts.
const ENGINE_ID: &str = "80007ed9050102030405060708090a0b0c";

#[test]
fn informs_are_acknowledged_and_the_alarm_is_repeated() {
    let trapd = Trapd::start(&format!(
        "authCommunity log informers\n\
         createUser noc SHA-256 noc-own-auth-pass AES noc-own-priv-pass\n\
         createUser -e 0x{ENGINE_ID} noc SHA-256 noc-own-auth-pass AES noc-own-priv-pass\n\
         authUser log noc priv\n"
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for (file, secret) in [
        ("api-token", "test-token"),
        ("group-secret", "test-group-secret"),
        ("community-write", "ops-write-secret"),
        ("community-read", "ops-read-secret"),
        ("community-informs", "informers"),
        ("noc-auth", "noc-own-auth-pass"),
        ("noc-priv", "noc-own-priv-pass"),
        ("watcher-auth", "watcher-auth-pass"),
    ] {
        write(&d.join(file), &format!("{secret}\n"));
    }
    let http = [free_tcp_port(), free_tcp_port()];
    let snmp_port = free_udp_port();
    let dead = free_udp_port();
    std::fs::create_dir_all(d.join("data")).expect("mkdir");
    write(&d.join("data").join("playlist.txt"), "06:00 news\n");
    let state = |m: &str| d.join(format!("state-{m}"));
    std::fs::create_dir_all(state("backup-1")).expect("mkdir");
    write(&state("backup-1").join("snmp-engine-id"), ENGINE_ID);
    let members = format!(
        r#"
[[members]]
name = "main-1"
role = "main"
address = "192.0.2.11"
peer_urls = {{ lan = "http://127.0.0.1:{}" }}
auto_failover = false

[[members]]
name = "backup-1"
role = "backup"
address = "198.51.100.11"
peer_urls = {{ lan = "http://127.0.0.1:{}" }}
"#,
        http[0], http[1]
    );
    let common = |m: &str, port: u16| {
        format!(
            "group = \"notify-test\"\nmember = \"{m}\"\nstate_dir = \"{}\"\n\
             heartbeat_interval = \"200ms\"\nfailover_after = \"2s\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"api-token\"\n\
             [peer]\nsecret_file = \"group-secret\"\n",
            state(m).display()
        )
    };
    let main_cfg = d.join("main-1.toml");
    write(
        &main_cfg,
        &format!(
            "{}[replication]\ndata_dir = \"{}\"\n{members}",
            common("main-1", http[0]),
            d.join("data").display()
        ),
    );
    let target = trapd.target();
    let dead_target = format!("127.0.0.1:{dead}");
    let mut targets = String::new();
    for (address, notify, credentials) in [
        (&target, "inform", r#"community_file = "community-informs""#),
        (&target, "inform", r#"user = "noc""#),
        (&target, "trap", r#"user = "noc""#),
        (
            &dead_target,
            "inform",
            "community_file = \"community-informs\"\ntimeout = \"200ms\"\nretries = 1",
        ),
    ] {
        targets += &format!(
            "[[snmp.targets]]\naddress = \"{address}\"\nnotify = \"{notify}\"\n{credentials}\n\n"
        );
    }
    let backup_cfg = d.join("backup-1.toml");
    write(
        &backup_cfg,
        &format!(
            r#"{}
[snmp]
listen = "127.0.0.1:{snmp_port}"
alarm_repeat = "1s"
contact = "noc@example.net"
# main-1's agent sends no notifications: backup-1's sends the group's too.
group_notifications = "every"

[[snmp.communities]]
name = "ops-write"
secret_file = "community-write"
access = "read-write"

[[snmp.communities]]
name = "ops-read"
secret_file = "community-read"
access = "read-only"

[[snmp.users]]
name = "noc"
access = "read-write"
auth = "sha-256"
auth_password_file = "noc-auth"
privacy = "aes-128"
privacy_password_file = "noc-priv"

[[snmp.users]]
name = "watcher"
access = "read-only"
auth = "sha-1"
auth_password_file = "watcher-auth"

{targets}{members}"#,
            common("backup-1", http[1])
        ),
    );
    // check-config accepts it and prints no secret.
    let out = understudy_on(&["check-config"], &backup_cfg);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert!(
        shown.contains("[snmp]") && shown.contains("alarm_repeat = \"1s\""),
        "{shown}"
    );
    for secret in [
        "ops-write-secret",
        "noc-own-auth-pass",
        "noc-own-priv-pass",
        "informers",
    ] {
        assert!(
            !shown.contains(secret),
            "check-config printed a secret\n{shown}"
        );
    }
    let _main = spawn_agent(&main_cfg);
    let _backup = spawn_agent(&backup_cfg);
    let agent = format!("127.0.0.1:{snmp_port}");
    let backup_http = format!("http://127.0.0.1:{}", http[1]);

    // coldStart by v2c inform, v3 inform and v3 trap.
    wait_for(
        Duration::from_secs(20),
        "three coldStart notifications",
        || (trapd.count("SNMPv2-MIB::coldStart") >= 3).then_some(()),
    );
    let acked = |m: &str| {
        metric(
            m,
            r#"understudy_snmp_notifications_total{group="notify-test",outcome="acknowledged",type="inform"}"#,
        )
    };
    wait_for(Duration::from_secs(20), "informs acknowledged", || {
        let m = http_get(&format!("{backup_http}/metrics"));
        (acked(&m) >= 2).then_some(())
    });
    // The inform to a port where nobody listens is given up (or fails) and counted.
    wait_for(
        Duration::from_secs(20),
        "the dead target's inform given up",
        || {
            let m = http_get(&format!("{backup_http}/metrics"));
            let lost = metric(
                &m,
                r#"understudy_snmp_notifications_total{group="notify-test",outcome="given_up",type="inform"}"#,
            ) + metric(
                &m,
                r#"understudy_snmp_notifications_total{group="notify-test",outcome="failed",type="inform"}"#,
            );
            (lost >= 1).then_some(())
        },
    );

    // The configured communities and users: read-only ones cannot SET.
    let ro = ["-v2c", "-c", "ops-read-secret", "-t", "5", "-r", "0"].map(String::from);
    wait_replicated_as(&ro, &agent, 2);
    let (ok, _, err) = set(&ro, &agent, "UNDERSTUDY-MIB::rgMemberManualTakeover.2", "1");
    assert!(
        !ok && err.contains("noAccess"),
        "read-only community SET: {err}"
    );
    let watcher = [
        "-v3",
        "-l",
        "authNoPriv",
        "-u",
        "watcher",
        "-a",
        "SHA",
        "-A",
        "watcher-auth-pass",
        "-t",
        "5",
        "-r",
        "0",
    ]
    .map(String::from);
    let name = run_ok(snmp(
        "snmpget",
        &watcher,
        &agent,
        &["SNMPv2-MIB::sysContact.0"],
    ));
    assert_eq!(
        name.trim(),
        "SNMPv2-MIB::sysContact.0 = STRING: noc@example.net"
    );
    let (ok, _, err) = set(
        &watcher,
        &agent,
        "UNDERSTUDY-MIB::rgMemberManualTakeover.2",
        "1",
    );
    assert!(!ok && err.contains("noAccess"), "read-only user SET: {err}");

    // A takeover by the v3 user: rgTakeover to every target, then rgNoRedundancy repeated
    // every second while the alarm is raised.
    set_ok(
        "takeover SET",
        &v3_with("noc-own-auth-pass", "noc-own-priv-pass"),
        &agent,
        "UNDERSTUDY-MIB::rgMemberManualTakeover.2",
        "1",
    );
    trapd.wait(
        "rgTakeover",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgTakeover"),
            "UNDERSTUDY-MIB::rgGroupName.0 = STRING: notify-test",
            "UNDERSTUDY-MIB::rgNotifyRequestedBy.0 = STRING: snmp:noc",
        ],
    );
    wait_for(Duration::from_secs(20), "rgNoRedundancy repeated", || {
        // 3 working targets: at least two rounds.
        (trapd.count("UNDERSTUDY-MIB::rgNoRedundancy") >= 6).then_some(())
    });
    let m = http_get(&format!("{backup_http}/metrics"));
    assert!(acked(&m) >= 6, "{m}");
}

/// rgFencingFailed, rgCoordinationLost and rgCoordinationRestored as snmptrapd decodes them.
/// Nothing in the agent fills the fence and quorum-source views yet, so the notifications are
/// the ones `snmp::transitions` decides from hand-built snapshots (the quorum source goes down
/// while a fence run times out, then comes back), sent by the agent's own notifier.
#[test]
fn fencing_and_quorum_source_notifications_reach_snmptrapd_decoded_by_name() {
    use support::safety::{troubled, with_safety, NOW};
    use understudy::secret::Secret;
    use understudy::snmp::config::{parse_oid, SnmpConfig};
    use understudy::snmp::engine::Engine;
    use understudy::snmp::notifier::{Notifier, Outcome};
    use understudy::snmp::transitions::{transitions, Kind};

    let trapd = Trapd::start("authCommunity log public\n");
    let mut cfg: SnmpConfig = toml::from_str(&format!(
        "listen = \"127.0.0.1:0\"\n[[targets]]\naddress = \"{}\"\nnotify = \"trap\"\n",
        trapd.target()
    ))
    .expect("an [snmp] section");
    cfg.targets[0].community = Secret::new("public");
    let root = parse_oid(&cfg.mib_root).expect("the MIB root");
    let ok = with_safety();
    let bad = troubled();
    let mut back = troubled();
    if let Some(c) = back.coordination.as_mut() {
        c.up = true;
        c.since = NOW + 20_000;
        c.error = None;
    }
    let mut notes = transitions(&ok, &bad, &root, false);
    notes.extend(transitions(&bad, &back, &root, false));
    let kinds: Vec<Kind> = notes.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::CoordinationLost,
            Kind::FencingFailed,
            Kind::CoordinationRestored
        ]
    );
    let sent: Vec<Outcome> = block_on(async {
        let engine = Engine::start(&[0x80, 0, 0x7e, 0xd9, 5, 9, 8, 7, 6], 1).expect("engine");
        let notifier = Notifier::new(&cfg.targets[0], &cfg, &engine).expect("notifier");
        let mut sent = Vec::new();
        for n in &notes {
            sent.push(notifier.send(n, 100).await);
        }
        sent
    });
    assert_eq!(sent, [Outcome::Sent; 3]);
    let m = "UNDERSTUDY-MIB::";
    trapd.wait(
        "rgFencingFailed",
        &[
            &format!("{TRAP_OID}{m}rgFencingFailed"),
            &format!("{m}rgGroupName.0 = STRING: demo"),
            &format!("{m}rgNotifyMainName.0 = STRING: main-1"),
            &format!("{m}rgNotifyBackupName.0 = STRING: backup-1"),
            &format!("{m}rgFencingLastOutcome.0 = INTEGER: timeout(4)"),
            &format!("{m}rgFencingLastTime.0 = STRING: 2023-11-14,22:13:28.0,+0:0"),
            &format!("{m}rgFencingLastDetail.0 = STRING: no answer within 5s"),
            "SNMPv2-MIB::sysName.0 = STRING: backup-1",
        ],
    );
    trapd.wait(
        "rgCoordinationLost",
        &[
            &format!("{TRAP_OID}{m}rgCoordinationLost"),
            &format!("{m}rgCoordinationStatus.0 = INTEGER: down(3)"),
            &format!("{m}rgCoordinationBackend.0 = STRING: etcd"),
            &format!("{m}rgCoordinationSince.0 = STRING: 2023-11-14,22:13:25.0,+0:0"),
            &format!("{m}rgCoordinationError.0 = STRING: connection refused"),
        ],
    );
    trapd.wait(
        "rgCoordinationRestored",
        &[
            &format!("{TRAP_OID}{m}rgCoordinationRestored"),
            &format!("{m}rgCoordinationStatus.0 = INTEGER: up(2)"),
            &format!("{m}rgCoordinationSince.0 = STRING: 2023-11-14,22:13:40.0,+0:0"),
        ],
    );
}

/// Maintenance mode over SNMP: SET rgMaintenanceMode.0 through the write community on
/// backup-1's agent switches it on for the whole group (main-1's agent answers true(1) too),
/// every agent sends rgMaintenanceModeChanged with who and why, a bad value changes nothing,
/// and an SNMPv3 SET through main-1's agent switches it off again.
#[test]
fn rg_maintenance_mode_is_set_over_snmp_and_announced_once() {
    let trapd = Trapd::start("authCommunity log public\n");
    let target = trapd.target();
    let demo = Demo::start(&["--trap-target", &target]);
    let backup = demo.member("backup-1").clone();
    let main = demo.member("main-1").clone();
    for agent in [&main.snmp, &backup.snmp] {
        assert_eq!(
            get(agent, "UNDERSTUDY-MIB::rgMaintenanceMode.0"),
            "INTEGER: false(2)"
        );
        assert_eq!(
            get(agent, "UNDERSTUDY-MIB::rgMaintenanceChangedBy.0"),
            "STRING:"
        );
    }
    // Read-only with the read community; a value outside TruthValue: wrongValue.
    let (ok, _, err) = set(
        &v2c(READ),
        &backup.snmp,
        "UNDERSTUDY-MIB::rgMaintenanceMode.0",
        "1",
    );
    assert!(!ok, "the read community cannot set it");
    assert!(err.contains("Reason: noAccess"), "{err}");
    let (ok, _, err) = set(
        &v2c(WRITE),
        &backup.snmp,
        "UNDERSTUDY-MIB::rgMaintenanceMode.0",
        "3",
    );
    assert!(!ok && err.contains("wrongValue"), "{err}");
    assert_eq!(
        get(&main.snmp, "UNDERSTUDY-MIB::rgMaintenanceMode.0"),
        "INTEGER: false(2)"
    );

    set_ok(
        "maintenance on",
        &v2c(WRITE),
        &backup.snmp,
        "UNDERSTUDY-MIB::rgMaintenanceMode.0",
        "1",
    );
    wait_value(
        Duration::from_secs(5),
        "main-1's agent to answer maintenance mode on",
        (&main.snmp, "UNDERSTUDY-MIB::rgMaintenanceMode.0"),
        "INTEGER: true(1)",
    );
    assert!(get(&main.snmp, "UNDERSTUDY-MIB::rgMaintenanceSince.0").starts_with("STRING: "));
    // A group event: sent once, by the lowest-index member its agents hear (main-1), with
    // the setting's stamp as rgNotifyEventId.
    trapd.wait(
        "rgMaintenanceModeChanged from main-1's agent",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgMaintenanceModeChanged"),
            "UNDERSTUDY-MIB::rgGroupName.0 = STRING: demo",
            "UNDERSTUDY-MIB::rgMaintenanceMode.0 = INTEGER: true(1)",
            "UNDERSTUDY-MIB::rgMaintenanceChangedTime.0 = STRING: ",
            "UNDERSTUDY-MIB::rgMaintenanceChangedBy.0 = STRING: snmp:demo-write",
            "UNDERSTUDY-MIB::rgMaintenanceReason.0 = STRING: SNMP SET rgMaintenanceMode.0 = 1",
            "UNDERSTUDY-MIB::rgNotifyEventId.0 = STRING: maintenance/1/backup-1",
            "SNMPv2-MIB::sysName.0 = STRING: main-1",
        ],
    );
    let group = block_on(support::get_json(&format!("{}/api/v1/group", main.http)));
    assert_eq!(group["maintenance"]["enabled"], true, "{group}");

    set_ok(
        "maintenance off over SNMPv3",
        &v3(V3_AUTH),
        &main.snmp,
        "UNDERSTUDY-MIB::rgMaintenanceMode.0",
        "2",
    );
    wait_value(
        Duration::from_secs(5),
        "backup-1's agent to answer maintenance mode off",
        (&backup.snmp, "UNDERSTUDY-MIB::rgMaintenanceMode.0"),
        "INTEGER: false(2)",
    );
    trapd.wait(
        "rgMaintenanceModeChanged (off)",
        &[
            &format!("{TRAP_OID}UNDERSTUDY-MIB::rgMaintenanceModeChanged"),
            "UNDERSTUDY-MIB::rgMaintenanceMode.0 = INTEGER: false(2)",
            &format!("UNDERSTUDY-MIB::rgMaintenanceChangedBy.0 = STRING: snmp:{V3_USER}"),
            "SNMPv2-MIB::sysName.0 = STRING: main-1",
        ],
    );
    assert_eq!(
        trapd.count("UNDERSTUDY-MIB::rgMaintenanceMode.0 = INTEGER: true(1)"),
        1,
        "one copy of the group event for the one change"
    );
}

/// The v2c community of [`trapping_pair`]'s agents and their traps.
const PAIR_COMMUNITY: &str = "notify-pair-community";

/// main-1 and backup-1 run by `understudy run` (a [`write_group`] pair), both agents sending
/// v2c traps to `trapd`, with `snmp` added to each `[snmp]` section; backup-1 replicates every
/// second. Started once backup-1 has replicated main-1 and both hear each other.
fn trapping_pair(dir: &std::path::Path, trapd: &Trapd, snmp: &str) -> Pair {
    let members = write_group(dir, 1, 1);
    // A community of the test's own: `run` refuses the published ones (public, ...).
    write(&dir.join("community"), &format!("{PAIR_COMMUNITY}\n"));
    for m in &members {
        let cfg = std::fs::read_to_string(&m.config).expect("read config");
        let cfg = if m.name == "backup-1" {
            cfg.replace("interval = \"5s\"", "interval = \"1s\"")
        } else {
            cfg
        };
        let port = free_udp_port();
        write(
            &m.config,
            &format!(
                "{cfg}\n[snmp]\nlisten = \"127.0.0.1:{port}\"\n{snmp}\n\
                 [[snmp.communities]]\nname = \"read\"\nsecret_file = \"community\"\n\
                 access = \"read-only\"\n\n\
                 [[snmp.targets]]\naddress = \"{}\"\nnotify = \"trap\"\n\
                 community_file = \"community\"\n",
                trapd.target()
            ),
        );
    }
    block_on(async {
        let pair = Pair::start(members).await;
        wait_converged(&pair.main_url()).await;
        wait_converged(&pair.backup_url()).await;
        pair
    })
}

/// The value of `object` in a logged notification line ("" when absent).
fn logged<'a>(line: &'a str, object: &str) -> &'a str {
    line.split('\t')
        .find_map(|vb| vb.trim().strip_prefix(&format!("{object} = STRING: ")))
        .unwrap_or("")
        .trim_matches('"')
}

#[test]
fn a_replication_that_keeps_failing_is_announced_once_then_at_alarm_repeat() {
    let trapd = Trapd::start(&format!("authCommunity log {PAIR_COMMUNITY}\n"));
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = trapping_pair(dir.path(), &trapd, "alarm_repeat = \"3s\"");
    // main-1's data goes away: every replication attempt of backup-1 (every second) fails.
    let data = dir.path().join("main-1").join("data");
    std::fs::rename(&data, dir.path().join("main-1").join("gone")).expect("rename");
    let failed = "UNDERSTUDY-MIB::rgReplicationFailed";
    trapd.wait(
        "rgReplicationFailed",
        &[
            &format!("{TRAP_OID}{failed}"),
            "UNDERSTUDY-MIB::rgNotifyBackupName.0 = STRING: backup-1",
            "SNMPv2-MIB::sysName.0 = STRING: backup-1",
        ],
    );
    let attempts = |m: &str| metric(m, r#"understudy_replication_failures_total{group="test"}"#);
    let before = attempts(&http_get(&format!("{}/metrics", pair.backup_url())));
    std::thread::sleep(Duration::from_millis(7_500));
    let after = attempts(&http_get(&format!("{}/metrics", pair.backup_url())));
    assert!(
        after >= before + 5,
        "backup-1 kept trying: {before} -> {after} failed attempts"
    );
    // 7.5 s of failures after the first notification: repeated at 3 s and 6 s (within the
    // repeat check's 0.75 s tick), not at each of the ~7 attempts; and only by backup-1.
    let notes: Vec<String> = trapd
        .notifications()
        .into_iter()
        .filter(|l| l.contains(failed))
        .collect();
    assert!(
        (2..=3).contains(&notes.len()),
        "{} rgReplicationFailed in 7.5 s of failures:\n{}",
        notes.len(),
        notes.join("\n")
    );
    for n in &notes {
        assert_eq!(logged(n, "SNMPv2-MIB::sysName.0"), "backup-1", "{n}");
    }
}

/// A takeover and its reverse in a two-agent group whose agents both send to one receiver
/// with `snmp` in their `[snmp]` sections; the logged group-level notifications of the two
/// operations: rgTakeover, rgNoRedundancy of the takeover alarm, rgRedundancyRestored of the
/// reverse takeover (waiting until `copies` of each came, then 2 s more).
fn group_notifications_of_a_takeover(snmp: &str, copies: usize) -> [Vec<String>; 3] {
    let trapd = Trapd::start(&format!("authCommunity log {PAIR_COMMUNITY}\n"));
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = trapping_pair(dir.path(), &trapd, snmp);
    let body = r#"{"backup":"backup-1","main":"main-1","reason":"trap volume test"}"#;
    let (status, answer) = block_on(command(&pair.backup_url(), "takeover", GROUP_TOKEN, body));
    assert_eq!(status, 200, "{answer}");
    // main-1's agent knows backup-1 acts for it before it is asked to take its address back.
    wait_for(
        Duration::from_secs(10),
        "main-1's view of the takeover",
        || {
            let g: serde_json::Value =
                serde_json::from_str(&http_get(&format!("{}/api/v1/group", pair.main_url())))
                    .expect("group JSON");
            (support::member(&g, "backup-1")["acting_for"] == "main-1").then_some(())
        },
    );
    let (status, answer) = block_on(command(
        &pair.main_url(),
        "reverse-takeover",
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    ));
    assert_eq!(status, 200, "{answer}");
    let select = |trapd: &Trapd| -> [Vec<String>; 3] {
        let all = trapd.notifications();
        let of = |parts: &[&str]| -> Vec<String> {
            all.iter()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .cloned()
                .collect()
        };
        [
            of(&[&format!("{TRAP_OID}UNDERSTUDY-MIB::rgTakeover")]),
            of(&[
                &format!("{TRAP_OID}UNDERSTUDY-MIB::rgNoRedundancy"),
                "INTEGER: takeover(1)",
            ]),
            of(&[
                &format!("{TRAP_OID}UNDERSTUDY-MIB::rgRedundancyRestored"),
                "-reverse-",
            ]),
        ]
    };
    wait_for(Duration::from_secs(20), "the group notifications", || {
        select(&trapd)
            .iter()
            .all(|n| n.len() >= copies)
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    select(&trapd)
}

#[test]
fn one_takeover_gives_a_receiver_one_copy_of_each_group_notification() {
    for notes in group_notifications_of_a_takeover("alarm_repeat = \"300s\"", 1) {
        assert_eq!(notes.len(), 1, "{}", notes.join("\n"));
        assert_eq!(logged(&notes[0], "SNMPv2-MIB::sysName.0"), "main-1");
        assert!(
            !logged(&notes[0], "UNDERSTUDY-MIB::rgNotifyEventId.0").is_empty(),
            "{}",
            notes[0]
        );
    }
}

#[test]
fn with_every_each_agent_sends_its_copy_with_the_same_event_id() {
    let snmp = "alarm_repeat = \"300s\"\ngroup_notifications = \"every\"";
    for notes in group_notifications_of_a_takeover(snmp, 2) {
        assert_eq!(notes.len(), 2, "{}", notes.join("\n"));
        let mut senders: Vec<&str> = notes
            .iter()
            .map(|n| logged(n, "SNMPv2-MIB::sysName.0"))
            .collect();
        senders.sort_unstable();
        assert_eq!(senders, ["backup-1", "main-1"]);
        let ids: Vec<&str> = notes
            .iter()
            .map(|n| logged(n, "UNDERSTUDY-MIB::rgNotifyEventId.0"))
            .collect();
        assert!(!ids[0].is_empty() && ids[0] == ids[1], "{ids:?}");
    }
}
