//! The one demo launcher: `understudy demo --http-port 0` (so every member's HTTP and SNMP
//! ports are ephemeral) on a state directory of the test, reading the member table it prints:
//! each member's name, HTTP URL and SNMP address. Does I/O.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::process::Proc;

/// The demo's API token (SPEC.md, "Command line").
pub const TOKEN: &str = "demo-token";

/// A member of a running demo.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `127.0.0.1:PORT` (UDP)
    pub snmp: String,
}

/// `understudy demo` started by the test.
#[derive(Debug)]
pub struct Demo {
    pub proc: Proc,
    /// In member order: `main-1..N`, then `backup-1..M`.
    pub members: Vec<Member>,
    pub state_dir: PathBuf,
    log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the demo with the `extra` arguments; its log goes to the test's stderr.
    pub fn start(extra: &[&str]) -> Demo {
        Demo::launch(tempfile::tempdir().expect("tempdir"), None, extra)
    }

    /// As [`Demo::start`], logging at `info` (stdout and stderr) to `log`, whose tail is
    /// printed if the test fails.
    pub fn start_logged(extra: &[&str], log: PathBuf) -> Demo {
        Demo::launch(tempfile::tempdir().expect("tempdir"), Some(log), extra)
    }

    /// Stops the demo (SIGKILL) and starts it again on the same state directory.
    pub fn restart(self, extra: &[&str]) -> Demo {
        let Demo {
            proc, log, _dir, ..
        } = self;
        drop(proc);
        Demo::launch(_dir, log, extra)
    }

    fn launch(dir: tempfile::TempDir, log: Option<PathBuf>, extra: &[&str]) -> Demo {
        let state_dir = dir.path().join("state");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_understudy"));
        cmd.args(["demo", "--http-port", "0", "--state-dir"])
            .arg(&state_dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut sink: Box<dyn Write + Send> = match &log {
            Some(path) => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
                cmd.env("RUST_LOG", "info")
                    .stderr(file.try_clone().expect("log file"));
                Box::new(file)
            }
            None => {
                cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
                Box::new(std::io::sink())
            }
        };
        let mut proc = Proc::spawn("understudy demo", &mut cmd);
        if let Some(path) = &log {
            proc = proc.with_log(path.clone());
        }
        let stdout = proc.child_mut().stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut members = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read demo output");
            assert!(n > 0, "the demo exited before printing its members");
            let _ = sink.write_all(line.as_bytes());
            // MEMBER ROLE HTTP SNMP ADDRESS EXTRA
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() >= 4 && cols[2].starts_with("http://127.0.0.1:") {
                members.push(Member {
                    name: cols[0].to_string(),
                    http: cols[2].to_string(),
                    snmp: cols[3].to_string(),
                });
            }
            if line.contains("Ctrl-C stops the demo") {
                break;
            }
        }
        // Keep draining stdout (into the log, if any) so the demo never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut rest = String::new();
            while reader.read_line(&mut rest).is_ok_and(|n| n > 0) {
                let _ = sink.write_all(rest.as_bytes());
                rest.clear();
            }
        });
        assert!(
            !members.is_empty() && members.iter().all(|m| m.snmp.starts_with("127.0.0.1:")),
            "the demo printed no member table with SNMP addresses: {members:?}"
        );
        Demo {
            proc,
            members,
            state_dir,
            log,
            _dir: dir,
        }
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name} in {:?}", self.members))
    }

    /// The HTTP URL of member `name`.
    pub fn url(&self, name: &str) -> String {
        self.member(name).http.clone()
    }
}
