//! The operator's hooks: a command run when this member goes online, standby or offline, with
//! the addresses in environment variables, a timeout, and its output logged line by line.
//! Does process I/O.
//!
//! Environment: `UNDERSTUDY_GROUP`, `UNDERSTUDY_MEMBER`, `UNDERSTUDY_STATE`,
//! `UNDERSTUDY_PREVIOUS_STATE` (empty at agent start), `UNDERSTUDY_ADDRESS`,
//! `UNDERSTUDY_PREVIOUS_ADDRESS`, `UNDERSTUDY_CONFIGURED_ADDRESS`, `UNDERSTUDY_ACTING_FOR`,
//! `UNDERSTUDY_REPLICA_DIR` (the replica of the Main this member acts for, or serves from as a
//! Main made one by a reconfigure). A hook that starts
//! a long-running service should detach it (e.g. `systemctl start`, or `setsid cmd >log 2>&1 &`):
//! the agent waits for the hook to exit, not for the service.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tracing::{error, info, warn};

use super::Transition;
use crate::config::HooksConfig;
use crate::group::OperState;

/// The configured hooks.
#[derive(Debug, Clone)]
pub struct Hooks {
    cfg: HooksConfig,
}

/// What one hook run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    NotConfigured,
    Exited(i32),
    Killed,
    TimedOut,
    CannotStart(String),
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The environment a hook sees for `t`. Pure.
pub fn environment(t: &Transition) -> Vec<(&'static str, String)> {
    vec![
        ("UNDERSTUDY_GROUP", t.group.clone()),
        ("UNDERSTUDY_MEMBER", t.member.clone()),
        ("UNDERSTUDY_STATE", t.state.to_string()),
        ("UNDERSTUDY_PREVIOUS_STATE", opt(t.previous_state)),
        ("UNDERSTUDY_ADDRESS", opt(t.address)),
        ("UNDERSTUDY_PREVIOUS_ADDRESS", opt(t.previous_address)),
        (
            "UNDERSTUDY_CONFIGURED_ADDRESS",
            t.configured_address.to_string(),
        ),
        (
            "UNDERSTUDY_ACTING_FOR",
            t.acting_for.clone().unwrap_or_default(),
        ),
        (
            "UNDERSTUDY_REPLICA_DIR",
            opt(t.replica_dir.as_ref().map(|p| p.display())),
        ),
    ]
}

async fn log_lines<R: AsyncRead + Unpin>(reader: R, member: String, hook: String, stream: &str) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        info!(member = %member, hook = %hook, stream, "{line}");
    }
}

impl Hooks {
    pub fn new(cfg: HooksConfig) -> Hooks {
        Hooks { cfg }
    }

    fn command_for(&self, state: OperState) -> Option<&Vec<String>> {
        match state {
            OperState::Online => self.cfg.on_online.as_ref(),
            OperState::Standby => self.cfg.on_standby.as_ref(),
            OperState::Offline => self.cfg.on_offline.as_ref(),
            OperState::Unknown => None,
        }
    }

    /// Runs the hook for `t.state`, if one is configured, and waits for it (up to the timeout).
    pub async fn run(&self, t: &Transition) -> HookOutcome {
        self.run_command(self.command_for(t.state), format!("on_{}", t.state), t)
            .await
    }

    /// Runs `on_lease_lost`, if configured: the lease on `t.previous_address` ran out.
    pub async fn run_lease_lost(&self, t: &Transition) -> HookOutcome {
        self.run_command(self.cfg.on_lease_lost.as_ref(), "on_lease_lost".into(), t)
            .await
    }

