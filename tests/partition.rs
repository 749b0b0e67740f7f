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

mod support;

use std::time::{Duration, Instant};

use support::netns::*;
use support::{all_heard, member};

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
    p.set_auto_failover(on);
    p.wait(Duration::from_secs(5), "the Backup to see the flag", || {
        let g = p.local_group("backup-1")?;
        (member(&g, "main-1")["auto_failover"] == on).then_some(())
    });
}

fn wait_converged(p: &Plant) {
    p.wait(
        Duration::from_secs(15),
        "both agents to hear each other",
        || {
            let heard = |member| p.local_group(member).is_some_and(|g| all_heard(&g));
            (heard("backup-1") && heard("main-1")).then_some(())
        },
    );
}

#[test]
fn partitions_fail_over_only_when_every_path_is_cut_and_heal_to_one_holder() {
    let p = Plant::build("pt", true);
    let (_main, _backup) = p.start_group();

    // 1. Only the heartbeat network is cut: one path is enough, no failover.
    p.link(&p.main, "hb", false);
    std::thread::sleep(Duration::from_secs(4));
    let metrics = p.local_get("backup-1", "/metrics").expect("metrics");
    for (path, up) in [("hb", 0), ("lan", 1)] {
        let line =
            format!("understudy_peer_up{{group=\"netns\",member=\"main-1\",path=\"{path}\"}} {up}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    let g = p.local_group("backup-1").expect("backup");
    assert_eq!(state(&g, "backup-1"), "standby", "{g}");
    assert_eq!(state(&g, "main-1"), "online", "{g}");
    p.link(&p.main, "hb", true);

    // 2. Every path cut, auto-failover off: nothing moves, the Main keeps serving.
    set_auto_failover(&p, false);
    cut_all(&p, true);
    std::thread::sleep(Duration::from_secs(4));
    let b = p.local_group("backup-1").expect("backup");
    assert_eq!(state(&b, "main-1"), "unknown", "{b}");
    assert_eq!(state(&b, "backup-1"), "standby", "{b}");
    let m = p.local_group("main-1").expect("main");
    assert_eq!(state(&m, "backup-1"), "unknown", "{m}");
    assert_eq!(state(&m, "main-1"), "online", "{m}");
    assert!(!p.holds(&p.backup, MAIN_SERVICE));
    assert_eq!(p.served_by().as_deref(), Some("main-1"));
    cut_all(&p, false);
    wait_converged(&p);

    // 3. Every path cut, auto-failover on: split brain until the paths return.
    set_auto_failover(&p, true);
    let t0 = Instant::now();
    cut_all(&p, true);
    p.wait(
        Duration::from_secs(10),
        "the isolated Backup to take the Main's address",
        || p.holds(&p.backup, MAIN_SERVICE).then_some(()),
    );
    let took = t0.elapsed();
    assert!(
        p.holds(&p.main, MAIN_SERVICE),
        "split brain: the Main, alive, still holds its address"
    );
    let m = p.local_group("main-1").expect("main");
    assert_eq!(state(&m, "main-1"), "online", "{m}");
    assert_eq!(
        p.served_by().as_deref(),
        Some("main-1"),
        "the client, on the Main's side of the cut, is still served by the Main"
    );
    let b = p.local_group("backup-1").expect("backup");
    assert_eq!(state(&b, "backup-1"), "online", "{b}");

    // The paths return: the newer takeover record wins, one holder remains.
    let t1 = Instant::now();
    cut_all(&p, false);
    p.wait(
        Duration::from_secs(15),
        "the Main to adopt the takeover and release its address",
        || (!p.holds(&p.main, MAIN_SERVICE) && p.holds(&p.main, MAIN_EXTRA)).then_some(()),
    );
    let released = t1.elapsed();
    let served = p.wait_service_from("backup-1", Duration::from_secs(15)) - t1;
    let m = p.local_group("main-1").expect("main");
    assert_eq!(state(&m, "main-1"), "offline", "{m}");
    assert_eq!(member(&m, "main-1")["takeover_flag"], true, "{m}");
    eprintln!(
        "partition: isolated Backup took the address after {took:?}; after healing the Main \
         released it in {released:?} and the client was served by the Backup in {served:?}"
    );
}
