//! Replace takeover end to end with real agents, as the runbook tells it: main-1's server dies
//! while backup-1 acts for it; a new server (main-1's configuration file and secrets, no
//! state, an empty data directory) joins the group as the taken-over main-1 without taking the
//! address, and the runbook's command puts it online with the data backup-1 served (a file
//! written on backup-1 during the takeover included), backup-1 back in standby on its own
//! address, the alarm cleared. And the original server, its data still there, is refused.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::*;

const TAKEOVER: &str = r#"{"backup":"backup-1","main":"main-1"}"#;

/// Every regular file under `root` (links followed only at the root), by relative path.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let e = e.expect("entry");
            let path = rel.join(e.file_name());
            let kind = e.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(e.path()).expect("read");
                out.insert(path.to_string_lossy().into_owned(), bytes);
            }
        }
    }
    out
}

/// The runbook's replace-takeover commands (section 3), each joined from its continued
/// lines: the CLI's and curl's.
fn runbook_commands() -> (String, String) {
    let text = std::fs::read_to_string(repo().join("alerts/runbook.md")).expect("runbook");
    let section = text
        .split("### 3. Replace takeover")
        .nth(1)
        .and_then(|rest| rest.split("\n---\n").next())
        .expect("the runbook's section 3");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in section.lines().map(str::trim_end) {
        let starts = line.starts_with("understudy replace-takeover") || line.starts_with("curl ");
        if current.is_empty() && !starts {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    let find = |p: &str| {
        commands
            .iter()
            .find(|c| c.starts_with(p))
            .cloned()
            .unwrap_or_else(|| panic!("no `{p}` command in the runbook's section 3"))
    };
    (find("understudy "), find("curl "))
}

/// Runs a runbook command with `sh`, `$URL` and `$TOKEN` set, the `understudy` under test
/// first on the PATH.
fn run_runbook(command: &str, url: &str) -> std::process::Output {
    let bin_dir = Path::new(bin()).parent().expect("binary's directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("sh")
        .args(["-c", command])
        .env("PATH", path)
        .env("URL", url)
        .env("TOKEN", GROUP_TOKEN)
        .output()
        .expect("run sh")
}

async fn group(url: &str) -> Value {
    get_json(&format!("{url}/api/v1/group")).await
}

/// Waits until the view at `url` shows main-1 taken over: offline on its extra address, and
/// backup-1 online on main-1's address.
async fn wait_taken_over(url: &str, what: &str) {
    wait_for_async(Duration::from_secs(15), what, || async {
        let g = group(url).await;
        let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
        (m["operational_state"] == "offline"
            && m["current_address"] == m["extra_address"]
            && m["takeover_flag"] == true
            && b["operational_state"] == "online"
            && b["current_address"] == m["configured_address"])
            .then_some(())
    })
    .await
}

/// main-1 and backup-1 (a `write_group` pair in `dir`), main-1 taken over by backup-1.
async fn taken_over_pair(dir: &std::path::Path) -> Pair {
    let pair = Pair::start(write_group(dir, 1, 1)).await;
    post_ok(
        &format!("{}/api/v1/takeover", pair.main_url()),
        GROUP_TOKEN,
        TAKEOVER,
    )
    .await;
    wait_taken_over(&pair.backup_url(), "backup-1 to act for main-1").await;
    pair
}

#[tokio::test]
async fn a_new_server_takes_the_defective_mains_role_with_the_data_the_backup_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pair = taken_over_pair(dir.path()).await;
    let (main_url, backup_url) = (pair.main_url(), pair.backup_url());

    // backup-1 serves from its replica of main-1: its service writes there meanwhile.
    let replica = dir.path().join("backup-1/state/replicas/main-1/current");
    write(
        &replica.join("written-during-takeover.txt"),
        "written on backup-1 while it acted for main-1\n",
    );
    write(&replica.join("sub/deeper/orders.csv"), "id,qty\n1,3\n");
    write(&replica.join("sample.txt"), "changed on backup-1\n");

    // main-1's server is defective: its agent dies and its disk goes with it.
    pair.main.kill9();
    let old_server = dir.path().join("main-1");
    std::fs::remove_dir_all(&old_server).expect("wipe main-1's server");
    // The new server: main-1's configuration file and secrets (kept next to it here), no
    // state directory, an empty data directory.
    let data = old_server.join("data");
    std::fs::create_dir_all(&data).expect("empty data dir");
    pair.main = start_agent(&pair.members[0]).await;
    wait_converged(&main_url).await;

    // It joined as the taken-over main-1: offline on its extra address, serving nothing.
    wait_taken_over(&main_url, "the new server to learn main-1 is taken over").await;
    wait_taken_over(&backup_url, "backup-1 to keep acting for main-1").await;
    assert!(tree(&data).is_empty(), "nothing copied before the command");
    let (status, body) = send_get_manifest(&main_url).await;
    assert_eq!(status, 401, "the peer routes want a signature: {body}");

    // The runbook's old command, naming a member that does not exist: a clear refusal.
    let out = understudy([
        "replace-takeover",
        "--url",
        &backup_url,
        "--token",
        GROUP_TOKEN,
        "--main",
        "main-1",
        "--replacement",
        "main-1-new",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("must be \"main-1\""),
        "{}",
        text(&out.stderr)
    );

    // The runbook's command, verbatim, sent to backup-1's agent (forwarded to main-1's).
    let (cli, _) = runbook_commands();
    let out = run_runbook(&cli, &backup_url);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Every view: main-1 online on its configured address, backup-1 in standby on its own,
    // flags cleared, redundant again.
    for url in [&main_url, &backup_url] {
        wait_for_async(Duration::from_secs(10), "the group restored", || async {
            let g = group(url).await;
            let (m, b) = (member(&g, "main-1"), member(&g, "backup-1"));
            (m["operational_state"] == "online"
                && m["current_address"] == m["configured_address"]
                && m["current_address"] == "192.0.2.10"
                && m["takeover_flag"] == false
                && b["operational_state"] == "standby"
                && b["current_address"] == b["configured_address"]
                && b["current_address"] == "192.0.2.11"
                && b["takeover_flag"] == false
                && g["redundancy"]["redundant"] == true)
                .then_some(())
        })
        .await;
    }
    // The new server's data is what backup-1 served, the takeover's writes included.
    let served = tree(&replica);
    assert_eq!(tree(&data), served);
    assert_eq!(
        served
            .get("written-during-takeover.txt")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .as_deref(),
        Some("written on backup-1 while it acted for main-1\n")
    );
    assert_eq!(served.len(), 3, "{:?}", served.keys());
    assert!(
        !old_server.join("state/restore").exists(),
        "the staging copy is removed"
    );

    // The history names the operation, who asked and why; the counter counts it once.
    let ev = get_json(&format!("{backup_url}/api/v1/events")).await;
    let replace = ev["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "replace" && e["outcome"] == "done")
        .unwrap_or_else(|| panic!("no replace event: {ev}"));
    assert_eq!(replace["reason"], "INC-1234 hardware swap", "{replace}");
    assert_eq!(
        replace["members"],
        serde_json::json!(["main-1", "backup-1"]),
        "{replace}"
    );
    assert!(
        replace["message"]
            .as_str()
            .is_some_and(|m| m.contains("with the data backup-1 served")),
        "{replace}"
    );
    let metrics = get_text(&format!("{main_url}/metrics")).await;
    assert!(
        metrics.contains("understudy_takeovers_total{group=\"test\",kind=\"replace\"} 1"),
        "{metrics}"
    );

    // And backup-1 replicates main-1 from its new server again.
    let (status, body) = post(
        &format!("{backup_url}/api/v1/members/backup-1/replicate"),
        Some(GROUP_TOKEN),
        "{}",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["result"], "success", "{body}");
    assert_eq!(body["results"][0]["fetched"], 0, "the same data: {body}");
}

/// An unsigned GET of a peer route of the agent at `url`.
async fn send_get_manifest(url: &str) -> (u16, String) {
    try_get(&format!(
        "{url}/peer/v1/replication/replica/main-1/manifest"
    ))
    .await
    .expect("answer")
}

#[tokio::test]
async fn the_original_server_with_its_data_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = Pair::start(write_group(dir.path(), 1, 1)).await;
    let (main_url, backup_url) = (pair.main_url(), pair.backup_url());
    post_ok(
        &format!("{main_url}/api/v1/takeover"),
        GROUP_TOKEN,
        TAKEOVER,
    )
    .await;
    wait_taken_over(&main_url, "main-1 to be taken over").await;
    let before = group(&main_url).await;

    // main-1's agent still runs on its own server, its data_dir full: not a new server.
    let (status, body) = command(
        &backup_url,
        "replace-takeover",
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["failed"],
        serde_json::json!(["replacement_has_data"]),
        "{body}"
    );
    let data = dir.path().join("main-1/data");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains(&data.display().to_string())),
        "names the directory: {body}"
    );
    wait_taken_over(&backup_url, "backup-1 to still act for main-1").await;
    let after = group(&main_url).await;
    for name in ["main-1", "backup-1"] {
        for field in ["operational_state", "current_address", "takeover_flag"] {
            assert_eq!(member(&after, name)[field], member(&before, name)[field]);
        }
    }
    assert_eq!(
        tree(&data).keys().collect::<Vec<_>>(),
        ["sample.txt"],
        "the data is untouched"
    );
}

#[tokio::test]
async fn a_copy_that_fails_hands_the_address_back_to_the_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pair = taken_over_pair(dir.path()).await;
    let (main_url, backup_url) = (pair.main_url(), pair.backup_url());
    pair.main.kill9();
    let data = dir.path().join("main-1/data");
    std::fs::remove_dir_all(dir.path().join("main-1")).expect("wipe");
    std::fs::create_dir_all(&data).expect("empty data dir");
    // Something in backup-1's replica that cannot be copied (a named pipe): the copy fails.
    let pipe = dir
        .path()
        .join("backup-1/state/replicas/main-1/current/a-pipe");
    let out = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .output()
        .expect("mkfifo");
    assert!(out.status.success(), "{}", text(&out.stderr));
    pair.main = start_agent(&pair.members[0]).await;
    wait_converged(&main_url).await;
    wait_taken_over(&main_url, "the new server to learn main-1 is taken over").await;

    let (status, body) = command(
        &main_url,
        "replace-takeover",
        GROUP_TOKEN,
        r#"{"main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("a-pipe"), "names what failed: {body}");
    assert!(message.contains("rolled back"), "{body}");
    // backup-1 took the address back and serves again; the new server's data_dir is empty.
    wait_taken_over(&main_url, "backup-1 to act for main-1 again").await;
    wait_taken_over(&backup_url, "backup-1 to act for main-1 again").await;
    assert!(tree(&data).is_empty());

    // Once the replica can be copied, the same command succeeds: the runbook's curl one.
    std::fs::remove_file(&pipe).expect("remove the pipe");
    let (_, curl) = runbook_commands();
    let out = run_runbook(&curl, &main_url);
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(body["outcome"], "done", "{body}");
    assert_eq!(body["event"]["reason"], "INC-1234 hardware swap", "{body}");
    assert_eq!(
        tree(&data),
        tree(&dir.path().join("backup-1/state/replicas/main-1/current"))
    );
}

/// The same with real addresses: two network namespaces (support::netns), the linux address
/// backend and a service responder started by the on-online hook, serving `sample.txt` of the
/// data it runs from. After the replace takeover the client is answered on the service
/// address by the new server, with the data backup-1 wrote during the takeover; backup-1
/// holds only its own address. Needs root (fails, never skips, without it).
#[test]
fn in_namespaces_the_new_server_holds_the_service_address_with_the_backups_data() {
    use support::netns::{Plant, BACKUP_HOST};
    let p = Plant::build("rp", false);
    let (mut main, _backup) = p.start_group();
    p.command_until_served_by(BACKUP_HOST, "takeover", TAKEOVER, "backup-1");
    let replica = p.dir.path().join("backup-1/state/replicas/main-1/current");
    write(
        &replica.join("sample.txt"),
        "written on backup-1 during the takeover\n",
    );

    // main-1's server is replaced: agent and service gone, state and data with them.
    main.kill9();
    p.kill_responder("main-1");
    let old = p.dir.path().join("main-1");
    std::fs::remove_dir_all(old.join("state")).expect("wipe the state");
    std::fs::remove_dir_all(old.join("data")).expect("wipe the data");
    std::fs::create_dir_all(old.join("data")).expect("an empty data dir");
    let _main = p.start("main-1");
    p.wait(
        Duration::from_secs(15),
        "the new server to join as the taken-over main-1",
        || {
            let g = p.group("main-1")?;
            let m = member(&g, "main-1");
            (all_heard(&g) && m["operational_state"] == "offline" && m["takeover_flag"] == true)
                .then_some(())
        },
    );
    let (service, extra, own) = (p.addrs.service, p.addrs.extra, p.addrs.backup_service);
    p.assert_holds(&[
        (p.main.as_str(), service, false),
        (p.main.as_str(), extra, true),
        (p.backup.as_str(), service, true),
    ]);

    p.command_until_served_by(
        BACKUP_HOST,
        "replace-takeover",
        r#"{"main":"main-1","reason":"netns test"}"#,
        "main-1",
    );
    let answer = p.service_answer().unwrap_or_default();
    assert_eq!(
        answer,
        "main-1\nwritten on backup-1 during the takeover\n",
        "{}",
        p.logs()
    );
    p.wait(
        Duration::from_secs(5),
        "backup-1 to let go of main-1's address",
        || (!p.holds(p.backup.as_str(), service)).then_some(()),
    );
    p.assert_holds(&[
        (p.main.as_str(), service, true),
        (p.main.as_str(), extra, false),
        (p.backup.as_str(), service, false),
        (p.backup.as_str(), own, true),
    ]);
}
