//! Partitions between the Main and the Backup, both alive, in the namespace plant of
//! tests/netns.rs (needs root). What happens, step by step:
//! 1. only the heartbeat network is cut: the plant network still carries heartbeats, the
//!    Backup sees `understudy_peer_up{path="hb"} 0` and `{path="lan"} 1`, and nothing fails over;
//! 2. every path is cut with the Main's auto-failover off: each side shows the other as
//!    `unknown`, nobody takes anything over, the Main keeps serving;
//! 3. every path is cut with auto-failover on: after failover_after the Backup takes the
//!    Main's address although the Main still holds and serves it — split brain, both hosts
//!    hold the address (clients on each side reach a different server). When the paths come
//!    back the records merge: the Backup's takeover record is newer, so the Main adopts it,
//!    releases the address and goes offline on its extra address; the Backup, hearing the
//!    Main again, announces the address once more, and the client is served by the Backup.
//!
//! docs/multi-server.md tells an operator how to avoid step 3 (a second heartbeat path, or
//! auto-failover off).

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::time::{Duration, Instant};

use netns::*;

fn member<'a>(g: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    g["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {g}"))
}

/// A GET to an agent from inside its own namespace (works while the plant network is cut).
fn local_get(p: &Plant, member: &str, route: &str) -> Option<String> {
    let out = p.exec(
        p.ns_of(member),
        &[
            "curl",
            "-sf",
            "-m",
            "1",
            &format!("http://127.0.0.1:{AGENT_PORT}{route}"),
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn local_group(p: &Plant, member: &str) -> Option<serde_json::Value> {
    local_get(p, member, "/api/v1/group").and_then(|b| serde_json::from_str(&b).ok())
}

fn state(g: &serde_json::Value, name: &str) -> String {
    member(g, name)["operational_state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Cuts (or restores) every path between Main and Backup: the heartbeat link and the Backup's
/// port on the plant bridge. The client stays on the Main's side.
fn cut_all(p: &Plant, cut: bool) {
    p.link(&p.main, "hb", !cut);
    p.link(&p.client, "blan", !cut);
}

fn set_auto_failover(p: &Plant, on: bool) {
    let (status, body) = p.client_send(
        "PUT",
        &format!("http://{MAIN_HOST}:{AGENT_PORT}/api/v1/members/main-1/auto-failover"),
        &format!(r#"{{"enabled":{on}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    p.wait(Duration::from_secs(5), "the Backup to see the flag", || {
        let g = local_group(p, "backup-1")?;
        (member(&g, "main-1")["auto_failover"] == on).then_some(())
    });
}

fn wait_converged(p: &Plant) {
    p.wait(
        Duration::from_secs(15),
        "both agents to hear each other",
        || {
            let b = local_group(p, "backup-1")?;
            let m = local_group(p, "main-1")?;
            (state(&b, "main-1") != "unknown" && state(&m, "backup-1") != "unknown").then_some(())
        },
    );
}

#[test]
fn partitions_fail_over_only_when_every_path_is_cut_and_heal_to_one_holder() {
    let p = Plant::build("pt", true);
    let _backup = p.start("backup-1");
    let _main = p.start("main-1");
    p.wait_ready();
    p.wait_service_from("main-1", Duration::from_secs(10));

    // 1. Only the heartbeat network is cut: one path is enough, no failover.
    p.link(&p.main, "hb", false);
    std::thread::sleep(Duration::from_secs(4));
    let metrics = local_get(&p, "backup-1", "/metrics").expect("metrics");
    for (path, up) in [("hb", 0), ("lan", 1)] {
        let line =
            format!("understudy_peer_up{{group=\"netns\",member=\"main-1\",path=\"{path}\"}} {up}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let g = local_group(&p, "backup-1").expect("backup");
    assert_eq!(state(&g, "backup-1"), "standby", "{g}");
    assert_eq!(state(&g, "main-1"), "online", "{g}");
    p.link(&p.main, "hb", true);

    // 2. Every path cut, auto-failover off: nothing moves, the Main keeps serving.
    set_auto_failover(&p, false);
    cut_all(&p, true);
    std::thread::sleep(Duration::from_secs(4));
    let b = local_group(&p, "backup-1").expect("backup");
    assert_eq!(state(&b, "main-1"), "unknown", "{b}");
    assert_eq!(state(&b, "backup-1"), "standby", "{b}");
    let m = local_group(&p, "main-1").expect("main");
    assert_eq!(state(&m, "backup-1"), "unknown", "{m}");
    assert_eq!(state(&m, "main-1"), "online", "{m}");
    assert!(!p
        .addresses(&p.backup, "lan")
        .contains(&MAIN_SERVICE.to_string()));
    assert_eq!(
        p.service_answer().as_deref().and_then(|a| a.lines().next()),
        Some("main-1")
    );
    cut_all(&p, false);
    wait_converged(&p);

    // 3. Every path cut, auto-failover on: split brain until the paths return.
    set_auto_failover(&p, true);
    let t0 = Instant::now();
    cut_all(&p, true);
    p.wait(
        Duration::from_secs(10),
        "the isolated Backup to take the Main's address",
        || {
            p.addresses(&p.backup, "lan")
                .contains(&MAIN_SERVICE.to_string())
                .then_some(())
        },
    );
    let took = t0.elapsed();
    assert!(
        p.addresses(&p.main, "lan")
            .contains(&MAIN_SERVICE.to_string()),
        "split brain: the Main, alive, still holds its address"
    );
    let m = local_group(&p, "main-1").expect("main");
    assert_eq!(state(&m, "main-1"), "online", "{m}");
    assert_eq!(
        p.service_answer().as_deref().and_then(|a| a.lines().next()),
        Some("main-1"),
        "the client, on the Main's side of the cut, is still served by the Main"
    );
    let b = local_group(&p, "backup-1").expect("backup");
    assert_eq!(state(&b, "backup-1"), "online", "{b}");

    // The paths return: the newer takeover record wins, one holder remains.
    let t1 = Instant::now();
    cut_all(&p, false);
    p.wait(
        Duration::from_secs(15),
        "the Main to adopt the takeover and release its address",
        || {
            let a = p.addresses(&p.main, "lan");
            (!a.contains(&MAIN_SERVICE.to_string()) && a.contains(&MAIN_EXTRA.to_string()))
                .then_some(())
        },
    );
    let released = t1.elapsed();
    let served = p.wait_service_from("backup-1", Duration::from_secs(15)) - t1;
    let m = local_group(&p, "main-1").expect("main");
    assert_eq!(state(&m, "main-1"), "offline", "{m}");
    assert_eq!(member(&m, "main-1")["takeover_flag"], true, "{m}");
    eprintln!(
        "partition: isolated Backup took the address after {took:?}; after healing the Main \
         released it in {released:?} and the client was served by the Backup in {served:?}"
    );
}
