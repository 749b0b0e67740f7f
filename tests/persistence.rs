//! Nothing is lost on a crash: the alarm, the takeover and the history survive SIGKILL of the
//! demo and of a single member's agent; a corrupt state file stops the agent with a clear
//! error instead of a fresh start that would forget a takeover.

mod support;

use std::time::Duration;

use support::*;

const TAKEOVER: &str = r#"{"backup":"backup-1","main":"main-1"}"#;

async fn assert_taken_over(url: &str, what: &str) {
    wait_for_async(Duration::from_secs(10), what, || async {
        let g = get_json(&format!("{url}/api/v1/group")).await;
        let m = member(&g, "main-1");
        let b = member(&g, "backup-1");
        (g["redundancy"]["redundant"] == false
            && m["operational_state"] == "offline"
            && m["takeover_flag"] == true
            && b["operational_state"] == "online"
            && b["current_address"] == m["configured_address"])
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_alarm_survives_sigkill_of_the_demo() {
    let demo = Demo::start(&[]);
    let url = demo.url("main-1");
    wait_replicated(&url, "backup-1").await;
    post_ok(&format!("{url}/api/v1/takeover"), TOKEN, TAKEOVER).await;
    let before = get_json(&format!("{url}/api/v1/group")).await;
    let since = before["redundancy"]["since"].clone();
    // Both states changed with the takeover, at its time (the alarm's raise time).
    let changed = member(&before, "main-1")["state_changed_at"].clone();
    assert!(changed.is_string(), "{before}");
    assert_eq!(changed, since, "{before}");
    assert_eq!(member(&before, "backup-1")["state_changed_at"], changed);

    // SIGKILL, and the demo again on the same state directory.
    let demo = demo.restart(&[]);
    for Member {
        name, http: url, ..
    } in &demo.members
    {
        assert_taken_over(url, &format!("{name} to show the takeover after restart")).await;
        let g = get_json(&format!("{url}/api/v1/group")).await;
        assert_eq!(
            g["redundancy"]["since"], since,
            "the alarm keeps its raise time"
        );
        for m in ["main-1", "backup-1"] {
            assert_eq!(
                member(&g, m)["state_changed_at"],
                changed,
                "{name}'s view of {m}'s last state change"
            );
        }
        let ev = get_json(&format!("{url}/api/v1/events")).await;
        assert!(
            ev["events"]
                .as_array()
                .expect("events")
                .iter()
                .any(|e| e["kind"] == "manual" && e["outcome"] == "done"),
            "{name} lost the takeover event"
        );
        let metrics = get_text(&format!("{url}/metrics")).await;
        assert!(metrics.contains("understudy_group_redundant{group=\"demo\"} 0"));
        assert!(metrics.contains("understudy_takeovers_total{group=\"demo\",kind=\"manual\"} 1"));
        assert!(
            metrics.contains(
                "understudy_member_state_changed_timestamp_seconds{group=\"demo\",member=\"main-1\"} "
            ),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn a_member_agent_killed_during_no_redundancy_comes_back_with_the_alarm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pair = Pair::start(write_group(dir.path(), 1, 1)).await;
    let (main_url, backup_url) = (pair.main_url(), pair.backup_url());
    post_ok(
        &format!("{main_url}/api/v1/takeover"),
        GROUP_TOKEN,
        TAKEOVER,
    )
    .await;
    assert_taken_over(&main_url, "the main's view").await;

    // SIGKILL the backup (now acting as main-1) and bring it back on the same state.
    pair.backup.kill9();
    pair.backup = start_agent(&pair.members[1]).await;
    assert_taken_over(&backup_url, "the restarted backup's view").await;

    // SIGKILL the taken-over main; when it returns it stays offline on its extra address.
    pair.main.kill9();
    pair.main = start_agent(&pair.members[0]).await;
    assert_taken_over(&main_url, "the restarted main's view").await;
    let g = get_json(&format!("{main_url}/api/v1/group")).await;
    assert_eq!(member(&g, "main-1")["current_address"], "10.0.3.6");

    // Reverse takeover still works after both restarts.
    post_ok(
        &format!("{main_url}/api/v1/reverse-takeover"),
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    )
    .await;
    let g = get_json(&format!("{backup_url}/api/v1/group")).await;
    assert_eq!(g["redundancy"]["redundant"], true, "{g}");
}

#[tokio::test]
async fn a_main_that_was_down_during_the_takeover_does_not_reclaim_its_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Pair {
        members: group,
        mut main,
        backup: _backup,
    } = Pair::start(write_group(dir.path(), 1, 1)).await;
    let (main_url, backup_url) = (group[0].url.clone(), group[1].url.clone());
    // Turn auto-failover off so that only the operator's takeover happens.
    let (status, _) = send(
        reqwest::Method::PUT,
        &format!("{backup_url}/api/v1/members/main-1/auto-failover"),
        Some(GROUP_TOKEN),
        r#"{"enabled":false}"#,
    )
    .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    main.kill9();
    // The backup takes over without the main's release (the main cannot be reached).
    let body = post_ok(
        &format!("{backup_url}/api/v1/takeover"),
        GROUP_TOKEN,
        TAKEOVER,
    )
    .await;
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("could not be reached"),
        "{body}"
    );
    // The main's persisted record still says online; on restart it learns from its peer.
    let _main = start_agent(&group[0]).await;
    assert_taken_over(&main_url, "the returning main to accept it was taken over").await;
    let g = get_json(&format!("{main_url}/api/v1/group")).await;
    assert_eq!(member(&g, "main-1")["current_address"], "10.0.3.6");
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_agent_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let state = dir.path().join("main-1/state");
    std::fs::create_dir_all(&state).expect("mkdir");
    let file = state.join("state.json");
    std::fs::write(&file, b"{\"format\": 1, \"group\": \"te").expect("write");
    let out = understudy_on(&["run", "--config"], &group[0].config);
    assert_eq!(
        out.status.code(),
        Some(65),
        "exit code for an unusable state"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt") && err.contains("refusing to start"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        b"{\"format\": 1, \"group\": \"te",
        "the corrupt file must be left as it was for inspection"
    );
}

#[tokio::test]
async fn configuration_errors_exit_64_and_check_config_explains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let path = &group[0].config;
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(
        path,
        text.replace("failover_after = \"1500ms\"", "failover_after = \"100ms\""),
    )
    .expect("write");
    let out = understudy_on(&["run", "--config"], path);
    assert_eq!(out.status.code(), Some(64));
    let out = understudy_on(&["check-config"], path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failover_after") && err.contains("heartbeat_interval"),
        "{err}"
    );
    let out = understudy_on(&["check-config"], &group[1].config);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("member = \"backup-1\""));
}
