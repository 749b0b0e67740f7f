//! A fault campaign with real processes, in the network-namespace plant of tests/netns.rs
//! (needs root: fails, never skips, without it): one `understudy run` per server with the
//! linux backend, three clients sending random takeovers, reverse takeovers and auto-failover
//! changes over HTTP, the CLI and SNMP SET, and in each trial one random fault: kill -9 of an
//! agent then a restart, SIGSTOP then SIGCONT, heartbeat paths down then up, a full state disk
//! then freed. A checker samples both hosts' addresses every 100 ms. After every trial the
//! group must settle (agents agree, hosts hold what their records name) with no half-done
//! operation, and a takeover and a reverse takeover must not be refused with
//! operation_in_progress; no address may be on two hosts except in the documented fencing gaps
//! (a Main whose agent is killed or frozen past failover_after, or cut off on every path, keeps
//! its address while the Backup takes it: counted by fault kind, not hidden).
//!
//! The short campaign runs with the other tests, over the fault kinds today's code passes, its
//! clients taking turns; what today's code fails (in the other five kinds, and with
//! overlapping commands) is kept as known failures below, each replaying a trial that showed
//! it. `bench/fault-campaign` runs the long campaign over every kind, with overlapping
//! commands.
//! `UNDERSTUDY_CAMPAIGN_SEED=<n>` replays a campaign, `UNDERSTUDY_CAMPAIGN_TRIAL=<seed>` one
//! trial, `UNDERSTUDY_CAMPAIGN_TRIALS=<n>` sets the number of trials (of the replayed one too),
//! `UNDERSTUDY_CAMPAIGN_CLIENTS=concurrent|turns` whether the clients' commands may overlap,
//! `UNDERSTUDY_CAMPAIGN_DETAILS=1` writes every trial's timeline, commands, history and logs.

mod support;

use support::campaign::{Campaign, FaultKind, Settings};

/// The kinds of the short campaign: every kind but those with known failures below.
const PASSING: [FaultKind; 4] = [
    FaultKind::Kill9Main,
    FaultKind::Kill9Backup,
    FaultKind::CutOnePath,
    FaultKind::FullDiskMain,
];

fn campaign(settings: &Settings) {
    let report = Campaign::run(settings);
    println!("{}", report.render());
    report.assert_safe();
}

/// 12 trials: each passing kind three times, in a shuffled order, the clients taking turns
/// (about a minute).
#[test]
fn a_short_fault_campaign_leaves_no_half_done_operation_no_stuck_lock_and_one_holder_outside_the_fencing_gaps(
) {
    campaign(&Settings::from_env(3 * PASSING.len(), &PASSING, false));
}

/// The long campaign over every kind (bench/fault-campaign runs it;
/// `UNDERSTUDY_CAMPAIGN_TRIALS`, default 200).
#[test]
#[ignore = "the long campaign: run by bench/fault-campaign"]
fn long_fault_campaign() {
    campaign(&Settings::from_env(200, &FaultKind::ALL, true));
}

// The known failures, each replaying a trial the long campaign found (its clients' commands
// may overlap, as in these replays). A trial that shows a race in some runs only is replayed
// several times.

/// A Main frozen past failover_after (SIGSTOP 5.09 s) is failed over (release not awaited:
/// the documented gap). A client's `auto-failover off` sent to it while frozen waits in its
/// socket; on SIGCONT the Main carries it out from its own view, which missed the failover:
/// it writes its record at the failover's version and its name wins the `(version, writer)`
/// tie against `backup-1`. The failover's release is lost: after the heal both agents agree
/// that main-1 and backup-1 are online on 192.0.2.10 and both hosts hold it, until the group
/// is restarted. Showed in 3 of 4 runs here.
#[test]
#[ignore = "known failure: a Main frozen past failover_after carries out a command it received \
            while frozen from a view that missed its failover; its record wins the version tie by \
            its name, the failover's release is lost and both members stay online on the Main's \
            address after SIGCONT; issue: safe operations"]
fn known_failure_a_main_frozen_past_failover_after_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(16146548157657738315).times(3));
}

/// Every path between Main and Backup is cut for 5.03 s, the client on the Main's side; the
/// Backup fails the Main over (the documented split brain); an `auto-failover off` reaches the
/// cut-off Main, which writes its record from its own view: the same tie as above, so after
/// the paths return both stay online on the Main's address. Showed in 4 of 4 runs here.
#[test]
#[ignore = "known failure: a Main cut off on every path carries out a command meanwhile; its \
            record wins the version tie against the failover's, and both members stay online on \
            the Main's address after the paths return; issue: safe operations"]
