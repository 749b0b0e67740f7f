//! Helpers for the SNMP integration tests: find net-snmp's tools (a missing tool fails the
//! test and says to run ./scripts/test, never skips it), fetch the standard MIB modules once
//! (as tests/mib.rs does), run the tools isolated from the machine's snmp.conf with our MIB
//! loaded, and start the real `understudy demo` reading its member table, SNMP column
//! included. Does I/O.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const TOOL_HINT: &str =
    "run ./scripts/test, which installs net-snmp's tools and the standard MIB modules";

/// The demo's SNMP credentials (SPEC.md, "Command line").
pub const READ: &str = "public";
pub const WRITE: &str = "private";
pub const V3_USER: &str = "noc";
pub const V3_AUTH: &str = "noc-auth-pass";
pub const V3_PRIV: &str = "noc-priv-pass";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn deps_dir() -> PathBuf {
    repo().join("target").join("test-deps")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "command: {cmd:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Finds a program on PATH (and the sbin directories, where Debian puts snmptrapd).
pub fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from);
    for dir in std::env::split_paths(&path).chain(extra) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} is not installed (Debian package {package}); {TOOL_HINT}");
}

fn has_module(dir: &Path, module: &str) -> bool {
    ["", ".txt", ".mib", ".my"]
        .iter()
        .any(|ext| dir.join(format!("{module}{ext}")).is_file())
}

/// The directory with the standard MIB modules, fetched at most once per test binary.
pub fn std_mibs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("UNDERSTUDY_STD_MIBS").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                let dir = deps_dir().join("mibs");
                let mut cmd = Command::new("bash");
                cmd.arg(repo().join("scripts").join("fetch-std-mibs"))
                    .arg(&dir);
                let out = cmd
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {TOOL_HINT}"));
                assert!(
                    out.status.success(),
                    "scripts/fetch-std-mibs failed; {TOOL_HINT}\n{}",
                    describe(&cmd, &out)
                );
                dir
            }
        };
        for module in ["SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMPv2-MIB"] {
            assert!(
                has_module(&dir, module),
                "standard MIB module {module} is not in {}; {TOOL_HINT}",
                dir.display()
            );
        }
        dir
    })
}

/// `STD:mibs` for `-M`: only these directories, so names resolve through our MIB file.
pub fn mib_path() -> String {
    let dirs = [std_mibs().to_path_buf(), repo().join("mibs")];
    std::env::join_paths(dirs)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| panic!("MIB directories cannot be joined: {e}"))
}

/// A net-snmp command that reads no snmp.conf of the machine or the user, with the standard
/// modules and UNDERSTUDY-MIB loaded.
pub fn netsnmp(program: &str) -> Command {
    let package = if program == "snmptrapd" {
        "snmptrapd"
    } else {
        "snmp"
    };
    let conf = deps_dir().join("snmp-conf");
    let persistent = deps_dir().join(format!("snmp-persistent-{}", std::process::id()));
    for d in [&conf, &persistent] {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    }
    let mut cmd = Command::new(tool(program, package));
    cmd.env_remove("MIBS")
        .env_remove("MIBDIRS")
        .env("SNMPCONFPATH", &conf)
        .env("SNMP_PERSISTENT_DIR", &persistent)
        .arg("-M")
        .arg(mib_path())
        .args(["-m", "SNMPv2-MIB:UNDERSTUDY-MIB"]);
    cmd
}

/// Runs a net-snmp client; returns (success, stdout, stderr).
pub fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {TOOL_HINT}"));
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Runs a net-snmp client that must succeed and print no warning; returns stdout.
pub fn run_ok(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let (ok, out, err) = run(cmd);
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("Created directory:"))
        .collect();
    assert!(
        ok && err.is_empty(),
        "{shown} failed or complained\nstdout:\n{out}\nstderr:\n{}",
        err.join("\n")
    );
    out
}

