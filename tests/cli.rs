//! The client commands against a real demo group: tables by default, `--json`, exit codes,
//! and the failed preconditions printed when a command is refused.

mod support;

use std::process::{Command, Output};

use support::*;

fn cli(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run the CLI")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn status_takeover_refusal_and_reverse_through_the_cli() {
    let demo = DemoProc::start(&[]);
    let url = demo.url("main-1").to_string();
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

    let o = cli(&[
        "auto-failover",
        "--url",
        &url,
        "--token",
        TOKEN,
        "main-1",
        "on",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = cli(&[
        "auto-failover",
        "--url",
        &url,
        "--token",
        TOKEN,
        "main-9",
        "on",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown_member"), "{}", stderr(&o));

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
    let port = free_port();
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
