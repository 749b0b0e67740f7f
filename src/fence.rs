//! The fence command (`[fencing]`): run by a Backup before it fails over a Main that does not
//! answer, the way Pacemaker runs its fence agents. Its configuration, the environment it
//! sees, one run bounded by its time-out (the whole process group is killed when it runs
//! over), and this agent's record of the runs (counts by outcome, the last run) that the
//! snapshot shows. The decisions (which failover needs a fence, the delay, what an outcome
//! lets happen) are [`crate::group::FenceGate`]'s. Does process I/O.
//!
//! Environment: `UNDERSTUDY_GROUP`, `UNDERSTUDY_MEMBER` (the Backup), `UNDERSTUDY_FENCE_TARGET`
//! (the Main), `UNDERSTUDY_FENCE_ADDRESSES` (the Main's configured address, its current
//! address if different, its extra address; space-separated), `UNDERSTUDY_FENCE_REASON`.
//! Exit status 0 within `timeout` is success; anything else (another status, a signal, no
//! exit in time, a program that cannot start) is a failure and the failover waits.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;
use tracing::{info, warn};

use crate::group::{FenceGate, MemberRecord, Millis};
use crate::snapshot::{FenceOutcome, FenceRun, FencingView};

/// How much of the command's standard error a run keeps (its end), and how many of its last
/// lines the outcome's detail shows.
const STDERR_KEPT: usize = 4096;
const STDERR_LINES: usize = 5;

/// How long the output readers are waited for once the command exited (a process it left
/// running may hold the pipe open).
const READER_GRACE: Duration = Duration::from_millis(200);

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(60)
}

/// The `[fencing]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FencingConfig {
    /// The program (an absolute path) and its arguments; run without a shell.
    pub command: Vec<String>,
    /// A run still going after this is a failure (`timeout`); its process group is killed.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How long the Backup waits, once it decided a failover, before it fences: a Main heard
    /// again meanwhile is neither fenced nor failed over (a Main alive behind a short outage,
    /// or the live side of a mutual-fencing race, shows itself first).
    #[serde(default, with = "humantime_serde")]
    pub delay: Duration,
    /// The longest wait between two fence runs against a Main after failed ones (the wait
    /// doubles from the heartbeat interval up to this).
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
}

impl FencingConfig {
    /// Every problem with the section, one message each.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        match self.command.first() {
            None => errs.push("fencing.command: give the program and its arguments".to_string()),
            Some(p) if !p.starts_with('/') => errs.push(format!(
                "fencing.command: the program must be an absolute path (got {p:?}); the \
                 agent's PATH is not the shell's"
            )),
            Some(_) => {}
        }
        if self.timeout.is_zero() {
            errs.push("fencing.timeout: must be more than 0".to_string());
        }
        if self.retry_max.is_zero() {
            errs.push("fencing.retry_max: must be more than 0".to_string());
        }
        errs
    }
}

/// One fence run's inputs: who fences whom, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceRequest {
    pub group: String,
    /// The Backup that fences.
    pub member: String,
    /// The Main to fence.
    pub target: String,
    pub addresses: Vec<IpAddr>,
    pub reason: String,
}

