//! An operation outlives its requester: a takeover whose HTTP client hangs up after 1 s (while
//! the Main's on-offline hook still runs for 3 s) is carried out to its end — the Main
//! offline, the Backup online on the Main's address, the event recorded — and nothing stays
//! locked: the reverse takeover that follows is accepted. Before, the handler's future was
//! dropped with the client: the operation stopped half-way (nobody held the address) and
//! every later operation was refused with operation_in_progress until a restart. Runs two
//! separate `understudy run` agents on loopback.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test]
async fn a_takeover_whose_client_hangs_up_runs_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let text = std::fs::read_to_string(&group[0].config).expect("read config");
    write(
        &group[0].config,
        &format!("{text}\n[hooks]\non_offline = [\"sleep\", \"3\"]\n"),
    );
    let pair = Pair::start(group).await;
    let (main_url, backup_url) = (pair.main_url(), pair.backup_url());

    let hung_up = client()
        .post(format!("{backup_url}/api/v1/takeover"))
        .bearer_auth(GROUP_TOKEN)
        .body(r#"{"backup":"backup-1","main":"main-1"}"#)
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(
        hung_up.as_ref().is_err_and(|e| e.is_timeout()),
        "the client gives up before the Main's hook ends: {hung_up:?}"
    );

    // Both agents end where a completed takeover leaves them.
    for url in [&main_url, &backup_url] {
        wait_for_async(
            Duration::from_secs(15),
            "the takeover to complete",
            || async {
                let g = get_json(&format!("{url}/api/v1/group")).await;
                let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
                (m["operational_state"] == "offline"
                    && b["operational_state"] == "online"
                    && b["current_address"] == m["configured_address"]
                    && g["redundancy"]["redundant"] == false)
                    .then_some(())
            },
        )
        .await;
    }
    let events = get_json(&format!("{backup_url}/api/v1/events")).await;
    assert!(
        events.to_string().contains("backup-1 took over main-1"),
        "the history has the takeover: {events}"
    );

    // Nothing stays locked: the reverse takeover is accepted and carried out.
    let reverse = r#"{"main":"main-1"}"#;
    let (status, body) = command(&main_url, "reverse-takeover", GROUP_TOKEN, reverse).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "done", "{body}");
}
