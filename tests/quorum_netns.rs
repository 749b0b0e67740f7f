//! The quorum source with real processes, in the network-namespace plant (tests/netns.rs's,
//! plus a one-node etcd in a namespace of its own linked to each server): one `understudy run`
//! per server, linux backend, lease 1 s, failover_after 3 s, session TTL 2 s. Needs root and
//! Debian's etcd-server (fails, never skips, without them); built with `--features etcd`.
//!
//! 1. The key: etcd records the Main as the holder of its service address, the metric
//!    `understudy_coordination_up` is 1 and the API shows the holder.
//! 2. Failsafe: etcd stopped while the servers reach each other: the Main keeps its address
//!    (checked every 100 ms for 8 s, more than the session TTL and the lease), the alarm
//!    `coordination_lost` is raised on both, `understudy_coordination_up` is 0, and failover is
//!    suspended: the Main's agent killed, the Backup does not take the address while etcd is
//!    down — and the killed agent's address is gone from its host within its lease.
//! 3. etcd back: the Backup acquires the key and fails the Main over; the alarm clears.
#![cfg(feature = "etcd")]

mod support;

use std::time::{Duration, Instant};

use support::member;
use support::netns::*;

/// `member`'s Prometheus text, fetched inside its namespace.
fn metrics(p: &Plant, member: &str) -> String {
    p.local_get(member, "/metrics").unwrap_or_default()
}

fn coordination_up(p: &Plant, member: &str) -> Option<u8> {
    metrics(p, member)
        .lines()
        .find(|l| l.starts_with("understudy_coordination_up{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse().ok())
}

fn alarm_types(g: &serde_json::Value) -> Vec<String> {
    g["redundancy"]["alarms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["type"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn etcd_decides_and_its_loss_suspends_failover_without_stopping_the_service() {
    let p = Plant::build("qn", true);
    let mut etcd = p.enable_quorum();
    let (mut main, _backup) = p.start_group();

    // 1. The Main holds its address's key.
    p.wait(
        Duration::from_secs(10),
        "etcd to name main-1 the holder",
        || (p.etcd_holder(MAIN_SERVICE).as_deref() == Some("main-1")).then_some(()),
    );
    assert_eq!(
        coordination_up(&p, "main-1"),
        Some(1),
        "{}",
        metrics(&p, "main-1")
    );
    // backup-1 rereads the keys after each keep-alive (every 300 ms).
    let g = p.wait(
        Duration::from_secs(5),
        "backup-1 to read main-1's key",
        || {
            let g = p.group("backup-1")?;
            (g["coordination"]["holders"][MAIN_SERVICE] == "main-1").then_some(g)
        },
    );
    assert_eq!(g["coordination"]["up"], true, "{g}");
    assert!(member(&g, "main-1")["lease"]["until"].is_string(), "{g}");

    // 2. etcd gone: failsafe. The Main keeps serving; both raise coordination_lost.
    etcd.kill9();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        assert!(
            p.holds(&p.main, MAIN_SERVICE),
            "main-1 dropped its address {:?} after etcd went away (failsafe keeps it)\n{}",
            t0.elapsed(),
            p.logs()
        );
        assert!(
            !p.holds(&p.backup, MAIN_SERVICE),
            "backup-1 took the address"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for m in ["main-1", "backup-1"] {
        let g = p.local_group(m).expect("agent answers");
        assert!(
            alarm_types(&g).iter().any(|t| t == "coordination_lost"),
            "{m}: {g}"
        );
        assert_eq!(g["coordination"]["up"], false, "{m}: {g}");
        assert_eq!(coordination_up(&p, m), Some(0), "{m}");
    }
    assert_eq!(p.served_by().as_deref(), Some("main-1"));

    // Failover suspended: the Main's agent killed while etcd is down. Its address goes with
    // its lease; the Backup does not take it.
    main.kill9();
    p.kill_responder("main-1");
    let killed = Instant::now();
    p.wait(
        Duration::from_secs(3),
        "the killed agent's address to expire",
        || (!p.holds(&p.main, MAIN_SERVICE)).then_some(()),
    );
    let expired = killed.elapsed();
    assert!(
        expired < Duration::from_millis(1_500),
        "the lease (1 s) ran out only after {expired:?}"
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !p.holds(&p.backup, MAIN_SERVICE),
        "backup-1 failed over while the quorum source was down\n{}",
        p.logs()
    );
    let g = p.group("backup-1").expect("backup-1 answers");
    assert_eq!(
        member(&g, "backup-1")["operational_state"],
        "standby",
        "{g}"
    );

    // 3. etcd back: the Backup acquires the key (main-1's session has expired) and fails over.
    let _etcd = p.start_etcd();
    let back = Instant::now();
    p.wait_service_from("backup-1", Duration::from_secs(20));
    let took = back.elapsed();
    assert_eq!(p.etcd_holder(MAIN_SERVICE).as_deref(), Some("backup-1"));
    p.wait(
        Duration::from_secs(10),
        "the coordination alarm to clear",
        || {
            let g = p.group("backup-1")?;
            (!alarm_types(&g).iter().any(|t| t == "coordination_lost")).then_some(())
        },
    );
    eprintln!(
        "quorum netns: killed agent's address gone after {expired:?}; failover {took:?} after \
         etcd returned"
    );
}
