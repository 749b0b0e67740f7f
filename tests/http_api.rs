//! The HTTP API of a real demo group (child process, loopback): the takeover walkthrough of
//! the README, every error code, and the metrics checked by `promtool check metrics`.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use support::*;

const TAKEOVER: &str = r#"{"backup":"backup-1","main":"main-1","reason":"test"}"#;

async fn groups(demo: &Demo) -> Vec<Value> {
    let mut out = Vec::new();
    for m in &demo.members {
        out.push(get_json(&format!("{}/api/v1/group", m.http)).await);
    }
    out
}

/// Waits (one second at most) until every member's view, its group JSON and its /metrics,
/// `shows` what the test waits for.
async fn wait_every_view(demo: &Demo, what: &str, shows: impl Fn(&Value, &str) -> bool) {
    for m in &demo.members {
        let url = &m.http;
        wait_for_async(
            Duration::from_secs(1),
            &format!("{}'s view of {what}", m.name),
            || async {
                let g = get_json(&format!("{url}/api/v1/group")).await;
                let metrics = get_text(&format!("{url}/metrics")).await;
                shows(&g, &metrics).then_some(())
            },
        )
        .await;
    }
}

/// The parts of a group view that a command may change (not replication times).
fn essentials(g: &Value) -> Value {
    let members: Vec<Value> = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            serde_json::json!([
                m["name"],
                m["configured_role"],
                m["operational_state"],
                m["current_address"],
                m["auto_failover"],
                m["takeover_flag"],
                m["acting_for"]
            ])
        })
        .collect();
    serde_json::json!({"members": members, "redundant": g["redundancy"]["redundant"]})
}

