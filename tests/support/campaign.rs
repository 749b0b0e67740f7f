//! The fault campaign of tests/fault_campaign.rs and bench/fault-campaign: the namespace plant
//! of [`super::netns`] (one `understudy run` per server, linux backend, SNMP on, each state
//! directory an 8 MiB tmpfs) and seeded trials. Each trial starts from a restored group (Main
//! online with auto-failover on, Backup in standby), injects one fault (kill -9 of an agent
//! then a restart, SIGSTOP then SIGCONT, links down then up, a full state disk then freed)
//! while three clients send random commands (takeover, reverse takeover, auto-failover on/off)
//! over HTTP (reqwest), the CLI (the `understudy` binary) and SNMP SET (net-snmp's snmpset),
//! heals, waits for the group to settle and checks it: every agent agrees, every host holds
//! what its record names, no half-done operation; then takeover and reverse takeover probe for
//! stuck locks and restore the group. Meanwhile a checker samples every namespace's addresses
//! (`ip -o addr show`) every 100 ms and a prober asks the service address who answers.
//! Does I/O (processes, namespaces, mounts, files).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::netns::*;
use super::process::Proc;
use super::snmp;
use super::tmpfs::Tmpfs;

/// The plant's `failover_after` (tests/support/netns.rs writes it; heartbeats every 500 ms);
/// with a quorum source [`QUORUM_FAILOVER_AFTER`].
pub const FAILOVER_AFTER: Duration = Duration::from_secs(2);
/// The plant's heartbeat interval. A Backup counts a Main's silence from the last heartbeat it
/// heard, up to one interval before a freeze: a Main frozen for `failover_after` minus one
/// interval may already look silent for `failover_after`.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
/// How often the checker samples the addresses.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the prober asks the service address who answers.
const PROBE_EVERY: Duration = Duration::from_millis(50);
/// How long the group may take to settle once a fault is healed.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// An `operation_in_progress` refusal that lasts this long, with nothing else running, is a
/// stuck lock: longer than any operation can wait for a peer (7.5 s per path, two paths).
const STUCK_AFTER: Duration = Duration::from_secs(20);
/// How long a restoring command may be refused (other than operation_in_progress) before the
/// group is found unrestorable.
const REFUSED_LIMIT: Duration = Duration::from_secs(15);
/// The clients' request timeout (HTTP, CLI and SNMP alike).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The reason the campaign's own restoring commands carry.
const RESTORE_REASON: &str = "campaign restore";
/// Every address the agents move: a host holding one of them holds it for a member.
const MANAGED: [&str; 3] = [MAIN_SERVICE, MAIN_EXTRA, BACKUP_SERVICE];
const MAIN: &str = "main-1";
const BACKUP: &str = "backup-1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// ------------------------------------------------------------------ seeds

/// splitmix64: the campaign's only source of randomness, so a seed replays a trial's choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `lo..=hi`, to the millisecond.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
        ms(lo + self.below(hi.saturating_sub(lo) + 1))
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

// ------------------------------------------------------------------ faults

/// What a trial does to the plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Kill9Main,
    Kill9Backup,
    StopMainShort,
    StopMainLong,
    StopBackup,
    CutAllPaths,
    CutOnePath,
    FullDiskMain,
    FullDiskBackup,
}

impl FaultKind {
    pub const ALL: [FaultKind; 9] = [
        FaultKind::Kill9Main,
        FaultKind::Kill9Backup,
        FaultKind::StopMainShort,
        FaultKind::StopMainLong,
        FaultKind::StopBackup,
        FaultKind::CutAllPaths,
        FaultKind::CutOnePath,
        FaultKind::FullDiskMain,
        FaultKind::FullDiskBackup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill9Main => "kill -9 main agent",
            FaultKind::Kill9Backup => "kill -9 backup agent",
            FaultKind::StopMainShort => "SIGSTOP main < f_a - heartbeat",
            FaultKind::StopMainLong => "SIGSTOP main >= f_a - heartbeat",
            FaultKind::StopBackup => "SIGSTOP backup",
            FaultKind::CutAllPaths => "every path cut",
            FaultKind::CutOnePath => "one path cut",
            FaultKind::FullDiskMain => "full disk main",
            FaultKind::FullDiskBackup => "full disk backup",
        }
    }

    /// The documented gap without a quorum source (docs/multi-server.md, the fault table): a
    /// Main cut off on every heartbeat path keeps renewing its address (it cannot tell a cut
    /// from dead peers), so an auto-failover Backup holds it too until the paths return. Two
    /// holders are counted for it, not forbidden. A Main whose agent is killed or frozen is no
    /// gap any more: its address lease runs out before the Backup may fail it over.
    pub fn fencing_gap(self) -> bool {
        matches!(self, FaultKind::CutAllPaths)
    }

    fn index(self) -> u64 {
        FaultKind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u64
    }

    /// A trial seed that names this kind: `seed % 9` is the kind's index, so one seed replays
    /// one trial whatever the campaign around it was.
    pub fn seed_for(self, random: u64) -> u64 {
        let n = FaultKind::ALL.len() as u64;
        random / n * n + self.index()
    }

    pub fn of_seed(seed: u64) -> FaultKind {
        FaultKind::ALL[(seed % FaultKind::ALL.len() as u64) as usize]
    }
}

/// One fault as drawn for a trial: its kind, how long it lasts, which path it cuts.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    pub lasts: Duration,
    pub path: &'static str,
}

impl Fault {
    /// Draws a fault of `kind` for a plant with `failover_after` `fa`, with or without a
    /// quorum network (`quorum`: a cut of every path may cut it on one side too).
    fn draw(kind: FaultKind, rng: &mut Rng, fa: Duration, quorum: bool) -> Fault {
        let lasts = match kind {
            FaultKind::Kill9Main | FaultKind::Kill9Backup => rng.between(ms(0), 3 * fa),
            // Short: the Backup never hears a silence of failover_after (the freeze ends at
            // least a heartbeat interval, plus 100 ms of slack, before). Long: it may, so the
            // Main may be failed over while frozen (the fencing gap).
            FaultKind::StopMainShort => rng.between(ms(100), fa - HEARTBEAT_INTERVAL - ms(101)),
            FaultKind::StopMainLong => rng.between(fa - HEARTBEAT_INTERVAL, 3 * fa),
            FaultKind::StopBackup => rng.between(ms(100), 3 * fa),
            _ => rng.between(ms(500), 3 * fa),
        };
        let path = match kind {
            // The client stays on one side: the Backup's (it sees the failover) or the Main's
            // (its commands reach the cut-off Main).
            // With a quorum source: reachable from both sides, or from one side only.
            FaultKind::CutAllPaths if quorum => rng.pick(&[
                "hb + main lan",
                "hb + backup lan",
                "hb + main lan + main quorum",
                "hb + backup lan + backup quorum",
            ]),
            FaultKind::CutAllPaths => rng.pick(&["hb + main lan", "hb + backup lan"]),
            FaultKind::CutOnePath => rng.pick(&["hb", "main lan", "backup lan"]),
            // The agent alone, or the whole host: its links go down with the agent and come
            // back before the agent is restarted (the address it held is still configured
            // in its namespace unless its lease ran out).
            FaultKind::Kill9Main => rng.pick(&["agent", "host"]),
            _ => "",
        };
        Fault { kind, lasts, path }
    }

    pub fn describe(&self) -> String {
        let lasts = self.lasts.as_secs_f64();
        match self.kind {
            FaultKind::Kill9Main if self.path == "host" => format!(
                "main host lost (kill -9 main agent, its links down), links back after \
                 {lasts:.2} s, then the agent"
            ),
            FaultKind::Kill9Main | FaultKind::Kill9Backup => {
                format!("{}, restarted after {lasts:.2} s", self.kind.name())
            }
            FaultKind::CutAllPaths | FaultKind::CutOnePath => {
                format!("{} ({}) for {lasts:.2} s", self.kind.name(), self.path)
            }
            _ => format!("{} for {lasts:.2} s", self.kind.name()),
        }
    }
}

// ------------------------------------------------------------------ settings

/// How many trials, from which seed, with which faults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The campaign's seed (`UNDERSTUDY_CAMPAIGN_SEED`; the clock's when unset).
    pub seed: u64,
    /// `UNDERSTUDY_CAMPAIGN_TRIALS`, or the caller's default.
    pub trials: usize,
    /// One trial's seed to replay (`UNDERSTUDY_CAMPAIGN_TRIAL`), `trials` times.
    pub replay: Option<u64>,
    /// The fault kinds drawn from, each once per round in a shuffled order.
    pub kinds: Vec<FaultKind>,
    /// Whether the clients' commands may overlap (otherwise they take turns).
    pub concurrent: bool,
    /// Whether the plant has a quorum source (etcd in a namespace of its own).
    pub quorum: bool,
    /// Trials given by their seeds, in order (instead of drawn from `seed`).
    pub fixed: Vec<u64>,
}

