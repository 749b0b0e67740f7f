//! Redundancy that tells the truth, and one definition of the group, with real agents
//! (`understudy run`, one per member, on loopback):
//! - after a reconfigure the new Main (the former Backup) publishes the replica it serves
//!   from, so the new Backup replicates it and can take it over;
//! - while the new Backup cannot take the new Main over (here: the new Main has nothing to
//!   publish) the group is not redundant, and the alarm names the Main and why;
//! - a configured Main without a data directory is refused by check-config and by run;
//! - two members whose files list the group otherwise (members in another order, main-1 on
//!   another address) show it as an alarm naming the member and the difference, and no
//!   operation involving them is carried out until the files agree again.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::*;

const TAKEOVER: &str = r#"{"backup":"backup-1","main":"main-1"}"#;
const RECONFIGURE: &str = r#"{"main":"main-1","backup":"backup-1"}"#;
const TAKEOVER_BACK: &str = r#"{"backup":"main-1","main":"backup-1"}"#;

async fn group_of(url: &str) -> Value {
    get_json(&format!("{url}/api/v1/group")).await
}

/// The alarms of type `kind` in a group JSON.
fn alarms_of<'a>(g: &'a Value, kind: &str) -> Vec<&'a Value> {
    g["redundancy"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == kind)
        .collect()
}

/// backup-1 takes main-1 over, then the roles are reconfigured: backup-1 is the configured
/// Main on main-1's address, main-1 a configured Backup in standby.
async fn take_over_and_reconfigure(pair: &Pair) {
    let url = pair.main_url();
    post_ok(&format!("{url}/api/v1/takeover"), GROUP_TOKEN, TAKEOVER).await;
    post_ok(
        &format!("{url}/api/v1/reconfigure"),
        GROUP_TOKEN,
        RECONFIGURE,
    )
    .await;
    let g = group_of(&url).await;
    assert_eq!(member(&g, "backup-1")["configured_role"], "main", "{g}");
    assert_eq!(member(&g, "main-1")["configured_role"], "backup", "{g}");
    assert_eq!(member(&g, "main-1")["operational_state"], "standby", "{g}");
}

