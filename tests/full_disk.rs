//! Persist, then change memory, then act: main-1's state directory is an 8 MiB tmpfs, filled
//! up; a takeover then fails at main-1 (it cannot persist the operation's claim) and changes
//! nothing anywhere — main-1 still online on its address, backup-1 in standby, on every
//! member's view; main-1 raises one alarm, that it cannot write its state, until it can.
//! Before, main-1 merged its new record in memory before the save failed and spread it with
//! its heartbeats: every member showed main-1 offline and backup-1 in standby, so nobody
//! served and the group said the Main was offline. Needs root (mounts a tmpfs);
//! ./scripts/test runs as root in CI. The same holds for switching maintenance mode on.

mod support;

use std::time::Duration;

use support::tmpfs::Tmpfs;
use support::*;

async fn group_as_seen_by(url: &str) -> serde_json::Value {
    get_json(&format!("{url}/api/v1/group")).await
}

#[tokio::test]
async fn a_save_that_fails_changes_nothing_anywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let disk = Tmpfs::mount(&dir.path().join("main-1/state"), "8m");
    let pair = Pair::start(group).await;
    let urls = [pair.main_url(), pair.backup_url()];
    disk.fill();

    let takeover = r#"{"backup":"backup-1","main":"main-1"}"#;
    let (status, body) = command(&pair.backup_url(), "takeover", GROUP_TOKEN, takeover).await;
    assert_eq!(status, 503, "the takeover cannot be carried out: {body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot persist")),
        "the refusal says why: {body}"
    );

    // Long enough for heartbeats to have spread anything that changed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for url in &urls {
        let g = group_as_seen_by(url).await;
        let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
        assert_eq!(m["operational_state"], "online", "as {url} sees it: {g}");
        assert_eq!(m["current_address"], m["configured_address"], "{g}");
        assert_eq!(m["takeover_flag"], false, "{g}");
        assert_eq!(b["operational_state"], "standby", "{g}");
    }
    // No takeover mark anywhere; the only alarm is main-1's own: it cannot write its state.
    let alarm_types = |g: &serde_json::Value| -> Vec<String> {
        g["redundancy"]["alarms"]
            .as_array()
            .map(|a| a.iter().map(|a| a["type"].to_string()).collect())
            .unwrap_or_default()
    };
    let g = group_as_seen_by(&urls[1]).await;
    assert_eq!(g["redundancy"]["redundant"], true, "{g}");
    let g = group_as_seen_by(&urls[0]).await;
    assert_eq!(alarm_types(&g), ["\"state_not_writable\""], "{g}");
    assert!(
        g["redundancy"]["alarms"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("main-1 cannot write its state")),
        "the alarm says why: {g}"
    );

    // main-1 says it cannot write its state: /healthz 503, understudy_state_writable 0.
    let main_url = pair.main_url();
    let health_url = format!("{main_url}/healthz");
    let health = || send(reqwest::Method::GET, &health_url, None, "");
    let (status, health_now) = health().await;
    assert_eq!(status, 503, "{health_now}");
    assert_eq!(health_now["status"], "state_not_writable", "{health_now}");
    let metrics = get_text(&format!("{main_url}/metrics")).await;
    assert!(
        metrics.contains("understudy_state_writable{group=\"test\"} 0"),
        "{metrics}"
    );

    // Room again: main-1 saves at its next heartbeat, says so, and the takeover is done.
    disk.free();
    wait_for_async(Duration::from_secs(5), "main-1 to save again", || async {
        let (status, _) = health().await;
        (status == 200).then_some(())
    })
    .await;
    let metrics = get_text(&format!("{main_url}/metrics")).await;
    assert!(
        metrics.contains("understudy_state_writable{group=\"test\"} 1"),
        "{metrics}"
    );
    let g = group_as_seen_by(&main_url).await;
    assert_eq!(g["redundancy"]["redundant"], true, "the alarm is gone: {g}");
    let (status, body) = command(&pair.backup_url(), "takeover", GROUP_TOKEN, takeover).await;
    assert_eq!(status, 200, "{body}");
}

/// A failover that cannot be carried out (backup-1's state disk is full) is retried less and
/// less often, and its identical refusals are counted on one history entry instead of
/// flushing the history (before: one attempt and one entry per heartbeat, 200 ms here).
#[tokio::test]
async fn a_failover_that_keeps_failing_backs_off_and_is_counted_on_one_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let disk = Tmpfs::mount(&dir.path().join("backup-1/state"), "8m");
    let mut pair = Pair::start(group).await;
    disk.fill();
    pair.main.kill9();
    // failover_after is 1.5 s; then 6 s of attempts: 30 at one per heartbeat, 5 backing off.
    tokio::time::sleep(Duration::from_millis(1500 + 6000)).await;
    let events = get_json(&format!("{}/api/v1/events", pair.backup_url())).await;
    let failovers: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["operation"]["op"] == "failover")
                .collect()
        })
        .unwrap_or_default();
    // The first attempt fails at its save; the later ones are refused at once (the state
    // cannot be written) and are counted on one entry.
    assert_eq!(
        failovers.len(),
        2,
        "two entries for the failing failover: {events}"
    );
    assert!(
        failovers.iter().all(|e| e["outcome"] == "failed"),
        "{events}"
    );
    let attempts: u64 = failovers
        .iter()
        .map(|e| 1 + e["repeats"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        (2..=8).contains(&attempts),
        "{attempts} attempts in 6 s: retried, backing off: {events}"
    );
}

/// Maintenance mode too is persisted before anything else: with main-1's state directory full,
/// switching it on through main-1 answers 503 and changes nothing on either agent (not even
/// in main-1's memory, which its heartbeats would spread); once the disk has room, it works.
#[tokio::test]
async fn maintenance_mode_that_cannot_be_saved_changes_nothing_anywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let disk = Tmpfs::mount(&dir.path().join("main-1/state"), "8m");
    let pair = Pair::start(group).await;
    let urls = [pair.main_url(), pair.backup_url()];
    disk.fill();

    let url = format!("{}/api/v1/maintenance", pair.main_url());
    let on = r#"{"enabled":true,"reason":"disk full test"}"#;
    let (status, body) = send(reqwest::Method::PUT, &url, Some(GROUP_TOKEN), on).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot persist the maintenance setting")),
        "the refusal says why: {body}"
    );
    // Long enough for heartbeats to have spread anything that changed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for u in &urls {
        let g = group_as_seen_by(u).await;
        assert_eq!(g["maintenance"]["enabled"], false, "{u}: {g}");
        let metrics = get_text(&format!("{u}/metrics")).await;
        assert!(metrics.contains("understudy_group_maintenance{group=\"test\"} 0"));
    }

    disk.free();
    let (status, body) = send(reqwest::Method::PUT, &url, Some(GROUP_TOKEN), on).await;
    assert_eq!(status, 200, "{body}");
    for u in &urls {
        assert_eq!(
            group_as_seen_by(u).await["maintenance"]["enabled"],
            true,
            "{u}"
        );
    }
}