impl Settings {
    /// `concurrent` unless `UNDERSTUDY_CAMPAIGN_CLIENTS` says `concurrent` or `turns`.
    pub fn from_env(default_trials: usize, kinds: &[FaultKind], concurrent: bool) -> Settings {
        let num = |var: &str| {
            std::env::var(var)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let seed = num("UNDERSTUDY_CAMPAIGN_SEED").unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
        let replay = num("UNDERSTUDY_CAMPAIGN_TRIAL");
        // A replayed trial runs once unless a number of trials is given.
        let default_trials = if replay.is_some() { 1 } else { default_trials };
        Settings {
            seed,
            trials: num("UNDERSTUDY_CAMPAIGN_TRIALS").map_or(default_trials, |n| n as usize),
            replay,
            kinds: kinds.to_vec(),
            concurrent: match std::env::var("UNDERSTUDY_CAMPAIGN_CLIENTS").as_deref() {
                Ok("concurrent") => true,
                Ok("turns") => false,
                _ => concurrent,
            },
            quorum: false,
            fixed: Vec::new(),
        }
    }

    /// The trials `seeds`, once each, in order.
    pub fn trials_of(seeds: &[u64]) -> Settings {
        Settings {
            seed: seeds.first().copied().unwrap_or(0),
            trials: seeds.len(),
            replay: None,
            kinds: FaultKind::ALL.to_vec(),
            concurrent: false,
            quorum: false,
            fixed: seeds.to_vec(),
        }
    }

    /// The trial `seed` (a known failure's), once.
    pub fn replay(seed: u64) -> Settings {
        Settings {
            seed,
            trials: 1,
            replay: Some(seed),
            kinds: FaultKind::ALL.to_vec(),
            concurrent: true,
            quorum: false,
            fixed: Vec::new(),
        }
    }

    /// The same, on a plant with a quorum source (etcd).
    pub fn with_quorum(mut self) -> Settings {
        self.quorum = true;
        self
    }

    /// The same trial `n` times over (a race shows in some runs only).
    pub fn times(mut self, n: usize) -> Settings {
        self.trials = n;
        self
    }

    /// The same, with the clients taking turns (no two commands under way at once).
    pub fn taking_turns(mut self) -> Settings {
        self.concurrent = false;
        self
    }

    /// Every trial's seed: the kinds dealt from a shuffled deck (each kind once per round).
    pub fn trial_seeds(&self) -> Vec<u64> {
        if let Some(seed) = self.replay {
            return vec![seed; self.trials.max(1)];
        }
        if !self.fixed.is_empty() {
            return self.fixed.clone();
        }
        let mut rng = Rng::new(self.seed);
        let mut deck: Vec<FaultKind> = Vec::new();
        (0..self.trials)
            .map(|_| {
                if deck.is_empty() {
                    deck = self.kinds.clone();
                    rng.shuffle(&mut deck);
                }
                let kind = deck.pop().expect("a kind to draw");
                kind.seed_for(rng.next_u64())
            })
            .collect()
    }
}

// ------------------------------------------------------------------ HTTP inside the plant

/// reqwest on a current-thread runtime, for a thread that has entered the client's namespace.
#[derive(Debug)]
pub struct Api {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Api {
    /// A client giving a connection `connect` and a whole request `total`.
    pub fn new(connect: Duration, total: Duration) -> Api {
        Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime"),
            http: reqwest::Client::builder()
                .connect_timeout(connect)
                .timeout(total)
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
        }
    }

    /// A request with the API token and an optional JSON body: (status, JSON answer, or the
    /// text as a JSON string), or why no answer came.
    pub fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&str>,
    ) -> Result<(u16, Value), String> {
        self.rt.block_on(async {
            let mut rb = self.http.request(method, url).bearer_auth(TOKEN);
            if let Some(b) = body {
                rb = rb
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let resp = rb.send().await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let text = resp.text().await.map_err(|e| e.to_string())?;
            Ok((
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            ))
        })
    }

    /// The JSON of a 200 answer to `GET url`.
    pub fn get_json(&self, url: &str) -> Option<Value> {
        match self.call(reqwest::Method::GET, url, None) {
            Ok((200, v)) => Some(v),
            _ => None,
        }
    }

    /// `GET /api/v1/{route}` of the agent on `host`.
    pub fn agent(&self, host: &str, route: &str) -> Option<Value> {
        self.get_json(&format!("http://{host}:{AGENT_PORT}/api/v1/{route}"))
    }

    /// The member whose responder answers on the Main's service address.
    pub fn served_by(&self) -> Option<String> {
        let url = format!("http://{MAIN_SERVICE}:{SERVICE_PORT}/");
        match self.call(reqwest::Method::GET, &url, None) {
            Ok((200, Value::String(text))) => text.lines().next().map(str::to_string),
            _ => None,
        }
    }
}

/// Runs `f` on a thread of its own inside network namespace `ns` and returns its result.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns);
            f()
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

// ------------------------------------------------------------------ the checker

/// What the checker saw between two [`Checker::take`]s.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// Time with one address configured on both hosts.
    pub two_holders: Duration,
    /// Time with an address on no host while an agent's `/api/v1/group` shows a member
    /// online on it.
    pub none_online: Duration,
    pub samples: u64,
    /// One line per change of what the hosts hold: seconds since the campaign started, the
    /// managed addresses on each host.
    pub changes: Vec<String>,
}

#[derive(Debug, Default)]
struct Watch {
    stop: AtomicBool,
    window: Mutex<Window>,
}

/// A thread sampling every namespace's addresses every [`SAMPLE_EVERY`].
#[derive(Debug)]
pub struct Checker {
    watch: Arc<Watch>,
    thread: Option<JoinHandle<()>>,
}

fn managed(addrs: &[String]) -> Vec<&'static str> {
    MANAGED
        .iter()
        .copied()
        .filter(|a| addrs.iter().any(|x| x == a))
        .collect()
}

fn held_by(ns: &str) -> Vec<&'static str> {
    managed(&addresses_in(ns, "lan"))
}

