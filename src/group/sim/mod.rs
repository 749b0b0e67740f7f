//! A simulated network for the group core, in the style of raft-rs's test harness: a few
//! members (each the agent's handlers over the core functions, see `node`) exchange the real
//! peer messages, serialized as JSON, in one process and in virtual time. A seeded scheduler
//! delays, drops, duplicates and reorders messages, cuts and heals the link between two
//! members, crashes a member (its memory is lost, its state file kept) and restarts it, while a
//! scripted operator issues one command at a time. After the network heals and goes quiet, the
//! checker compares every member's view and checks the invariants. Pure and deterministic: no
//! I/O, no clock, no randomness but the seed's; one seed, one run. Test code only.

mod node;
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::command::Command;
use crate::group::{
    Agreement, AlarmKind, GroupView, MemberRecord, Millis, Operation, Reachability, Requester, Role,
};
use node::{Ctx, Node, Out, Packet, Report, Route};

/// A small deterministic generator (splitmix64): the whole schedule follows from the seed.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// What the scheduler may do to the network and the members, in per mille per message (or per
/// scene for crashes and cuts).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    pub drop: u64,
    pub duplicate: u64,
    /// A delay beyond the request timeouts (which also reorders).
    pub slow: u64,
    /// Cut the link between two members for a while.
    pub cut: u64,
    /// Crash a member and restart it a while later.
    pub crash: u64,
    /// Mains may have auto-failover on at any time, so the failover detector may act while an
    /// operator's command runs (commands are otherwise one at a time).
    pub detector_any_time: bool,
    /// Fill a member's state disk for a while: every save fails.
    pub full_disk: u64,
    /// The operator (several operators, through every member) does not wait for a command
    /// to end before the next one half of the time.
    pub overlapping_commands: bool,
}

impl Faults {
    pub const MESSAGES: Faults = Faults {
        drop: 60,
        duplicate: 40,
        slow: 30,
        cut: 0,
        crash: 0,
        detector_any_time: false,
        full_disk: 0,
        overlapping_commands: false,
    };
    pub const PARTITIONS: Faults = Faults {
        cut: 350,
        ..Faults::MESSAGES
    };
    pub const CRASHES: Faults = Faults {
        crash: 300,
        ..Faults::MESSAGES
    };
    pub const ALL: Faults = Faults {
        cut: 250,
        crash: 200,
        ..Faults::MESSAGES
    };
    /// The failover detector acting at any time while operators' commands run, with
    /// members crashing and restarting between any two steps, and message faults; no cuts
    /// between live members (a partition is the fencing issue's: without a quorum source two
    /// Backups that cannot reach each other both fail over a silent Main).
    pub const CONCURRENT: Faults = Faults {
        detector_any_time: true,
        full_disk: 300,
        overlapping_commands: true,
        ..Faults::CRASHES
    };
}

/// Which invariants a schedule checks. A refused command changes nothing (b) and every view
/// converges once the network heals, with every host holding the address its record names
/// (c), always, with no intent left (e) and no claim held (f) after the heal; the rest when
/// `alarm_and_holders`: between any two events every running member's host holds the address
/// its own record names (g), the alarm
/// is raised after every completed takeover until a restoring operation starts (a), and no
/// address is held by two members' records in the converged view (d).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Checks {
    pub alarm_and_holders: bool,
}

/// One step of the operator's script.
#[derive(Debug, Clone)]
enum Step {
    /// Submit at member `via` (the agent the operator talks to).
    Command {
        via: usize,
        op: Operation,
    },
    /// A Backup's replication of a Main ended (successfully or not).
    Replicate {
        backup: usize,
        main: usize,
        ok: bool,
    },
    DeviceCheck {
        member: usize,
        failing: bool,
    },
    Crash(usize),
    Restart(usize),
    Cut(usize, usize),
    Heal(usize, usize),
    Wait(Millis),
}

#[derive(Debug)]
enum Ev {
    Deliver(Packet),
    Tick(usize, u32),
    RoundEnd(usize, u32),
    Timeout(usize, u32, u64),
    /// The operator's next step, when the group is idle.
    Operator,
    /// Background faults.
    Cut(usize, usize),
    Heal(usize, usize),
    Crash(usize),
    Restart(usize),
    DiskFull(usize),
    DiskFree(usize),
}