/// The addresses a fence command is told about for the Main `m`: its configured address, its
/// current address if different, its extra address. Pure.
pub fn target_addresses(m: &MemberRecord) -> Vec<IpAddr> {
    let mut out = vec![m.configured_address];
    for a in m.current_address.into_iter().chain([m.extra_address]) {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The environment the fence command sees for `req`. Pure.
pub fn environment(req: &FenceRequest) -> Vec<(&'static str, String)> {
    let addresses: Vec<String> = req.addresses.iter().map(|a| a.to_string()).collect();
    vec![
        ("UNDERSTUDY_GROUP", req.group.clone()),
        ("UNDERSTUDY_MEMBER", req.member.clone()),
        ("UNDERSTUDY_FENCE_TARGET", req.target.clone()),
        ("UNDERSTUDY_FENCE_ADDRESSES", addresses.join(" ")),
        ("UNDERSTUDY_FENCE_REASON", req.reason.clone()),
    ]
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceReport {
    pub outcome: FenceOutcome,
    /// Exit status and the last lines of standard error, or the time-out.
    pub detail: String,
    pub duration_ms: u64,
}

/// The last `lines` lines of `bytes` (lossy UTF-8), joined with " | ". Pure.
fn last_lines(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// Keeps the last [`STDERR_KEPT`] bytes of `reader` in `tail`.
async fn keep_tail<R: AsyncRead + Unpin>(mut reader: R, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let mut t = lock(&tail);
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(STDERR_KEPT);
        t.drain(..excess);
    }
}

async fn log_lines<R: AsyncRead + Unpin>(reader: R, member: String, target: String) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(%member, %target, stream = "stdout", "fence command: {line}");
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the fence command of `cfg` for `req` in a process group of its own and waits for it,
/// at most `cfg.timeout`; on the time-out the whole group is killed (SIGKILL).
pub async fn run(cfg: &FencingConfig, req: &FenceRequest) -> FenceReport {
    let started = Instant::now();
    let report = |outcome, detail: String| FenceReport {
        outcome,
        detail,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let Some((program, args)) = cfg.command.split_first() else {
        return report(FenceOutcome::Failed, "no command configured".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(environment(req))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return report(FenceOutcome::Failed, format!("cannot start {program}: {e}")),
    };
    info!(member = %req.member, target = %req.target, %program, pid = ?child.id(),
        "fence command started");
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let mut readers = tokio::task::JoinSet::new();
    if let Some(err) = child.stderr.take() {
        readers.spawn(keep_tail(err, tail.clone()));
    }
    if let Some(out) = child.stdout.take() {
        readers.spawn(log_lines(out, req.member.clone(), req.target.clone()));
    }
    let pgid = child.id();
    let waited = tokio::time::timeout(cfg.timeout, child.wait()).await;
    if waited.is_err() {
        if let Some(pid) = pgid.and_then(|p| i32::try_from(p).ok()) {
            use nix::sys::signal::{killpg, Signal};
            if let Err(e) = killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL) {
                warn!(member = %req.member, target = %req.target, error = %e,
                    "cannot kill the fence command's process group");
            }
        }
        let _ = child.kill().await;
    }
    // What the command wrote before it ended; a process it left running may keep the pipes.
    let _ = tokio::time::timeout(READER_GRACE, async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    readers.abort_all();
    let stderr = {
        let t = lock(&tail);
        let bytes: Vec<u8> = t.iter().copied().collect();
        last_lines(&bytes, STDERR_LINES)
    };
    let with_stderr = |s: String| {
        if stderr.is_empty() {
            s
        } else {
            format!("{s}; stderr: {stderr}")
        }
    };
    match waited {
        Ok(Ok(status)) if status.success() => {
            report(FenceOutcome::Success, with_stderr("exit status 0".into()))
        }
        Ok(Ok(status)) => {
            let how = match status.code() {
                Some(code) => format!("exit status {code}"),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    format!("killed by signal {}", status.signal().unwrap_or(0))
                }
            };
            report(FenceOutcome::Failed, with_stderr(how))
        }
        Ok(Err(e)) => report(FenceOutcome::Failed, format!("cannot wait for it: {e}")),
        Err(_) => report(
            FenceOutcome::Timeout,
            with_stderr(format!(
                "no exit within {}; its process group was killed",
                humantime::format_duration(cfg.timeout)
            )),
        ),
    }
}

/// Fencing on one agent: the configuration, the gate's memory and the runs so far.
#[derive(Debug)]
pub struct Fencing {
    cfg: FencingConfig,
    gate: Mutex<FenceGate>,
    record: Mutex<FencingView>,
}

impl Fencing {
    pub fn new(cfg: FencingConfig) -> Fencing {
        Fencing {
            cfg,
            gate: Mutex::new(FenceGate::default()),
            record: Mutex::new(FencingView {
                runs: FenceOutcome::ALL.iter().map(|o| (*o, 0)).collect(),
                last: None,
            }),
        }
    }

    pub fn config(&self) -> &FencingConfig {
        &self.cfg
    }

    /// The gate (held briefly; never across an await).
    pub fn gate(&self) -> MutexGuard<'_, FenceGate> {
        lock(&self.gate)
    }

    /// Counts a run against `target` that ended at `at` (wall clock) and keeps it as the last.
    pub fn note(&self, target: &str, report: &FenceReport, at: Millis) {
        let mut r = lock(&self.record);
        *r.runs.entry(report.outcome).or_default() += 1;
        r.last = Some(FenceRun {
            target: target.to_string(),
            outcome: report.outcome,
            at,
            duration_ms: report.duration_ms,
            detail: report.detail.clone(),
        });
    }

    /// What the snapshot shows.
    pub fn view(&self) -> FencingView {
        lock(&self.record).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(command: &[&str], timeout_ms: u64) -> FencingConfig {
        FencingConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_millis(timeout_ms),
            delay: Duration::ZERO,
            retry_max: default_retry_max(),
        }
    }

    fn request() -> FenceRequest {
        FenceRequest {
            group: "g".into(),
            member: "backup-1".into(),
            target: "main-1".into(),
            addresses: ["192.0.2.10", "10.0.3.6"]
                .iter()
                .map(|a| a.parse().expect("ip"))
                .collect(),
            reason: "main-1 unreachable on every heartbeat path for 3s".into(),
        }
    }

    fn sh() -> String {
        "/bin/sh".into()
    }

    #[test]
    fn the_section_is_checked() {
        let ok = cfg(&["/usr/bin/ipmitool", "chassis", "power", "off"], 1000);
        assert!(ok.validate().is_empty());
        // (command, timeout ms, retry_max ms, the message says)
        let rows: [(&[&str], u64, u64, &str); 4] = [
            (&[], 1000, 1000, "give the program"),
            (&["ipmitool"], 1000, 1000, "absolute path"),
            (&["/bin/true"], 0, 1000, "fencing.timeout"),
            (&["/bin/true"], 1000, 0, "fencing.retry_max"),
        ];
        for (command, timeout, retry, says) in rows {
            let mut c = cfg(command, timeout);
            c.retry_max = Duration::from_millis(retry);
            let errs = c.validate();
            assert_eq!(errs.len(), 1, "{errs:?}");
            assert!(errs[0].contains(says), "{errs:?}");
        }
        let parsed: FencingConfig =
            toml::from_str("command = [\"/bin/true\"]\ndelay = \"5s\"").expect("parse");
        assert_eq!(parsed.timeout, Duration::from_secs(30));
        assert_eq!(parsed.retry_max, Duration::from_secs(60));
        assert_eq!(parsed.delay, Duration::from_secs(5));
        assert!(toml::from_str::<FencingConfig>("command = [\"/bin/true\"]\nretries = 3").is_err());
    }

    #[test]
    fn the_target_addresses_list_each_once() {
        let mut m = crate::group::test_view(&["main-1"]).members.remove(0);
        m.configured_address = "192.0.2.10".parse().expect("ip");
        m.extra_address = "10.0.3.6".parse().expect("ip");
        m.current_address = Some(m.configured_address);
        assert_eq!(
            target_addresses(&m),
            [m.configured_address, m.extra_address]
        );
        m.current_address = Some("10.0.3.9".parse().expect("ip"));
        assert_eq!(
            target_addresses(&m),
            [
                m.configured_address,
                "10.0.3.9".parse().expect("ip"),
                m.extra_address
            ]
        );
        m.current_address = None;
        assert_eq!(
            target_addresses(&m),
            [m.configured_address, m.extra_address]
        );
    }

    #[tokio::test]
    async fn a_run_sees_its_environment_and_its_exit_status_decides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let script = format!("env | grep ^UNDERSTUDY_ | sort > {}", out.display());
        let r = run(&cfg(&[&sh(), "-c", &script], 5000), &request()).await;
        assert_eq!(r.outcome, FenceOutcome::Success, "{r:?}");
        let env = std::fs::read_to_string(&out).expect("env written");
        for line in [
            "UNDERSTUDY_FENCE_ADDRESSES=192.0.2.10 10.0.3.6",
            "UNDERSTUDY_FENCE_REASON=main-1 unreachable on every heartbeat path for 3s",
            "UNDERSTUDY_FENCE_TARGET=main-1",
            "UNDERSTUDY_GROUP=g",
            "UNDERSTUDY_MEMBER=backup-1",
        ] {
            assert!(env.lines().any(|l| l == line), "{line} missing in\n{env}");
        }
        let script = "for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 3";
        let r = run(&cfg(&[&sh(), "-c", script], 5000), &request()).await;
        assert_eq!(r.outcome, FenceOutcome::Failed);
        assert_eq!(
            r.detail,
            "exit status 3; stderr: line 3 | line 4 | line 5 | line 6 | line 7"
        );
        let r = run(&cfg(&["/nonexistent/fence"], 5000), &request()).await;
        assert_eq!(r.outcome, FenceOutcome::Failed);
        assert!(r.detail.starts_with("cannot start"), "{r:?}");
        let r = run(&cfg(&[&sh(), "-c", "kill -TERM $$"], 5000), &request()).await;
        assert_eq!(
            (r.outcome, r.detail.as_str()),
            (FenceOutcome::Failed, "killed by signal 15")
        );
    }

    #[tokio::test]
    async fn a_run_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let script = format!(
            "echo $$ > {p}; sleep 30 & echo $! >> {p}; echo waiting >&2; wait",
            p = pids.display()
        );
        let t0 = Instant::now();
        let r = run(&cfg(&[&sh(), "-c", &script], 500), &request()).await;
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        assert_eq!(r.outcome, FenceOutcome::Timeout, "{r:?}");
        assert_eq!(
            r.detail,
            "no exit within 500ms; its process group was killed; stderr: waiting"
        );
        let text = std::fs::read_to_string(&pids).expect("pids written");
        let pids: Vec<&str> = text.lines().collect();
        assert_eq!(pids.len(), 2, "{text}");
        for pid in pids {
            let deadline = Instant::now() + Duration::from_secs(3);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(!alive(pid), "process {pid} of the fence command still runs");
        }
    }

    /// Whether process `pid` runs (a zombie waiting to be reaped does not).
    fn alive(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
            .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
    }

    #[test]
    fn the_record_lists_every_outcome() {
        let f = Fencing::new(cfg(&["/bin/true"], 1000));
        let v = f.view();
        assert_eq!(v.runs.len(), 3);
        assert!(v.runs.values().all(|n| *n == 0) && v.last.is_none());
        let r = FenceReport {
            outcome: FenceOutcome::Timeout,
            detail: "no exit within 1s".into(),
            duration_ms: 1000,
        };
        f.note("main-1", &r, 42);
        let v = f.view();
        assert_eq!(v.runs[&FenceOutcome::Timeout], 1);
        assert_eq!(v.runs[&FenceOutcome::Success], 0);
        let last = v.last.expect("last");
        assert_eq!((last.target.as_str(), last.at), ("main-1", 42));
    }
}
