//! net-snmp's tools for the SNMP tests: found on PATH (a missing tool fails the test and says
//! to run ./scripts/test, never skips it), run isolated from the machine's snmp.conf with the
//! standard MIB modules (fetched once) and UNDERSTUDY-MIB loaded. Does I/O.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::process::program;
use super::wait::wait_for;
use super::{describe, repo, text};

pub const TOOL_HINT: &str =
    "run ./scripts/test, which installs net-snmp's tools and the standard MIB modules";

/// The demo's SNMP credentials (SPEC.md, "Command line").
pub const READ: &str = "public";
pub const WRITE: &str = "private";
pub const V3_USER: &str = "noc";
pub const V3_AUTH: &str = "noc-auth-pass";
pub const V3_PRIV: &str = "noc-priv-pass";

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

/// Where the SNMP tests keep fetched modules and net-snmp's files: `target/test-deps`.
pub fn deps_dir() -> PathBuf {
    repo().join("target").join("test-deps")
}

/// Isolates a net-snmp `cmd` from the machine's and the user's configuration: no MIBS or
/// MIBDIRS from the environment, an empty configuration directory, and its persistent files
/// in `persistent`.
pub fn isolate<'a>(cmd: &'a mut Command, persistent: &Path) -> &'a mut Command {
    let conf = deps_dir().join("snmp-conf");
    for d in [
        conf.clone(),
        persistent.join("mib_indexes"),
        persistent.join("cert_indexes"),
    ] {
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    }
    cmd.env_remove("MIBS")
        .env_remove("MIBDIRS")
        .env("SNMPCONFPATH", &conf)
        .env("SNMP_PERSISTENT_DIR", persistent)
}

/// A net-snmp command, isolated, with the standard modules and UNDERSTUDY-MIB loaded.
pub fn netsnmp(name: &str) -> Command {
    netsnmp_in(None, name)
}

/// As [`netsnmp`], run inside network namespace `ns` when one is given (`ip netns exec`).
pub fn netsnmp_in(ns: Option<&str>, name: &str) -> Command {
    let package = if name == "snmptrapd" {
        "snmptrapd"
    } else {
        "snmp"
    };
    let tool = program(name, package);
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(tool);
            c
        }
        None => Command::new(tool),
    };
    let persistent = deps_dir().join(format!("snmp-persistent-{}", std::process::id()));
    isolate(&mut cmd, &persistent)
        .arg("-M")
        .arg(mib_path())
        .args(["-m", "SNMPv2-MIB:UNDERSTUDY-MIB"]);
    cmd
}

/// stderr without net-snmp's first-run notices about its cache directories.
pub fn without_notices(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("Created directory:"))
        .collect::<Vec<_>>()
        .join("\n")
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
    let err = without_notices(&err);
    assert!(
        ok && err.is_empty(),
        "{shown} failed or complained\nstdout:\n{out}\nstderr:\n{err}"
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
    v3_with(auth, V3_PRIV)
}

/// As [`v3`] with the privacy pass phrase `privacy` (an agent configured with secret files
/// of its own: `run` refuses the demo's).
pub fn v3_with(auth: &str, privacy: &str) -> Vec<String> {
    [
        "-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA-256", "-A", auth, "-x", "AES", "-X",
        privacy, "-t", "5", "-r", "1",
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

/// `snmpset` of the INTEGER `object` to `value`; returns (success, stdout, stderr).
pub fn set(auth: &[String], agent: &str, object: &str, value: &str) -> (bool, String, String) {
    run(snmp("snmpset", auth, agent, &[object, "i", value]))
}

/// As [`set`], which must succeed (`what` names the SET if it does not); returns stdout.
pub fn set_ok(what: &str, auth: &[String], agent: &str, object: &str, value: &str) -> String {
    let (ok, out, err) = set(auth, agent, object, value);
    assert!(ok, "{what}\nstdout: {out}\nstderr: {err}");
    out
}

/// The value part of a one-line `snmpget` answer (`... = TYPE: value`).
pub fn value_of(line: &str) -> &str {
    line.split_once(" = ").map_or("", |(_, v)| v.trim())
}

/// `snmpget` of one object with the read community; returns its value text.
pub fn get(agent: &str, object: &str) -> String {
    get_as(&v2c(READ), agent, object)
}

/// `snmpget` of one object with the credentials `auth`; returns its value text.
pub fn get_as(auth: &[String], agent: &str, object: &str) -> String {
    let out = run_ok(snmp("snmpget", auth, agent, &[object]));
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

/// Waits until `snmpget` of `object` on `agent` (the read community) gives `want`.
pub fn wait_value(limit: Duration, what: &str, (agent, object): (&str, &str), want: &str) {
    wait_for(limit, what, || (get(agent, object) == want).then_some(()));
}

/// Waits until the Backup in row `backup_row` has replicated its Main (the takeover
/// precondition), read with the read community.
pub fn wait_replicated(agent: &str, backup_row: u32) {
    wait_replicated_as(&v2c(READ), agent, backup_row);
}

/// As [`wait_replicated`], read with the credentials `auth`.
pub fn wait_replicated_as(auth: &[String], agent: &str, backup_row: u32) {
    let object = format!("UNDERSTUDY-MIB::rgMemberLastReplicationResult.{backup_row}");
    wait_for(Duration::from_secs(20), "the first replication", || {
        (get_as(auth, agent, &object) == "INTEGER: success(2)").then_some(())
    });
}