/// How one schedule went.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    pub delivered: u64,
    pub completed: u64,
    pub refused: u64,
    pub stopped: u64,
    pub takeovers: u64,
}

/// One schedule: the members, the network, the queue of what happens next, and what the checker
/// has learnt.
#[derive(Debug)]
pub(crate) struct World {
    now: Millis,
    names: Vec<String>,
    nodes: Vec<Node>,
    queue: BTreeMap<(Millis, u64), Ev>,
    seq: u64,
    next_rpc: u64,
    rng: Rng,
    faults: Faults,
    checks: Checks,
    cut: BTreeSet<(usize, usize)>,
    /// Faults happen before this time; then the network heals and goes quiet.
    chaos_until: Millis,
    script: Vec<Step>,
    /// Per Main: the takeover or failover completed last and not restored since.
    taken: BTreeMap<String, Operation>,
    violations: Vec<String>,
    stats: Stats,
    trace: Option<Vec<String>>,
}

/// How long faults and commands go on, and how quiet the end must be.
const CHAOS: Millis = 16_000;
const QUIET: Millis = 6_000;

fn ip(i: usize, extra: bool) -> IpAddr {
    IpAddr::from([if extra { 10 } else { 192 }, 0, 2, i as u8 + 1])
}

impl World {
    /// A group of 1–2 Mains and 1–2 Backups, and a script for it, from `seed`.
    pub fn new(seed: u64, faults: Faults, checks: Checks, trace: bool) -> World {
        let mut rng = Rng::new(seed);
        let (mains, backups) = [(1, 1), (1, 2), (2, 1), (2, 2)][rng.index(4)];
        let mut names = Vec::new();
        let mut members = Vec::new();
        for i in 0..mains + backups {
            let (role, name) = if i < mains {
                (Role::Main, format!("main-{}", i + 1))
            } else {
                (Role::Backup, format!("backup-{}", i - mains + 1))
            };
            let auto = faults.detector_any_time && role == Role::Main && rng.chance(500);
            members.push(MemberRecord::initial(
                &name,
                role,
                ip(i, false),
                ip(i, true),
                auto,
            ));
            names.push(name);
        }
        let view = GroupView {
            group: "sim".into(),
            members,
            maintenance: Default::default(),
        };
        let nodes = names.iter().map(|n| Node::new(view.clone(), n)).collect();
        let mut w = World {
            now: 0,
            names,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            next_rpc: 0,
            rng,
            faults,
            checks,
            cut: BTreeSet::new(),
            chaos_until: CHAOS,
            script: Vec::new(),
            taken: BTreeMap::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            trace: trace.then(Vec::new),
        };
        w.script = w.write_script();
        w
    }

