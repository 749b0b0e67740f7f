//! The one process guard: a child process killed (SIGKILL) and reaped when dropped, also when
//! the test fails; with a log file, the log's last lines are printed then. And finding the
//! programs the tests run: a missing one fails the test with what to install, never skips it.
//! Does I/O.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use super::wait::Deadline;

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` as it is set up (its stdio included).
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {name} ({cmd:?}): {e}. Run ./scripts/test, which installs the tools"
            )
        });
        Proc {
            name: name.to_string(),
            child,
            log: None,
        }
    }

    /// Starts `cmd` with no stdin and its stdout and stderr in a new file `log`.
    pub fn spawn_logged(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let out =
            File::create(&log).unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        Proc::spawn(name, cmd).with_log(log)
    }

    /// Names the file where the process logs, printed (its tail) if the test fails.
    pub fn with_log(mut self, log: PathBuf) -> Proc {
        self.log = Some(log);
        self
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Kills the process with SIGKILL (as a crash would) and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails the test, with the log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited early ({status}); its log:\n{}",
                self.name,
                self.log_tail(60)
            );
        }
    }

    /// Waits up to `limit` for the process to exit; kills it after that (and returns None).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Deadline::new(limit, format!("{} to exit", self.name)).every_ms(100);
        while !deadline.passed() {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            deadline.sleep();
        }
        self.kill9();
        None
    }

    /// The whole log ("" without one).
    pub fn log_text(&self) -> String {
        self.log
            .as_deref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            if let Some(log) = &self.log {
                eprintln!(
                    "---- {} log ({}), last lines:\n{}",
                    self.name,
                    log.display(),
                    self.log_tail(40)
                );
            }
        }
    }
}

/// Fails the test, with the log, if any of `procs` has exited.
pub fn assert_all_running(procs: &mut [Proc]) {
    for p in procs {
        p.assert_running();
    }
}

/// Finds `name` on PATH or in the sbin directories (where Debian puts snmptrapd and snmpd).
pub fn program(name: &str, package: &str) -> PathBuf {
    find_program(&[name]).unwrap_or_else(|| {
        panic!("{name} is not installed (Debian package {package}); run ./scripts/test, which installs it")
    })
}

/// The first of `names` on PATH or in the sbin directories.
pub fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from);
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).chain(extra).collect();
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Fails the test with what to install unless `tool args...` runs and exits 0.
pub fn require_tool(tool: &str, args: &[&str], package: &str) {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cannot run `{tool} {}`: this test needs the Debian package {package}. Run \
         ./scripts/test, which installs it (or apt-get install {package})",
        args.join(" ")
    );
}

/// Sends `sig` (`STOP`, `CONT`, ...) to process `pid` with kill(1); fails the test if it cannot.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid} failed");
}