/// The member a group view shows online on `address`.
fn online_at(view: &Value, address: &str) -> Vec<String> {
    view["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["operational_state"] == "online" && m["current_address"] == address)
                .filter_map(|m| m["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Checker {
    fn start(plant: &Plant, t0: Instant) -> Checker {
        let watch = Arc::new(Watch::default());
        let (w, m, b, c) = (
            watch.clone(),
            plant.main.clone(),
            plant.backup.clone(),
            plant.client.clone(),
        );
        let thread = std::thread::spawn(move || sample(&w, &m, &b, &c, t0));
        Checker {
            watch,
            thread: Some(thread),
        }
    }

    /// What was seen since the last call.
    pub fn take(&self) -> Window {
        std::mem::take(&mut *lock(&self.watch.window))
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.watch.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The checker's loop. Each sample reads main, backup, then main again: an address counts as
/// held twice only when the Main held it before and after the Backup's reading, so a move
/// between the readings (release, then take) is not mistaken for two holders. An address on
/// no host is checked against both agents' views, then read again: it counts only if it was
/// on no host before and after a view showed a member online on it.
fn sample(w: &Watch, main: &str, backup: &str, client: &str, t0: Instant) {
    enter_netns(client);
    let api = Api::new(ms(250), ms(300));
    let mut last = Instant::now();
    let mut shown = String::new();
    while !w.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let m1 = held_by(main);
        let b1 = held_by(backup);
        let m2 = held_by(main);
        let two: Vec<&str> = MANAGED
            .iter()
            .copied()
            .filter(|a| m1.contains(a) && b1.contains(a) && m2.contains(a))
            .collect();
        let unheld: Vec<&str> = MANAGED
            .iter()
            .copied()
            .filter(|a| !m1.contains(a) && !b1.contains(a) && !m2.contains(a))
            .collect();
        let mut none_online: Vec<String> = Vec::new();
        if !unheld.is_empty() {
            let views = [
                api.agent(MAIN_HOST, "group"),
                api.agent(BACKUP_HOST, "group"),
            ];
            let claimed: Vec<(&str, Vec<String>)> = unheld
                .iter()
                .map(|a| {
                    let who: BTreeSet<String> = views
                        .iter()
                        .flatten()
                        .flat_map(|v| online_at(v, a))
                        .collect();
                    (*a, who.into_iter().collect::<Vec<String>>())
                })
                .filter(|(_, who)| !who.is_empty())
                .collect();
            if !claimed.is_empty() {
                let (m3, b3) = (held_by(main), held_by(backup));
                none_online = claimed
                    .into_iter()
                    .filter(|(a, _)| !m3.contains(a) && !b3.contains(a))
                    .map(|(a, who)| format!("{a} (online: {})", who.join(", ")))
                    .collect();
            }
        }
        let dt = began - last;
        last = began;
        let mut line = format!("main {m2:?} backup {b1:?}");
        if !two.is_empty() {
            let _ = write!(line, "  TWO HOLDERS of {two:?}");
        }
        if !none_online.is_empty() {
            let _ = write!(line, "  ON NO HOST: {}", none_online.join("; "));
        }
        {
            let mut win = lock(&w.window);
            if win.samples == 0 {
                shown.clear();
            }
            win.samples += 1;
            if !two.is_empty() {
                win.two_holders += dt;
            }
            if !none_online.is_empty() {
                win.none_online += dt;
            }
            if line != shown {
                let at = t0.elapsed().as_secs_f64();
                win.changes.push(format!("{at:9.3} s  {line}"));
                shown = line;
            }
        }
        std::thread::sleep(SAMPLE_EVERY.saturating_sub(began.elapsed()));
    }
}

// ------------------------------------------------------------------ the prober

#[derive(Debug, Default)]
struct Answers {
    stop: AtomicBool,
    /// Every change of who answers on the service address (None: nobody), with when.
    seen: Mutex<Vec<(Instant, Option<String>)>>,
}

/// A thread in the client's namespace asking the service address who answers, every
/// [`PROBE_EVERY`] (a connection gets 250 ms).
#[derive(Debug)]
pub struct Prober {
    answers: Arc<Answers>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    fn start(client: &str) -> Prober {
        let answers = Arc::new(Answers::default());
        let (a, c) = (answers.clone(), client.to_string());
        let thread = std::thread::spawn(move || {
            enter_netns(&c);
            let api = Api::new(ms(250), ms(1000));
            let mut last: Option<Option<String>> = None;
            while !a.stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let who = api.served_by();
                if last.as_ref() != Some(&who) {
                    lock(&a.seen).push((Instant::now(), who.clone()));
                    last = Some(who);
                }
                std::thread::sleep(PROBE_EVERY.saturating_sub(began.elapsed()));
            }
        });
        Prober {
            answers,
            thread: Some(thread),
        }
    }

    /// The first moment at or after `since` when the service answered from `member`.
    pub fn first_from(&self, member: &str, since: Instant) -> Option<Instant> {
        let seen = lock(&self.answers.seen);
        let mut before = None;
        for (at, who) in seen.iter() {
            if *at < since {
                before = Some(who.as_deref());
                continue;
            }
            if before == Some(Some(member)) {
                return Some(since);
            }
            if who.as_deref() == Some(member) {
                return Some(*at);
            }
        }
        (before == Some(Some(member))).then_some(since)
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.answers.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------ the clients

/// The interface a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Iface {
    Http,
    Cli,
    Snmp,
}

impl Iface {
    pub const ALL: [Iface; 3] = [Iface::Http, Iface::Cli, Iface::Snmp];

    pub fn name(self) -> &'static str {
        match self {
            Iface::Http => "http",
            Iface::Cli => "cli",
            Iface::Snmp => "snmp",
        }
    }
}

/// How a command was answered: done; refused (HTTP 4xx, CLI exit 1, SNMP inconsistentValue);
/// unavailable (HTTP 503, CLI exit 3, SNMP commitFailed or another error); no answer at all
/// (connection refused or timed out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Done,
    Refused,
    Unavailable,
    NoAnswer,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Done,
        Outcome::Refused,
        Outcome::Unavailable,
        Outcome::NoAnswer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Unavailable => "unavailable",
            Outcome::NoAnswer => "no answer",
        }
    }
}

/// A client's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    Takeover,
    Reverse,
    AutoFailover(bool),
}

impl Ask {
    fn draw(rng: &mut Rng) -> Ask {
        match rng.below(10) {
            0..=2 => Ask::Takeover,
            3..=5 => Ask::Reverse,
            6 | 7 => Ask::AutoFailover(true),
            _ => Ask::AutoFailover(false),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Ask::Takeover => "takeover",
            Ask::Reverse => "reverse takeover",
            Ask::AutoFailover(true) => "auto-failover on",
            Ask::AutoFailover(false) => "auto-failover off",
        }
    }
}

/// One command a client sent, and its answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// When it was sent, from the fault's injection.
    pub sent: Duration,
    pub took: Duration,
    pub iface: Iface,
    pub ask: Ask,
    pub host: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

fn failed_codes(v: &Value) -> String {
    match v["failed"].as_array() {
        Some(f) if !f.is_empty() => f
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => v["error"].as_str().unwrap_or("").to_string(),
    }
}

fn ask_http(api: &Api, ask: Ask, host: &str) -> (Outcome, String) {
    let base = format!("http://{host}:{AGENT_PORT}/api/v1");
    let reason = "campaign client http";
    let (method, url, body) = match ask {
        Ask::Takeover => (
            reqwest::Method::POST,
            format!("{base}/takeover"),
            json!({"backup": BACKUP, "main": MAIN, "reason": reason}),
        ),
        Ask::Reverse => (
            reqwest::Method::POST,
            format!("{base}/reverse-takeover"),
            json!({"main": MAIN, "reason": reason}),
        ),
        Ask::AutoFailover(on) => (
            reqwest::Method::PUT,
            format!("{base}/members/{MAIN}/auto-failover"),
            json!({"enabled": on, "reason": reason}),
        ),
    };
    match api.call(method, &url, Some(&body.to_string())) {
        Ok((200, _)) => (Outcome::Done, String::new()),
        Ok((s @ 400..=499, v)) => (Outcome::Refused, format!("{s} {}", failed_codes(&v))),
        Ok((s, v)) => (Outcome::Unavailable, format!("{s} {}", v["message"])),
        Err(e) => (Outcome::NoAnswer, e),
    }
}

fn ask_cli(client: &str, ask: Ask, host: &str) -> (Outcome, String) {
    let url = format!("http://{host}:{AGENT_PORT}");
    let timeout = format!("{}s", CLIENT_TIMEOUT.as_secs());
    let mut args: Vec<&str> = vec!["--log", "error"];
    match ask {
        Ask::Takeover => args.extend(["takeover", "--backup", BACKUP, "--main", MAIN]),
        Ask::Reverse => args.extend(["reverse-takeover", MAIN]),
        Ask::AutoFailover(on) => {
            args.extend(["auto-failover", MAIN, if on { "on" } else { "off" }])
        }
    }
    args.extend([
        "--url",
        &url,
        "--token",
        TOKEN,
        "--timeout",
        &timeout,
        "--reason",
        "campaign client cli",
    ]);
    let out = Command::new("ip")
        .args(["netns", "exec", client])
        .arg(env!("CARGO_BIN_EXE_understudy"))
        .args(&args)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => return (Outcome::NoAnswer, format!("cannot run the CLI: {e}")),
    };
    let err = String::from_utf8_lossy(&out.stderr)
        .trim()
        .replace('\n', " ");
    match out.status.code() {
        Some(0) => (Outcome::Done, String::new()),
        Some(1) => (Outcome::Refused, err),
        Some(3) if err.contains("cannot reach") => (Outcome::NoAnswer, err),
        code => (Outcome::Unavailable, format!("exit {code:?}: {err}")),
    }
}

fn ask_snmp(client: &str, ask: Ask, host: &str) -> (Outcome, String) {
    // Rows: 1 main-1, 2 backup-1 (configuration order).
    let (object, value) = match ask {
        Ask::Takeover => ("UNDERSTUDY-MIB::rgMemberManualTakeover.2", "1"),
        Ask::Reverse => ("UNDERSTUDY-MIB::rgMemberReverseTakeover.1", "1"),
        Ask::AutoFailover(on) => (
            "UNDERSTUDY-MIB::rgMemberAutoFailover.1",
            if on { "1" } else { "2" },
        ),
    };
    let mut cmd = snmp::netsnmp_in(Some(client), "snmpset");
    cmd.args(["-v2c", "-c", SNMP_COMMUNITY, "-r", "0", "-t"])
        .arg(CLIENT_TIMEOUT.as_secs().to_string())
        .arg(format!("{host}:{SNMP_PORT}"))
        .args([object, "i", value]);
    let (ok, out, err) = snmp::run(cmd);
    let text = format!("{} {}", out.trim(), snmp::without_notices(&err).trim()).replace('\n', " ");
    if ok {
        (Outcome::Done, String::new())
    } else if text.contains("inconsistentValue") {
        (Outcome::Refused, text)
    } else if text.contains("Timeout") {
        (Outcome::NoAnswer, text)
    } else {
        (Outcome::Unavailable, text)
    }
}

/// Sleeps `d` in short steps; false once `stop` is set.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(ms(50)));
    }
    !stop.load(Ordering::Relaxed)
}

