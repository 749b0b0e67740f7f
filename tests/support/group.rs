//! A group of separate `understudy run` agents on loopback: one configuration file per member
//! on free ports, and the agents started from them. Does I/O.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::http::{answers, wait_replicated};
use super::process::Proc;
use super::wait::wait_for_async;

/// The API token of the groups written by [`write_group`].
pub const GROUP_TOKEN: &str = "test-token";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_understudy")
}

/// Runs `understudy ARGS...` to completion.
pub fn understudy<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(bin())
        .args(args)
        .output()
        .expect("run understudy")
}

/// Runs `understudy ARGS... FILE` to completion (`run --config`, `check-config`).
pub fn understudy_on(args: &[&str], file: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .arg(file)
        .output()
        .expect("run understudy")
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// A free UDP port on 127.0.0.1 (bound and released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// Writes `text` to `path` with mode 0600 (only its owner may read or write it, as the agent
/// requires of a secret file), creating its directory.
pub fn write(path: &Path, text: &str) {
    write_mode(path, text, 0o600);
}

/// Writes `text` to `path` and sets its mode to `mode`, creating its directory.
pub fn write_mode(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// One member of a group written by [`write_group`].
#[derive(Debug, Clone)]
pub struct GroupMember {
    pub name: String,
    pub config: PathBuf,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

/// Writes one configuration file per member of a group of `mains` + `backups` members whose
/// agents listen on free loopback ports.
pub fn write_group(dir: &Path, mains: usize, backups: usize) -> Vec<GroupMember> {
    write(&dir.join("api-token"), &format!("{GROUP_TOKEN}\n"));
    write(&dir.join("group-secret"), "test-group-secret\n");
    let mut members = Vec::new();
    for i in 0..mains + backups {
        let (name, role) = if i < mains {
            (format!("main-{}", i + 1), "main")
        } else {
            (format!("backup-{}", i - mains + 1), "backup")
        };
        members.push((name, role, free_tcp_port(), i));
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
        let config = dir.join(format!("{name}.toml"));
        write(&config, &cfg);
        out.push(GroupMember {
            name: name.to_string(),
            config,
            url: format!("http://127.0.0.1:{port}"),
        });
    }
    out
}

/// Starts `understudy run --config PATH` (warnings to the test's stderr) without waiting.
pub fn spawn_agent(config: &Path) -> Proc {
    Proc::spawn(
        "understudy run",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null()),
    )
}

/// Waits until the agent at `url` answers on /healthz.
pub async fn wait_healthy(url: &str) {
    wait_for_async(Duration::from_secs(10), "the agent's /healthz", || async {
        answers(&format!("{url}/healthz")).await.then_some(())
    })
    .await
}

/// Starts `understudy run --config PATH` and waits until its /healthz answers.
pub async fn start_agent(m: &GroupMember) -> Proc {
    let proc = spawn_agent(&m.config);
    wait_healthy(&m.url).await;
    proc
}

/// As [`start_agent`], the agent's output (warnings) in the file `log`.
pub async fn start_agent_logged(m: &GroupMember, log: PathBuf) -> Proc {
    let proc = Proc::spawn_logged(
        "understudy run",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&m.config)
            .env("RUST_LOG", "warn"),
        log,
    );
    wait_healthy(&m.url).await;
    proc
}

/// main-1 and backup-1 of a group written by [`write_group`], each a running agent, started
/// once backup-1 has replicated main-1 as both of them see it (a takeover's precondition).
#[derive(Debug)]
pub struct Pair {
    pub members: Vec<GroupMember>,
    pub main: Proc,
    pub backup: Proc,
}

impl Pair {
    pub async fn start(members: Vec<GroupMember>) -> Pair {
        let main = start_agent(&members[0]).await;
        let backup = start_agent(&members[1]).await;
        for m in &members[..2] {
            wait_replicated(&m.url, "backup-1").await;
        }
        Pair {
            members,
            main,
            backup,
        }
    }

    pub fn main_url(&self) -> String {
        self.members[0].url.clone()
    }

    pub fn backup_url(&self) -> String {
        self.members[1].url.clone()
    }
}
