//! A peer that refuses this agent's heartbeats (here: another group secret) is asked less and
//! less often — the wait doubles from the heartbeat interval up to 30 s — instead of every
//! heartbeat, so neither log fills with one refusal per heartbeat. Before, main-1's log got a
//! refusal every 200 ms (about 30 in 6 s).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test]
async fn heartbeats_a_peer_refuses_back_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    write(&dir.path().join("other-secret"), "not-the-group-secret\n");
    let text = std::fs::read_to_string(&group[1].config).expect("read config");
    assert!(text.contains("secret_file = \"group-secret\""), "{text}");
    write(
        &group[1].config,
        &text.replace(
            "secret_file = \"group-secret\"",
            "secret_file = \"other-secret\"",
        ),
    );
    let main_log = dir.path().join("main-1.log");
    let _main = start_agent_logged(&group[0], main_log.clone()).await;
    let _backup = start_agent_logged(&group[1], dir.path().join("backup-1.log")).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = std::fs::read_to_string(&main_log).expect("main-1's log");
    let refused = log
        .lines()
        .filter(|l| l.contains("peer request refused") && l.contains("/peer/v1/heartbeat"))
        .count();
    // 200 ms doubling: 0.2 + 0.4 + 0.8 + 1.6 + 3.2 s covers 6 s in at most 6 attempts.
    assert!(
        (1..=7).contains(&refused),
        "main-1 refused backup-1's heartbeats {refused} times in 6 s (30 without back-off):\n{log}"
    );
}