/// One client: after `delay` and a pause of its own (up to 1 s), a random command to a random
/// agent, then a random pause (0.3–2 s), until stopped. With `turn`, the clients take turns:
/// a command is sent only once the others' are answered.
fn client_loop(
    iface: Iface,
    seed: u64,
    delay: Duration,
    stop: &AtomicBool,
    client: &str,
    inject: Instant,
    turn: Option<&Mutex<()>>,
) -> Vec<Answer> {
    let api = (iface == Iface::Http).then(|| {
        enter_netns(client);
        Api::new(ms(1000), CLIENT_TIMEOUT)
    });
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    if !pause(delay + rng.between(ms(0), ms(1000)), stop) {
        return out;
    }
    loop {
        let ask = Ask::draw(&mut rng);
        let host = rng.pick(&[MAIN_HOST, BACKUP_HOST]);
        let _turn = turn.map(lock);
        if stop.load(Ordering::Relaxed) {
            return out;
        }
        let sent = inject.elapsed();
        let (outcome, detail) = match (&api, iface) {
            (Some(api), _) => ask_http(api, ask, host),
            (None, Iface::Cli) => ask_cli(client, ask, host),
            (None, _) => ask_snmp(client, ask, host),
        };
        out.push(Answer {
            sent,
            took: inject.elapsed() - sent,
            iface,
            ask,
            host,
            outcome,
            detail,
        });
        drop(_turn);
        if !pause(rng.between(ms(300), ms(2000)), stop) {
            return out;
        }
    }
}

/// The three clients of a trial.
#[derive(Debug)]
struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Answer>>>,
}

impl Clients {
    fn start(
        client: &str,
        seeds: [u64; 3],
        delay: Duration,
        inject: Instant,
        take_turns: bool,
    ) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let turn = take_turns.then(|| Arc::new(Mutex::new(())));
        let threads = Iface::ALL
            .iter()
            .zip(seeds)
            .map(|(iface, seed)| {
                let (iface, stop, client) = (*iface, stop.clone(), client.to_string());
                let turn = turn.clone();
                std::thread::spawn(move || {
                    client_loop(iface, seed, delay, &stop, &client, inject, turn.as_deref())
                })
            })
            .collect();
        Clients { stop, threads }
    }

    /// Stops the clients (a command under way is answered or times out first).
    fn stop(self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Answer> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        all.sort_by_key(|a| a.sent);
        all
    }
}

// ------------------------------------------------------------------ the group's state

/// Both agents' views and what each host holds, read together.
#[derive(Debug, Clone)]
pub struct Observed {
    /// (agent, its `/api/v1/group`), main-1 then backup-1.
    pub views: Vec<(&'static str, Option<Value>)>,
    /// (member, the managed addresses its host holds).
    pub holds: Vec<(&'static str, Vec<&'static str>)>,
}

fn member_of<'a>(view: &'a Value, name: &str) -> Option<&'a Value> {
    view["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
}

/// The fields two agents must agree on once settled.
const AGREED: [&str; 7] = [
    "configured_role",
    "operational_state",
    "configured_address",
    "current_address",
    "auto_failover",
    "takeover_flag",
    "acting_for",
];

impl Observed {
    fn view(&self, agent: &str) -> Option<&Value> {
        self.views
            .iter()
            .find(|(a, _)| *a == agent)
            .and_then(|(_, v)| v.as_ref())
    }

    /// Agents that do not answer, do not hear every member, or disagree on a record.
    pub fn disagreements(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (agent, view) in &self.views {
            match view {
                None => out.push(format!("{agent}'s agent does not answer")),
                Some(v) if !super::all_heard(v) => {
                    out.push(format!("{agent}'s agent does not hear every member"))
                }
                Some(_) => {}
            }
        }
        let (Some(m), Some(b)) = (self.view(MAIN), self.view(BACKUP)) else {
            return out;
        };
        for name in [MAIN, BACKUP] {
            let (x, y) = (member_of(m, name), member_of(b, name));
            for field in AGREED {
                let (vx, vy) = (x.map(|r| &r[field]), y.map(|r| &r[field]));
                if vx != vy {
                    out.push(format!(
                        "{name}.{field}: {MAIN} says {}, {BACKUP} says {}",
                        vx.unwrap_or(&Value::Null),
                        vy.unwrap_or(&Value::Null)
                    ));
                }
            }
        }
        out
    }

    /// Hosts holding other addresses than their own agent's record names.
    pub fn mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, holds) in &self.holds {
            let Some(own) = self.view(name).and_then(|v| member_of(v, name)) else {
                continue;
            };
            let named: Vec<&str> = own["current_address"].as_str().into_iter().collect();
            if holds.as_slice() != named.as_slice() {
                out.push(format!(
                    "{name}'s host holds {holds:?} but its record names {named:?}"
                ));
            }
        }
        out
    }

    /// Half-done operations, from the Backup's view (the Main's when the Backup's is
    /// missing): a Main offline or marked taken over while no member is online on its
    /// address; the takeover mark on one member of the pair only; a Backup acting for the
    /// Main without being online on its address, or online without acting for it; two
    /// members online on one address.
    pub fn half_done(&self) -> Vec<String> {
        let Some(v) = self.view(BACKUP).or_else(|| self.view(MAIN)) else {
            return vec!["no agent answers".into()];
        };
        let (Some(m), Some(b)) = (member_of(v, MAIN), member_of(v, BACKUP)) else {
            return vec![format!("a member is missing from {v}")];
        };
        let address = m["configured_address"].as_str().unwrap_or("");
        let online = online_at(v, address);
        let mut out = Vec::new();
        if online.len() != 1 {
            out.push(format!(
                "{} members online on {MAIN}'s address {address}: {online:?}",
                online.len()
            ));
        }
        if m["takeover_flag"] != b["takeover_flag"] {
            out.push(format!(
                "takeover mark on one member only ({MAIN}: {}, {BACKUP}: {})",
                m["takeover_flag"], b["takeover_flag"]
            ));
        }
        let acting = b["acting_for"] == MAIN;
        let b_online_there = b["operational_state"] == "online" && b["current_address"] == address;
        if acting && !b_online_there {
            out.push(format!(
                "{BACKUP} acts for {MAIN} but is {} on {}",
                b["operational_state"], b["current_address"]
            ));
        }
        if !acting && b["operational_state"] != "standby" {
            out.push(format!(
                "{BACKUP} is {} without acting for a main",
                b["operational_state"]
            ));
        }
        if m["takeover_flag"] == false && m["operational_state"] != "online" {
            out.push(format!(
                "{MAIN} is {} without being taken over",
                m["operational_state"]
            ));
        }
        out
    }

    /// Whether the Main is taken over (or not online), so a reverse takeover is due.
    fn main_taken_over(&self) -> bool {
        let v = self.view(BACKUP).or_else(|| self.view(MAIN));
        v.and_then(|v| member_of(v, MAIN))
            .is_none_or(|m| m["takeover_flag"] == true || m["operational_state"] != "online")
    }

    fn main_auto_failover(&self) -> bool {
        self.view(MAIN)
            .and_then(|v| member_of(v, MAIN))
            .is_some_and(|m| m["auto_failover"] == true)
    }

    fn summary(&self) -> String {
        let mut s = String::new();
        for (agent, view) in &self.views {
            let _ = write!(s, "{agent}'s view:");
            match view {
                None => s.push_str(" no answer\n"),
                Some(v) => {
                    s.push('\n');
                    for name in [MAIN, BACKUP] {
                        if let Some(r) = member_of(v, name) {
                            let fields: Vec<String> =
                                AGREED.iter().map(|f| format!("{f}={}", r[*f])).collect();
                            let _ = writeln!(s, "  {name}: {}", fields.join(" "));
                        }
                    }
                }
            }
        }
        for (name, holds) in &self.holds {
            let _ = writeln!(s, "{name}'s host holds {holds:?}");
        }
        s
    }
}

// ------------------------------------------------------------------ figures

/// Counts of operations by how they ended.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpCounts {
    pub done: u64,
    pub refused: u64,
    /// Stopped part way ("operation stopped: ...").
    pub aborted: u64,
    /// Not carried out for another reason (state not writable, coordinator unreachable).
    pub unavailable: u64,
}

impl OpCounts {
    fn add(&mut self, o: OpCounts) {
        self.done += o.done;
        self.refused += o.refused;
        self.aborted += o.aborted;
        self.unavailable += o.unavailable;
    }
}