#[tokio::test]
async fn takeover_alarm_and_reverse_on_every_member_view() {
    let demo = Demo::start(&[]);
    let main = demo.url("main-1");
    let backup = demo.url("backup-1");
    wait_replicated(&main, "backup-1").await;
    let before: Vec<Value> = groups(&demo).await.iter().map(essentials).collect();
    assert_eq!(before[0]["redundant"], true);

    // Without the token, or with a wrong one: 401 and nothing changes.
    let (status, body) = post(&format!("{main}/api/v1/takeover"), None, TAKEOVER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = post(&format!("{main}/api/v1/takeover"), Some("wrong"), TAKEOVER).await;
    assert_eq!(status, 401);
    let after: Vec<Value> = groups(&demo).await.iter().map(essentials).collect();
    assert_eq!(before, after, "a refused command changed the group");

    // The takeover, sent to the main's agent (it is forwarded to the backup's).
    let started = Instant::now();
    let (status, body) = post(&format!("{main}/api/v1/takeover"), Some(TOKEN), TAKEOVER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "done");
    // Within one second every member's view and metrics show it.
    wait_every_view(&demo, "the takeover", |g, metrics| {
        let m = member(g, "main-1");
        let b = member(g, "backup-1");
        g["redundancy"]["redundant"] == false
            && m["operational_state"] == "offline"
            && m["current_address"] == "10.0.3.6"
            && m["auto_failover"] == false
            && m["takeover_flag"] == true
            && b["operational_state"] == "online"
            && b["current_address"] == m["configured_address"]
            && b["takeover_flag"] == true
            && metrics.contains("understudy_group_redundant{group=\"demo\"} 0")
    })
    .await;
    eprintln!(
        "takeover visible on every member after {:?}",
        started.elapsed()
    );
    let g = get_json(&format!("{backup}/api/v1/group")).await;
    let alarms = g["redundancy"]["alarms"].as_array().expect("alarms");
    assert!(
        alarms
            .iter()
            .any(|a| a["type"] == "takeover" && a["main"] == "main-1" && a["backup"] == "backup-1"),
        "{alarms:?}"
    );
    assert!(g["redundancy"]["since"].is_string());
    let metrics = get_text(&format!("{main}/metrics")).await;
    assert!(metrics.contains("understudy_no_redundancy_since_timestamp_seconds{group=\"demo\"}"));
    assert!(metrics.contains("understudy_takeovers_total{group=\"demo\",kind=\"manual\"} 1"));

    // A second takeover of the same pair: 409 with the precondition codes, nothing changes.
    let before: Vec<Value> = groups(&demo).await.iter().map(essentials).collect();
    let (status, body) = post(&format!("{backup}/api/v1/takeover"), Some(TOKEN), TAKEOVER).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "precondition_failed");
    let failed: Vec<&str> = body["failed"]
        .as_array()
        .expect("failed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(failed, ["backup_not_standby", "main_not_main"]);
    let after: Vec<Value> = groups(&demo).await.iter().map(essentials).collect();
    assert_eq!(before, after, "a refused takeover changed the group");

    // Reverse takeover restores addresses, states and flags, and clears the alarm everywhere.
    let (status, body) = post(
        &format!("{backup}/api/v1/reverse-takeover"),
        Some(TOKEN),
        r#"{"main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_every_view(&demo, "the reverse", |g, _| {
        let m = member(g, "main-1");
        let b = member(g, "backup-1");
        g["redundancy"]["redundant"] == true
            && m["operational_state"] == "online"
            && m["current_address"] == m["configured_address"]
            && b["operational_state"] == "standby"
            && b["current_address"] == b["configured_address"]
            && m["takeover_flag"] == false
            && b["takeover_flag"] == false
    })
    .await;

    // The history says who asked, why, and what came of it, newest first.
    let ev = get_json(&format!("{backup}/api/v1/events")).await;
    let kinds: Vec<(&str, &str)> = ev["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds[..3],
        [
            ("reverse", "done"),
            ("manual", "refused"),
            ("manual", "done")
        ]
    );
    let done = &ev["events"][2];
    assert_eq!(done["reason"], "test");
    assert_eq!(done["requested_by"]["interface"], "http");
    assert!(done["time"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let demo = Demo::start(&["--mains", "2"]);
    let url = demo.url("main-1");
    wait_converged(&url).await;
    // Once backup-1 has replicated both Mains the group is redundant, and stays so whatever
    // is refused below (before, a slow first replication looked like a change).
    wait_for_async(
        Duration::from_secs(15),
        "the group to be redundant",
        || async {
            let g = get_json(&format!("{url}/api/v1/group")).await;
            (g["redundancy"]["redundant"] == true).then_some(())
        },
    )
    .await;
    let before = essentials(&get_json(&format!("{url}/api/v1/group")).await);
    const BAD: (u16, &str) = (400, "bad_request");
    const UNKNOWN: (u16, &str) = (404, "unknown_member");
    const REFUSED: (u16, &str) = (409, "precondition_failed");
    #[rustfmt::skip]
    let cases: &[(&str, &str, (u16, &str))] = &[
        ("takeover", "{not json", BAD),
        ("takeover", r#"{"backup":"backup-1"}"#, BAD),
        ("takeover", r#"{"backup":"backup-1","main":"main-1","colour":1}"#, BAD),
        ("takeover", r#"{"backup":"backup-1","main":"main-9"}"#, UNKNOWN),
        ("takeover", r#"{"backup":"backup-1","main":"backup-1"}"#, BAD),
        ("reverse-takeover", r#"{"main":"main-1"}"#, REFUSED),
        ("reconfigure", r#"{"main":"main-1","backup":"backup-1"}"#, REFUSED),
        ("replace-takeover", r#"{"main":"main-1"}"#, REFUSED),
        ("replace-takeover", r#"{"main":"main-1","replacement":"main-1"}"#, REFUSED),
        ("replace-takeover", r#"{"main":"main-1","replacement":"main-2"}"#, BAD),
        ("replace-takeover", r#"{"main":"main-1","replacement":"main-1-new"}"#, BAD),
        ("replace-takeover", r#"{"main":"main-9"}"#, UNKNOWN),
        ("nothing-here", "{}", (404, "not_found")),
    ];
    for (route, body, (want_status, want_code)) in cases {
        let path = format!("/api/v1/{route}");
        let (status, json) = post(&format!("{url}{path}"), Some(TOKEN), body).await;
        assert_eq!(status, *want_status, "{path} {body}: {json}");
        assert_eq!(json["error"], *want_code, "{path} {body}: {json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    // Wrong token beats bad JSON: nothing about the request is looked at without it.
    let (status, _) = post(&format!("{url}/api/v1/takeover"), Some("nope"), "{not json").await;
    assert_eq!(status, 401);
    let after = essentials(&get_json(&format!("{url}/api/v1/group")).await);
    assert_eq!(before, after);
    // The refusals are in the history with their codes.
    let ev = get_json(&format!("{}/api/v1/events", demo.url("main-1"))).await;
    assert!(ev["events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| e["kind"] == "reverse"
            && e["outcome"] == "refused"
            && e["failed"][0] == "main_not_taken_over"));
}

#[tokio::test]
async fn auto_failover_flag_is_set_through_the_member_route() {
    let demo = Demo::start(&[]);
    let url = demo.url("backup-1");
    let put = |member: &'static str, token: Option<&'static str>| {
        let url = format!("{url}/api/v1/members/{member}/auto-failover");
        async move {
            send(Method::PUT, &url, token, r#"{"enabled":false}"#)
                .await
                .0
        }
    };
    assert_eq!(put("main-1", None).await, 401);
    assert_eq!(put("main-7", Some(TOKEN)).await, 404);
    assert_eq!(put("main-1", Some(TOKEN)).await, 200);
    wait_every_view(&demo, "auto-failover off", |g, _| {
        member(g, "main-1")["auto_failover"] == false
    })
    .await;
    let metrics = get_text(&format!("{url}/metrics")).await;
    assert!(metrics
        .contains("understudy_member_auto_failover_enabled{group=\"demo\",member=\"main-1\"} 0"));
}

#[tokio::test]
async fn healthz_status_page_and_promtool_clean_metrics() {
    let demo = Demo::start(&["--mains", "2", "--backups", "2"]);
    let url = demo.url("main-2");
    let h = get_json(&format!("{url}/healthz")).await;
    assert_eq!(
        (h["status"].as_str(), h["member"].as_str()),
        (Some("ok"), Some("main-2"))
    );
    let page = get_text(&format!("{url}/")).await;
    for name in ["main-1", "main-2", "backup-1", "backup-2"] {
        assert!(page.contains(name), "status page lacks {name}");
    }
    wait_replicated(&url, "backup-1").await;
    let text = get_text(&format!("{url}/metrics")).await;
    for name in understudy::metrics::METRIC_NAMES {
        if understudy::metrics::CONDITIONAL_METRIC_NAMES.contains(name) {
            // present only while the alarm is raised, or with leases, a quorum source or a
            // fence command (tests/http_router.rs and the metrics' unit tests show them)
            continue;
        }
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "/metrics lacks {name}"
        );
    }
    for state in ["online", "standby", "offline", "unknown"] {
        assert!(text.contains(&format!(
            "understudy_member_state{{group=\"demo\",member=\"backup-2\",state=\"{state}\"}}"
        )));
    }
    support::metric_names::assert_promtool_accepts("/metrics", &text);
}

#[tokio::test]
async fn a_command_whose_coordinator_cannot_be_reached_is_503_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let url = group[0].url.clone();
    let _main = start_agent(&group[0]).await; // backup-1's agent is not running
    let before = essentials(&get_json(&format!("{url}/api/v1/group")).await);
    let (status, body) = post(
        &format!("{url}/api/v1/takeover"),
        Some(GROUP_TOKEN),
        r#"{"backup":"backup-1","main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"].as_str().unwrap_or("").contains("backup-1"),
        "{body}"
    );
    assert_eq!(
        before,
        essentials(&get_json(&format!("{url}/api/v1/group")).await)
    );
    let ev = get_json(&format!("{url}/api/v1/events")).await;
    assert_eq!(ev["events"][0]["outcome"], "failed", "{ev}");
    // The agent's own view says why there is no redundancy: the backup is unknown.
    let g = get_json(&format!("{url}/api/v1/group")).await;
    assert_eq!(member(&g, "backup-1")["operational_state"], "unknown");
    assert_eq!(g["redundancy"]["alarms"][0]["type"], "no_standby_backup");
}
