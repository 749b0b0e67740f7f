//! End to end, with the real tools a NOC runs: the demo group (`understudy demo`), a real
//! Prometheus scraping every member's `/metrics` with the shipped rules
//! (`alerts/understudy.rules.yml`), a real Alertmanager, and a webhook receiver in this test.
//! A manual takeover over HTTP must make `UnderstudyNoRedundancy` fire in Prometheus and reach
//! the webhook; the reverse takeover must resolve it in both. The measured times are printed
//! and written to `target/test-output/e2e/timings.txt`.
//!
//! Does I/O: starts processes listening on 127.0.0.1 (the demo, Prometheus, Alertmanager and
//! the webhook receiver on free ports) and kills them at the end, also on failure. A missing tool is a
//! failure, never a skip: `./scripts/test` installs them (Debian packages `prometheus` and
//! `prometheus-alertmanager`).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing;
use serde_json::{json, Value};
use support::{
    answers, assert_all_running, free_tcp_port, output_dir, post_ok, repo, require_tool,
    try_get_json, Deadline, Demo, Proc, TOKEN,
};

const ALERT: &str = "UnderstudyNoRedundancy";
const WAIT_START: Duration = Duration::from_secs(60);
const WAIT_ALERT: Duration = Duration::from_secs(90);

/// Every process of the test: the demo group and the tools (Alertmanager, Prometheus).
struct Running {
    demo: Demo,
    tools: Vec<Proc>,
}

impl Running {
    /// Fails the test, with its log, if a process has exited.
    fn assert_running(&mut self) {
        self.demo.proc.assert_running();
        assert_all_running(&mut self.tools);
    }