/// Figures of one fault kind.
#[derive(Debug, Default, Clone)]
pub struct KindFigures {
    pub trials: u64,
    /// Two-holder time from the injection to the heal (restart, SIGCONT, links up, room).
    pub two_holders: Duration,
    /// Two-holder time from the heal until the group is settled and restored.
    pub two_holders_healed: Duration,
    pub none_online: Duration,
    /// Failovers done (the agents' histories).
    pub failovers: u64,
    /// Injection to the first answer from the Backup, in trials where a failover (not a
    /// client's takeover) moved the service.
    pub failover_times: Vec<Duration>,
    /// For kinds that silence the Main at the injection (kill -9, SIGSTOP, every path cut):
    /// from the injection to each failover's decision (its event's time).
    pub decided: Vec<Duration>,
    pub half_done: u64,
    pub stuck_locks: u64,
    pub unsettled: u64,
}

/// A check that failed in one trial.
#[derive(Debug, Clone)]
pub struct Finding {
    pub trial: usize,
    pub seed: u64,
    pub fault: String,
    pub what: String,
    /// The file with the trial's timeline, answers, events and log excerpts.
    pub file: PathBuf,
}

/// Everything a campaign measured.
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    /// Whether the plant had a quorum source (etcd): then no fault kind is a fencing gap.
    pub quorum: bool,
    pub failover_after: Duration,
    /// Whether the clients' commands could overlap.
    pub concurrent: bool,
    pub trials: usize,
    pub faults: usize,
    pub elapsed: Duration,
    pub kinds: BTreeMap<FaultKind, KindFigures>,
    /// Before the first trial (the group starting): two holders and none-online time.
    pub before: Window,
    /// None-online time while the campaign restored the group after each trial (its own
    /// takeovers and reverse takeovers, after the trial's group had settled).
    pub restoring_none_online: Duration,
    pub answers: BTreeMap<(Iface, Outcome), u64>,
    /// The agents' histories, by operation kind, for the clients' commands and failovers.
    pub histories: BTreeMap<String, OpCounts>,
    /// `operation_in_progress` refusals of the probes that cleared before [`STUCK_AFTER`].
    pub busy_refusals: Vec<String>,
    pub findings: Vec<Finding>,
    pub out: PathBuf,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

impl Report {
    fn total(&self, f: impl Fn(&KindFigures) -> u64) -> u64 {
        self.kinds.values().map(f).sum()
    }

    pub fn half_done(&self) -> u64 {
        self.total(|k| k.half_done)
    }

    pub fn stuck_locks(&self) -> u64 {
        self.total(|k| k.stuck_locks)
    }

    pub fn unsettled(&self) -> u64 {
        self.total(|k| k.unsettled)
    }

    /// Is `kind` a fencing gap in this campaign's plant? (None is, with a quorum source.)
    pub fn gap(&self, kind: FaultKind) -> bool {
        kind.fencing_gap() && !self.quorum
    }

    /// Failovers decided less than failover_after after the Main went silent, of `kind`.
    pub fn early_failovers(&self, kind: FaultKind) -> usize {
        self.kinds.get(&kind).map_or(0, |f| {
            f.decided
                .iter()
                .filter(|d| **d < self.failover_after)
                .count()
        })
    }

    /// Two-holder time in trials of kinds outside the fencing gaps (from the injection until
    /// the group is restored), and before the first trial.
    pub fn two_holders_outside_gaps(&self) -> Duration {
        self.kinds
            .iter()
            .filter(|(k, _)| !self.gap(**k))
            .map(|(_, f)| f.two_holders + f.two_holders_healed)
            .sum::<Duration>()
            + self.before.two_holders
    }

    /// The figures as printed by the test and bench/fault-campaign.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let per_trial = self.elapsed.as_secs_f64() / self.trials.max(1) as f64;
        let _ = writeln!(
            s,
            "fault campaign: {} trials, {} faults injected, seed {} ({:.1} min, {:.1} s per trial)",
            self.trials,
            self.faults,
            self.seed,
            self.elapsed.as_secs_f64() / 60.0,
            per_trial
        );
        let _ = writeln!(
            s,
            "plant: main and backup namespaces, one agent each (linux backend, address lease \
             1 s), heartbeat 500 ms on 2 paths, failover_after {:.3} s{}; addresses sampled \
             every {} ms; 3 clients (http, cli, snmp), {}",
            self.failover_after.as_secs_f64(),
            if self.quorum {
                ", quorum source: etcd (session TTL 2 s) in a namespace of its own"
            } else {
                ", no quorum source"
            },
            SAMPLE_EVERY.as_millis(),
            if self.concurrent {
                "their commands may overlap"
            } else {
                "taking turns"
            }
        );
        let _ = writeln!(
            s,
            "{:<31} {:>6} {:>4} {:>21} {:>10} {:>9}  {:<32} {:>4} {:>5}",
            "fault kind",
            "trials",
            "gap",
            "two-holder ms",
            "no-host",
            "failovers",
            "failover time median / p99 (n)",
            "half",
            "stuck"
        );
        let _ = writeln!(
            s,
            "{:<31} {:>6} {:>4} {:>21} {:>10}",
            "", "", "", "fault / after heal", "ms"
        );
        for (kind, f) in &self.kinds {
            let mut t = f.failover_times.clone();
            t.sort();
            let times = if t.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.3} s / {:.3} s ({})",
                    percentile(&t, 0.5).as_secs_f64(),
                    percentile(&t, 0.99).as_secs_f64(),
                    t.len()
                )
            };
            let _ = writeln!(
                s,
                "{:<31} {:>6} {:>4} {:>21} {:>10} {:>9}  {:<32} {:>4} {:>5}",
                kind.name(),
                f.trials,
                if self.gap(*kind) { "yes" } else { "no" },
                format!(
                    "{} / {}",
                    f.two_holders.as_millis(),
                    f.two_holders_healed.as_millis()
                ),
                f.none_online.as_millis(),
                f.failovers,
                times,
                f.half_done,
                f.stuck_locks
            );
        }
        let _ = writeln!(
            s,
            "{:<31} {:>6} {:>4} {:>21} {:>10}",
            "before the first trial",
            "-",
            "no",
            self.before.two_holders.as_millis(),
            self.before.none_online.as_millis()
        );
        let gap: Duration = self
            .kinds
            .iter()
            .filter(|(k, _)| self.gap(**k))
            .map(|(_, f)| f.two_holders)
            .sum();
        let gap_healed: Duration = self
            .kinds
            .iter()
            .filter(|(k, _)| self.gap(**k))
            .map(|(_, f)| f.two_holders_healed)
            .sum();
        let none: Duration = self.kinds.values().map(|f| f.none_online).sum::<Duration>()
            + self.before.none_online
            + self.restoring_none_online;
        let _ = writeln!(
            s,
            "ms with a service address on two hosts: {} outside the fencing gaps; in them {} \
             while the fault lasted and {} after it was healed (failover_after {} ms)",
            self.two_holders_outside_gaps().as_millis(),
            gap.as_millis(),
            gap_healed.as_millis(),
            self.failover_after.as_millis()
        );
        let mut decided: Vec<Duration> = self
            .kinds
            .values()
            .flat_map(|f| f.decided.iter().copied())
            .collect();
        decided.sort();
        if !decided.is_empty() {
            let early = decided.iter().filter(|d| **d < self.failover_after).count();
            let _ = writeln!(
                s,
                "failovers decided after the Main went silent (kill -9, SIGSTOP, every path cut): \
                 min {:.3} s, median {:.3} s, max {:.3} s; {early} of {} before failover_after \
                 ({} of them in trials freezing the Main for less than failover_after)",
                decided[0].as_secs_f64(),
                percentile(&decided, 0.5).as_secs_f64(),
                decided[decided.len() - 1].as_secs_f64(),
                decided.len(),
                self.early_failovers(FaultKind::StopMainShort)
            );
        }
        let _ = writeln!(
            s,
            "ms with an address on no host while an agent shows a member online on it: {} ({} \
             of them during the campaign's own takeovers and reverse takeovers between trials)",
            none.as_millis(),
            self.restoring_none_online.as_millis()
        );
        let mut line = String::from("operations asked by the clients (their answers):");
        for iface in Iface::ALL {
            let n = |o| self.answers.get(&(iface, o)).copied().unwrap_or(0);
            let _ = write!(
                line,
                " {} done {} refused {} aborted {} (unavailable {}, no answer {});",
                iface.name(),
                n(Outcome::Done),
                n(Outcome::Refused),
                n(Outcome::Unavailable) + n(Outcome::NoAnswer),
                n(Outcome::Unavailable),
                n(Outcome::NoAnswer)
            );
        }
        let _ = writeln!(s, "{}", line.trim_end_matches(';'));
        let mut all = OpCounts::default();
        let mut by_kind = Vec::new();
        for (kind, c) in &self.histories {
            all.add(*c);
            by_kind.push(format!(
                "{kind} {}/{}/{}/{}",
                c.done, c.refused, c.aborted, c.unavailable
            ));
        }
        let _ = writeln!(
            s,
            "operations in the agents' histories: done {} refused {} aborted part way {} \
             unavailable {} (done/refused/aborted/unavailable by kind: {})",
            all.done,
            all.refused,
            all.aborted,
            all.unavailable,
            by_kind.join(", ")
        );
        let _ = writeln!(s, "half-done operations: {}", self.half_done());
        let _ = writeln!(
            s,
            "stuck locks: {} (operation_in_progress refusals that cleared by themselves: {})",
            self.stuck_locks(),
            self.busy_refusals.len()
        );
        let _ = writeln!(
            s,
            "trials whose group did not settle (agents disagreeing or hosts not holding what \
             their records name after {} s): {}",
            SETTLE_LIMIT.as_secs(),
            self.unsettled()
        );
        for f in &self.findings {
            let _ = writeln!(
                s,
                "FINDING trial {} seed {} ({}): {}\n  details: {}",
                f.trial,
                f.seed,
                f.fault,
                f.what,
                f.file.display()
            );
        }
        let _ = writeln!(
            s,
            "replay the campaign: UNDERSTUDY_CAMPAIGN_SEED={} UNDERSTUDY_CAMPAIGN_TRIALS={} \
             UNDERSTUDY_CAMPAIGN_CLIENTS={}; one trial: UNDERSTUDY_CAMPAIGN_TRIAL=<its seed>; \
             logs: {}",
            self.seed,
            self.trials,
            if self.concurrent {
                "concurrent"
            } else {
                "turns"
            },
            self.out.display()
        );
        s
    }

    /// The campaign's safety checks: no half-done operation, no stuck lock, every trial
    /// settled, no two holders outside the fencing gaps.
    pub fn assert_safe(&self) {
        let rendered = self.render();
        assert_eq!(self.half_done(), 0, "half-done operations\n{rendered}");
        assert_eq!(self.stuck_locks(), 0, "stuck locks\n{rendered}");
        assert_eq!(
            self.unsettled(),
            0,
            "groups that did not settle\n{rendered}"
        );
        assert_eq!(
            self.two_holders_outside_gaps(),
            Duration::ZERO,
            "two holders outside the fencing gaps\n{rendered}"
        );
        assert!(self.findings.is_empty(), "findings\n{rendered}");
    }
}

