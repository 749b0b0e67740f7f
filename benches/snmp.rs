//! SNMP agent benchmark: understudy's agent against net-snmp's snmpd on this machine, with the
//! same load generator, in one run. Measures GET (sysDescr.0) and GETBULK (max-repetitions 20
//! from `system`) over SNMPv2c with 1 and with 16 requests in flight: requests/s, varbinds/s,
//! latency p50 and p99; then prints the ratios understudy / snmpd and whether the goals hold
//! (GET requests/s with 16 in flight >= 1.5x snmpd, GETBULK varbinds/s >= 1x snmpd). Each
//! measurement alternates short rounds between the two agents so that both see the same
//! machine.
//!
//! Run: `cargo bench --bench snmp` (or `bench/snmp-bench`). `SNMP_BENCH_SECONDS` sets the
//! length of each measurement (default 5). Needs `snmpd` (Debian package snmpd). Does I/O:
//! starts `understudy demo` and `snmpd` on free loopback ports and stops them at the end.

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::ber::{int, pdu, seq, tlv, NULL};
use support::{free_udp_port, program, Deadline, Demo, Proc};

// ------------------------------------------------------------------ requests and responses

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Bulk,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Bulk => "GETBULK",
        }
    }
}

const BULK_REPETITIONS: u32 = 20;

/// An SNMPv2c request with community `public`.
fn request(op: Op, id: u32) -> Vec<u8> {
    let (tag, a, b, target) = match op {
        // sysDescr.0
        Op::Get => (0xa0, 0, 0, vec![1, 3, 6, 1, 2, 1, 1, 1, 0]),
        // system
        Op::Bulk => (0xa5, 0, BULK_REPETITIONS, vec![1, 3, 6, 1, 2, 1, 1]),
    };
    let pdu = pdu(tag, id.into(), a, b.into(), &[(target, NULL.to_vec())]);
    seq(&[int(1), tlv(0x04, b"public"), pdu])
}

