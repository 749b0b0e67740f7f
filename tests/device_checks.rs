//! Device checks between separate agents on loopback: a Main whose check keeps failing
//! (`fail_after` probes in a row) is failed over by its Backup; a single failed probe is not
//! enough; a Backup whose own check fails refuses a takeover with `device_check_failed`.

mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

const TOKEN: Option<&str> = Some(GROUP_TOKEN);

/// Adds a command device check (`test -e FLAG`) to a member's configuration file.
fn add_check(config: &Path, flag: &Path, fail_after: u32) {
    let text = std::fs::read_to_string(config).expect("read config");
    let check = format!(
        "[[device_checks]]\nname = \"device\"\ncommand = [\"test\", \"-e\", \"{}\"]\n\
         timeout = \"200ms\"\ninterval = \"300ms\"\nfail_after = {fail_after}\n",
        flag.display()
    );
    let text = text.replacen("[[members]]", &format!("{check}\n[[members]]"), 1);
    std::fs::write(config, text).expect("write config");
}

async fn state_of(url: &str, name: &str) -> serde_json::Value {
    let g = get_json(&format!("{url}/api/v1/group")).await;
    member(&g, name).clone()
}

#[tokio::test]
async fn a_main_whose_device_check_keeps_failing_is_failed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let flag = dir.path().join("device-ok");
    write(&flag, "");
    add_check(&group[0].config, &flag, 3);
    let backup_url = group[1].url.clone();
    let _main = start_agent(&group[0]).await;
    let _backup = start_agent(&group[1]).await;
    wait_replicated(&backup_url, "backup-1").await;

    // One failed probe (the device back before the next): not failing, no failover.
    std::fs::remove_file(&flag).expect("rm");
    tokio::time::sleep(Duration::from_millis(350)).await;
    write(&flag, "");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let m = state_of(&backup_url, "main-1").await;
    assert_eq!(m["operational_state"], "online", "{m}");
    assert_eq!(m["failing_device_checks"], serde_json::json!([]), "{m}");

    // The device stays down: after 3 failed probes the Main reports it, the Backup fails over.
    std::fs::remove_file(&flag).expect("rm");
    wait_for_async(
        Duration::from_secs(10),
        "the Backup to fail over the Main with a failing device",
        || {
            let backup_url = backup_url.clone();
            async move {
                let g = get_json(&format!("{backup_url}/api/v1/group")).await;
                (member(&g, "backup-1")["operational_state"] == "online"
                    && member(&g, "main-1")["operational_state"] == "offline")
                    .then_some(g)
            }
        },
    )
    .await;
    let ev = get_json(&format!("{backup_url}/api/v1/events")).await;
    let failover = ev["events"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["kind"] == "failover"))
        .cloned()
        .unwrap_or_else(|| panic!("no failover event in {ev}"));
    assert!(
        failover["reason"]
            .as_str()
            .unwrap_or("")
            .contains("failing device checks: device"),
        "{failover}"
    );
}

#[tokio::test]
async fn a_backup_whose_device_check_fails_refuses_to_take_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let flag = dir.path().join("device-ok");
    add_check(&group[1].config, &flag, 1);
    let (main_url, backup_url) = (group[0].url.clone(), group[1].url.clone());
    let _running = Pair::start(group).await;
    wait_for_async(Duration::from_secs(5), "the check to fail", || {
        let backup_url = backup_url.clone();
        async move {
            let b = state_of(&backup_url, "backup-1").await;
            (b["failing_device_checks"] == serde_json::json!(["device"])).then_some(())
        }
    })
    .await;
    let (status, body) = post(
        &format!("{main_url}/api/v1/takeover"),
        TOKEN,
        r#"{"backup":"backup-1","main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["failed"]
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "device_check_failed")),
        "{body}"
    );
}