// ------------------------------------------------------------------ the campaign

/// The plant with its agents, disks, checker and prober. Fields drop in this order: the
/// threads, the agents, the disks (unmounted), then the plant (namespaces and files).
#[derive(Debug)]
pub struct Campaign {
    checker: Checker,
    prober: Prober,
    main: Proc,
    backup: Proc,
    disks: [Tmpfs; 2],
    plant: Plant,
    t0: Instant,
    out: PathBuf,
    /// Every trial's line and the checker's lines (written to `addresses.txt` at the end).
    timeline: Vec<String>,
    /// Whether the clients' commands may overlap.
    concurrent: bool,
    /// The quorum source's process, when the plant has one.
    etcd: Option<Proc>,
    failover_after: Duration,
}

/// What one trial saw, for its line and, when a check fails, its file.
#[derive(Debug, Default)]
struct TrialLog {
    text: String,
}

impl TrialLog {
    fn add(&mut self, title: &str, body: &str) {
        let _ = writeln!(self.text, "==== {title}\n{}", body.trim_end());
    }
}

impl Campaign {
    /// Builds the plant (SNMP on, state directories on 8 MiB tmpfs), starts both agents and
    /// waits until they have met and replicated and the service answers from the Main.
    pub fn start(quorum: bool) -> Campaign {
        let plant = Plant::build(if quorum { "fq" } else { "fc" }, true);
        plant.enable_snmp();
        let etcd = quorum.then(|| plant.enable_quorum());
        let disks =
            [MAIN, BACKUP].map(|m| Tmpfs::mount(&plant.dir.path().join(m).join("state"), "8m"));
        let (main, backup) = plant.start_group();
        let out = super::output_dir("fault-campaign");
        let t0 = Instant::now();
        Campaign {
            checker: Checker::start(&plant, t0),
            prober: Prober::start(&plant.client),
            main,
            backup,
            disks,
            plant,
            t0,
            out,
            timeline: Vec::new(),
            concurrent: true,
            etcd,
            failover_after: if quorum {
                QUORUM_FAILOVER_AFTER
            } else {
                FAILOVER_AFTER
            },
        }
    }

    /// Runs the campaign's trials; prints one line per trial; returns the figures. Campaigns
    /// of one test binary run one at a time (they share the plant's names).
    pub fn run(settings: &Settings) -> Report {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _one = lock(&ONE_AT_A_TIME);
        let seeds = settings.trial_seeds();
        eprintln!(
            "fault campaign: seed {} ({} trials); UNDERSTUDY_CAMPAIGN_SEED={} replays it, \
             UNDERSTUDY_CAMPAIGN_TRIAL=<seed> replays one trial",
            settings.seed,
            seeds.len(),
            settings.seed
        );
        let started = Instant::now();
        let mut c = Campaign::start(settings.quorum);
        c.concurrent = settings.concurrent;
        let mut report = Report {
            concurrent: settings.concurrent,
            quorum: settings.quorum,
            failover_after: c.failover_after,
            seed: settings.replay.unwrap_or(settings.seed),
            out: c.out.clone(),
            ..Report::default()
        };
        for (i, seed) in seeds.iter().enumerate() {
            report.trials += 1;
            if let Err(why) = c.trial(i + 1, seeds.len(), *seed, &mut report) {
                eprintln!("campaign stopped at trial {}: {why}", i + 1);
                break;
            }
        }
        report.elapsed = started.elapsed();
        let logs = c.out.join(format!("campaign-{}", report.seed));
        let _ = std::fs::create_dir_all(&logs);
        for m in [MAIN, BACKUP] {
            let _ = std::fs::copy(c.plant.log_of(m), logs.join(format!("{m}.log")));
            let hooks = c.plant.dir.path().join(m).join("run/hooks.log");
            let _ = std::fs::copy(hooks, logs.join(format!("{m}-hooks.log")));
        }
        let _ = std::fs::write(logs.join("addresses.txt"), c.timeline.join("\n") + "\n");
        report.out = logs;
        report
    }

    /// Runs `f` with an [`Api`] inside the client's namespace.
    fn api<T: Send>(&self, f: impl FnOnce(&Api) -> T + Send) -> T {
        in_netns(&self.plant.client, || f(&Api::new(ms(1000), ms(3000))))
    }

    /// Both views and what both hosts hold.
    fn observe(&self) -> Observed {
        let views = self.api(|a| {
            vec![
                (MAIN, a.agent(MAIN_HOST, "group")),
                (BACKUP, a.agent(BACKUP_HOST, "group")),
            ]
        });
        Observed {
            views,
            holds: vec![
                (MAIN, held_by(&self.plant.main)),
                (BACKUP, held_by(&self.plant.backup)),
            ],
        }
    }

    /// Waits until both agents answer, hear each other and agree, and both hosts hold what
    /// their records name, in two readings 0.5 s apart: the observation and how long it took,
    /// or the last observation and what was wrong after [`SETTLE_LIMIT`].
    fn settle(&self) -> Result<(Observed, Duration), (Observed, Vec<String>)> {
        let began = Instant::now();
        let mut previous: Option<String> = None;
        loop {
            let o = self.observe();
            let mut problems = o.disagreements();
            problems.extend(o.mismatches());
            if problems.is_empty() {
                let now = o.summary();
                if previous.as_deref() == Some(now.as_str()) {
                    return Ok((o, began.elapsed()));
                }
                previous = Some(now);
            } else {
                previous = None;
                if began.elapsed() > SETTLE_LIMIT {
                    return Err((o, problems));
                }
            }
            std::thread::sleep(ms(500));
        }
    }

    fn log_lengths(&self) -> [u64; 2] {
        [MAIN, BACKUP].map(|m| std::fs::metadata(self.plant.log_of(m)).map_or(0, |md| md.len()))
    }

    /// Each agent's log from `from` (byte offsets), at most the last 200 lines.
    fn log_excerpts(&self, from: [u64; 2]) -> String {
        let mut s = String::new();
        for (m, from) in [MAIN, BACKUP].iter().zip(from) {
            let text = std::fs::read(self.plant.log_of(m)).unwrap_or_default();
            let part =
                String::from_utf8_lossy(&text[(from as usize).min(text.len())..]).into_owned();
            let lines: Vec<&str> = part.lines().collect();
            let tail = &lines[lines.len().saturating_sub(200)..];
            let _ = writeln!(
                s,
                "---- {m}'s agent log during the trial\n{}",
                tail.join("\n")
            );
        }
        s
    }

