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
