//! The `linux` backend with IPv6 service addresses, in the namespace plant of tests/netns.rs
//! (needs root): the address is added without duplicate address detection and announced with
//! unsolicited neighbour advertisements, so the client follows a manual takeover and a
//! reverse takeover at once.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::time::{Duration, Instant};

use netns::*;

#[test]
fn ipv6_service_addresses_move_with_takeover_and_reverse() {
    let p = Plant::build_with("n6", true, V6);
    let a = p.addrs;
    let _backup = p.start("backup-1");
    let _main = p.start("main-1");
    p.wait_ready();
    p.wait_service_from("main-1", Duration::from_secs(10));

    let t0 = Instant::now();
    let (status, body) = p.client_send(
        "POST",
        &format!("http://{BACKUP_HOST}:{AGENT_PORT}/api/v1/takeover"),
        r#"{"backup":"backup-1","main":"main-1"}"#,
    );
    assert_eq!(status, 200, "{body}\n{}", p.logs());
    let took = p.wait_service_from("backup-1", Duration::from_secs(10)) - t0;
    let backup = p.addresses(&p.backup, "lan");
    assert!(backup.contains(&a.service.to_string()), "{backup:?}");
    assert!(
        !backup.contains(&a.backup_service.to_string()),
        "{backup:?}"
    );
    let main = p.addresses(&p.main, "lan");
    assert!(main.contains(&a.extra.to_string()), "{main:?}");
    assert!(!main.contains(&a.service.to_string()), "{main:?}");

    let t1 = Instant::now();
    let (status, body) = p.client_send(
        "POST",
        &format!("http://{MAIN_HOST}:{AGENT_PORT}/api/v1/reverse-takeover"),
        r#"{"main":"main-1"}"#,
    );
    assert_eq!(status, 200, "{body}\n{}", p.logs());
    let back = p.wait_service_from("main-1", Duration::from_secs(10)) - t1;
    assert!(p
        .addresses(&p.backup, "lan")
        .contains(&a.backup_service.to_string()));
    eprintln!("netns ipv6: manual takeover {took:?}, reverse {back:?}");
}
