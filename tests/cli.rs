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
