//! The one shutdown path (src/node.rs): SIGTERM while an operation is under way lets it finish
//! within the grace period — the operator's request is answered, the record is written, the
//! address is taken and its hook has run — and the agent then exits 0. Runs two separate
//! `understudy run` agents on loopback.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

/// A group of main-1 and backup-1 whose on-online hook on backup-1 takes 2 s and then
/// creates the file it returns.
fn slow_hook_group(dir: &Path) -> (Vec<GroupMember>, PathBuf) {
    let group = write_group(dir, 1, 1);
    let marker = dir.join("on-online-done");
    let hook = format!(
        "\n[hooks]\non_online = [\"sh\", \"-c\", \"sleep 2 && touch {}\"]\n",
        marker.display()
    );
    let text = std::fs::read_to_string(&group[1].config).expect("read config");
    write(&group[1].config, &format!("{text}{hook}"));
    (group, marker)
}

/// backup-1's own record as it wrote it to its state file.
fn persisted_record(dir: &Path) -> serde_json::Value {
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("backup-1/state/state.json")).expect("state file"),
    )
    .expect("state JSON");
    state["view"]["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == "backup-1"))
        .expect("backup-1's record")
        .clone()
}

fn sigterm(p: &Proc) {
    let status = Command::new("kill")
        .args(["-TERM", &p.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_during_a_takeover_lets_it_finish_then_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, marker) = slow_hook_group(dir.path());
    let Pair {
        members: group,
        main: _main,
        backup: mut coordinator,
    } = Pair::start(group).await;
    let (main, backup) = (&group[0], &group[1]);

    let url = format!("{}/api/v1/takeover", backup.url);
    let request = tokio::spawn(async move {
        post(
            &url,
            Some(GROUP_TOKEN),
            r#"{"backup":"backup-1","main":"main-1"}"#,
        )
        .await
    });
    // Once main-1 has released its address, backup-1 is inside its own step (hook running).
    wait_for_async(Duration::from_secs(5), "main-1 to release", || async {
        let g = get_json(&format!("{}/api/v1/group", main.url)).await;
        (member(&g, "main-1")["operational_state"] == "offline").then_some(())
    })
    .await;
    assert!(
        !marker.exists(),
        "the hook is still running when SIGTERM is sent"
    );
    let sent = Instant::now();
    sigterm(&coordinator);

    let (code, body) = request.await.expect("request task");
    assert_eq!(code, 200, "the takeover under way is carried out: {body}");
    assert_eq!(body["outcome"], "done", "{body}");
    assert!(marker.exists(), "backup-1's on-online hook ran to its end");
    let exit = wait_for(Duration::from_secs(20), "backup-1 to stop", || {
        coordinator.exited()
    });
    assert_eq!(exit.code(), Some(0), "a stopped agent exits 0");
    assert!(
        sent.elapsed() >= Duration::from_millis(500),
        "the agent waited for the operation instead of dropping it"
    );

    // What backup-1 wrote before it stopped: it holds main-1's address.
    let me = persisted_record(dir.path());
    assert_eq!(me["state"], "online", "{me}");
    assert_eq!(me["acting_for"], "main-1", "{me}");
}

/// A failover is started by the agent's own detector, not by a request: the agent's loop
/// must let it finish too (before the node, the loops were aborted at once and the Backup's
/// on-online step was cut off half-way).
#[tokio::test]
async fn sigterm_during_a_failover_lets_it_finish_then_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, marker) = slow_hook_group(dir.path());
    let Pair {
        main: mut main_agent,
        backup: mut detector,
        ..
    } = Pair::start(group).await;
    main_agent.kill9();
    // backup-1 fails main-1 over after failover_after (1.5 s): its record says online while
    // its on-online hook still runs.
    wait_for(
        Duration::from_secs(10),
        "backup-1 to start the failover",
        || (persisted_record(dir.path())["state"] == "online").then_some(()),
    );
    assert!(
        !marker.exists(),
        "the hook is still running when SIGTERM is sent"
    );
    sigterm(&detector);
    let exit = wait_for(Duration::from_secs(20), "backup-1 to stop", || {
        detector.exited()
    });
    assert_eq!(exit.code(), Some(0), "a stopped agent exits 0");
    assert!(marker.exists(), "backup-1's on-online hook ran to its end");
    let me = persisted_record(dir.path());
    assert_eq!(me["acting_for"], "main-1", "{me}");
}
