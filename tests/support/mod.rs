//! Helpers for the integration tests: run the real `understudy` binary, read the addresses
//! it prints, and talk to it over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const TOKEN: &str = "demo-token";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_understudy")
}

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A demo group started as a child process, with the URL of every member.
#[derive(Debug)]
pub struct DemoProc {
    pub proc: Proc,
    /// (name, http://127.0.0.1:PORT) in member order.
    pub members: Vec<(String, String)>,
}

impl DemoProc {
    /// Starts `understudy demo` with ephemeral HTTP ports and the extra `args`, and reads the
    /// member table it prints.
    pub fn start(args: &[&str]) -> DemoProc {
        let mut cmd = Command::new(bin());
        cmd.arg("demo").arg("--http-port").arg("0");
        cmd.args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start understudy demo");
        let stdout = child.stdout.take().expect("stdout");
        let mut members = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read demo output");
            assert!(n > 0, "the demo exited before printing its members");
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() >= 3 && cols[2].starts_with("http://127.0.0.1:") {
                members.push((cols[0].to_string(), cols[2].to_string()));
            }
            if line.contains("Ctrl-C stops the demo") {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        DemoProc {
            proc: Proc { child },
            members,
        }
    }

    pub fn url(&self, name: &str) -> &str {
        &self
            .members
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no member {name} in {:?}", self.members))
            .1
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .expect("json body")
}

pub async fn get_text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .text()
        .await
        .expect("text body")
}

/// POSTs `body` with the demo token; returns (status, JSON body).
pub async fn post(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut rb = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// Polls `f` every 20 ms until it returns Some, or panics after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The member object `name` in a group JSON.
pub fn member<'a>(group: &'a Value, name: &str) -> &'a Value {
    group["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no member {name} in {group}"))
}

/// Waits until `backup` has replicated `main` (the takeover precondition), seen from `url`.
pub async fn wait_replicated(url: &str, backup: &str) {
    wait_for(Duration::from_secs(15), "the first replication", || async {
        let g = get_json(&format!("{url}/api/v1/group")).await;
        (member(&g, backup)["last_replication"]["result"] == "success").then_some(())
    })
    .await
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write file");
}

/// Writes one configuration file per member of a group of `mains` + `backups` members whose
/// agents listen on free loopback ports; returns (name, config path, URL) per member.
pub fn write_group(
    dir: &Path,
    mains: usize,
    backups: usize,
) -> Vec<(String, std::path::PathBuf, String)> {
    write(&dir.join("api-token"), "test-token\n");
    write(&dir.join("group-secret"), "test-group-secret\n");
    let mut members = Vec::new();
    for i in 0..mains + backups {
        let (name, role) = if i < mains {
            (format!("main-{}", i + 1), "main")
        } else {
            (format!("backup-{}", i - mains + 1), "backup")
        };
        members.push((name, role, free_port(), i));
    }
    let mut table = String::new();
    for (name, role, port, i) in &members {
        table += &format!(
            "\n[[members]]\nname = \"{name}\"\nrole = \"{role}\"\naddress = \"192.0.2.{}\"\n\
             extra_address = \"10.0.3.{}\"\npeer_urls = {{ lan = \"http://127.0.0.1:{port}\" }}\n{}",
            10 + i,
            6 + i,
            if *role == "main" { "auto_failover = true\n" } else { "" }
        );
    }
    let mut out = Vec::new();
    for (name, role, port, _) in &members {
        let data = dir.join(name).join("data");
        if *role == "main" {
            write(&data.join("sample.txt"), &format!("data of {name}\n"));
        }
        let cfg = format!(
            "group = \"test\"\nmember = \"{name}\"\nstate_dir = \"{}\"\n\
             heartbeat_interval = \"200ms\"\nfailover_after = \"1500ms\"\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"api-token\"\n\
             [peer]\nsecret_file = \"group-secret\"\nrequest_timeout = \"500ms\"\n\
             [replication]\n{}interval = \"5s\"\n{table}",
            dir.join(name).join("state").display(),
            if *role == "main" {
                format!("data_dir = \"{}\"\n", data.display())
            } else {
                String::new()
            }
        );
        let path = dir.join(format!("{name}.toml"));
        write(&path, &cfg);
        out.push((name.to_string(), path, format!("http://127.0.0.1:{port}")));
    }
    out
}

/// Starts `understudy run --config PATH` and waits until its /healthz answers.
pub async fn start_agent(config: &Path, url: &str) -> Proc {
    let child = Command::new(bin())
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start understudy run");
    let proc = Proc { child };
    wait_for(Duration::from_secs(10), "the agent's /healthz", || async {
        let ok = client()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        ok.then_some(())
    })
    .await;
    proc
}

/// Waits until the agent at `url` hears every member (no `unknown` state).
pub async fn wait_converged(url: &str) {
    wait_for(
        Duration::from_secs(10),
        "every member to be heard",
        || async {
            let g = get_json(&format!("{url}/api/v1/group")).await;
            g["members"]
                .as_array()
                .is_some_and(|m| {
                    !m.is_empty() && m.iter().all(|m| m["operational_state"] != "unknown")
                })
                .then_some(())
        },
    )
    .await
}