/// Reads one TLV header at `at`: (tag, content start, content length).
fn header(d: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let tag = *d.get(at)?;
    let first = *d.get(at + 1)?;
    if first < 0x80 {
        return Some((tag, at + 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    let len = d
        .get(at + 2..at + 2 + n)?
        .iter()
        .fold(0usize, |a, b| (a << 8) | usize::from(*b));
    Some((tag, at + 2 + n, len))
}

fn integer(d: &[u8], start: usize, len: usize) -> Option<u32> {
    Some(
        d.get(start..start + len)?
            .iter()
            .fold(0u32, |a, b| (a << 8) | u32::from(*b)),
    )
}

/// (request-id, number of varbinds) of a response without error; None otherwise.
fn response(d: &[u8]) -> Option<(u32, usize)> {
    let (_, msg, _) = header(d, 0)?;
    let (_, v, vl) = header(d, msg)?;
    let (_, c, cl) = header(d, v + vl)?;
    let (tag, p, _) = header(d, c + cl)?;
    if tag != 0xa2 {
        return None;
    }
    let (_, id, idl) = header(d, p)?;
    let (_, e, el) = header(d, id + idl)?;
    if integer(d, e, el)? != 0 {
        return None;
    }
    let (_, i, il) = header(d, e + el)?;
    let (_, list, list_len) = header(d, i + il)?;
    let mut n = 0;
    let mut at = list;
    while at < list + list_len {
        let (_, vb, vbl) = header(d, at)?;
        let (_, o, ol) = header(d, vb)?;
        let (vt, _, _) = header(d, o + ol)?;
        // noSuchObject, noSuchInstance, endOfMibView are not answers.
        if (0x80..=0x82).contains(&vt) {
            return None;
        }
        n += 1;
        at = vb + vbl;
    }
    Some((integer(d, id, idl)?, n))
}

// ------------------------------------------------------------------ the load generator

#[derive(Debug, Default)]
struct Result {
    requests: u64,
    varbinds: u64,
    timeouts: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

impl Result {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn varbind_rate(&self) -> f64 {
        self.varbinds as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> u32 {
        if self.latencies_us.is_empty() {
            return 0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i]
    }
}

const SLOTS: u32 = 64;
/// Rounds per measurement (each agent is loaded length / ROUNDS per round).
const ROUNDS: u32 = 5;
const TIMEOUT: Duration = Duration::from_secs(1);

/// Closed loop: `inflight` requests outstanding on one socket, each answered one replaced at
/// once, for `length` after a warm-up.
fn load(target: SocketAddr, op: Op, inflight: u32, length: Duration) -> Result {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    sock.connect(target).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut seq = vec![0u32; inflight as usize];
    let mut sent: Vec<Instant> = vec![Instant::now(); inflight as usize];
    let send = |slot: usize, seq: &mut [u32], sent: &mut [Instant]| {
        seq[slot] = (seq[slot] + 1) & 0x00ff_ffff;
        let id = (seq[slot] * SLOTS) + slot as u32;
        sent[slot] = Instant::now();
        let _ = sock.send(&request(op, id));
    };
    for slot in 0..inflight as usize {
        send(slot, &mut seq, &mut sent);
    }
    let mut r = Result::default();
    let warm_until = Instant::now() + Duration::from_millis(100);
    let mut start = None;
    let mut buf = [0u8; 65_536];
    loop {
        let now = Instant::now();
        if start.is_none() && now >= warm_until {
            start = Some(now);
            r = Result::default();
        }
        if let Some(s) = start {
            if now.duration_since(s) >= length {
                r.elapsed = now.duration_since(s);
                break;
            }
        }
        match sock.recv(&mut buf) {
            Ok(n) => {
                let Some((id, varbinds)) = response(&buf[..n]) else {
                    r.errors += 1;
                    continue;
                };
                let slot = (id % SLOTS) as usize;
                if slot >= seq.len() || seq[slot] != id / SLOTS {
                    continue; // a late answer to a request already given up
                }
                let us = sent[slot].elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                r.requests += 1;
                r.varbinds += varbinds as u64;
                r.latencies_us.push(us);
                send(slot, &mut seq, &mut sent);
            }
            Err(_) => {
                for slot in 0..seq.len() {
                    if sent[slot].elapsed() > TIMEOUT {
                        r.timeouts += 1;
                        send(slot, &mut seq, &mut sent);
                    }
                }
            }
        }
    }
    r.latencies_us.sort_unstable();
    r
}

// ------------------------------------------------------------------ the agents

/// An agent under load: its name, its SNMP address, and what keeps it running (the demo, or
/// snmpd's process and directory).
struct Running {
    name: &'static str,
    target: SocketAddr,
    _demo: Option<Demo>,
    _snmpd: Option<(Proc, tempfile::TempDir)>,
}

fn answers(target: SocketAddr) -> bool {
    let r = load(target, Op::Get, 1, Duration::from_millis(200));
    r.requests > 0
}

fn wait_answering(name: &str, target: SocketAddr) {
    Deadline::new(
        Duration::from_secs(20),
        format!("{name} to answer on {target}"),
    )
    .every_ms(0)
    .poll(|| answers(target).then_some(()));
}

fn start_understudy() -> Running {
    let demo = Demo::start(&[]);
    let target = demo
        .member("main-1")
        .snmp
        .parse()
        .expect("the demo printed main-1's SNMP address");
    Running {
        name: "understudy",
        target,
        _demo: Some(demo),
        _snmpd: None,
    }
}

fn start_snmpd() -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port();
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(
        &conf,
        format!("agentaddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\n"),
    )
    .expect("snmpd.conf");
    let proc = Proc::spawn(
        "snmpd",
        Command::new(program("snmpd", "snmpd"))
            .args(["-f", "-Lf", "/dev/null", "-C", "-c"])
            .arg(&conf)
            .env("SNMP_PERSISTENT_DIR", dir.path())
            .env("MIBS", "")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    Running {
        name: "snmpd",
        target: SocketAddr::from(([127, 0, 0, 1], port)),
        _demo: None,
        _snmpd: Some((proc, dir)),
    }
}

// ------------------------------------------------------------------ the run

/// One line of the results table.
fn print_row(agent: &str, op: Op, inflight: u32, r: &Result) {
    println!(
        "{:<11} {:<8} {:>8} {:>11.0} {:>12.0} {:>9} {:>9} {:>8}",
        agent,
        op.name(),
        inflight,
        r.rate(),
        r.varbind_rate(),
        r.percentile(0.5),
        r.percentile(0.99),
        r.timeouts + r.errors
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once without it: compile
    // and stop there (CI builds benches, it does not time them).
    if !std::env::args().any(|a| a == "--bench") {
        println!("snmp bench: run with `cargo bench --bench snmp` to measure");
        return;
    }
    let length = Duration::from_secs(
        std::env::var("SNMP_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    // Load one agent only, for profiling it: SNMP_BENCH_ONLY=HOST:PORT.
    if let Some(t) = std::env::var("SNMP_BENCH_ONLY")
        .ok()
        .and_then(|s| s.parse::<SocketAddr>().ok())
    {
        for (op, inflight) in [(Op::Get, 16), (Op::Bulk, 16)] {
            let r = load(t, op, inflight, length);
            println!(
                "{t} {} x{inflight}: {:.0} requests/s, {:.0} varbinds/s, p50 {} us, p99 {} us",
                op.name(),
                r.rate(),
                r.varbind_rate(),
                r.percentile(0.5),
                r.percentile(0.99)
            );
        }
        return;
    }
    let agents = [start_understudy(), start_snmpd()];
    for a in &agents {
        wait_answering(a.name, a.target);
    }
    // Another agent to compare with, measured after these two: SNMP_BENCH_OTHER=HOST:PORT
    // (community public, with the system group).
    let other: Option<SocketAddr> = std::env::var("SNMP_BENCH_OTHER")
        .ok()
        .and_then(|s| s.parse().ok());
    let cases = [(Op::Get, 1), (Op::Get, 16), (Op::Bulk, 1), (Op::Bulk, 16)];
    println!(
        "SNMPv2c load on this machine ({} CPUs), {}s per measurement, same generator for both\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        length.as_secs()
    );
    println!(
        "{:<11} {:<8} {:>8} {:>11} {:>12} {:>9} {:>9} {:>8}",
        "agent", "op", "inflight", "requests/s", "varbinds/s", "p50 us", "p99 us", "lost"
    );
    let mut results = Vec::new();
    for (op, inflight) in cases {
        // Short rounds, alternating between the agents, so that both see the same machine
        // (other load, CPU frequency) and a drift does not favour one.
        let mut merged: Vec<Result> = agents.iter().map(|_| Result::default()).collect();
        for _ in 0..ROUNDS {
            for (a, m) in agents.iter().zip(merged.iter_mut()) {
                let r = load(a.target, op, inflight, length / ROUNDS);
                m.requests += r.requests;
                m.varbinds += r.varbinds;
                m.timeouts += r.timeouts;
                m.errors += r.errors;
                m.elapsed += r.elapsed;
                m.latencies_us.extend(r.latencies_us);
            }
        }
        for (a, mut r) in agents.iter().zip(merged) {
            r.latencies_us.sort_unstable();
            print_row(a.name, op, inflight, &r);
            results.push((a.name, op, inflight, r));
        }
        if let Some(t) = other {
            let r = load(t, op, inflight, length);
            print_row("other", op, inflight, &r);
        }
    }
    let find = |name: &str, op: Op, inflight: u32| {
        results
            .iter()
            .find(|(n, o, i, _)| *n == name && *o == op && *i == inflight)
            .map(|(.., r)| r)
            .expect("measured")
    };
    println!("\nratios understudy / snmpd:");
    let mut goals = Vec::new();
    for (op, inflight) in cases {
        let u = find("understudy", op, inflight);
        let s = find("snmpd", op, inflight);
        // The goals: GET throughput (16 in flight; with 1 in flight a client measures round-trip
        // latency, not throughput) >= 1.5x; GETBULK varbinds/s >= 1x at both depths.
        let (what, ratio, goal) = match op {
            Op::Get => (
                "requests/s",
                u.rate() / s.rate(),
                (inflight > 1).then_some(1.5),
            ),
            Op::Bulk => ("varbinds/s", u.varbind_rate() / s.varbind_rate(), Some(1.0)),
        };
        let p50 = f64::from(u.percentile(0.5)) / f64::from(s.percentile(0.5).max(1));
        let p99 = f64::from(u.percentile(0.99)) / f64::from(s.percentile(0.99).max(1));
        let verdict = match goal {
            Some(g) if ratio >= g => format!("goal >= {g}x: met"),
            Some(g) => format!("goal >= {g}x: NOT met"),
            None => "round-trip bound, no goal".to_string(),
        };
        println!(
            "  {:<8} inflight {:>2}: {what} {ratio:.2}x ({verdict}), latency p50 {p50:.2}x, p99 {p99:.2}x",
            op.name(),
            inflight,
        );
        goals.push(goal.is_none_or(|g| ratio >= g));
    }
    println!(
        "\n{}",
        if goals.iter().all(|g| *g) {
            "all goals met"
        } else {
            "some goals NOT met"
        }
    );
}
