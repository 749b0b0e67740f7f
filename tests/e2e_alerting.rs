//! End to end, with the real tools a NOC runs: the demo group (`understudy demo`), a real
//! Prometheus scraping every member's `/metrics` with the shipped rules
//! (`alerts/understudy.rules.yml`), a real Alertmanager, and a webhook receiver in this test.
//! A manual takeover over HTTP must make `UnderstudyNoRedundancy` fire in Prometheus and reach
//! the webhook; the reverse takeover must resolve it in both. The measured times are printed
//! and written to `target/test-output/e2e/timings.txt`.
//!
//! Does I/O: starts processes listening on 127.0.0.1 (demo HTTP 23400+, Prometheus and
//! Alertmanager on free ports) and kills them at the end, also on failure. A missing tool is a
//! failure, never a skip: `./scripts/test` installs them (Debian packages `prometheus` and
//! `prometheus-alertmanager`).

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// First HTTP port of the demo (member k on +k); the SNMP base is unused by the test.
/// Chosen apart from the defaults (9400/16100) and from the other tests.
const DEMO_HTTP: u16 = 23400;
const DEMO_SNMP: u16 = 23420;
const TOKEN: &str = "demo-token";
const ALERT: &str = "UnderstudyNoRedundancy";
const WAIT_START: Duration = Duration::from_secs(60);
const WAIT_ALERT: Duration = Duration::from_secs(90);

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `target/test-output/<name>` (next to the integration tests' own tmp dir).
fn output_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-output").join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Panics with an actionable message unless `tool --version` runs.
fn require_tool(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "cannot run `{tool} --version`: this test needs the Debian package {package}. \
         Run ./scripts/test, which installs it (or apt-get install {package})"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

// ------------------------------------------------------------------ child processes

struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// Every child process of the test; all are killed when it drops, also when the test fails
/// (then their logs' tails are printed).
#[derive(Default)]
struct Procs(Vec<Proc>);

impl Procs {
    fn spawn(&mut self, name: &'static str, cmd: &mut Command, log: PathBuf) {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} ({cmd:?}): {e}. Run ./scripts/test, which installs the tools")
            });
        self.0.push(Proc { name, child, log });
    }

    /// Panics if a process has exited (with its log).
    fn check_running(&mut self) {
        for p in &mut self.0 {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!(
                    "{} exited early ({status}); its log:\n{}",
                    p.name,
                    tail(&p.log, 60)
                );
            }
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in self.0.iter_mut().rev() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        if std::thread::panicking() {
            for p in &self.0 {
                eprintln!(
                    "---- {} log ({}), last lines:\n{}",
                    p.name,
                    p.log.display(),
                    tail(&p.log, 40)
                );
            }
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ------------------------------------------------------------------ webhook receiver

/// One notification received from Alertmanager.
#[derive(Debug, Clone)]
struct Notification {
    at: Instant,
    body: Value,
}

impl Notification {
    /// The status of `alertname` in this notification, if it is in it.
    fn status_of(&self, alertname: &str) -> Option<&str> {
        self.body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname)
            .and_then(|a| a["status"].as_str())
    }
}

/// A minimal HTTP server that records every POSTed JSON body. The thread lives until the
/// test process exits.
fn start_webhook() -> (u16, Arc<Mutex<Vec<Notification>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook receiver");
    let port = listener.local_addr().expect("webhook address").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if let Some(body) = read_post(stream) {
                if let Ok(mut v) = store.lock() {
                    v.push(Notification {
                        at: Instant::now(),
                        body,
                    });
                }
            }
        }
    });
    (port, got)
}

/// Reads one HTTP request, answers 200, and returns its body as JSON.
fn read_post(stream: TcpStream) -> Option<Value> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    serde_json::from_slice(&body).ok()
}

// ------------------------------------------------------------------ HTTP helpers