#[tokio::test]
async fn after_a_reconfigure_the_new_backup_replicates_the_new_main_and_can_take_it_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = Pair::start(write_group(dir.path(), 1, 1)).await;
    take_over_and_reconfigure(&pair).await;

    // backup-1 serves from its replica of main-1 and publishes it: main-1 replicates it.
    // (Before, backup-1 published nothing and every replication by main-1 failed.)
    let url = pair.main_url();
    let replicated = wait_for_async(
        Duration::from_secs(15),
        "main-1 to replicate backup-1, the new Main",
        || async {
            let g = group_of(&url).await;
            let r = &member(&g, "main-1")["last_replication"];
            (r["main"] == "backup-1" && r["result"] == "success").then_some(g)
        },
    )
    .await;
    let copied = dir
        .path()
        .join("main-1/state/replicas/backup-1/current/sample.txt");
    assert_eq!(
        std::fs::read_to_string(&copied).ok().as_deref(),
        Some("data of main-1\n"),
        "main-1 now holds what backup-1 serves: its replica of main-1's data"
    );
    assert_eq!(replicated["redundancy"]["redundant"], true, "{replicated}");
    let metrics = get_text(&format!("{url}/metrics")).await;
    assert!(
        metrics.contains(
            "understudy_member_replicated_timestamp_seconds{group=\"test\",main=\"backup-1\",member=\"main-1\"}"
        ),
        "{metrics}"
    );
    // And it can take the new Main over.
    let (status, body) = command(&url, "takeover", GROUP_TOKEN, TAKEOVER_BACK).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_group_is_not_redundant_while_the_new_backup_cannot_take_the_new_main_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = Pair::start(write_group(dir.path(), 1, 1)).await;
    // backup-1 loses its replica of main-1: once it is the configured Main it has nothing to
    // publish (the situation of a new Main without data).
    let replica = dir.path().join("backup-1/state/replicas/main-1");
    std::fs::remove_dir_all(&replica).expect("remove the replica");
    take_over_and_reconfigure(&pair).await;

    // Every member's view: not redundant, and the alarm names backup-1 and why no Backup
    // could take it over (main-1 never replicated it: its replications fail, saying why).
    for url in [pair.main_url(), pair.backup_url()] {
        let g = wait_for_async(
            Duration::from_secs(15),
            "the alarm to name the uncovered new Main",
            || async {
                let g = group_of(&url).await;
                let shown = alarms_of(&g, "no_standby_backup").iter().any(|a| {
                    a["reason"].as_str().is_some_and(|r| {
                        r.starts_with(
                            "no backup in standby could take over backup-1 (main-1: \
                             never_replicated, its last replication failed:",
                        ) && r.contains(
                            "backup-1 publishes its replica of main-1, which it does not have",
                        )
                    })
                });
                shown.then_some(g)
            },
        )
        .await;
        assert_eq!(g["redundancy"]["status"], "not_redundant", "{g}");
        let metrics = get_text(&format!("{url}/metrics")).await;
        assert!(
            metrics.contains("understudy_group_redundant{group=\"test\"} 0"),
            "{metrics}"
        );
    }
    // The status page shows the same reason.
    let page = get_text(&format!("{}/", pair.main_url())).await;
    assert!(
        page.contains("no backup in standby could take over backup-1 (main-1: never_replicated"),
        "{page}"
    );
    // As the alarm says: the takeover is refused.
    let (status, body) = command(&pair.main_url(), "takeover", GROUP_TOKEN, TAKEOVER_BACK).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["failed"]
            .as_array()
            .is_some_and(|f| f.iter().any(|c| c == "never_replicated")),
        "{body}"
    );
}

/// `path`'s text with `from` replaced by `to` (which must occur).
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read config");
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write config");
}

#[tokio::test]
async fn a_main_without_data_is_refused_and_a_backup_without_data_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let main = &group[0].config;
    let text = std::fs::read_to_string(main).expect("read");
    let data_line = text
        .lines()
        .find(|l| l.starts_with("data_dir = "))
        .expect("main-1 has a data_dir")
        .to_string();
    edit(main, &format!("{data_line}\n"), "");

    let out = understudy_on(&["check-config"], main);
    let err = text_of(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "member \"main-1\" is a main but publishes nothing: set [replication] data_dir"
        ),
        "{err}"
    );
    let out = understudy_on(&["run", "--config"], main);
    assert_eq!(out.status.code(), Some(64), "{}", text_of(&out.stderr));
    assert!(
        !dir.path().join("main-1/state").exists(),
        "a refused configuration touches no state"
    );

    // A Backup needs none (after a reconfigure it publishes its replica; a replace takeover
    // gives the Main's role to a new server with the Main's configuration): no warning.
    let out = understudy_on(&["check-config"], &group[1].config);
    let err = text_of(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("data_dir"), "{err}");
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `[[members]]` tables of a configuration written by `write_group`, in order, and the
/// text before them.
fn split_members(text: &str) -> (String, Vec<String>) {
    let mut parts = text.split("\n[[members]]");
    let head = parts.next().unwrap_or_default().to_string();
    (head, parts.map(|p| format!("\n[[members]]{p}")).collect())
}

/// Waits until the agent at `url` shows the group definition alarm with `reason` in it;
/// returns the group.
async fn wait_mismatch(url: &str, reason: &str) -> Value {
    wait_for_async(
        Duration::from_secs(10),
        &format!("the group definition alarm at {url} to say {reason:?}"),
        || async {
            let g = group_of(url).await;
            alarms_of(&g, "group_definition_mismatch")
                .iter()
                .any(|a| a["reason"].as_str().is_some_and(|r| r.contains(reason)))
                .then_some(g)
        },
    )
    .await
}

