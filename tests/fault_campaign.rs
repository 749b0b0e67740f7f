//! A fault campaign with real processes, in the network-namespace plant of tests/netns.rs
//! (needs root: fails, never skips, without it): one `understudy run` per server with the
//! linux backend, three clients sending random takeovers, reverse takeovers and auto-failover
//! changes over HTTP, the CLI and SNMP SET, and in each trial one random fault: kill -9 of an
//! agent then a restart, SIGSTOP then SIGCONT, heartbeat paths down then up, a full state disk
//! then freed. A checker samples both hosts' addresses every 100 ms. After every trial the
//! group must settle (agents agree, hosts hold what their records name) with no half-done
//! operation, and a takeover and a reverse takeover must not be refused with
//! operation_in_progress; no address may be on two hosts except in the documented fencing gap:
//! without a quorum source, a Main cut off on every path keeps its address while the Backup
//! takes it (counted, not hidden; docs/multi-server.md). A killed or frozen Main is no gap:
//! its address lease runs out before the Backup may fail it over.
//!
//! The short campaign runs with the other tests, over every fault kind outside the fencing
//! gaps, its clients taking turns. The trials in which the campaign found failures are
//! replayed below as regression tests: each failed before the safe-operations work (claims,
//! intents, record precedence, the pause watch) and passes now. `bench/fault-campaign` runs
//! the long campaign over every kind, with overlapping commands.
//! `UNDERSTUDY_CAMPAIGN_SEED=<n>` replays a campaign, `UNDERSTUDY_CAMPAIGN_TRIAL=<seed>` one
//! trial, `UNDERSTUDY_CAMPAIGN_TRIALS=<n>` sets the number of trials (of the replayed one too),
//! `UNDERSTUDY_CAMPAIGN_CLIENTS=concurrent|turns` whether the clients' commands may overlap,
//! `UNDERSTUDY_CAMPAIGN_DETAILS=1` writes every trial's timeline, commands, history and logs.

mod support;

use support::campaign::{Campaign, FaultKind, Settings};

/// The kinds of the short campaign: every kind outside the fencing gap (a cut of every path
/// without a quorum source).
const PASSING: [FaultKind; 8] = [
    FaultKind::Kill9Main,
    FaultKind::Kill9Backup,
    FaultKind::StopMainShort,
    FaultKind::StopMainLong,
    FaultKind::StopBackup,
    FaultKind::CutOnePath,
    FaultKind::FullDiskMain,
    FaultKind::FullDiskBackup,
];

fn campaign(settings: &Settings) {
    let report = Campaign::run(settings);
    println!("{}", report.render());
    report.assert_safe();
}

/// 16 trials: each kind twice, in a shuffled order, the clients taking turns (about two
/// minutes).
#[test]
fn a_short_fault_campaign_leaves_no_half_done_operation_no_stuck_lock_and_one_holder_outside_the_fencing_gaps(
) {
    campaign(&Settings::from_env(2 * PASSING.len(), &PASSING, false));
}

/// The faults that silence a Main without a cut: its agent killed, its whole host lost and
/// back (links up before the agent), its agent frozen past failover_after. Each time the
/// Backup fails it over and the address is never on both hosts: the Main's lease runs out
/// first. 6 trials.
#[test]
fn a_killed_frozen_or_lost_main_never_holds_its_address_beside_the_backup() {
    campaign(&Settings::from_env(
        6,
        &[FaultKind::Kill9Main, FaultKind::StopMainLong],
        false,
    ));
}

/// The same faults and a cut of every heartbeat path, on a plant with a quorum source (etcd in
/// a namespace of its own, reachable from both sides, or cut from one side with the paths):
/// no fault is a fencing gap any more. A Main cut off with etcd reachable keeps its key and
/// its address and is not failed over; a Main cut off from etcd too loses its key and its
/// address before the Backup, which reaches etcd, acquires the key; a Backup cut off from
/// etcd does not fail over. 8 trials (each kind at least twice).
#[cfg(feature = "etcd")]
#[test]
fn with_a_quorum_source_no_fault_leaves_two_holders() {
    campaign(
        &Settings::from_env(
            8,
            &[
                FaultKind::Kill9Main,
                FaultKind::StopMainLong,
                FaultKind::CutAllPaths,
                FaultKind::CutAllPaths,
            ],
            false,
        )
        .with_quorum(),
    );
}

/// Each fault of the fencing issue once, on a plant with a quorum source, from trials the
/// campaign drew (their seeds fix every draw): kill -9 of the Main's agent (restarted after
/// 4.26 s), its host lost for 6.11 s, its agent frozen 7.96 s; every heartbeat path cut with
/// etcd reachable from both sides (8.73 s: the Main keeps its key, no failover), from the
/// Backup's side only (4.26 s: the Main loses its address, then the Backup fails it over) and
/// from the Main's side only (7.51 s: the Backup cannot fail over). 0 ms with two holders in
/// each, no half-done operation, no stuck lock.
#[cfg(feature = "etcd")]
#[test]
fn with_a_quorum_source_each_fault_of_the_fencing_issue_leaves_one_holder() {
    campaign(
        &Settings::trials_of(&[
            5592092887425052800,
            3170086229597179716,
            3968987354625326511,
            16437833606515190972,
            12236110543116582125,
            3527276148932747783,
        ])
        .with_quorum(),
    );
}

