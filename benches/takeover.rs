//! Benchmark: how long from a takeover command until every member's view and metrics show
//! the new state, in the demo group (real agents on loopback), over many takeover/reverse
//! cycles; and how long a `/metrics` scrape takes for a group of 2 and of 64 members.
//! Prints the figures beside the seed's "wait about 1 minute".
//!
//! Run: `cargo bench --bench takeover` (env BENCH_CYCLES, BENCH_SCRAPES to change counts).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::Deadline;
use understudy::cli::DemoArgs;
use understudy::demo::Demo;

fn args(mains: u16, backups: u16) -> DemoArgs {
    DemoArgs {
        mains,
        backups,
        http_port: 0,
        snmp_port: 0,
        state_dir: None,
        token: "bench-token".into(),
        trap_target: Vec::new(),
        replication_interval: Duration::from_secs(30),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The body of `GET url`.
async fn get_text(c: &reqwest::Client, url: &str) -> String {
    c.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn group(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let body = get_text(c, &format!("{url}/api/v1/group")).await;
    serde_json::from_str(&body).expect("group json")
}

/// One `/metrics` scrape of the agent at `url`.
async fn metrics(c: &reqwest::Client, url: &str) -> String {
    get_text(c, &format!("{url}/metrics")).await
}

/// Waits until every member's API and metrics agree that the group is (not) redundant.
async fn wait_everywhere(c: &reqwest::Client, urls: &[String], redundant: bool) {
    let metric = format!(
        "understudy_group_redundant{{group=\"demo\"}} {}",
        u8::from(redundant)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for url in urls {
        loop {
            assert!(Instant::now() < deadline, "no convergence at {url}");
            let g = group(c, url).await;
            let m = metrics(c, url).await;
            let main_state = &g["members"][0]["operational_state"];
            let state_ok = if redundant {
                main_state == "online"
            } else {
                main_state == "offline"
            };
            if g["redundancy"]["redundant"] == redundant && state_ok && m.contains(&metric) {
                break;
            }
        }
    }
}

async fn post(c: &reqwest::Client, url: &str, path: &str, body: &str) {
    let r = c
        .post(format!("{url}{path}"))
        .bearer_auth("bench-token")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

async fn takeover_cycles(cycles: usize) {
    let demo = Demo::start(&args(1, 1)).await.expect("demo");
    let urls: Vec<String> = demo
        .members
        .iter()
        .map(|m| format!("http://{}", m.http))
        .collect();
    let c = reqwest::Client::new();
    // Wait for the first replication (the takeover precondition).
    Deadline::new(Duration::from_secs(20), "the first replication")
        .every_ms(50)
        .poll_async(|| async {
            let g = group(&c, &urls[0]).await;
            (g["members"][1]["last_replication"]["result"] == "success").then_some(())
        })
        .await;
    let mut takeover = Vec::new();
    let mut reverse = Vec::new();
    for _ in 0..cycles {
        let t = Instant::now();
        post(
            &c,
            &urls[0],
            "/api/v1/takeover",
            r#"{"backup":"backup-1","main":"main-1"}"#,
        )
        .await;
        wait_everywhere(&c, &urls, false).await;
        takeover.push(t.elapsed());
        let t = Instant::now();
        post(
            &c,
            &urls[1],
            "/api/v1/reverse-takeover",
            r#"{"main":"main-1"}"#,
        )
        .await;
        wait_everywhere(&c, &urls, true).await;
        reverse.push(t.elapsed());
    }
    takeover.sort();
    reverse.sort();
    println!(
        "takeover: command -> every member's API and /metrics show it ({cycles} cycles, demo 1+1)"
    );
    println!(
        "  {:<18} {:>10} {:>10}   reference (seed): \"wait about 1 minute\" = 60000 ms",
        "", "median", "p99"
    );
    for (name, v) in [
        ("manual takeover", &takeover),
        ("reverse takeover", &reverse),
    ] {
        let med = percentile(v, 0.5);
        println!(
            "  {name:<18} {:>10} {:>10}   {:.0}x faster than the seed",
            ms(med),
            ms(percentile(v, 0.99)),
            60.0 / med.as_secs_f64().max(1e-9)
        );
    }
    demo.stop().await;
}

async fn scrape(members: (u16, u16), scrapes: usize) {
    let demo = Demo::start(&args(members.0, members.1))
        .await
        .expect("demo");
    let url = format!("http://{}", demo.members[0].http);
    let c = reqwest::Client::new();
    // Let the group meet so every row is populated.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut v = Vec::new();
    let mut bytes = 0;
    for _ in 0..scrapes {
        let t = Instant::now();
        let body = metrics(&c, &url).await;
        v.push(t.elapsed());
        bytes = body.len();
    }
    v.sort();
    // The rendering alone, from the agent's published snapshot (no HTTP, no other agents'
    // load on the same two cores).
    let snap = demo.agents[0].snapshot();
    let mut r = Vec::new();
    for _ in 0..scrapes {
        let t = Instant::now();
        std::hint::black_box(understudy::metrics::render(&snap));
        r.push(t.elapsed());
    }
    r.sort();
    println!(
        "  {:>2} members: HTTP scrape median {:>9}  p99 {:>9}  | render only median {:>9}  p99 {:>9}  ({} bytes)",
        members.0 + members.1,
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.99)),
        ms(percentile(&r, 0.5)),
        ms(percentile(&r, 0.99)),
        bytes
    );
    demo.stop().await;
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: do a tiny run then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let cycles = if quick { 2 } else { env("BENCH_CYCLES", 100) };
    let scrapes = if quick { 5 } else { env("BENCH_SCRAPES", 300) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        takeover_cycles(cycles).await;
        println!(
            "metrics scrape latency ({scrapes} scrapes, sequential; every agent of the group runs \
             in this one process, so with 64 members the scrape competes with 64x63 heartbeats \
             every 500 ms on the same cores)"
        );
        scrape((1, 1), scrapes).await;
        scrape((32, 32), scrapes).await;
    });
}