    fn inject(&mut self, f: &Fault) {
        let p = &self.plant;
        match f.kind {
            FaultKind::Kill9Main if f.path == "host" => {
                let mut links = vec![(&p.main, "hb"), (&p.client, "mlan")];
                if self.etcd.is_some() {
                    links.push((&p.main, "qnet"));
                }
                self.main.kill9();
                for (ns, dev) in &links {
                    p.link(ns, dev, false);
                }
                std::thread::sleep(f.lasts);
                for (ns, dev) in &links {
                    p.link(ns, dev, true);
                }
                std::thread::sleep(ms(500));
                self.main = p.start(MAIN);
            }
            FaultKind::Kill9Main => {
                self.main.kill9();
                std::thread::sleep(f.lasts);
                self.main = p.start(MAIN);
            }
            FaultKind::Kill9Backup => {
                self.backup.kill9();
                std::thread::sleep(f.lasts);
                self.backup = p.start(BACKUP);
            }
            FaultKind::StopMainShort | FaultKind::StopMainLong | FaultKind::StopBackup => {
                let pid = if f.kind == FaultKind::StopBackup {
                    self.backup.id()
                } else {
                    self.main.id()
                };
                super::process::signal(pid, "STOP");
                std::thread::sleep(f.lasts);
                super::process::signal(pid, "CONT");
            }
            FaultKind::CutAllPaths | FaultKind::CutOnePath => {
                let mut links: Vec<(&str, &str)> = match f.path {
                    "hb" => vec![(&p.main, "hb")],
                    "main lan" => vec![(&p.client, "mlan")],
                    "backup lan" => vec![(&p.client, "blan")],
                    p if p.starts_with("hb + backup lan") => {
                        vec![(&self.plant.main, "hb"), (&self.plant.client, "blan")]
                    }
                    _ => vec![(&p.main, "hb"), (&p.client, "mlan")],
                };
                if f.path.ends_with("main quorum") {
                    links.push((&p.main, "qnet"));
                }
                if f.path.ends_with("backup quorum") {
                    links.push((&p.backup, "qnet"));
                }
                for (ns, dev) in &links {
                    p.link(ns, dev, false);
                }
                std::thread::sleep(f.lasts);
                for (ns, dev) in &links {
                    p.link(ns, dev, true);
                }
            }
            FaultKind::FullDiskMain | FaultKind::FullDiskBackup => {
                let disk = &self.disks[usize::from(f.kind == FaultKind::FullDiskBackup)];
                disk.fill();
                std::thread::sleep(f.lasts);
                disk.free();
            }
        }
    }

