//! Two Backups racing to take over the same Main: at most one of the two takeovers is done.
//! Each coordinator plans from main-1's record and hands main-1 its new record first; main-1
//! applies a record only while it still holds the one the coordinator planned from
//! (compare-and-swap), so the second coordinator is refused and stops before taking anything.
//! Before, main-1 only checked that the offered stamp was newer: in about half of the trials
//! both answered 200 and both Backups ended online on main-1's address.

mod support;

use std::time::Duration;

use support::*;

const TRIALS: usize = 10;

#[tokio::test]
async fn of_two_racing_takeovers_at_most_one_is_done() {
    let demo = Demo::start(&["--backups", "2"]);
    let (main, b1, b2) = (
        demo.url("main-1"),
        demo.url("backup-1"),
        demo.url("backup-2"),
    );
    for b in ["backup-1", "backup-2"] {
        wait_replicated(&main, b).await;
    }
    for trial in 0..TRIALS {
        let take = |url: String, backup: &'static str| async move {
            post(
                &format!("{url}/api/v1/takeover"),
                Some(TOKEN),
                &format!(r#"{{"backup":"{backup}","main":"main-1"}}"#),
            )
            .await
        };
        let ((s1, r1), (s2, r2)) =
            tokio::join!(take(b1.clone(), "backup-1"), take(b2.clone(), "backup-2"));
        let done = [s1, s2].iter().filter(|s| **s == 200).count();
        assert!(
            done <= 1,
            "trial {trial}: both takeovers were done:\n{r1}\n{r2}"
        );
        // Whatever the answers, one holder at most once the views settle.
        let g = wait_for_async(Duration::from_secs(5), "the group to settle", || async {
            let g = get_json(&format!("{main}/api/v1/group")).await;
            all_heard(&g).then_some(g)
        })
        .await;
        let online: Vec<&str> = ["backup-1", "backup-2"]
            .into_iter()
            .filter(|b| member(&g, b)["operational_state"] == "online")
            .collect();
        assert!(online.len() <= 1, "trial {trial}: {online:?} online: {g}");
        // Restore main-1 for the next trial.
        if member(&g, "main-1")["takeover_flag"] == true {
            post_ok(
                &format!("{main}/api/v1/reverse-takeover"),
                TOKEN,
                r#"{"main":"main-1"}"#,
            )
            .await;
        }
        wait_for_async(Duration::from_secs(5), "main-1 to be restored", || async {
            let g = get_json(&format!("{main}/api/v1/group")).await;
            (g["redundancy"]["redundant"] == true && all_heard(&g)).then_some(())
        })
        .await;
    }
}