/// The long campaign with a quorum source (bench/fault-campaign --quorum;
/// `UNDERSTUDY_CAMPAIGN_TRIALS`, default 200).
#[cfg(feature = "etcd")]
#[test]
#[ignore = "the long campaign with a quorum source: run by bench/fault-campaign"]
fn long_fault_campaign_with_a_quorum_source() {
    campaign(&Settings::from_env(200, &FaultKind::ALL, true).with_quorum());
}

/// The long campaign over every kind (bench/fault-campaign runs it;
/// `UNDERSTUDY_CAMPAIGN_TRIALS`, default 200).
#[test]
#[ignore = "the long campaign: run by bench/fault-campaign"]
fn long_fault_campaign() {
    campaign(&Settings::from_env(200, &FaultKind::ALL, true));
}

// Regression tests: each replays a trial in which the long campaign found a failure before
// the safe-operations work (its clients' commands may overlap, as in these replays). A trial
// that showed a race in some runs only is replayed several times.

/// A Main frozen past failover_after (SIGSTOP 5.09 s) is failed over (release not awaited:
/// the documented gap). A client's `auto-failover off` sent to it while frozen waits in its
/// socket; on SIGCONT the Main carries it out from its own view, which missed the failover:
/// it writes its record at the failover's version and its name wins the `(version, writer)`
/// tie against `backup-1`. The failover's release is lost: after the heal both agents agree
/// that main-1 and backup-1 are online on 192.0.2.10 and both hosts hold it, until the group
/// is restarted. Showed in 3 of 4 runs here.
/// Fixed: of two writes at one version another member's operation wins over the member's own
/// (`record::precedence`), and a takeover moves the Main's version by 2^20
/// (`plan::RELEASE_VERSION_STEP`), beyond any writes the Main makes alone.
#[test]
fn regression_a_main_frozen_past_failover_after_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(16146548157657738315).times(3));
}

/// Every path between Main and Backup is cut for 5.03 s, the client on the Main's side; the
/// Backup fails the Main over (the documented split brain); an `auto-failover off` reaches the
/// cut-off Main, which writes its record from its own view: the same tie as above, so after
/// the paths return both stay online on the Main's address. Showed in 4 of 4 runs here.
/// Fixed as the one above.
#[test]
fn regression_a_main_cut_off_on_every_path_loses_its_failover_to_a_command() {
    campaign(&Settings::replay(9414097261026007514));
}

/// The Backup's agent is frozen 2.2 s (not a fencing gap: the Main is alive and reachable
/// throughout). A client's takeover reaches the Backup as it resumes; it carries it out before
/// any heartbeat round, judges the Main unreachable from its own stale last-heard times (it
/// heard nothing while frozen), does not ask it to release (`release_not_awaited`) and takes
/// 192.0.2.10 while the Main still holds it (250-310 ms of two holders, until the Main hears
/// of it). Showed in 4 of 9 runs here.
/// Fixed: the pause watch (`group::Liveness::tick`): after a pause no member counts as
/// unreachable until a heartbeat round started after it has ended.
#[test]
fn regression_a_backup_frozen_past_failover_after_takes_a_live_mains_address() {
    campaign(&Settings::replay(456335152016325106).times(5));
}

/// backup-1's state disk is full; a takeover it coordinates asks main-1 first, which releases
/// its address (offline on 192.0.2.110), then backup-1 cannot persist its own record and stops
/// the operation: main-1 offline with the takeover mark, nobody online on 192.0.2.10 (the
/// service is down until an operator's reverse takeover). main-1's history records the
/// takeover as done (the event travels with the apply), backup-1's as stopped; backup-1, which
/// cannot save what it hears, keeps showing main-1 online. Showed in 4 of 4 runs here.
/// Fixed: the takeover's claim on backup-1 cannot be persisted, so it is refused before main-1
/// releases anything; and a step that fails later is rolled back from the intent.
#[test]
fn regression_a_backup_with_a_full_disk_leaves_a_takeover_half_done() {
    campaign(&Settings::replay(14950896725900388167));
}

/// The Main's agent is killed and restarted 0.83 s later; meanwhile a client's takeover reaches
/// the Backup, whose apply to the dead Main fails. Since the address leases the Backup waits
/// for the Main's lease to run out before it takes the address without a release, but the
/// restarted Main had taken its address again after its first heartbeat round (no record said
/// otherwise yet): 100 ms with two holders, until it heard of the takeover. Showed in a full
/// test run and in 1 of 3 replays here.
/// Fixed: a Main heard again during that wait is asked to release once more, and does.
#[test]
fn regression_a_main_restarted_during_a_takeover_without_its_release_is_asked_again() {
    campaign(
        &Settings::replay(14204200745708593947)
            .times(3)
            .taking_turns(),
    );
}

/// Two commands overlap after the Backup was frozen 5.23 s: a takeover (coordinated by the
/// Backup) and a reverse takeover (coordinated by the Main) are done within milliseconds of
/// each other. Each coordinator's lock covers its own operations only; the Main, which has
/// just released its address for the takeover, takes it back by the reverse (the branch for
/// an interrupted takeover: nobody holds it in its view), then the Backup takes it too. Both
/// stay online on 192.0.2.10; in some runs the Main's host also keeps 192.0.2.110, which its
/// record does not name (two address moves of one member interleaved). Showed in 3 of 4 runs
/// here.
/// Fixed: claims serialize the two operations group-wide; the second is refused with
/// operation_in_progress.
#[test]
fn regression_overlapping_takeover_and_reverse_takeover_leave_two_holders() {
    campaign(&Settings::replay(7167131672369420425).times(3));
}
