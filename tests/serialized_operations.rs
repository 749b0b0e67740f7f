//! Operations are serialized across the group, and an operation interrupted by a crash is
//! carried to a consistent end. Separate `understudy run` agents on loopback; main-1's
//! on-offline hook sleeps, so a takeover is under way for seconds.
//!
//! - While backup-1's takeover of main-1 runs (main-1's hook sleeping), a reverse takeover
//!   sent to main-1 and a takeover of main-1 by backup-2 are both refused with
//!   `operation_in_progress`: every member holds backup-1's claim on main-1 and backup-1.
//!   Before, main-1 planned the reverse against its half-changed view, and backup-2 was
//!   stopped only by the compare-and-swap after it had started.
//! - backup-1, coordinating a takeover, is killed (SIGKILL) after main-1 released its address
//!   and before backup-1 took it. When backup-1 comes back it finds its persisted intent and
//!   rolls the takeover back: main-1 online on its address again, the history says so, and the
//!   next takeover is accepted (no claim left behind). Before, main-1 stayed offline and
//!   nobody held its address until an operator noticed.

mod support;

use std::time::Duration;

use support::*;

fn with_hook(m: &GroupMember, seconds: u32) {
    let text = std::fs::read_to_string(&m.config).expect("read config");
    write(
        &m.config,
        &format!("{text}\n[hooks]\non_offline = [\"sleep\", \"{seconds}\"]\n"),
    );
}

async fn takeover(url: &str, backup: &str) -> (u16, String) {
    let (s, v) = post(
        &format!("{url}/api/v1/takeover"),
        Some(GROUP_TOKEN),
        &format!(r#"{{"backup":"{backup}","main":"main-1"}}"#),
    )
    .await;
    (s, v.to_string())
}

#[tokio::test]
async fn operations_that_overlap_a_running_takeover_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 2);
    with_hook(&group[0], 3);
    let _agents: Vec<Proc> = {
        let mut v = Vec::new();
        for m in &group {
            v.push(start_agent(m).await);
        }
        v
    };
    let (main, b1, b2) = (&group[0].url, &group[1].url, &group[2].url);
    for url in [main, b1, b2] {
        for b in ["backup-1", "backup-2"] {
            wait_replicated(url, b).await;
        }
    }
    let first = {
        let b1 = b1.clone();
        tokio::spawn(async move { takeover(&b1, "backup-1").await })
    };
    // main-1's hook runs for 3 s; the other two requests arrive while it does.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (s_rev, r_rev) = post(
        &format!("{main}/api/v1/reverse-takeover"),
        Some(GROUP_TOKEN),
        r#"{"main":"main-1"}"#,
    )
    .await;
    let r_rev = r_rev.to_string();
    let (s_b2, r_b2) = takeover(b2, "backup-2").await;
    let (s1, r1) = first.await.expect("first takeover");
    assert_eq!(s1, 200, "the first takeover is done: {r1}");
    for (what, status, body) in [("reverse", s_rev, r_rev), ("backup-2", s_b2, r_b2)] {
        assert_eq!(
            status, 409,
            "{what} is refused while the takeover runs: {body}"
        );
        assert!(
            body.contains("operation_in_progress"),
            "{what} names operation_in_progress: {body}"
        );
    }
    // One holder, and nothing stays claimed: the reverse takeover is accepted now.
    let g = get_json(&format!("{main}/api/v1/group")).await;
    assert_eq!(member(&g, "backup-1")["operational_state"], "online", "{g}");
    assert_eq!(
        member(&g, "backup-2")["operational_state"],
        "standby",
        "{g}"
    );
    post_ok(
        &format!("{main}/api/v1/reverse-takeover"),
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    )
    .await;
}

#[tokio::test]
async fn a_takeover_whose_coordinator_was_killed_half_way_is_rolled_back_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    with_hook(&group[0], 3);
    let mut pair = Pair::start(group).await;
    let (main, backup) = (pair.main_url(), pair.backup_url());

    let requester = {
        let backup = backup.clone();
        tokio::spawn(async move { takeover(&backup, "backup-1").await })
    };
    // main-1 has persisted its release and runs its 3 s hook: kill the coordinator now.
    wait_for_async(Duration::from_secs(5), "main-1 to release", || async {
        let g = get_json(&format!("{main}/api/v1/group")).await;
        (member(&g, "main-1")["operational_state"] == "offline").then_some(())
    })
    .await;
    pair.backup.kill9();
    let _ = requester.await;
    // main-1 finishes its hook and stays released while backup-1 is down: nobody serves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let g = get_json(&format!("{main}/api/v1/group")).await;
    assert_eq!(member(&g, "main-1")["operational_state"], "offline", "{g}");

    // backup-1 comes back and carries its intent to an end: main-1 back online.
    pair.backup = start_agent(&pair.members[1]).await;
    for url in [&main, &backup] {
        wait_for_async(Duration::from_secs(15), "the rollback", || async {
            let g = get_json(&format!("{url}/api/v1/group")).await;
            let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
            (m["operational_state"] == "online"
                && m["current_address"] == m["configured_address"]
                && b["operational_state"] == "standby"
                && all_heard(&g))
            .then_some(())
        })
        .await;
    }
    let events = get_json(&format!("{backup}/api/v1/events")).await;
    assert!(
        events.to_string().contains("rolled back on main-1"),
        "the history says the takeover was rolled back: {events}"
    );
    // No claim left behind: the next takeover is accepted and done.
    let (s, body) = takeover(&backup, "backup-1").await;
    assert_eq!(s, 200, "a new takeover after the rollback: {body}");
}
