//! The `linux` backend with IPv6 service addresses, in the namespace plant of tests/netns.rs
//! (needs root): the address is added without duplicate address detection and announced with
//! unsolicited neighbour advertisements, so the client follows a manual takeover and a
//! reverse takeover at once.

mod support;

use support::netns::*;

#[test]
fn ipv6_service_addresses_move_with_takeover_and_reverse() {
    let p = Plant::build_with("n6", true, V6);
    let a = p.addrs;
    let (_main, _backup) = p.start_group();

    let took = p.command_until_served_by(
        BACKUP_HOST,
        "takeover",
        r#"{"backup":"backup-1","main":"main-1"}"#,
        "backup-1",
    );
    p.assert_holds(&[
        (&p.backup, a.service, true),
        (&p.backup, a.backup_service, false),
        (&p.main, a.extra, true),
        (&p.main, a.service, false),
    ]);

    let back = p.command_until_served_by(
        MAIN_HOST,
        "reverse-takeover",
        r#"{"main":"main-1"}"#,
        "main-1",
    );
    assert!(p.holds(&p.backup, a.backup_service));
    eprintln!("netns ipv6: manual takeover {took:?}, reverse {back:?}");
}
