//! The lease of the `hooks` backend, enforced by the agent (no kernel can remove an address it
//! does not configure): two `understudy run` agents on loopback, `[address] backend = "hooks"`,
//! lease 1 s, hooks that append what they are told to a file. An agent paused past its lease
//! runs `on_lease_lost` for the address as soon as it runs again, and takes the address again
//! (on_online) only after a heartbeat round: it was not failed over. Paused past
//! failover_after, it was: it runs `on_lease_lost`, then learns the takeover and goes offline
//! on its extra address, never on_online on the service address again.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

/// Gives every member of `group` the hooks backend with a 1 s lease (failover_after 2 s: at
/// least lease + heartbeat 200 ms + 0.4 s) and hooks writing `<event> <address>` lines to
/// `<member>-hooks.log` in `dir`.
fn with_hooks_backend(dir: &Path, group: &[GroupMember]) {
    for m in group {
        let log = dir.join(format!("{}-hooks.log", m.name));
        let hook = |event: &str| {
            format!(
                r#"["/bin/sh", "-c", "echo {event} $UNDERSTUDY_ADDRESS >> {}"]"#,
                log.display()
            )
        };
        let text = std::fs::read_to_string(&m.config).expect("config");
        let text = text.replace("failover_after = \"1500ms\"", "failover_after = \"2s\"");
        let text = format!(
            "{text}\n[address]\nbackend = \"hooks\"\nlease = \"1s\"\n\n[hooks]\n\
             on_online = {}\non_standby = {}\non_offline = {}\non_lease_lost = {}\n",
            hook("online"),
            hook("standby"),
            hook("offline"),
            hook("lease_lost"),
        );
        std::fs::write(&m.config, text).expect("config");
    }
}

fn hook_lines(dir: &Path, member: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{member}-hooks.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn an_agent_paused_past_its_lease_runs_on_lease_lost_then_takes_its_address_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    with_hooks_backend(dir.path(), &group);
    let pair = Pair::start(group).await;
    let (main, backup) = (pair.main_url(), pair.backup_url());
    // Both show main-1's lease, enforced by the agent.
    wait_for_async(
        Duration::from_secs(5),
        "main-1's lease in both views",
        || {
            let (main, backup) = (main.clone(), backup.clone());
            async move {
                for url in [&main, &backup] {
                    let g = get_json(&format!("{url}/api/v1/group")).await;
                    let lease = &member(&g, "main-1")["lease"];
                    (lease["enforced_by"] == "agent").then_some(())?;
                }
                Some(())
            }
        },
    )
    .await;
    let before = hook_lines(dir.path(), "main-1");
    assert_eq!(before, ["online 192.0.2.10"], "main-1's hooks at start");

    // Paused 1.3 s: past its 1 s lease, short of failover_after (2 s).
    support::process::signal(pair.main.id(), "STOP");
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    support::process::signal(pair.main.id(), "CONT");
    wait_for_async(
        Duration::from_secs(5),
        "main-1 to lose its lease and take its address again",
        || {
            let dir = dir.path().to_path_buf();
            async move { (hook_lines(&dir, "main-1").len() >= 3).then_some(()) }
        },
    )
    .await;
    assert_eq!(
        hook_lines(dir.path(), "main-1"),
        [
            "online 192.0.2.10",
            "lease_lost 192.0.2.10",
            "online 192.0.2.10"
        ],
        "on_lease_lost on resume, on_online again after a heartbeat round"
    );
    let g = get_json(&format!("{backup}/api/v1/group")).await;
    assert_eq!(member(&g, "main-1")["operational_state"], "online", "{g}");
    assert_eq!(g["takeovers"]["failover"], 0, "not failed over: {g}");
    assert_eq!(
        hook_lines(dir.path(), "backup-1"),
        ["standby 192.0.2.11"],
        "backup-1 never took the address"
    );
}

#[tokio::test]
async fn an_agent_paused_past_failover_after_gives_up_its_address_and_stays_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    with_hooks_backend(dir.path(), &group);
    let pair = Pair::start(group).await;
    let backup = pair.backup_url();

    // Paused 6 s (3 × failover_after): backup-1 fails main-1 over meanwhile.
    support::process::signal(pair.main.id(), "STOP");
    wait_for_async(
        Duration::from_secs(10),
        "backup-1 to fail main-1 over",
        || {
            let backup = backup.clone();
            async move {
                let g = get_json(&format!("{backup}/api/v1/group")).await;
                (member(&g, "backup-1")["operational_state"] == "online").then_some(())
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    support::process::signal(pair.main.id(), "CONT");
    wait_for_async(
        Duration::from_secs(10),
        "main-1 to go offline on its extra address",
        || {
            let dir = dir.path().to_path_buf();
            async move {
                hook_lines(&dir, "main-1")
                    .iter()
                    .any(|l| l == "offline 10.0.3.6")
                    .then_some(())
            }
        },
    )
    .await;
    // on_lease_lost runs unless the takeover record (from the first heartbeat round) moved
    // the address first; either way main-1 never serves 192.0.2.10 again.
    let lines = hook_lines(dir.path(), "main-1");
    let after: Vec<&str> = lines.iter().skip(1).map(String::as_str).collect();
    assert_eq!(lines.first().map(String::as_str), Some("online 192.0.2.10"));
    assert!(
        after == ["lease_lost 192.0.2.10", "offline 10.0.3.6"] || after == ["offline 10.0.3.6"],
        "never on_online on the service address after the pause: {lines:?}"
    );
    let backup_lines = hook_lines(dir.path(), "backup-1");
    assert_eq!(
        backup_lines,
        ["standby 192.0.2.11", "online 192.0.2.10"],
        "backup-1 took the address once"
    );
}