fn known_failure_a_main_cut_off_on_every_path_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(9414097261026007514));
}

/// The Main's agent is frozen 1.88 s, less than failover_after (2 s), no client command: the
/// Backup counts the Main's silence from the last heartbeat it heard (up to one heartbeat
/// interval, 500 ms, before the freeze), fails it over at about +1.6 s without awaiting its
/// release, and takes 192.0.2.10 while the frozen Main still holds it, until SIGCONT (about
/// 300 ms of two holders). The failover was decided while the Main was frozen in 5 of 5 runs;
/// the two holders lasted long enough for the 100 ms checker in 2 of 16 runs here.
#[test]
#[ignore = "known failure: a Main frozen for less than failover_after (but more than \
            failover_after minus one heartbeat interval) is failed over without its release and \
            its address is on two hosts until SIGCONT; issue: safe operations"]
fn known_failure_a_main_frozen_less_than_failover_after_is_failed_over() {
    let report = Campaign::run(&Settings::replay(242709816849867218).times(5));
    println!("{}", report.render());
    // Every failover of this trial is decided while the Main is frozen, before SIGCONT.
    assert_eq!(
        report.early_failovers(FaultKind::StopMainShort),
        0,
        "failovers of a Main frozen for less than failover_after\n{}",
        report.render()
    );
    report.assert_safe();
}

/// The Backup's agent is frozen 2.2 s (not a fencing gap: the Main is alive and reachable
/// throughout). A client's takeover reaches the Backup as it resumes; it carries it out before
/// any heartbeat round, judges the Main unreachable from its own stale last-heard times (it
/// heard nothing while frozen), does not ask it to release (`release_not_awaited`) and takes
/// 192.0.2.10 while the Main still holds it (250-310 ms of two holders, until the Main hears
/// of it). Showed in 4 of 9 runs here.
#[test]
#[ignore = "known failure: a Backup frozen past failover_after carries out a takeover on \
            SIGCONT judging the live Main unreachable from its stale last-heard times, and takes \
            the address without the Main's release (two holders outside the fencing gaps); \
            issue: safe operations"]
fn known_failure_a_backup_frozen_past_failover_after_takes_a_live_mains_address() {
    campaign(&Settings::replay(456335152016325106).times(5));
}

/// backup-1's state disk is full; a takeover it coordinates asks main-1 first, which releases
/// its address (offline on 192.0.2.110), then backup-1 cannot persist its own record and stops
/// the operation: main-1 offline with the takeover mark, nobody online on 192.0.2.10 (the
/// service is down until an operator's reverse takeover). main-1's history records the
/// takeover as done (the event travels with the apply), backup-1's as stopped; backup-1, which
/// cannot save what it hears, keeps showing main-1 online. Showed in 4 of 4 runs here.
#[test]
#[ignore = "known failure: a takeover whose Backup cannot persist its record stops after the \
            Main released its address: the Main stays offline and no member is online on its \
            address (half-done), and the Main's history says the takeover was done; issue: safe \
            operations"]
fn known_failure_a_backup_with_a_full_disk_leaves_a_takeover_half_done() {
    campaign(&Settings::replay(14950896725900388167));
}

/// Two commands overlap after the Backup was frozen 5.23 s: a takeover (coordinated by the
/// Backup) and a reverse takeover (coordinated by the Main) are done within milliseconds of
/// each other. Each coordinator's lock covers its own operations only; the Main, which has
/// just released its address for the takeover, takes it back by the reverse (the branch for
/// an interrupted takeover: nobody holds it in its view), then the Backup takes it too. Both
/// stay online on 192.0.2.10; in some runs the Main's host also keeps 192.0.2.110, which its
/// record does not name (two address moves of one member interleaved). Showed in 3 of 4 runs
/// here.
#[test]
#[ignore = "known failure: a takeover and a reverse takeover done at once by their two \
            coordinators leave both members online on the Main's address (and sometimes a host \
            holding an address its record does not name); issue: safe operations"]
fn known_failure_overlapping_takeover_and_reverse_takeover_leave_two_holders() {
    campaign(&Settings::replay(7167131672369420425).times(3));
}