/// Arguments for SNMPv2c with `community`, short timeouts and no retries (a test that waits
/// for a timeout waits one second).
pub fn v2c(community: &str) -> Vec<String> {
    ["-v2c", "-c", community, "-t", "5", "-r", "1"]
        .map(String::from)
        .to_vec()
}

pub fn v1(community: &str) -> Vec<String> {
    ["-v1", "-c", community, "-t", "5", "-r", "1"]
        .map(String::from)
        .to_vec()
}

/// SNMPv3 authPriv with SHA-256 and AES-128 as user `noc`.
pub fn v3(auth: &str) -> Vec<String> {
    [
        "-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA-256", "-A", auth, "-x", "AES", "-X",
        V3_PRIV, "-t", "5", "-r", "1",
    ]
    .map(String::from)
    .to_vec()
}

/// A net-snmp client command against `agent`.
pub fn snmp(program: &str, auth: &[String], agent: &str, args: &[&str]) -> Command {
    let mut c = netsnmp(program);
    c.args(auth).arg(agent).args(args);
    c
}

/// A child process killed when dropped.
#[derive(Debug)]
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A member of a running demo: name, HTTP URL, SNMP address.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub http: String,
    pub snmp: String,
}

/// `understudy demo` started by the test on ephemeral ports.
#[derive(Debug)]
pub struct Demo {
    pub proc: Proc,
    pub members: Vec<Member>,
    pub state_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Demo {
    pub fn start(extra: &[&str]) -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let state_dir = dir.path().join("state");
        Demo::start_in(dir, state_dir, extra)
    }

    /// Stops the demo (SIGKILL) and starts it again on the same state directory.
    pub fn restart(self, extra: &[&str]) -> Demo {
        let Demo {
            proc,
            state_dir,
            _dir,
            ..
        } = self;
        drop(proc);
        Demo::start_in(_dir, state_dir, extra)
    }

    fn start_in(dir: tempfile::TempDir, state_dir: PathBuf, extra: &[&str]) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_understudy"));
        cmd.args([
            "demo",
            "--http-port",
            "0",
            "--snmp-port",
            "0",
            "--state-dir",
        ])
        .arg(&state_dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start understudy demo");
        let stdout = child.stdout.take().expect("stdout");
        let proc = Proc(child);
        let mut reader = BufReader::new(stdout);
        let mut members = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read demo output");
            assert!(n > 0, "the demo exited before printing its members");
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
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        assert!(
            members.iter().all(|m| m.snmp.starts_with("127.0.0.1:")),
            "the demo printed no SNMP address: {members:?}"
        );
        Demo {
            proc,
            members,
            state_dir,
            _dir: dir,
        }
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("no member {name} in {:?}", self.members))
    }
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value part of a one-line `snmpget` answer (`... = TYPE: value`).
pub fn value_of(line: &str) -> &str {
    line.split_once(" = ").map_or("", |(_, v)| v.trim())
}

/// `snmpget` of one object with the read community; returns its value text.
pub fn get(agent: &str, object: &str) -> String {
    let out = run_ok(snmp("snmpget", &v2c(READ), agent, &[object]));
    value_of(out.lines().next().unwrap_or("")).to_string()
}

/// A counter's value from `Counter32: N`.
pub fn counter(agent: &str, object: &str) -> u64 {
    let v = get(agent, object);
    v.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{object} is not a counter: {v:?}"))
}

/// Waits until backup-1 (row 2) has replicated main-1: the takeover precondition.
pub fn wait_replicated(agent: &str, backup_row: u32) {
    let object = format!("UNDERSTUDY-MIB::rgMemberLastReplicationResult.{backup_row}");
    wait_for(Duration::from_secs(20), "the first replication", || {
        (get(agent, &object) == "INTEGER: success(2)").then_some(())
    });
}

/// A free UDP port on 127.0.0.1 (bound and released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// The body of `GET url` (`http://HOST:PORT/path`), over a plain TCP connection.
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut s = std::net::TcpStream::connect(host).unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let resp = text(&buf);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {url}: {head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
