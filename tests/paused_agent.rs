//! An agent that was paused (SIGSTOP, a stalled VM) does not take its peers' silence for their
//! death: backup-1 is stopped for 4.5 s (3 × failover_after) while main-1, with auto-failover
//! on, runs and serves; on SIGCONT backup-1 hears main-1 again before it judges anything, so
//! it fails nothing over and main-1 keeps its address. Before, backup-1's failover detector
//! ran first on resume, found main-1 silent for 4.5 s, failed it over without asking it to
//! release (it judged it unreachable) and both members ended online on main-1's address.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test]
async fn a_backup_paused_past_failover_after_does_not_fail_over_a_live_main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let pair = Pair::start(group).await;
    let (main, backup) = (pair.main_url(), pair.backup_url());
    for trial in 0..3 {
        support::process::signal(pair.backup.id(), "STOP");
        tokio::time::sleep(Duration::from_millis(4_500)).await;
        support::process::signal(pair.backup.id(), "CONT");
        tokio::time::sleep(Duration::from_secs(3)).await;
        for url in [&main, &backup] {
            let g = get_json(&format!("{url}/api/v1/group")).await;
            let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
            assert_eq!(
                m["operational_state"], "online",
                "trial {trial}, {url}: {g}"
            );
            assert_eq!(
                b["operational_state"], "standby",
                "trial {trial}, {url}: {g}"
            );
            assert_eq!(g["takeovers"]["failover"], 0, "trial {trial}, {url}: {g}");
        }
    }
}