    /// Writes `config` to DIR/NAME.yml and starts `program` with it, listening on
    /// 127.0.0.1:`port`, its data in DIR/NAME-data (given with the flag `args[0]`, the other
    /// `args` as they are) and its log in DIR/NAME.log.
    fn start_tool(
        &mut self,
        dir: &Path,
        (name, program, port): (&str, &str, u16),
        config: &str,
        args: &[&str],
    ) {
        let config_file = dir.join(format!("{name}.yml"));
        fs::write(&config_file, config)
            .unwrap_or_else(|e| panic!("write {}: {e}", config_file.display()));
        let data = dir.join(format!("{name}-data"));
        let mut cmd = Command::new(program);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!("{}={}", args[0], data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(&args[1..]);
        let log = dir.join(format!("{name}.log"));
        self.tools.push(Proc::spawn_logged(name, &mut cmd, log));
    }

    /// Polls `probe` every 100 ms until it returns `Some`; fails the test if a process exits
    /// or once `limit` has passed.
    async fn wait_for<T, F, Fut>(&mut self, what: &str, limit: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        Deadline::new(limit, what)
            .every_ms(100)
            .poll_async(|| {
                self.assert_running();
                probe()
            })
            .await
    }
}

// ------------------------------------------------------------------ webhook receiver

/// One notification received from Alertmanager.
#[derive(Debug, Clone)]
struct Notification {
    at: Instant,
    body: Value,
}

impl Notification {
    /// The alert `alertname` in this notification, if it is in it.
    fn alert(&self, alertname: &str) -> Option<&Value> {
        self.body["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == alertname)
    }
}

type Notifications = Arc<Mutex<Vec<Notification>>>;

/// Records one POSTed JSON body; answers 200.
async fn record(State(store): State<Notifications>, body: axum::body::Bytes) -> StatusCode {
    if let Ok(body) = serde_json::from_slice(&body) {
        if let Ok(mut v) = store.lock() {
            v.push(Notification {
                at: Instant::now(),
                body,
            });
        }
    }
    StatusCode::OK
}

/// A webhook receiver on 127.0.0.1 that records every POSTed JSON body, for the rest of the
/// test's runtime.
async fn start_webhook() -> (u16, Notifications) {
    let got = Notifications::default();
    let app = axum::Router::new()
        .route("/hook", routing::post(record))
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the webhook receiver");
    let port = listener.local_addr().expect("webhook address").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, got)
}

// ------------------------------------------------------------------ HTTP helpers

/// POSTs a command with the demo token; it must be done.
async fn post_command(url: &str, body: Value) -> Value {
    let v = post_ok(url, TOKEN, &body.to_string()).await;
    assert_eq!(v["outcome"], "done", "POST {url}: {v}");
    v
}

/// The first notification received after `after` in which the alert has `status`.
fn received(notifications: &Notifications, after: Instant, status: &str) -> Option<Notification> {
    let got = notifications.lock().ok()?;
    got.iter()
        .find(|n| n.at > after && n.alert(ALERT).and_then(|a| a["status"].as_str()) == Some(status))
        .cloned()
}

/// The state of `alertname` in Prometheus (`firing`, `pending`), or `inactive` when absent.
async fn prometheus_alert_state(prom: &str, alertname: &str) -> Option<String> {
    let v = try_get_json(&format!("{prom}/api/v1/alerts")).await?;
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

async fn prometheus_query(prom: &str, q: &str) -> Option<Vec<Value>> {
    let url =
        reqwest::Url::parse_with_params(&format!("{prom}/api/v1/query"), &[("query", q)]).ok()?;
    let v = try_get_json(url.as_str()).await?;
    v["data"]["result"].as_array().cloned()
}

/// Waits until the alert is `state` in Prometheus and a notification with `status` has
/// reached the webhook, both after `since`. Returns the time Prometheus took (from `since`)
/// and the notification.
async fn wait_alert(
    running: &mut Running,
    prom: &str,
    notifications: &Notifications,
    since: Instant,
    (state, status): (&str, &str),
) -> (Duration, Notification) {
    let mut in_prom = None;
    let mut at_hook = None;
    let deadline = Deadline::new(
        WAIT_ALERT,
        format!("{ALERT} to be {state} in Prometheus and {status} at the webhook"),
    )
    .every_ms(100);
    loop {
        if in_prom.is_none() && prometheus_alert_state(prom, ALERT).await.as_deref() == Some(state)
        {
            in_prom = Some(since.elapsed());
        }
        if at_hook.is_none() {
            at_hook = received(notifications, since, status);
        }
        if let (Some(p), Some(h)) = (in_prom, &at_hook) {
            return (p, h.clone());
        }
        running.assert_running();
        deadline.tick().await;
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ------------------------------------------------------------------ the test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redundancy_alert_fires_on_takeover_and_resolves_on_reverse() {
    require_tool("prometheus", &["--version"], "prometheus");
    require_tool(
        "prometheus-alertmanager",
        &["--version"],
        "prometheus-alertmanager",
    );

    let tmp = tempfile::Builder::new()
        .prefix("understudy-e2e-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path();

    // The webhook receiver (Alertmanager's receiver).
    let (hook_port, notifications) = start_webhook().await;

    // The demo group: main-1 and backup-1 on ephemeral ports.
    let demo = Demo::start_logged(&["--token", TOKEN], dir.join("demo.log"));
    let main_url = demo.url("main-1");
    let backup_url = demo.url("backup-1");
    let mut running = Running {
        demo,
        tools: Vec::new(),
    };
    for url in [&main_url, &backup_url] {
        let health = format!("{url}/healthz");
        running
            .wait_for(&format!("{health} to answer"), WAIT_START, || {
                try_get_json(&health)
            })
            .await;
    }
    // Ready for a takeover: backup-1 has replicated main-1, and the group is redundant as
    // both agents see it.
    let group = format!("{backup_url}/api/v1/group");
    running
        .wait_for(
            "backup-1 to replicate main-1 and the group to be redundant",
            WAIT_START,
            || async {
                let g = try_get_json(&group).await?;
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
    let am_port = free_tcp_port();
    running.start_tool(
        dir,
        ("alertmanager", "prometheus-alertmanager", am_port),
        &format!(
            "route:\n  receiver: test-webhook\n  group_by: [group, alertname]\n  \
             group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: test-webhook\n    webhook_configs:\n      \
             - url: http://127.0.0.1:{hook_port}/hook\n        send_resolved: true\n"
        ),
        &["--storage.path", "--cluster.listen-address="],
    );

    // Prometheus: every member at 1 s, the shipped rules evaluated every 1 s.
    let prom_port = free_tcp_port();
    let rules = repo().join("alerts/understudy.rules.yml");
    let target = |url: &str| url.trim_start_matches("http://").to_string();
    running.start_tool(
        dir,
        ("prometheus", "prometheus", prom_port),
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        \
             - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n  - job_name: understudy\n    static_configs:\n      \
             - targets: ['{m0}', '{m1}']\n",
            rules = rules.display(),
            m0 = target(&main_url),
            m1 = target(&backup_url),
        ),
        &["--storage.tsdb.path"],
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let am = format!("http://127.0.0.1:{am_port}");
    for ready in [format!("{am}/-/ready"), format!("{prom}/-/ready")] {
        running
            .wait_for(&ready, WAIT_START, || async {
                answers(&ready).await.then_some(())
            })
            .await;
    }
    // Prometheus scrapes both agents, both report redundancy, and the alert is inactive.
    running
        .wait_for(
            "Prometheus to scrape both agents reporting understudy_group_redundant 1",
            WAIT_START,
            || async {
                let up = prometheus_query(&prom, "up{job=\"understudy\"} == 1").await?;
                let redundant = prometheus_query(&prom, "understudy_group_redundant == 1").await?;
                (up.len() == 2 && redundant.len() == 2).then_some(())
            },
        )
        .await;
    let before = prometheus_alert_state(&prom, ALERT)
        .await
        .expect("Prometheus /api/v1/alerts");
    assert_eq!(before, "inactive", "{ALERT} before the takeover");

    // ---- Manual takeover, sent to main-1's agent (it forwards to backup-1, which acts).
    let t_takeover = Instant::now();
    post_command(
        &format!("{main_url}/api/v1/takeover"),
        json!({"backup": "backup-1", "main": "main-1", "reason": "e2e alerting test"}),
    )
    .await;
    let took = t_takeover.elapsed();

    let (firing_prom, firing_hook) = wait_alert(
        &mut running,
        &prom,
        &notifications,
        t_takeover,
        ("firing", "firing"),
    )
    .await;
    let alert = firing_hook
        .alert(ALERT)
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
        &format!("{backup_url}/api/v1/reverse-takeover"),
        json!({"main": "main-1", "reason": "e2e alerting test: restore"}),
    )
    .await;
    let reversed = t_reverse.elapsed();

    let (resolved_prom, resolved_hook) = wait_alert(
        &mut running,
        &prom,
        &notifications,
        t_reverse,
        ("inactive", "resolved"),
    )
    .await;
    let resolved_hook = resolved_hook.at - t_reverse;

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
    drop(running);
}
