//! Property tests over seeded schedules of the simulated network, and the replay of one seed.
//! Every failing seed is printed (stderr) with the command that replays it with its trace; the
//! replay reads the seed from the environment.

use super::*;

const ALL_CHECKS: Checks = Checks {
    alarm_and_holders: true,
};

/// Runs `count` schedules from `first`; panics naming every failing seed.
fn schedules(name: &str, first: u64, count: u64, faults: Faults, checks: Checks) {
    let mut failed = Vec::new();
    let mut total = Stats::default();
    for seed in first..first + count {
        match World::new(seed, faults, checks, false).run() {
            Ok(s) => {
                total.delivered += s.delivered;
                total.completed += s.completed;
                total.refused += s.refused;
                total.stopped += s.stopped;
                total.takeovers += s.takeovers;
            }
            Err(why) => {
                eprintln!("{name}: seed {seed} failed: {why}");
                eprintln!(
                    "replay: UNDERSTUDY_SIM_SEED={seed} UNDERSTUDY_SIM_RUN={name} \
                     cargo test --lib sim_replay -- --nocapture"
                );
                failed.push(seed);
            }
        }
    }
    eprintln!("{name}: {count} schedules, {total:?}");
    assert!(
        failed.is_empty(),
        "{name}: {} of {count} schedules failed, seeds {failed:?}",
        failed.len()
    );
}

/// The runs, by name: seeds, faults, checks.
fn run(name: &str) -> (u64, u64, Faults, Checks) {
    let only_b_c = Checks {
        alarm_and_holders: false,
    };
    match name {
        "messages" => (0, 5_000, Faults::MESSAGES, ALL_CHECKS),
        "converge" => (10_000_000, 5_000, Faults::ALL, only_b_c),
        "partitions" => (20_000_000, 2_000, Faults::PARTITIONS, ALL_CHECKS),
        "crashes" => (30_000_000, 2_000, Faults::CRASHES, ALL_CHECKS),
        _ => (40_000_000, 3_000, Faults::CONCURRENT, ALL_CHECKS),
    }
}

fn schedules_of(name: &str) {
    let (first, count, faults, checks) = run(name);
    schedules(name, first, count, faults, checks);
}

/// One command at a time, messages delayed, dropped, duplicated and reordered, Mains silenced
/// (crashed or cut off) for the failover detector: every invariant holds.
#[test]
fn sim_messages() {
    schedules_of("messages");
}

/// Links cut and healed, members crashed and restarted, on top of the message faults: a
/// refused command changes nothing and every view converges once the network heals.
#[test]
fn sim_converge() {
    schedules_of("converge");
}

/// Under partitions the single holder of an address is not kept without a quorum source.
#[test]
#[ignore = "known failure, the fencing issue's: two Backups that cannot reach each other (nor \
            the Main) both designate themselves and fail over the same Main, so its address is \
            held by both records; only a quorum source (etcd) can decide between them"]
fn sim_partitions() {
    schedules_of("partitions");
}

/// Members crash and restart between any two steps of an operation, on top of the message
/// faults: every invariant holds, and no operation is left half-done (every intent resolved,
/// no claim held) once every member restarted.
#[test]
fn sim_crashes() {
    schedules_of("crashes");
}

/// The failover detector acting at any time while the operator's commands run, with crashes
/// and message faults: operations are serialized by their claims, every invariant holds.
#[test]
fn sim_concurrent() {
    schedules_of("concurrent");
}

/// Replays one schedule with its trace: `UNDERSTUDY_SIM_SEED=<seed>` and
/// `UNDERSTUDY_SIM_RUN=<messages|converge|partitions|crashes|concurrent>` (default messages).
#[test]
fn sim_replay() {
    let Some(seed) = std::env::var("UNDERSTUDY_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    let name = std::env::var("UNDERSTUDY_SIM_RUN").unwrap_or_else(|_| "messages".into());
    let (_, _, faults, checks) = run(&name);
    let mut w = World::new(seed, faults, checks, true);
    let res = w.run();
    for line in w.trace() {
        println!("{line}");
    }
    if let Err(why) = res {
        panic!("seed {seed}: {why}");
    }
}

#[test]
fn the_same_seed_gives_the_same_schedule() {
    let a = World::new(7, Faults::ALL, ALL_CHECKS, true);
    let b = World::new(7, Faults::ALL, ALL_CHECKS, true);
    let (mut a, mut b) = (a, b);
    let (ra, rb) = (a.run(), b.run());
    assert_eq!(ra.is_ok(), rb.is_ok());
    assert_eq!(a.trace(), b.trace());
    assert!(a.trace().len() > 100, "a schedule does something");
}