    /// The agents' history entries from `since` to `until` (ms since the epoch), each once:
    /// the entries of the agent that coordinated the operation, and the forwarding agent's
    /// entry when the coordinator could not be reached. The campaign's own restoring
    /// commands are left out.
    fn events(&self, since: u64, until: u64) -> Vec<Value> {
        let lists = self.api(|a| {
            [
                (MAIN, a.agent(MAIN_HOST, "events")),
                (BACKUP, a.agent(BACKUP_HOST, "events")),
            ]
        });
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (owner, list) in lists {
            let Some(list) = list else { continue };
            for e in list["events"].as_array().into_iter().flatten() {
                let at = e["at"].as_u64().unwrap_or(0);
                let id = e["id"].as_str().unwrap_or("").to_string();
                let relayed = e["coordinator"] != owner;
                let unreachable_coordinator = e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("cannot be reached"));
                if at < since
                    || at > until
                    || e["reason"] == RESTORE_REASON
                    || (relayed && e["outcome"] != "done" && !unreachable_coordinator)
                    || !seen.insert(id)
                {
                    continue;
                }
                out.push(e.clone());
            }
        }
        out.sort_by_key(|e| e["at"].as_u64().unwrap_or(0));
        out
    }

    /// Sends one restoring command until it is done; an `operation_in_progress` refusal that
    /// lasts [`STUCK_AFTER`] is a stuck lock (then the agents are restarted, which clears
    /// it). Err when the command cannot be done at all.
    fn drive(
        &mut self,
        what: &str,
        method: reqwest::Method,
        url: &str,
        body: Value,
        stuck: &mut Vec<String>,
        cleared: &mut Vec<String>,
    ) -> Result<(), String> {
        let began = Instant::now();
        let mut busy_since: Option<Instant> = None;
        let mut restarted = false;
        // Since when the answers have been neither done nor operation_in_progress.
        let mut other_since = Instant::now();
        let body = body.to_string();
        loop {
            let answer = self.api(|a| a.call(method.clone(), url, Some(&body)));
            match &answer {
                Ok((200, _)) => {
                    if let Some(t) = busy_since {
                        cleared.push(format!(
                            "{what}: operation_in_progress for {:.1} s, then done",
                            t.elapsed().as_secs_f64()
                        ));
                    }
                    return Ok(());
                }
                Ok((409, v)) if failed_codes(v).contains("operation_in_progress") => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    other_since = Instant::now();
                    if since.elapsed() >= STUCK_AFTER && !restarted {
                        stuck.push(format!(
                            "{what} refused with operation_in_progress for {} s with nothing \
                             running: {v}",
                            STUCK_AFTER.as_secs()
                        ));
                        // Locks live in the agents' memory: a restart clears them.
                        self.main.kill9();
                        self.backup.kill9();
                        self.backup = self.plant.start(BACKUP);
                        self.main = self.plant.start(MAIN);
                        restarted = true;
                        busy_since = None;
                        other_since = Instant::now();
                    }
                }
                _ => {}
            }
            // Any other refusal lasting this long: the group is not in a state the command
            // can restore.
            if other_since.elapsed() > REFUSED_LIMIT
                || began.elapsed() > 2 * (STUCK_AFTER + REFUSED_LIMIT)
            {
                return Err(format!("{what} not done: last answer {answer:?}"));
            }
            std::thread::sleep(ms(300));
        }
    }

    /// The probes and the restore: a reverse takeover when the Main is taken over, then a
    /// takeover and a reverse takeover (none may be refused with operation_in_progress once
    /// nothing runs), auto-failover on, the service answering from the Main, the group settled.
    fn restore(
        &mut self,
        observed: &Observed,
        stuck: &mut Vec<String>,
        cleared: &mut Vec<String>,
    ) -> Result<(), String> {
        let reverse = (
            "reverse takeover",
            format!("http://{MAIN_HOST}:{AGENT_PORT}/api/v1/reverse-takeover"),
            json!({"main": MAIN, "reason": RESTORE_REASON}),
        );
        let takeover = (
            "takeover",
            format!("http://{BACKUP_HOST}:{AGENT_PORT}/api/v1/takeover"),
            json!({"backup": BACKUP, "main": MAIN, "reason": RESTORE_REASON}),
        );
        let mut steps = Vec::new();
        if observed.main_taken_over() {
            steps.push(reverse.clone());
        }
        steps.push(takeover);
        steps.push(reverse);
        for (what, url, body) in steps {
            self.drive(what, reqwest::Method::POST, &url, body, stuck, cleared)?;
        }
        let url = format!("http://{MAIN_HOST}:{AGENT_PORT}/api/v1/members/{MAIN}/auto-failover");
        let on = json!({"enabled": true, "reason": RESTORE_REASON});
        self.drive(
            "auto-failover on",
            reqwest::Method::PUT,
            &url,
            on,
            stuck,
            cleared,
        )?;
        let (o, _) = self.settle().map_err(|(o, p)| {
            format!("the restored group did not settle: {p:?}\n{}", o.summary())
        })?;
        let deadline = Instant::now() + SETTLE_LIMIT;
        while self.api(|a| a.served_by()).as_deref() != Some(MAIN) {
            if Instant::now() > deadline {
                return Err(format!(
                    "the restored service does not answer from {MAIN}\n{}",
                    o.summary()
                ));
            }
            std::thread::sleep(ms(100));
        }
        if !o.main_auto_failover() || o.main_taken_over() || !o.half_done().is_empty() {
            return Err(format!("the group was not restored\n{}", o.summary()));
        }
        Ok(())
    }

    /// Starts the group afresh when it cannot be restored (a finding has been recorded): both
    /// agents killed, their state and responders removed, the disks emptied, the group started
    /// and ready again.
    fn repair(&mut self) {
        eprintln!("  repairing: both agents restarted from empty state directories");
        self.main.kill9();
        self.backup.kill9();
        for (m, disk) in [MAIN, BACKUP].iter().zip(&self.disks) {
            self.plant.kill_responder(m);
            disk.free();
            let state = self.plant.dir.path().join(m).join("state");
            for entry in std::fs::read_dir(&state).into_iter().flatten().flatten() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            }
        }
        let (main, backup) = self.plant.start_group();
        self.main = main;
        self.backup = backup;
    }

    /// One trial: draw, inject while the clients run, heal, settle, check, restore.
    fn trial(
        &mut self,
        index: usize,
        total: usize,
        seed: u64,
        report: &mut Report,
    ) -> Result<(), String> {
        let mut rng = Rng::new(seed);
        let fault = Fault::draw(
            FaultKind::of_seed(seed),
            &mut rng,
            self.failover_after,
            self.etcd.is_some(),
        );
        let client_delay = rng.between(ms(0), 2 * self.failover_after + ms(2000));
        let linger = rng.between(ms(0), ms(1000));
        let client_seeds = [rng.next_u64(), rng.next_u64(), rng.next_u64()];
        // Left over since the last trial was restored (the start, before the first).
        let before = self.checker.take();
        report.before.two_holders += before.two_holders;
        report.before.none_online += before.none_online;
        report.before.samples += before.samples;
        let mut log = TrialLog::default();
        let logs_from = self.log_lengths();
        let since = wall_ms();
        let inject = Instant::now();
        let at = self.t0.elapsed().as_secs_f64();

        let clients = Clients::start(
            &self.plant.client,
            client_seeds,
            client_delay,
            inject,
            !self.concurrent,
        );
        self.inject(&fault);
        let healed = inject.elapsed();
        let during = self.checker.take();
        std::thread::sleep(linger);
        let answers = clients.stop();
        let settled = self.settle();
        let after = self.checker.take();
        let until = wall_ms();
        let events = self.events(since, until);

        report.faults += 1;
        let kind = fault.kind;
        let in_gap = report.gap(kind);
        let fig = report.kinds.entry(kind).or_default();
        fig.trials += 1;
        fig.two_holders += during.two_holders;
        fig.two_holders_healed += after.two_holders;
        fig.none_online += during.none_online + after.none_online;
        for a in &answers {
            *report.answers.entry((a.iface, a.outcome)).or_default() += 1;
        }
        let mut ops = OpCounts::default();
        for e in &events {
            let repeats = 1 + e["repeats"].as_u64().unwrap_or(0);
            let c = report
                .histories
                .entry(e["kind"].as_str().unwrap_or("?").to_string())
                .or_default();
            let message = e["message"].as_str().unwrap_or("");
            let slot = match e["outcome"].as_str() {
                Some("done") => &mut c.done,
                Some("refused") => &mut c.refused,
                _ if message.starts_with("operation stopped") => &mut c.aborted,
                _ => &mut c.unavailable,
            };
            *slot += repeats;
            match e["outcome"].as_str() {
                Some("done") => ops.done += repeats,
                Some("refused") => ops.refused += repeats,
                _ if message.starts_with("operation stopped") => ops.aborted += repeats,
                _ => ops.unavailable += repeats,
            }
        }
        let done = |e: &&Value| e["outcome"] == "done";
        fig.failovers += events
            .iter()
            .filter(done)
            .filter(|e| e["kind"] == "failover")
            .count() as u64;
        // A failover time counts when a failover, not a client's takeover, moved the service.
        let first_move = events
            .iter()
            .filter(done)
            .find(|e| e["kind"] == "failover" || e["kind"] == "manual");
        // With every path cut and the client on the Main's side, the Backup cannot be seen.
        let seen = fault.path != "hb + backup lan";
        let failover_time = match first_move {
            Some(e) if e["kind"] == "failover" && seen => {
                self.prober.first_from(BACKUP, inject).map(|t| t - inject)
            }
            _ => None,
        };
        if let Some(t) = failover_time {
            fig.failover_times.push(t);
        }
        let silences_main = matches!(
            kind,
            FaultKind::Kill9Main
                | FaultKind::StopMainShort
                | FaultKind::StopMainLong
                | FaultKind::CutAllPaths
        );
        if silences_main {
            for e in events
                .iter()
                .filter(done)
                .filter(|e| e["kind"] == "failover")
            {
                let at = e["at"].as_u64().unwrap_or(since);
                fig.decided.push(ms(at.saturating_sub(since)));
            }
        }

        // The checks.
        let mut failed: Vec<String> = Vec::new();
        let observed = match &settled {
            Ok((o, _)) => o.clone(),
            Err((o, problems)) => {
                fig.unsettled += 1;
                failed.push(format!(
                    "the group did not settle in {} s: {}",
                    SETTLE_LIMIT.as_secs(),
                    problems.join("; ")
                ));
                o.clone()
            }
        };
        let half = observed.half_done();
        if !half.is_empty() {
            fig.half_done += 1;
            failed.push(format!("half-done operation: {}", half.join("; ")));
        }
        let (mut stuck, mut cleared) = (Vec::new(), Vec::new());
        let restoring_from = Instant::now();
        let restored = self.restore(&observed, &mut stuck, &mut cleared);
        let restore_took = restoring_from.elapsed();
        let restoring = self.checker.take();
        fig.two_holders_healed += restoring.two_holders;
        report.restoring_none_online += restoring.none_online;
        let two = during.two_holders + after.two_holders + restoring.two_holders;
        if two > Duration::ZERO && !in_gap {
            failed.push(format!(
                "{} ms with an address on two hosts outside the fencing gaps",
                two.as_millis()
            ));
        }
        if !stuck.is_empty() {
            fig.stuck_locks += 1;
            failed.push(format!("stuck lock: {}", stuck.join("; ")));
        }
        report.busy_refusals.extend(cleared);
        if let Err(why) = &restored {
            failed.push(format!("the group could not be restored: {why}"));
        }

        // The trial's line, and its file when a check failed.
        let settle_text = match &settled {
            Ok((_, t)) => format!("settled in {:.1} s", t.as_secs_f64()),
            Err(_) => "did not settle".into(),
        };
        let settle_text = format!(
            "{settle_text}, restored in {:.1} s",
            restore_took.as_secs_f64()
        );
        let by_outcome: Vec<String> = Outcome::ALL
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o.name(),
                    answers.iter().filter(|a| a.outcome == *o).count()
                )
            })
            .collect();
        let line = format!(
            "trial {index}/{total} seed {seed} at {at:.1} s: {} (clients from +{:.1} s, healed at \
             +{:.1} s): {} asks ({}); histories done {} refused {} aborted {} unavailable {}; two \
             holders {} ms during the fault, {} ms after; no-host {} ms; failover {}; \
             {settle_text}",
            fault.describe(),
            client_delay.as_secs_f64(),
            healed.as_secs_f64(),
            answers.len(),
            by_outcome.join(", "),
            ops.done,
            ops.refused,
            ops.aborted,
            ops.unavailable,
            during.two_holders.as_millis(),
            (after.two_holders + restoring.two_holders).as_millis(),
            (during.none_online + after.none_online).as_millis(),
            failover_time.map_or("-".into(), |t| format!("{:.2} s", t.as_secs_f64())),
        );
        eprintln!("{line}");
        self.timeline.push(format!("==== {line}"));
        for w in [&during, &after, &restoring] {
            self.timeline.extend(w.changes.iter().cloned());
        }
        let details = std::env::var_os("UNDERSTUDY_CAMPAIGN_DETAILS").is_some();
        if !failed.is_empty() || details {
            log.add("trial", &line);
            log.add("failed checks", &failed.join("\n"));
            log.add("state after settling", &observed.summary());
            let changes = [during.changes, after.changes, restoring.changes].concat();
            log.add(
                "addresses on the hosts (checker, every change)",
                &changes.join("\n"),
            );
            let asked: Vec<String> = answers
                .iter()
                .map(|a| {
                    format!(
                        "+{:6.2} s {:<4} {:<18} to {:<11} -> {} after {:.2} s {}",
                        a.sent.as_secs_f64(),
                        a.iface.name(),
                        a.ask.name(),
                        a.host,
                        a.outcome.name(),
                        a.took.as_secs_f64(),
                        a.detail
                    )
                })
                .collect();
            log.add("the clients' commands", &asked.join("\n"));
            let history: Vec<String> = events
                .iter()
                .map(|e| {
                    format!(
                        "+{:6.2} s {} {} by {} via {}: {} {}",
                        (e["at"].as_u64().unwrap_or(since) as f64 - since as f64) / 1000.0,
                        e["kind"].as_str().unwrap_or(""),
                        e["outcome"].as_str().unwrap_or(""),
                        e["requested_by"]["interface"].as_str().unwrap_or(""),
                        e["coordinator"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or(""),
                        e["failed"]
                    )
                })
                .collect();
            log.add("the agents' histories", &history.join("\n"));
            log.add("logs", &self.log_excerpts(logs_from));
            let file = self.out.join(format!("trial-seed-{seed}.txt"));
            let _ = std::fs::write(&file, &log.text);
            for what in &failed {
                eprintln!("  FAILED: {what}");
                report.findings.push(Finding {
                    trial: index,
                    seed,
                    fault: fault.describe(),
                    what: what.clone(),
                    file: file.clone(),
                });
            }
            eprintln!("  details: {}", file.display());
        }
        if restored.is_err() {
            self.repair();
            self.checker.take();
        }
        Ok(())
    }
}
