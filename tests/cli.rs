//! The client commands against a real demo group: tables by default, `--json`, exit codes,
//! and the failed preconditions printed when a command is refused.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::*;

fn cli(args: &[&str]) -> Output {
    understudy(args)
}

fn stdout(o: &Output) -> String {
    text(&o.stdout)
}

fn stderr(o: &Output) -> String {
    text(&o.stderr)
}

#[tokio::test]
async fn status_takeover_refusal_and_reverse_through_the_cli() {
    let demo = Demo::start(&[]);
    let url = demo.url("main-1");
    wait_replicated(&url, "backup-1").await;

    let o = cli(&["status", "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("group demo: redundant\n"), "{out}");
    assert!(
        out.contains("MEMBER") && out.contains("LAST REPLICATION"),
        "{out}"
    );
    let main_row = out
        .lines()
        .find(|l| l.contains("main-1"))
        .expect("main-1 row");
    assert!(
        main_row.contains("online") && main_row.contains("192.0.2.11"),
        "{main_row}"
    );
    // The row index (rgMemberIndex) and the heartbeat paths, as main-1's agent hears them.
    let header = out.lines().nth(1).expect("the header");
    assert!(header.starts_with("T  #  MEMBER"), "{header}");
    assert!(header.ends_with("PATHS"), "{header}");
    let cells = |row: &str| row.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(cells(main_row)[..2], ["1", "main-1"], "{main_row}");
    assert!(main_row.ends_with("local"), "{main_row}");
    let backup_row = out
        .lines()
        .find(|l| l.contains("backup-1"))
        .expect("backup-1 row");
    assert_eq!(cells(backup_row)[..2], ["2", "backup-1"], "{backup_row}");
    assert!(backup_row.ends_with("lan:up"), "{backup_row}");

    // --json is the API's JSON.
    let o = cli(&["status", "--url", &url, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["group"], "demo");

    // Without a token the command is refused (exit 1) and says why.
    let o = cli(&[
        "takeover", "--url", &url, "--backup", "backup-1", "--main", "main-1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));

    let o = cli(&[
        "takeover",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--backup",
        "backup-1",
        "--main",
        "main-1",
        "--reason",
        "maintenance",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("backup-1 took over main-1"), "{out}");
    assert!(out.contains("NO REDUNDANCY"), "{out}");
    let flagged: Vec<&str> = out.lines().filter(|l| l.starts_with('*')).collect();
    assert_eq!(flagged.len(), 2, "both rows flagged: {out}");

    // `status` as a scripted check: 1 while the group is not redundant (also with --json).
    for json in [false, true] {
        let mut args = vec!["status", "--url", &url];
        if json {
            args.push("--json");
        }
        let o = cli(&args);
        assert_eq!(o.status.code(), Some(1), "json {json}: {}", stdout(&o));
    }
    assert!(
        stdout(&cli(&["status", "--url", &url])).contains("NO REDUNDANCY"),
        "the table says why"
    );

    // The same takeover again: exit 1 with every failed precondition.
    let o = cli(&[
        "takeover", "--url", &url, "--token", TOKEN, "--backup", "backup-1", "--main", "main-1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("precondition_failed (409)"), "{err}");
    assert!(err.contains("failed: backup_not_standby"), "{err}");
    assert!(err.contains("failed: main_not_main"), "{err}");

    // Token from a file; reverse takeover.
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write");
    let o = cli(&[
        "reverse-takeover",
        "--url",
        &url,
        "--token-file",
        token_file.to_str().expect("utf-8"),
        "main-1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("group demo: redundant"),
        "{}",
        stdout(&o)
    );

    for (member, exit, says) in [("main-1", 0, ""), ("main-9", 1, "unknown_member")] {
        let o = cli(&[
            "auto-failover",
            "--url",
            &url,
            "--token",
            TOKEN,
            member,
            "on",
        ]);
        assert_eq!(o.status.code(), Some(exit), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }

    let o = cli(&["events", "--url", &url]);
    let out = stdout(&o);
    assert!(
        out.lines().next().unwrap_or("").starts_with("TIME"),
        "{out}"
    );
    assert!(
        out.contains("reverse") && out.contains("refused") && out.contains("manual"),
        "{out}"
    );
    // The reason given with the takeover, in its own column.
    assert!(out.lines().next().unwrap_or("").contains("REASON"), "{out}");
    let takeover = out
        .lines()
        .find(|l| l.contains(" manual ") && l.contains(" done "))
        .unwrap_or_else(|| panic!("the takeover's row: {out}"));
    assert!(takeover.contains("maintenance"), "{takeover}");

    // Redundant again: status exits 0.
    let o = cli(&["status", "--url", &url]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn an_unreachable_agent_exits_3() {
    let port = free_tcp_port();
    let o = cli(&[
        "status",
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--timeout",
        "2s",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2() {
    let o = cli(&["takeover", "--backup", "backup-1"]);
    assert_eq!(o.status.code(), Some(2));
    let o = cli(&["auto-failover", "main-1", "maybe"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn sigterm_stops_the_demo_cleanly() {
    let mut demo = Demo::start(&[]);
    let pid = demo.proc.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = wait_for(Duration::from_secs(10), "the demo to stop", || {
        demo.proc.exited()
    });
    assert_eq!(code.code(), Some(0), "the demo exits 0 on SIGTERM");
}

#[test]
fn json_logs_are_one_json_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let state = dir.path().join("main-1/state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(state.join("state.json"), b"garbage").expect("write");
    let o = understudy_on(
        &["--log-format", "json", "run", "--config"],
        &group[0].config,
    );
    assert_eq!(o.status.code(), Some(65));
    let err = stderr(&o);
    let logged: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
        .collect();
    assert!(
        logged.iter().any(|l| l["level"] == "ERROR"
            && l["fields"]["message"] == "cannot open state"
            && l["fields"]["error"]
                .as_str()
                .is_some_and(|e| e.contains("corrupt"))),
        "{err}"
    );
}

#[test]
fn a_taken_snmp_port_stops_the_agent_before_its_state_is_touched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port");
    let port = taken.local_addr().expect("local address").port();
    write(&dir.path().join("snmp-community"), "cli-read-community\n");
    let text = std::fs::read_to_string(&group[0].config).expect("read config");
    write(
        &group[0].config,
        &format!(
            "{text}\n[snmp]\nlisten = \"127.0.0.1:{port}\"\n[[snmp.communities]]\n\
             name = \"read\"\nsecret_file = \"snmp-community\"\naccess = \"read-only\"\n"
        ),
    );
    let o = understudy_on(&["run", "--config"], &group[0].config);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("127.0.0.1:{port}")),
        "the error names the address: {}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("main-1/state/state.json").exists(),
        "a start that fails leaves no state behind (the start count was not raised)"
    );
}

/// Logs written to a file carry no ANSI escape codes; on a terminal they are coloured unless
/// NO_COLOR is set.
#[tokio::test]
async fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    // A running agent logging to a file.
    let log = dir.path().join("agent.log");
    let mut agent = Proc::spawn_logged(
        "understudy run",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&group[0].config)
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR"),
        log.clone(),
    );
    wait_healthy(&group[0].url).await;
    agent.kill9();
    let written = std::fs::read(&log).expect("the log");
    assert!(
        text(&written).contains("INFO"),
        "the agent logged: {}",
        text(&written)
    );
    assert!(
        !written.contains(&0x1b),
        "ESC in a log written to a file:\n{}",
        text(&written)
    );

    // On a terminal (script(1) gives the agent a pseudo-terminal): an agent that stops at
    // once (a token file others may read) logs its error in colour, or not with NO_COLOR.
    let token = dir.path().join("api-token");
    write_mode(&token, &format!("{GROUP_TOKEN}\n"), 0o644);
    let on_a_terminal = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec"])
            .arg(format!(
                "{} run --config {}",
                bin(),
                group[0].config.display()
            ))
            .arg("/dev/null")
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let o = cmd.output().expect("script(1) (util-linux)");
        assert_eq!(o.status.code(), Some(64), "{}", describe(&cmd, &o));
        assert!(stdout(&o).contains("ERROR"), "{}", describe(&cmd, &o));
        o.stdout
    };
    assert!(
        on_a_terminal(None).contains(&0x1b),
        "no colour on a terminal"
    );
    assert!(
        !on_a_terminal(Some("1")).contains(&0x1b),
        "colour despite NO_COLOR"
    );
}

/// A listener on a port below 1024 without CAP_NET_BIND_SERVICE: the error says what grants
/// it. The agent runs under setpriv(1) with the capability removed from its bounding set (the
/// tests may run as root, who would otherwise bind any port).
#[test]
fn a_privileged_port_without_the_capability_says_what_grants_it() {
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .expect("the unprivileged port sysctl")
        .trim()
        .parse()
        .expect("a port number");
    assert!(
        start > 161,
        "net.ipv4.ip_unprivileged_port_start is {start}: every port from 161 is unprivileged \
         here, so this test cannot see the refusal it checks"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let text = std::fs::read_to_string(&group[0].config).expect("read config");
    let port = group[0].url.rsplit(':').next().expect("port");
    let without_capability = |config: &std::path::Path| {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--bounding-set",
            "-net_bind_service",
            bin(),
            "run",
            "--config",
        ])
        .arg(config);
        let o = cmd.output().expect("setpriv(1) (util-linux)");
        assert_eq!(o.status.code(), Some(64), "{}", describe(&cmd, &o));
        stderr(&o)
    };

    let http = dir.path().join("http-81.toml");
    write(
        &http,
        &text.replace(
            &format!("127.0.0.1:{port}\"\ntoken"),
            "127.0.0.1:81\"\ntoken",
        ),
    );
    let err = without_capability(&http);
    assert!(
        err.contains("cannot listen on 127.0.0.1:81: Permission denied")
            && err.contains("CAP_NET_BIND_SERVICE")
            && err.contains("port of 1024 or above"),
        "{err}"
    );

    write(&dir.path().join("snmp-community"), "cli-read-community\n");
    let snmp = dir.path().join("snmp-161.toml");
    write(
        &snmp,
        &format!(
            "{text}\n[snmp]\nlisten = \"127.0.0.1:161\"\n[[snmp.communities]]\n\
             name = \"read\"\nsecret_file = \"snmp-community\"\naccess = \"read-only\"\n"
        ),
    );
    let err = without_capability(&snmp);
    assert!(
        err.contains("cannot listen for SNMP on udp 127.0.0.1:161: Permission denied")
            && err.contains("CAP_NET_BIND_SERVICE"),
        "{err}"
    );
}

/// `understudy replicate` sent to the Main's agent (which forwards it to the Backup's) reports
/// the replication it triggered: its time in the message, and the same time in the Backup's
/// row of the table that follows.
#[tokio::test]
async fn replicate_through_the_mains_agent_reports_the_replication_it_triggered() {
    let demo = Demo::start(&[]);
    let url = demo.url("main-1");
    wait_replicated(&url, "backup-1").await;
    let before = get_json(&format!("{url}/api/v1/group")).await["members"][1]["last_replication"]
        ["time"]
        .as_str()
        .expect("backup-1 replicated")
        .to_string();
    // The times are to the millisecond: let the clock move on.
    tokio::time::sleep(Duration::from_millis(20)).await;

    let o = cli(&["replicate", "--url", &url, "--token", TOKEN, "backup-1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let first = out.lines().next().unwrap_or("");
    let at = first
        .strip_prefix("backup-1 replicated main-1 at ")
        .and_then(|rest| rest.strip_suffix(": success"))
        .unwrap_or_else(|| panic!("the message names the replication's time: {out}"));
    assert!(at > before.as_str(), "{at} is not after {before}: {out}");
    let row = out
        .lines()
        .find(|l| l.contains("backup-1") && !l.starts_with("backup-1 replicated"))
        .unwrap_or_else(|| panic!("backup-1's row: {out}"));
    assert!(
        row.contains(&format!("success {at}")),
        "the row shows the replication just done ({at}): {out}"
    );
}