async fn get_json(client: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = client.get(url).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

async fn post_command(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let resp = client
        .post(url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "POST {url} {body} → {status}: {v}");
    assert_eq!(v["outcome"], "done", "POST {url}: {v}");
    v
}

/// A bounded wait: `tick` sleeps 100 ms, checks the children are alive, and fails the test
/// with `what` once `limit` has passed.
struct Deadline {
    what: String,
    start: Instant,
    limit: Duration,
}

impl Deadline {
    fn new(what: impl Into<String>, limit: Duration) -> Deadline {
        Deadline {
            what: what.into(),
            start: Instant::now(),
            limit,
        }
    }

    async fn tick(&mut self, procs: &mut Procs) {
        procs.check_running();
        assert!(
            self.start.elapsed() < self.limit,
            "timed out after {:?} waiting for {}",
            self.limit,
            self.what
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `probe` until it returns `Some` (see [`Deadline`]).
async fn wait_for<T, F, Fut>(procs: &mut Procs, what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let mut deadline = Deadline::new(what, limit);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        deadline.tick(procs).await;
    }
}

/// The first notification received after `after` in which the alert has `status`.
fn received(
    notifications: &Mutex<Vec<Notification>>,
    after: Instant,
    status: &str,
) -> Option<Notification> {
    let got = notifications.lock().ok()?;
    got.iter()
        .find(|n| n.at > after && n.status_of(ALERT) == Some(status))
        .cloned()
}

/// The state of `alertname` in Prometheus (`firing`, `pending`), or `inactive` when absent.
async fn prometheus_alert_state(
    client: &reqwest::Client,
    prom: &str,
    alertname: &str,
) -> Option<String> {
    let v = get_json(client, &format!("{prom}/api/v1/alerts")).await?;
    let alerts = v["data"]["alerts"].as_array()?;
    Some(
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname)
            .and_then(|a| a["state"].as_str())
            .unwrap_or("inactive")
            .to_string(),
    )
}

async fn prometheus_query(client: &reqwest::Client, prom: &str, q: &str) -> Option<Vec<Value>> {
    let url =
        reqwest::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", q)]).ok()?;
    let v = get_json(client, url.as_str()).await?;
    v["data"]["result"].as_array().cloned()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redundancy_alert_fires_on_takeover_and_resolves_on_reverse() {
    require_tool("prometheus", "prometheus");
    require_tool("prometheus-alertmanager", "prometheus-alertmanager");

    let tmp = tempfile::Builder::new()
        .prefix("understudy-e2e-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path();
    let mut procs = Procs::default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client");

    // The webhook receiver (Alertmanager's receiver).
    let (hook_port, notifications) = start_webhook();

    // The demo group: main-1 on DEMO_HTTP, backup-1 on DEMO_HTTP + 1.
    let members = [
        format!("127.0.0.1:{DEMO_HTTP}"),
        format!("127.0.0.1:{}", DEMO_HTTP + 1),
    ];
    procs.spawn(
        "understudy demo",
        Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["demo", "--http-port", &DEMO_HTTP.to_string()])
            .args(["--snmp-port", &DEMO_SNMP.to_string()])
            .args(["--token", TOKEN, "--state-dir"])
            .arg(dir.join("demo"))
            .env("RUST_LOG", "info"),
        dir.join("demo.log"),
    );
    let main_url = format!("http://{}", members[0]);
    let backup_url = format!("http://{}", members[1]);
    for url in [&main_url, &backup_url] {
        let health = format!("{url}/healthz");
        wait_for(
            &mut procs,
            &format!("{health} to answer"),
            WAIT_START,
            || get_json(&client, &health),
        )
        .await;
    }
    // Ready for a takeover: backup-1 has replicated main-1, and the group is redundant as
    // both agents see it.
    let group = format!("{backup_url}/api/v1/group");
    wait_for(
        &mut procs,
        "backup-1 to replicate main-1 and the group to be redundant",
        WAIT_START,
        || async {
            let g = get_json(&client, &group).await?;
            let backup = g["members"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == "backup-1")?
                .clone();
            (backup["last_replication"]["result"] == "success"
                && g["redundancy"]["redundant"] == true)
                .then_some(())
        },
    )
    .await;

    // Alertmanager: everything to the test's webhook, with short timers.
    let am_port = free_port();
    let am_config = dir.join("alertmanager.yml");
    fs::write(
        &am_config,
        format!(
            "route:\n  receiver: test-webhook\n  group_by: [group, alertname]\n  \
             group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test-webhook\n    webhook_configs:\n      \
             - url: http://127.0.0.1:{hook_port}/hook\n        send_resolved: true\n"
        ),
    )
    .expect("write alertmanager.yml");
    procs.spawn(
        "alertmanager",
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address="),
        dir.join("alertmanager.log"),
    );

    // Prometheus: every member at 1 s, the shipped rules evaluated every 1 s.
    let prom_port = free_port();
    let prom_config = dir.join("prometheus.yml");
    let rules = repo("alerts/understudy.rules.yml");
    fs::write(
        &prom_config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        \
             - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: understudy\n    static_configs:\n      \
             - targets: ['{m0}', '{m1}']\n",
            rules = rules.display(),
            m0 = members[0],
            m1 = members[1],
        ),
    )
    .expect("write prometheus.yml");
    procs.spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        dir.join("prometheus.log"),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let am = format!("http://127.0.0.1:{am_port}");
    for ready in [format!("{am}/-/ready"), format!("{prom}/-/ready")] {
        wait_for(&mut procs, &ready, WAIT_START, || async {
            let r = client.get(&ready).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
    // Prometheus scrapes both agents, both report redundancy, and the alert is inactive.
    wait_for(
        &mut procs,
        "Prometheus to scrape both agents reporting understudy_group_redundant 1",
        WAIT_START,
        || async {
            let up = prometheus_query(&client, &prom, "up{job=\"understudy\"} == 1").await?;
            let redundant =
                prometheus_query(&client, &prom, "understudy_group_redundant == 1").await?;
            (up.len() == 2 && redundant.len() == 2).then_some(())
        },
    )
    .await;
    let before = prometheus_alert_state(&client, &prom, ALERT)
        .await
        .expect("Prometheus /api/v1/alerts");
    assert_eq!(before, "inactive", "{ALERT} before the takeover");

    // ---- Manual takeover, sent to main-1's agent (it forwards to backup-1, which acts).
    let t_takeover = Instant::now();
    post_command(
        &client,
        &format!("{main_url}/api/v1/takeover"),
        json!({"backup": "backup-1", "main": "main-1", "reason": "e2e alerting test"}),
    )
    .await;
    let took = t_takeover.elapsed();

    let mut firing_prom = None;
    let mut firing_hook: Option<Notification> = None;
    let mut deadline = Deadline::new(
        format!("{ALERT} to fire in Prometheus and reach the webhook"),
        WAIT_ALERT,
    );
    while firing_prom.is_none() || firing_hook.is_none() {
        if firing_prom.is_none()
            && prometheus_alert_state(&client, &prom, ALERT)
                .await
                .as_deref()
                == Some("firing")
        {
            firing_prom = Some(t_takeover.elapsed());
        }
        if firing_hook.is_none() {
            firing_hook = received(&notifications, t_takeover, "firing");
        }
        deadline.tick(&mut procs).await;
    }
    let firing_prom = firing_prom.expect("firing in Prometheus");
    let firing_hook = firing_hook.expect("firing at the webhook");
    let alert = firing_hook.body["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["labels"]["alertname"] == ALERT))
        .cloned()
        .expect("the alert in the notification");
    assert_eq!(alert["labels"]["group"], "demo", "{alert}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert}");
    assert_eq!(
        alert["annotations"]["summary"], "Redundancy group demo has no redundancy.",
        "{alert}"
    );
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("#understudynoredundancy")),
        "{alert}"
    );
    // The description's template queries Prometheus for the alarm's start time.
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        description.contains("since 20") && !description.contains("unknown time"),
        "the description should say since when: {description}"
    );
    let firing_hook = firing_hook.at - t_takeover;

    // ---- Reverse takeover, sent to backup-1's agent (main-1 coordinates it).
    let t_reverse = Instant::now();
    post_command(
        &client,
        &format!("{backup_url}/api/v1/reverse-takeover"),
        json!({"main": "main-1", "reason": "e2e alerting test: restore"}),
    )
    .await;
    let reversed = t_reverse.elapsed();

    let mut resolved_prom = None;
    let mut resolved_hook = None;
    let mut deadline = Deadline::new(
        format!("{ALERT} to resolve in Prometheus and at the webhook"),
        WAIT_ALERT,
    );
    while resolved_prom.is_none() || resolved_hook.is_none() {
        if resolved_prom.is_none()
            && prometheus_alert_state(&client, &prom, ALERT)
                .await
                .as_deref()
                == Some("inactive")
        {
            resolved_prom = Some(t_reverse.elapsed());
        }
        if resolved_hook.is_none() {
            resolved_hook =
                received(&notifications, t_reverse, "resolved").map(|n| n.at - t_reverse);
        }
        deadline.tick(&mut procs).await;
    }
    let resolved_prom = resolved_prom.expect("resolved in Prometheus");
    let resolved_hook = resolved_hook.expect("resolved at the webhook");

    let report = format!(
        "understudy e2e alerting (scrape and evaluation every 1 s; Alertmanager group_wait 1 s, \
         group_interval 1 s)\n\
         takeover request (HTTP, forwarded main-1 → backup-1):  {}\n\
         takeover → {ALERT} firing in Prometheus:  {}\n\
         takeover → firing notification at the webhook:          {}\n\
         reverse takeover request (HTTP, forwarded backup-1 → main-1): {}\n\
         reverse  → {ALERT} inactive in Prometheus: {}\n\
         reverse  → resolved notification at the webhook:       {}\n\n\
         the webhook's firing notification said: {description}\n",
        secs(took),
        secs(firing_prom),
        secs(firing_hook),
        secs(reversed),
        secs(resolved_prom),
        secs(resolved_hook),
    );
    println!("{report}");
    eprintln!("{report}");
    let out = output_dir("e2e").join("timings.txt");
    fs::write(&out, &report).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
    drop(procs);
}