    async fn run_command(
        &self,
        cmd: Option<&Vec<String>>,
        hook: String,
        t: &Transition,
    ) -> HookOutcome {
        let Some((program, args)) = cmd.and_then(|c| c.split_first()) else {
            return HookOutcome::NotConfigured;
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(environment(t))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                error!(member = %t.member, %hook, %program, error = %e, "cannot start hook");
                return HookOutcome::CannotStart(e.to_string());
            }
        };
        info!(member = %t.member, %hook, %program, "hook started");
        // Output is logged as it comes; a service the hook left running may keep the pipes
        // open, so the readers are not waited for.
        if let Some(out) = child.stdout.take() {
            tokio::spawn(log_lines(out, t.member.clone(), hook.clone(), "stdout"));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(log_lines(err, t.member.clone(), hook.clone(), "stderr"));
        }
        match tokio::time::timeout(self.cfg.timeout, child.wait()).await {
            Ok(Ok(status)) => match status.code() {
                Some(0) => {
                    info!(member = %t.member, %hook, "hook finished");
                    HookOutcome::Exited(0)
                }
                Some(code) => {
                    warn!(member = %t.member, %hook, code, "hook failed");
                    HookOutcome::Exited(code)
                }
                None => {
                    warn!(member = %t.member, %hook, "hook killed by a signal");
                    HookOutcome::Killed
                }
            },
            Ok(Err(e)) => {
                error!(member = %t.member, %hook, error = %e, "cannot wait for hook");
                HookOutcome::CannotStart(e.to_string())
            }
            Err(_) => {
                let _ = child.kill().await;
                error!(member = %t.member, %hook,
                    timeout = %humantime::format_duration(self.cfg.timeout),
                    "hook did not finish in time; killed");
                HookOutcome::TimedOut
            }
        }
    }

    /// How long a hook may run.
    pub fn timeout(&self) -> Duration {
        self.cfg.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn transition(state: OperState) -> Transition {
        Transition {
            group: "g".into(),
            member: "backup-1".into(),
            previous_state: Some(OperState::Standby),
            state,
            previous_address: Some("192.0.2.20".parse::<IpAddr>().expect("ip")),
            address: Some("192.0.2.10".parse::<IpAddr>().expect("ip")),
            configured_address: "192.0.2.20".parse::<IpAddr>().expect("ip"),
            acting_for: Some("main-1".into()),
            replica_dir: Some("/var/lib/understudy/replicas/main-1/current".into()),
            managed: Vec::new(),
            lifetime: None,
        }
    }

    fn hooks(cmd: &[&str], timeout_ms: u64) -> Hooks {
        Hooks::new(HooksConfig {
            on_online: Some(cmd.iter().map(|s| s.to_string()).collect()),
            on_standby: None,
            on_offline: None,
            on_lease_lost: None,
            timeout: Duration::from_millis(timeout_ms),
        })
    }

    #[tokio::test]
    async fn a_hook_sees_the_addresses_and_its_status_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("env");
        let script = format!("env | grep ^UNDERSTUDY_ | sort > {}", out.display());
        let h = hooks(&["sh", "-c", &script], 5000);
        assert_eq!(
            h.run(&transition(OperState::Online)).await,
            HookOutcome::Exited(0)
        );
        let env = std::fs::read_to_string(&out).expect("env written");
        for line in [
            "UNDERSTUDY_ACTING_FOR=main-1",
            "UNDERSTUDY_ADDRESS=192.0.2.10",
            "UNDERSTUDY_CONFIGURED_ADDRESS=192.0.2.20",
            "UNDERSTUDY_MEMBER=backup-1",
            "UNDERSTUDY_PREVIOUS_ADDRESS=192.0.2.20",
            "UNDERSTUDY_PREVIOUS_STATE=standby",
            "UNDERSTUDY_REPLICA_DIR=/var/lib/understudy/replicas/main-1/current",
            "UNDERSTUDY_STATE=online",
        ] {
            assert!(env.lines().any(|l| l == line), "{line} missing in\n{env}");
        }
        assert_eq!(
            h.run(&transition(OperState::Offline)).await,
            HookOutcome::NotConfigured
        );
        let failing = hooks(&["sh", "-c", "echo oops >&2; exit 3"], 5000);
        assert_eq!(
            failing.run(&transition(OperState::Online)).await,
            HookOutcome::Exited(3)
        );
    }

    #[tokio::test]
    async fn a_slow_hook_is_killed_and_a_detached_service_does_not_block() {
        let slow = hooks(&["sleep", "5"], 200);
        let t0 = std::time::Instant::now();
        assert_eq!(
            slow.run(&transition(OperState::Online)).await,
            HookOutcome::TimedOut
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        // A service left running with the hook's stdout still open: the hook itself exited.
        let detached = hooks(&["sh", "-c", "sleep 3 & echo started"], 2000);
        let t0 = std::time::Instant::now();
        assert_eq!(
            detached.run(&transition(OperState::Online)).await,
            HookOutcome::Exited(0)
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        let missing = hooks(&["/nonexistent/hook"], 2000);
        assert!(matches!(
            missing.run(&transition(OperState::Online)).await,
            HookOutcome::CannotStart(_)
        ));
    }
}