    fn log(&mut self, what: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>6} {}", self.now, what()));
        }
    }

    fn at(&mut self, t: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    // ------------------------------------------------------------------ the operator

    /// The operator's script: scenes of one command (or one status change, or a Main going
    /// silent until the detector fails it over), each followed by a pause. Scenes are written
    /// in reverse: `script.pop()` is the next step.
    fn write_script(&mut self) -> Vec<Step> {
        let n = self.names.len();
        let mut steps = Vec::new();
        let rng = &mut self.rng;
        // Every Backup replicates every Main first, mostly successfully.
        for b in (0..n).filter(|b| !self.names[*b].starts_with("main")) {
            for m in (0..n).filter(|m| self.names[*m].starts_with("main")) {
                if rng.chance(850) {
                    steps.push(Step::Replicate {
                        backup: b,
                        main: m,
                        ok: true,
                    });
                }
            }
        }
        for _ in 0..9 {
            let pick = rng.below(100);
            let (a, b) = (rng.index(n), rng.index(n));
            let via = rng.index(n);
            let name = |i: usize| self.names[i].clone();
            let op = match pick {
                0..=29 => Some(Operation::Takeover {
                    backup: name(a),
                    main: name(b),
                }),
                30..=49 => Some(Operation::ReverseTakeover { main: name(a) }),
                50..=57 => Some(Operation::Reconfigure {
                    main: name(a),
                    backup: name(b),
                }),
                // The replacement runs as the Main (a new server with its configuration).
                58..=65 => Some(Operation::ReplaceTakeover {
                    main: name(a),
                    replacement: name(a),
                }),
                66..=71 => Some(Operation::SetAutoFailover {
                    member: name(a),
                    enabled: self.faults.detector_any_time && rng.chance(500),
                }),
                _ => None,
            };
            match (op, pick) {
                (Some(op), _) => steps.push(Step::Command { via, op }),
                (None, 72..=79) => steps.push(Step::Replicate {
                    backup: a,
                    main: b,
                    ok: rng.chance(800),
                }),
                (None, 80..=87) => steps.push(Step::DeviceCheck {
                    member: a,
                    failing: rng.chance(500),
                }),
                (None, _) => {
                    let mains: Vec<usize> = (0..n)
                        .filter(|i| self.names[*i].starts_with("main"))
                        .collect();
                    let a = mains[rng.index(mains.len())];
                    // A Main goes silent (crashed, or cut off from everybody) with
                    // auto-failover on, until the detector has failed it over; then it comes
                    // back and auto-failover is turned off again if it still is on.
                    let on = |enabled| Step::Command {
                        via: a,
                        op: Operation::SetAutoFailover {
                            member: name(a),
                            enabled,
                        },
                    };
                    steps.push(on(true));
                    if rng.chance(500) {
                        steps.push(Step::Crash(a));
                        steps.push(Step::Wait(FAILOVER_WAIT));
                        steps.push(Step::Restart(a));
                    } else {
                        for o in (0..n).filter(|o| *o != a) {
                            steps.push(Step::Cut(a, o));
                        }
                        steps.push(Step::Wait(FAILOVER_WAIT));
                        for o in (0..n).filter(|o| *o != a) {
                            steps.push(Step::Heal(a, o));
                        }
                    }
                    steps.push(Step::Wait(2_000));
                    steps.push(on(false));
                }
            }
            steps.push(Step::Wait(rng.between(100, 2_500)));
        }
        steps.reverse();
        steps
    }

    /// Whether a command is under way anywhere (the operator waits for it).
    fn busy(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.mem.as_ref().is_some_and(|m| m.active()))
    }

    /// Whether every member that runs holds the same view (the operator, one command at a
    /// time, waits for the group to settle before the next step).
    fn settled(&self) -> bool {
        let mut views = self.nodes.iter().filter_map(|n| n.view());
        let first = views.next();
        views.all(|v| Some(v) == first)
    }

    fn operator(&mut self) {
        if self.now >= self.chaos_until {
            return;
        }
        let overlap = self.faults.overlapping_commands && self.rng.chance(500);
        if !overlap && (self.busy() || !self.settled()) {
            self.at(self.now + 100, Ev::Operator);
            return;
        }
        let Some(step) = self.script.pop() else {
            return;
        };
        self.log(|| format!("operator: {step:?}"));
        let mut next = self.now + 1;
        match step {
            Step::Command { via, op } => {
                let cmd = Command {
                    operation: op,
                    requested_by: Requester {
                        interface: "sim".into(),
                        identity: "operator".into(),
                    },
                    reason: None,
                };
                self.with_node(via, |n, ctx| n.submit(ctx, cmd));
            }
            Step::Replicate { backup, main, ok } => {
                let main = self.names[main].clone();
                self.with_node(backup, |n, ctx| n.replicated(ctx, &main, ok));
            }
            Step::DeviceCheck { member, failing } => {
                self.with_node(member, |n, ctx| n.device_check(ctx, failing));
            }
            Step::Crash(i) => self.crash(i),
            Step::Restart(i) => self.restart(i),
            Step::Cut(a, b) => {
                self.cut.insert((a.min(b), a.max(b)));
            }
            Step::Heal(a, b) => {
                self.cut.remove(&(a.min(b), a.max(b)));
            }
            Step::Wait(t) => next = self.now + t,
        }
        self.at(next, Ev::Operator);
    }

    // ------------------------------------------------------------------ members

    fn crash(&mut self, i: usize) {
        if self.nodes[i].mem.is_some() {
            self.log(|| format!("crash {i}"));
            self.nodes[i].crash();
        }
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].mem.is_none() {
            self.log(|| format!("restart {i}"));
            let inc = self.nodes[i].incarnation;
            self.run_node(i, |n, ctx| n.start(ctx));
            self.at(self.now + node::HEARTBEAT, Ev::Tick(i, inc));
        }
    }

    /// Runs `f` on member `i` if it is up, then carries out what it asked for.
    fn with_node(&mut self, i: usize, f: impl FnOnce(&mut Node, &mut Ctx<'_>)) {
        if self.nodes.get(i).is_some_and(|n| n.mem.is_some()) {
            self.run_node(i, f);
        }
    }

    fn run_node(&mut self, i: usize, f: impl FnOnce(&mut Node, &mut Ctx<'_>)) {
        let mut ctx = Ctx {
            now: self.now,
            me: i,
            names: &self.names,
            next_rpc: &mut self.next_rpc,
            out: Vec::new(),
        };
        f(&mut self.nodes[i], &mut ctx);
        let out = ctx.out;
        let inc = self.nodes[i].incarnation;
        for o in out {
            match o {
                Out::Send(p) => self.send(p),
                Out::Timeout { after, rpc } => self.at(self.now + after, Ev::Timeout(i, inc, rpc)),
                Out::RoundEnd { after } => self.at(self.now + after, Ev::RoundEnd(i, inc)),
                Out::Report(r) => self.report(i, r),
            }
        }
    }

    fn up(&self, i: usize, inc: u32) -> bool {
        self.nodes[i].mem.is_some() && self.nodes[i].incarnation == inc
    }

    fn report(&mut self, i: usize, r: Report) {
        match r {
            Report::Completed { op, alarms } => {
                self.stats.completed += 1;
                let who = self.names[i].clone();
                self.log(|| format!("{who} completed {op:?}"));
                match &op {
                    Operation::Takeover { main, .. } | Operation::Failover { main, .. } => {
                        self.stats.takeovers += 1;
                        // (a) the coordinator sees the alarm at once.
                        let raised = alarms.iter().any(|a| {
                            a.main.as_deref() == Some(main.as_str())
                                && a.kind != AlarmKind::NoStandbyBackup
                        });
                        if !raised && self.checks.alarm_and_holders {
                            self.violations.push(format!(
                                "(a) {} completed {op:?} without raising the alarm: {alarms:?}",
                                self.names[i]
                            ));
                        }
                        self.taken.insert(main.clone(), op.clone());
                    }
                    _ => {}
                }
            }
            // A restoring operation may stop part way with some of its records applied (an
            // acknowledgement lost, a member crashed): from its start on, the alarm of that
            // Main is the records' business, not this checker's.
            Report::Started {
                op:
                    Operation::ReverseTakeover { main }
                    | Operation::Reconfigure { main, .. }
                    | Operation::ReplaceTakeover { main, .. },
            } => {
                self.taken.remove(&main);
            }
            Report::Started { .. } => {}
            Report::RefusalChanged { op, what } => self.violations.push(format!(
                "(b) the refused {op:?} changed {}'s state: {what}",
                self.names[i]
            )),
            Report::Refused => self.stats.refused += 1,
            Report::Stopped => self.stats.stopped += 1,
            Report::Garbled(e) => self.violations.push(format!("garbled message: {e}")),
        }
    }

    // ------------------------------------------------------------------ the network

    fn chaos(&self) -> bool {
        self.now < self.chaos_until
    }

    fn send(&mut self, p: Packet) {
        let f = self.faults;
        let chaos = self.chaos();
        if chaos && self.rng.chance(f.drop) {
            self.log(|| format!("drop {:?} {}->{}", p.route, p.from, p.to));
            return;
        }
        let copies = if chaos && self.rng.chance(f.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = if chaos && self.rng.chance(f.slow) {
                self.rng.between(200, 2_500)
            } else {
                self.rng.between(1, 20)
            };
            self.at(self.now + delay, Ev::Deliver(p.clone()));
        }
    }

    fn deliver(&mut self, p: Packet) {
        let (a, b) = (p.from.min(p.to), p.from.max(p.to));
        if self.cut.contains(&(a, b)) || self.nodes[p.to].mem.is_none() {
            return;
        }
        self.stats.delivered += 1;
        self.log(|| format!("deliver {:?} {}->{} {}", p.route, p.from, p.to, p.body));
        let to = p.to;
        self.with_node(to, |n, ctx| match p.route {
            Route::Heartbeat => n.on_heartbeat(ctx, &p),
            Route::HeartbeatReply => n.on_heartbeat_reply(ctx, &p),
            Route::Apply => n.on_apply(ctx, &p),
            Route::ApplyReply => n.on_apply_reply(ctx, &p),
            Route::Command => n.on_command(ctx, &p),
            Route::CommandReply => n.on_command_reply(ctx, &p),
            Route::Claim => n.on_claim(ctx, &p),
            Route::ClaimReply => n.on_claim_reply(ctx, &p),
        });
    }

    /// Background faults: crashes and cuts at random times during the chaos.
    fn schedule_faults(&mut self) {
        let n = self.names.len();
        let scenes = CHAOS / 3_000;
        for s in 0..scenes {
            let t = s * 3_000 + self.rng.below(3_000);
            if self.rng.chance(self.faults.cut) {
                let a = self.rng.index(n);
                let b = (a + 1 + self.rng.index(n - 1)) % n;
                let heal = t + self.rng.between(500, 6_000);
                self.at(t, Ev::Cut(a, b));
                self.at(heal, Ev::Heal(a, b));
            }
            if self.rng.chance(self.faults.crash) {
                let a = self.rng.index(n);
                let up = t + self.rng.between(200, 6_000);
                self.at(t, Ev::Crash(a));
                self.at(up, Ev::Restart(a));
            }
            if self.rng.chance(self.faults.full_disk) {
                let a = self.rng.index(n);
                let free = t + self.rng.between(200, 4_000);
                self.at(t, Ev::DiskFull(a));
                self.at(free, Ev::DiskFree(a));
            }
        }
    }

    // ------------------------------------------------------------------ running

    /// Runs the schedule to its end and checks the invariants.
    pub fn run(&mut self) -> Result<Stats, String> {
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
        self.schedule_faults();
        self.at(node::HEARTBEAT, Ev::Operator);
        self.run_until(self.chaos_until);
        // Heal: every link back, every disk writable, every member up, then quiet until
        // nothing is under way.
        self.cut.clear();
        for n in &mut self.nodes {
            n.disk_full = false;
        }
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
        let mut settle = self.chaos_until + QUIET;
        self.run_until(settle);
        for _ in 0..5 {
            if !self.busy() {
                break;
            }
            settle += 2_000;
            self.run_until(settle);
        }
        self.check_converged();
        if self.violations.is_empty() {
            Ok(self.stats.clone())
        } else {
            Err(self.violations.join("\n"))
        }
    }

    fn run_until(&mut self, end: Millis) {
        while let Some(entry) = self.queue.first_entry() {
            let (t, _) = *entry.key();
            if t > end {
                break;
            }
            let ev = entry.remove();
            self.now = t;
            self.handle(ev);
            // (g) between any two events: a member's host holds what its own record names.
            if self.checks.alarm_and_holders {
                let wrong: Vec<String> = self
                    .nodes
                    .iter()
                    .filter_map(|n| n.holds_other_than_recorded())
                    .collect();
                for w in wrong {
                    if self.violations.len() < 20 {
                        self.violations.push(format!("(g) at {}: {w}", self.now));
                    }
                }
            }
        }
        self.now = end;
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver(p) => self.deliver(p),
            Ev::Tick(i, inc) if self.up(i, inc) => {
                self.with_node(i, |n, ctx| {
                    n.gossip_round(ctx);
                    ctx.out.push(Out::RoundEnd {
                        after: node::HEARTBEAT_TIMEOUT,
                    });
                });
                self.at(self.now + node::HEARTBEAT, Ev::Tick(i, inc));
            }
            Ev::RoundEnd(i, inc) if self.up(i, inc) => self.with_node(i, |n, ctx| n.round_end(ctx)),
            Ev::Timeout(i, inc, rpc) if self.up(i, inc) => {
                self.with_node(i, |n, ctx| n.on_timeout(ctx, rpc))
            }
            Ev::Operator => self.operator(),
            Ev::Cut(a, b) if self.chaos() => {
                self.log(|| format!("cut {a}-{b}"));
                self.cut.insert((a.min(b), a.max(b)));
            }
            Ev::Heal(a, b) => {
                self.cut.remove(&(a.min(b), a.max(b)));
            }
            Ev::Crash(a) if self.chaos() => self.crash(a),
            Ev::DiskFull(a) if self.chaos() => {
                self.log(|| format!("disk full {a}"));
                self.nodes[a].disk_full = true;
            }
            Ev::DiskFree(a) => {
                self.log(|| format!("disk free {a}"));
                self.nodes[a].disk_full = false;
            }
            Ev::DiskFull(_) => {}
            Ev::Restart(a) => self.restart(a),
            Ev::Cut(..) | Ev::Crash(..) => {}
            Ev::Tick(..) | Ev::RoundEnd(..) | Ev::Timeout(..) => {}
        }
    }

    // ------------------------------------------------------------------ the invariants

    fn check_converged(&mut self) {
        let views: Vec<GroupView> = self
            .nodes
            .iter()
            .filter_map(|n| n.view().cloned())
            .collect();
        if views.len() != self.nodes.len() {
            self.violations
                .push("a member is down after the heal".into());
            return;
        }
        // (c) every view is the same once the network healed and went quiet.
        if let Some((i, v)) = views.iter().enumerate().find(|(_, v)| **v != views[0]) {
            let diff: Vec<String> = v
                .members
                .iter()
                .zip(&views[0].members)
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("{} has {a:?}, {} has {b:?}", self.names[i], self.names[0]))
                .collect();
            self.violations.push(format!(
                "(c) the views differ after the heal: {}",
                diff.join("; ")
            ));
            return;
        }
        // (c) and every member carries its record out: its host holds the address it names.
        for n in &self.nodes {
            let named = views[0].member(&n.name).and_then(|r| r.current_address);
            if n.host != named {
                self.violations.push(format!(
                    "(c) {} holds {:?} but its record names {named:?}",
                    n.name, n.host
                ));
            }
        }
        // (e) no operation left half-done: every intent resolved, (f) no claim held once no
        // operation runs.
        let now = node::EPOCH + self.now;
        for n in &self.nodes {
            let Some(mem) = &n.mem else { continue };
            if let Some(i) = &mem.st.intent {
                self.violations.push(format!(
                    "(e) {} still holds the intent of {} after the heal",
                    n.name, i.plan.id
                ));
            }
            let mut claims = mem.st.claims.clone();
            claims.expire(now);
            if !claims.is_empty() {
                self.violations.push(format!(
                    "(f) {} holds claims with no operation running: {:?}",
                    n.name, claims.0
                ));
            }
        }
        if !self.checks.alarm_and_holders {
            return;
        }
        let view = &views[0];
        // (d) no address held by two members' records, nobody acting without a mark.
        for v in view.invariant_violations() {
            self.violations.push(format!("(d) {v}"));
        }
        // (a) every takeover not restored since still raises the alarm.
        let reach = |_: &str| Reachability::Reachable;
        let alarms = view.alarms(&reach, &Agreement::default(), None, 0);
        for (main, op) in &self.taken {
            let raised = alarms
                .iter()
                .any(|a| a.main.as_deref() == Some(main) && a.kind != AlarmKind::NoStandbyBackup);
            if !raised {
                self.violations.push(format!(
                    "(a) {op:?} completed and was not restored, but no alarm names {main}: \
                     {alarms:?}; {view:?}"
                ));
            }
        }
    }

    pub fn trace(&self) -> &[String] {
        self.trace.as_deref().unwrap_or(&[])
    }
}

/// How long a silent Main is left before it comes back: the detector's `failover_after`, a
/// heartbeat round, and a failover's apply timeout, with room to spare.
const FAILOVER_WAIT: Millis = 8_000;