/// A takeover of main-1 by backup-1, asked of each agent, is refused with
/// group_definition_mismatch and changes nothing.
async fn takeover_refused_for_the_mismatch(pair: &Pair) {
    for url in [pair.main_url(), pair.backup_url()] {
        let (status, body) = command(&url, "takeover", GROUP_TOKEN, TAKEOVER).await;
        assert_eq!(status, 409, "asked of {url}: {body}");
        assert!(
            body["failed"]
                .as_array()
                .is_some_and(|f| f.iter().any(|c| c == "group_definition_mismatch")),
            "{body}"
        );
        let g = group_of(&url).await;
        assert_eq!(member(&g, "main-1")["operational_state"], "online", "{g}");
        assert_eq!(
            member(&g, "backup-1")["operational_state"],
            "standby",
            "{g}"
        );
    }
}

#[tokio::test]
async fn members_whose_files_list_another_group_raise_the_alarm_and_take_part_in_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let backup_cfg = group[1].config.clone();
    let agreed = std::fs::read_to_string(&backup_cfg).expect("read");

    // 1. backup-1's file lists the members in another order.
    let (head, members) = split_members(&agreed);
    assert_eq!(members.len(), 2);
    std::fs::write(&backup_cfg, format!("{head}{}{}", members[1], members[0])).expect("write");
    let main = start_agent_logged(&group[0], dir.path().join("main-1.log")).await;
    let backup = start_agent(&group[1]).await;
    let mut pair = Pair {
        members: group.clone(),
        main,
        backup,
    };
    let g = wait_mismatch(
        &pair.main_url(),
        "backup-1's group definition differs from main-1's: members in the order \
         main-1, backup-1 here, backup-1, main-1 there",
    )
    .await;
    assert_eq!(g["redundancy"]["redundant"], false, "{g}");
    wait_mismatch(
        &pair.backup_url(),
        "main-1's group definition differs from backup-1's: members in the order \
         backup-1, main-1 here, main-1, backup-1 there",
    )
    .await;
    // The row indexes differ (what made an SNMP SET ambiguous): each agent shows its own.
    let mine = group_of(&pair.backup_url()).await;
    assert_eq!(member(&mine, "backup-1")["index"], 1, "{mine}");
    takeover_refused_for_the_mismatch(&pair).await;
    // Logged once, not at every heartbeat (200 ms): the count stays put.
    let differs = || {
        pair.main
            .log_text()
            .matches("group definition differs from this agent's")
            .count()
    };
    let before = differs();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        (1..=2).contains(&before) && differs() == before,
        "logged {before} then {} times",
        differs()
    );

    // 2. backup-1's file gives main-1 another address.
    pair.backup.kill9();
    std::fs::write(&backup_cfg, agreed.replacen("192.0.2.10", "192.0.2.99", 1)).expect("write");
    pair.backup = start_agent(&group[1]).await;
    wait_mismatch(
        &pair.main_url(),
        "backup-1's group definition differs from main-1's: main-1 address 192.0.2.10 here, \
         192.0.2.99 there",
    )
    .await;
    takeover_refused_for_the_mismatch(&pair).await;

    // 3. The same file again: the alarm clears, and the takeover is carried out.
    pair.backup.kill9();
    std::fs::write(&backup_cfg, &agreed).expect("write");
    pair.backup = start_agent(&group[1]).await;
    for url in [pair.main_url(), pair.backup_url()] {
        wait_for_async(Duration::from_secs(10), "the alarm to clear", || async {
            let g = group_of(&url).await;
            alarms_of(&g, "group_definition_mismatch")
                .is_empty()
                .then_some(())
        })
        .await;
    }
    wait_replicated(&pair.backup_url(), "backup-1").await;
    let (status, body) = command(&pair.backup_url(), "takeover", GROUP_TOKEN, TAKEOVER).await;
    assert_eq!(status, 200, "{body}");
}
