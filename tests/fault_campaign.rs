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
//! The short campaign runs with the other tests, over the fault kinds today's code passes;
//! the three kinds it fails are kept as known failures below, each replaying the trial that
//! showed it. `bench/fault-campaign` runs the long campaign over every kind.
//! `UNDERSTUDY_CAMPAIGN_SEED=<n>` replays a campaign, `UNDERSTUDY_CAMPAIGN_TRIAL=<seed>` one
//! trial, `UNDERSTUDY_CAMPAIGN_TRIALS=<n>` sets the number of trials,
//! `UNDERSTUDY_CAMPAIGN_DETAILS=1` writes every trial's timeline, commands, history and logs.

mod support;

use support::campaign::{Campaign, FaultKind, Settings};

/// The kinds of the short campaign: every kind but the three with known failures below.
const PASSING: [FaultKind; 6] = [
    FaultKind::Kill9Main,
    FaultKind::Kill9Backup,
    FaultKind::StopMainShort,
    FaultKind::CutOnePath,
    FaultKind::FullDiskMain,
    FaultKind::FullDiskBackup,
];

fn campaign(settings: &Settings) {
    let report = Campaign::run(settings);
    println!("{}", report.render());
    report.assert_safe();
}

/// 12 trials: each passing kind twice, in a shuffled order (about 1.5 minutes).
#[test]
fn a_short_fault_campaign_leaves_no_half_done_operation_no_stuck_lock_and_one_holder_outside_the_fencing_gaps(
) {
    campaign(&Settings::from_env(2 * PASSING.len(), &PASSING));
}

/// The long campaign over every kind (bench/fault-campaign runs it;
/// `UNDERSTUDY_CAMPAIGN_TRIALS`, default 200).
#[test]
#[ignore = "the long campaign: run by bench/fault-campaign"]
fn long_fault_campaign() {
    campaign(&Settings::from_env(200, &FaultKind::ALL));
}

/// The Main's agent is frozen 3.98 s; the Backup fails it over at +2.3 s (release not
/// awaited: the documented gap). A client's `auto-failover off` sent to the frozen Main at
/// +3.94 s waits in its socket; on SIGCONT the Main carries it out from its own view, which
/// missed the failover: it writes its record at the failover's version, and its name wins the
/// `(version, writer)` tie against `backup-1`. The failover's release is lost: after the heal
/// both agents agree that main-1 and backup-1 are online on 192.0.2.10, and both hosts hold it
/// (16 s until the campaign gave up; nothing ends it). Reproduces on every replay here.
#[test]
#[ignore = "known failure: a Main frozen past failover_after carries out a command it received \
            while frozen, from a view that missed its failover; its record wins the version tie by \
            its name, the failover's release is lost and both members stay online on the Main's \
            address after SIGCONT; issue: safe operations"]
fn known_failure_a_main_frozen_past_failover_after_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(11932320957292398252));
}

/// Every path between Main and Backup is cut for 5 s, the client on the Main's side; the
/// Backup fails the Main over (the documented split brain); the client's commands reach the
/// cut-off Main (`auto-failover` changes), which writes its record from its own view: the same
/// tie as above, so after the paths return both stay online on the Main's address.
/// Reproduces on every replay here.
#[test]
#[ignore = "known failure: a Main cut off on every path carries out a command meanwhile; its \
            record wins the version tie against the failover's, and both members stay online on \
            the Main's address after the paths return; issue: safe operations"]
fn known_failure_a_main_cut_off_on_every_path_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(5928622861933973453));
}

/// The Backup's agent is frozen 3.9 s (not a fencing gap: the Main is alive and reachable
/// throughout). A client's takeover sent to the Main is forwarded to the frozen Backup; on
/// SIGCONT the Backup carries it out before any heartbeat round, judges the Main unreachable
/// from its own stale last-heard times (it heard nothing while frozen), does not ask it to
/// release (`release_not_awaited`) and takes 192.0.2.10 while the Main still holds it. A
/// concurrent `auto-failover off` on the Main then wins the version tie as above and the two
/// holders stay. A race: the campaign's run of this trial showed it, and 1 of 5 replays here.
#[test]
#[ignore = "known failure: a Backup frozen past failover_after, on SIGCONT, carries out a \
            forwarded takeover judging the live Main unreachable from its stale last-heard \
            times and takes the address without the Main's release (two holders outside the \
            fencing gaps); a race, 1 of 5 replays here; issue: safe operations"]
fn known_failure_a_backup_frozen_past_failover_after_takes_a_live_mains_address() {
    campaign(&Settings::replay(14571235658746288498));
}
