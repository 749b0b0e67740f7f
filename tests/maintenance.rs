//! Maintenance mode with real agents: `PUT /api/v1/maintenance` (token required, a bad body
//! changes nothing), set on one agent and shown at once by every agent of the group (group
//! JSON, metrics, events with who and why, the CLI's status table), kept across a SIGKILL of
//! every agent, cleared with `understudy maintenance off`; manual operations still work while
//! it is on.

mod support;

use serde_json::Value;

use support::*;

async fn put_maintenance(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    send(
        reqwest::Method::PUT,
        &format!("{url}/api/v1/maintenance"),
        token,
        body,
    )
    .await
}

async fn maintenance_of(url: &str) -> Value {
    get_json(&format!("{url}/api/v1/group")).await["maintenance"].clone()
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = understudy(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test]
async fn maintenance_mode_is_group_wide_persisted_and_leaves_manual_operations_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let members = write_group(dir.path(), 1, 1);
    let mut pair = Pair::start(members).await;
    let (main, backup) = (pair.main_url(), pair.backup_url());
    for url in [&main, &backup] {
        let m = maintenance_of(url).await;
        assert_eq!(m["enabled"], false, "{m}");
        assert_eq!(m["changed_at"], Value::Null, "{m}");
    }

    // No token: 401. A bad body with the token: 400. Neither changes anything.
    let (status, body) =
        put_maintenance(&main, None, r#"{"enabled":true,"reason":"no token"}"#).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = put_maintenance(&main, Some("wrong-token"), r#"{"enabled":true}"#).await;
    assert_eq!(status, 401, "{body}");
    for bad in [
        r#"{"enabled":"yes"}"#,
        r#"{"reason":"no setting"}"#,
        r#"{"enabled":true,"typo":1}"#,
        "not json",
    ] {
        let (status, body) = put_maintenance(&main, Some(GROUP_TOKEN), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "bad_request", "{body}");
    }
    for url in [&main, &backup] {
        assert_eq!(maintenance_of(url).await["enabled"], false);
        let events = get_json(&format!("{url}/api/v1/events")).await;
        assert!(
            !events["events"]
                .as_array()
                .expect("events")
                .iter()
                .any(|e| e["kind"] == "maintenance"),
            "a refused request recorded a change: {events}"
        );
    }

    // On, through main-1: when the answer comes, backup-1 has it too (pushed, not waited for).
    let (status, body) = put_maintenance(
        &main,
        Some(GROUP_TOKEN),
        r#"{"enabled":true,"reason":"router swap"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"]["kind"], "maintenance", "{body}");
    let on_main = maintenance_of(&main).await;
    let on_backup = maintenance_of(&backup).await;
    for m in [&on_main, &on_backup] {
        assert_eq!(m["enabled"], true, "{m}");
        assert_eq!(m["reason"], "router swap", "{m}");
        assert_eq!(m["changed_through"], "main-1", "{m}");
        assert!(
            m["changed_by"]
                .as_str()
                .is_some_and(|b| b.starts_with("http:token@127.0.0.1")),
            "{m}"
        );
        assert_eq!(m["alert_after_seconds"], 4 * 3600, "{m}");
    }
    assert_eq!(
        on_main["since"], on_backup["since"],
        "one start, everywhere"
    );
    let since = on_main["since"].clone();
    assert!(since.is_string(), "{on_main}");
    for url in [&main, &backup] {
        let metrics = get_text(&format!("{url}/metrics")).await;
        assert!(
            metrics.contains("understudy_group_maintenance{group=\"test\"} 1"),
            "{url}: {metrics}"
        );
        assert!(metrics
            .contains("understudy_group_maintenance_since_timestamp_seconds{group=\"test\"}"));
        let events = get_json(&format!("{url}/api/v1/events")).await;
        let ev = events["events"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["kind"] == "maintenance")
            .unwrap_or_else(|| panic!("{url}: no maintenance event in {events}"))
            .clone();
        assert_eq!(ev["operation"]["enabled"], true, "{ev}");
        assert_eq!(ev["reason"], "router swap", "{ev}");
        assert_eq!(ev["requested_by"]["interface"], "http", "{ev}");
        assert_eq!(ev["coordinator"], "main-1", "{ev}");
        let page = get_text(&format!("{url}/")).await;
        assert!(
            page.contains("MAINTENANCE MODE</strong> since"),
            "{url}: no banner"
        );
    }
    let (code, table) = cli(&["status", "--url", &backup]);
    assert!(
        table.contains("MAINTENANCE MODE since") && table.contains("reason: router swap"),
        "exit {code}: {table}"
    );

    // Both agents killed and started again: still on, with the same start.
    pair.main.kill9();
    pair.backup.kill9();
    pair.main = start_agent(&pair.members[0]).await;
    pair.backup = start_agent(&pair.members[1]).await;
    for url in [&main, &backup] {
        let m = maintenance_of(url).await;
        assert_eq!(m["enabled"], true, "{url} after restart: {m}");
        assert_eq!(m["since"], since, "{url} after restart: {m}");
    }

    // Manual operations still work while it is on.
    wait_converged(&backup).await;
    wait_replicated(&backup, "backup-1").await;
    let (status, body) = command(
        &backup,
        "takeover",
        GROUP_TOKEN,
        r#"{"backup":"backup-1","main":"main-1","reason":"planned"}"#,
    )
    .await;
    assert_eq!(status, 200, "manual takeover in maintenance mode: {body}");
    let (status, body) = command(
        &main,
        "reverse-takeover",
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "reverse takeover in maintenance mode: {body}");

    // Off, with the CLI through the other agent.
    let (code, out) = cli(&[
        "maintenance",
        "--url",
        &backup,
        "--token",
        GROUP_TOKEN,
        "off",
        "--reason",
        "swap done",
    ]);
    assert_eq!(code, 0, "{out}");
    for url in [&main, &backup] {
        let m = maintenance_of(url).await;
        assert_eq!(m["enabled"], false, "{url}: {m}");
        assert_eq!(m["since"], Value::Null, "{url}: {m}");
        assert_eq!(m["reason"], "swap done", "{url}: {m}");
        assert_eq!(m["changed_through"], "backup-1", "{url}: {m}");
        let metrics = get_text(&format!("{url}/metrics")).await;
        assert!(metrics.contains("understudy_group_maintenance{group=\"test\"} 0"));
        assert!(!metrics.contains("understudy_group_maintenance_since_timestamp_seconds{"));
    }
    let (_, table) = cli(&["status", "--url", &main]);
    assert!(!table.contains("MAINTENANCE MODE"), "{table}");
}
