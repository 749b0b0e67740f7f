//! The `linux` backend with IPv6 service addresses, in the namespace plant of tests/netns.rs
//! (needs root): the address is added without duplicate address detection and announced with
//! unsolicited neighbour advertisements, so the client follows a manual takeover and a
//! reverse takeover at once; it is held under a lease (a finite kernel lifetime the agent
//! renews), so after `kill -9` of the Main's agent the kernel removes it within the lease and
//! the Backup takes it when it fails the Main over.

mod support;

use support::netns::*;

#[test]
fn ipv6_service_addresses_move_with_takeover_and_reverse() {
    let p = Plant::build_with("n6", true, V6);
    let a = p.addrs;
    let (mut main, _backup) = p.start_group();

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

    // kill -9 of the Main's agent (auto-failover on again: the takeover turned it off): its
    // IPv6 address has a lifetime, and nothing renews it now.
    p.set_auto_failover(true);
    p.wait(
        std::time::Duration::from_secs(5),
        "the Backup to see auto-failover on",
        || {
            let g = p.group("backup-1")?;
            (support::member(&g, "main-1")["auto_failover"] == true).then_some(())
        },
    );
    main.kill9();
    let killed = std::time::Instant::now();
    p.wait(
        std::time::Duration::from_secs(3),
        "the killed agent's IPv6 address to expire",
        || (!p.holds(&p.main, a.service)).then_some(()),
    );
    let expired = killed.elapsed();
    assert!(
        expired < std::time::Duration::from_millis(1_500),
        "the 1 s lease ran out only after {expired:?}"
    );
    p.wait(
        std::time::Duration::from_secs(10),
        "the Backup to take the IPv6 address (failover)",
        || p.holds(&p.backup, a.service).then_some(()),
    );
    eprintln!(
        "netns ipv6: manual takeover {took:?}, reverse {back:?}, killed agent's address gone \
         after {expired:?}"
    );
}
