//! A plant of three servers made of network namespaces, for the tests that move real
//! addresses: `main` and `backup` (one `understudy run` each, `linux` address backend) and
//! `client`, which holds the bridge of the plant network. A second, separate heartbeat network
//! joins main and backup directly. Every address used lives only inside these namespaces; the
//! namespaces (and everything in them) are removed when the [`Plant`] is dropped, failure
//! included. Needs root and iproute2: without them the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::http::{all_heard, member};
use super::process::Proc;
use super::wait::Deadline;

/// Plant network (inside the namespaces only).
pub const MAIN_HOST: &str = "192.0.2.1";
pub const BACKUP_HOST: &str = "192.0.2.2";
pub const CLIENT_HOST: &str = "192.0.2.100";
/// Heartbeat network (main <-> backup only).
pub const MAIN_HB: &str = "198.51.100.1";
pub const BACKUP_HB: &str = "198.51.100.2";
/// Quorum network (main and backup <-> the etcd namespace; inside the namespaces only).
pub const MAIN_Q: &str = "203.0.113.1";
pub const BACKUP_Q: &str = "203.0.113.2";
pub const ETCD_HOST: &str = "203.0.113.100";
pub const ETCD_PORT: u16 = 2379;
/// `failover_after` of a plant with a quorum source: at least lease (1 s) + kernel slack
/// (0.4 s) + 3 heartbeat intervals (1.5 s), and above the etcd session TTL (2 s).
pub const QUORUM_FAILOVER_AFTER: Duration = Duration::from_secs(3);
/// Service addresses the agents move.
pub const MAIN_SERVICE: &str = "192.0.2.10";
pub const MAIN_EXTRA: &str = "192.0.2.110";
pub const BACKUP_SERVICE: &str = "192.0.2.20";
pub const SERVICE_PORT: u16 = 8080;
pub const AGENT_PORT: u16 = 9400;
pub const TOKEN: &str = "netns-token";
/// The agents' SNMP port after [`Plant::enable_snmp`], and its read-write community.
pub const SNMP_PORT: u16 = 1161;
pub const SNMP_COMMUNITY: &str = "netns-write";

/// The addresses the agents move, and the client's, in one address family.
#[derive(Debug, Clone, Copy)]
pub struct Addrs {
    pub service: &'static str,
    pub extra: &'static str,
    pub backup_service: &'static str,
    pub prefix: u8,
    pub client: &'static str,
}

pub const V4: Addrs = Addrs {
    service: MAIN_SERVICE,
    extra: MAIN_EXTRA,
    backup_service: BACKUP_SERVICE,
    prefix: 24,
    client: CLIENT_HOST,
};

/// IPv6 service addresses (documentation prefix, inside the namespaces only); the agents
/// still talk over the IPv4 host addresses.
pub const V6: Addrs = Addrs {
    service: "2001:db8::10",
    extra: "2001:db8::110",
    backup_service: "2001:db8::20",
    prefix: 64,
    client: "2001:db8::100",
};

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn must(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ip -n NS addr add CIDR dev DEV [FLAGS...]`, which must succeed.
pub fn add_address(ns: &str, cidr: &str, dev: &str, flags: &[&str]) {
    let mut args = vec!["ip", "-n", ns, "addr", "add", cidr, "dev", dev];
    args.extend_from_slice(flags);
    must(&args);
}

/// The addresses configured on `dev` in namespace `ns` (`ip -o addr show`), without prefix.
pub fn addresses_in(ns: &str, dev: &str) -> Vec<String> {
    let out = run(&["ip", "-n", ns, "-o", "addr", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            words
                .next()
                .map(|a| a.split('/').next().unwrap_or(a).to_string())
        })
        .collect()
}

/// Moves the calling thread into network namespace `ns` (made by `ip netns add`): the sockets
/// it opens from then on live in the plant. Only that thread moves.
pub fn enter_netns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .unwrap_or_else(|e| panic!("cannot enter network namespace {ns}: {e}"));
}

/// Fails the test (never skips it) when it cannot build namespaces here.
pub fn require_root_and_ip() {
    let uid = Command::new("id").arg("-u").output().map(|o| o.stdout);
    let root = uid.is_ok_and(|u| String::from_utf8_lossy(&u).trim() == "0");
    assert!(
        root,
        "this test builds network namespaces and moves addresses: run it as root \
         (./scripts/test does, in CI)"
    );
    let ip = Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "this test needs the `ip` command (Debian package iproute2; ./scripts/test installs it)"
    );
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "this test needs curl (./scripts/test installs it)"
    );
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "this test's service responder needs /usr/bin/python3 (Debian package python3)"
    );
}

/// The three namespaces and the files of the two agents.
#[derive(Debug)]
pub struct Plant {
    pub main: String,
    pub backup: String,
    pub client: String,
    pub dir: tempfile::TempDir,
    pub addrs: Addrs,
}

const RESPONDER: &str = r#"
import http.server, os, socket, sys
member, addr, port, data = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body = open(os.path.join(data, 'sample.txt')).read()
        except OSError as e:
            body = 'no data: %s\n' % e
        out = ('%s\n%s' % (member, body)).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
class S(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ':' in addr else socket.AF_INET
S((addr, port), H).serve_forever()
"#;

/// The hook: on online, (re)start the responder on the service address, serving the replica
/// of the Main this member acts for, or its own data; otherwise stop it.
const HOOK: &str = r#"#!/bin/sh
run="$1"; own_data="$2"
pidfile="$run/responder.pid"
if [ -f "$pidfile" ]; then kill -9 "$(cat "$pidfile")" 2>/dev/null; rm -f "$pidfile"; fi
echo "$(date +%s.%N) $UNDERSTUDY_MEMBER $UNDERSTUDY_PREVIOUS_STATE->$UNDERSTUDY_STATE address=$UNDERSTUDY_ADDRESS previous=$UNDERSTUDY_PREVIOUS_ADDRESS acting_for=$UNDERSTUDY_ACTING_FOR replica=$UNDERSTUDY_REPLICA_DIR" >> "$run/hooks.log"
if [ "$UNDERSTUDY_STATE" = online ]; then
  data="${UNDERSTUDY_REPLICA_DIR:-$own_data}"
  setsid /usr/bin/python3 "$run/../../responder.py" "$UNDERSTUDY_MEMBER" "$UNDERSTUDY_ADDRESS" 8080 "$data" </dev/null >>"$run/responder.log" 2>&1 &
  echo $! > "$pidfile"
fi
"#;

impl Plant {
    /// Builds the namespaces and networks, and writes both agents' configuration.
    /// `tag` keeps two tests' namespace names apart.
    pub fn build(tag: &str, main_auto_failover: bool) -> Plant {
        Plant::build_with(tag, main_auto_failover, V4)
    }

    /// As [`Plant::build`], with the service addresses of `addrs`.
    pub fn build_with(tag: &str, main_auto_failover: bool, addrs: Addrs) -> Plant {
        require_root_and_ip();
        let pid = std::process::id();
        let name = |role: &str| format!("us{tag}{pid}-{role}");
        let plant = Plant {
            main: name("m"),
            backup: name("b"),
            client: name("c"),
            dir: tempfile::tempdir().expect("tempdir"),
            addrs,
        };
        remove_leftovers(tag);
        for ns in [&plant.main, &plant.backup, &plant.client] {
            let _ = run(&["ip", "netns", "del", ns]);
            must(&["ip", "netns", "add", ns]);
            must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let (m, b, c) = (&plant.main, &plant.backup, &plant.client);
        // Plant network: a bridge in the client's namespace, one port per server.
        must(&["ip", "-n", c, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", c, "link", "set", "br0", "up"]);
        add_address(c, &format!("{CLIENT_HOST}/24"), "br0", &[]);
        if addrs.client != CLIENT_HOST {
            let a = format!("{}/{}", addrs.client, addrs.prefix);
            add_address(c, &a, "br0", &["nodad"]);
        }
        for (ns, port, host) in [(m, "mlan", MAIN_HOST), (b, "blan", BACKUP_HOST)] {
            must(&[
                "ip", "-n", ns, "link", "add", "lan", "type", "veth", "peer", "name", port,
                "netns", c,
            ]);
            must(&["ip", "-n", c, "link", "set", port, "master", "br0"]);
            must(&["ip", "-n", c, "link", "set", port, "up"]);
            add_address(ns, &format!("{host}/24"), "lan", &[]);
            must(&["ip", "-n", ns, "link", "set", "lan", "up"]);
        }
        // Heartbeat network: a direct link between main and backup.
        must(&[
            "ip", "-n", m, "link", "add", "hb", "type", "veth", "peer", "name", "hb", "netns", b,
        ]);
        for (ns, host) in [(m, MAIN_HB), (b, BACKUP_HB)] {
            add_address(ns, &format!("{host}/24"), "hb", &[]);
            must(&["ip", "-n", ns, "link", "set", "hb", "up"]);
        }
        plant.write_configs(main_auto_failover);
        plant
    }

    fn write_configs(&self, main_auto_failover: bool) {
        let d = self.dir.path();
        super::group::write(&d.join("api-token"), &format!("{TOKEN}\n"));
        super::group::write(&d.join("group-secret"), "netns-group-secret\n");
        std::fs::write(d.join("responder.py"), RESPONDER).expect("responder");
        std::fs::write(d.join("hook.sh"), HOOK).expect("hook");
        let members = format!(
            r#"
[[members]]
name = "main-1"
role = "main"
address = "{service}"
extra_address = "{extra}"
peer_urls = {{ lan = "http://{MAIN_HOST}:{AGENT_PORT}", hb = "http://{MAIN_HB}:{AGENT_PORT}" }}
auto_failover = {main_auto_failover}

[[members]]
name = "backup-1"
role = "backup"
address = "{backup_service}"
peer_urls = {{ lan = "http://{BACKUP_HOST}:{AGENT_PORT}", hb = "http://{BACKUP_HB}:{AGENT_PORT}" }}
"#,
            service = self.addrs.service,
            extra = self.addrs.extra,
            backup_service = self.addrs.backup_service,
        );
        for member in ["main-1", "backup-1"] {
            let base = d.join(member);
            let run = base.join("run");
            let data = base.join("data");
            std::fs::create_dir_all(&run).expect("mkdir");
            std::fs::create_dir_all(&data).expect("mkdir");
            std::fs::write(data.join("sample.txt"), format!("data of {member}\n")).expect("data");
            let hook = |_: &str| {
                format!(
                    r#"["/bin/sh", "{}", "{}", "{}"]"#,
                    d.join("hook.sh").display(),
                    run.display(),
                    data.display()
                )
            };
            let publish = if member == "main-1" {
                format!("data_dir = \"{}\"\n", data.display())
            } else {
                String::new()
            };
            let cfg = format!(
                r#"group = "netns"
member = "{member}"
state_dir = "{state}"
heartbeat_interval = "500ms"
failover_after = "2s"

[http]
listen = "0.0.0.0:{AGENT_PORT}"
token_file = "../api-token"

[peer]
secret_file = "../group-secret"
request_timeout = "500ms"

[address]
backend = "linux"
interface = "lan"
prefix_len = {prefix}
garp_count = 5
garp_interval = "250ms"

[hooks]
on_online = {on}
on_standby = {off}
on_offline = {off}
timeout = "5s"

[replication]
{publish}interval = "5s"
{members}"#,
                state = base.join("state").display(),
                prefix = self.addrs.prefix,
                on = hook("online"),
                off = hook("off"),
            );
            std::fs::write(base.join("agent.toml"), cfg).expect("config");
        }
    }

    /// Gives both agents an SNMP agent on [`SNMP_PORT`] (every address) with the read-write
    /// community [`SNMP_COMMUNITY`]: call it before starting them.
    pub fn enable_snmp(&self) {
        let d = self.dir.path();
        super::group::write(&d.join("snmp-community"), &format!("{SNMP_COMMUNITY}\n"));
        let section = format!(
            r#"
[snmp]
listen = "0.0.0.0:{SNMP_PORT}"

[[snmp.communities]]
name = "netns-write"
secret_file = "../snmp-community"
access = "read-write"
"#
        );
        for member in ["main-1", "backup-1"] {
            let cfg = d.join(member).join("agent.toml");
            let mut text = std::fs::read_to_string(&cfg).expect("config");
            text.push_str(&section);
            std::fs::write(&cfg, text).expect("config");
        }
    }

    /// The etcd namespace's name (it exists after [`Plant::enable_quorum`]).
    pub fn quorum_ns(&self) -> String {
        format!("{}q", self.main.trim_end_matches('m'))
    }

    /// Adds a quorum source: a namespace with a one-node etcd (Debian's etcd-server) on a
    /// bridge of its own, one port from each server (`qnet` there), so the quorum network
    /// can be cut apart from the heartbeat paths; gives both agents a `[coordination]`
    /// section and `failover_after` [`QUORUM_FAILOVER_AFTER`]. Call before starting them;
    /// returns the etcd process's guard once it answers.
    pub fn enable_quorum(&self) -> Proc {
        let q = self.quorum_ns();
        let _ = run(&["ip", "netns", "del", &q]);
        must(&["ip", "netns", "add", &q]);
        must(&["ip", "-n", &q, "link", "set", "lo", "up"]);
        must(&["ip", "-n", &q, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &q, "link", "set", "br0", "up"]);
        add_address(&q, &format!("{ETCD_HOST}/24"), "br0", &[]);
        for (ns, port, host) in [(&self.main, "qm", MAIN_Q), (&self.backup, "qb", BACKUP_Q)] {
            must(&[
                "ip", "-n", ns, "link", "add", "qnet", "type", "veth", "peer", "name", port,
                "netns", &q,
            ]);
            must(&["ip", "-n", &q, "link", "set", port, "master", "br0"]);
            must(&["ip", "-n", &q, "link", "set", port, "up"]);
            add_address(ns, &format!("{host}/24"), "qnet", &[]);
            must(&["ip", "-n", ns, "link", "set", "qnet", "up"]);
        }
        let etcd = self.start_etcd();
        let d = self.dir.path();
        let client_url = format!("http://{ETCD_HOST}:{ETCD_PORT}");
        let section = format!(
            r#"
[coordination]
backend = "etcd"
endpoints = ["{client_url}"]
session_ttl = "2s"
request_timeout = "500ms"
"#
        );
        for member in ["main-1", "backup-1"] {
            let cfg = d.join(member).join("agent.toml");
            let text = std::fs::read_to_string(&cfg).expect("config");
            let text = text.replace(
                "failover_after = \"2s\"",
                &format!(
                    "failover_after = \"{}ms\"",
                    QUORUM_FAILOVER_AFTER.as_millis()
                ),
            );
            std::fs::write(&cfg, text + &section).expect("config");
        }
        etcd
    }

    /// Starts (or starts again: same data directory) the plant's etcd and waits until it
    /// answers; returns its guard.
    pub fn start_etcd(&self) -> Proc {
        let q = self.quorum_ns();
        let d = self.dir.path();
        let client_url = format!("http://{ETCD_HOST}:{ETCD_PORT}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("etcd.log"))
            .expect("etcd log");
        let etcd = Proc::spawn(
            "etcd in the quorum namespace",
            Command::new("ip")
                .args(["netns", "exec", &q, "etcd", "--name", "q", "--data-dir"])
                .arg(d.join("etcd-data"))
                .args([
                    "--listen-client-urls",
                    &client_url,
                    "--advertise-client-urls",
                    &client_url,
                    "--listen-peer-urls",
                    "http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls",
                    "http://127.0.0.1:2380",
                    "--initial-cluster",
                    "q=http://127.0.0.1:2380",
                    "--heartbeat-interval",
                    "50",
                    "--election-timeout",
                    "500",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log)),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let health = self.exec(
                &self.main,
                &["etcdctl", "--endpoints", &client_url, "endpoint", "health"],
            );
            if health.status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd did not become healthy in 20 s: {}\n{}",
                String::from_utf8_lossy(&health.stderr),
                std::fs::read_to_string(d.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        etcd
    }

    /// The service address's holder as etcd records it (`etcdctl get`), if any.
    pub fn etcd_holder(&self, address: &str) -> Option<String> {
        let out = self.exec(
            &self.quorum_ns(),
            &[
                "etcdctl",
                "--endpoints",
                &format!("http://{ETCD_HOST}:{ETCD_PORT}"),
                "get",
                "--print-value-only",
                &format!("/understudy/netns/address/{address}"),
            ],
        );
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !v.is_empty()).then_some(v)
    }

    pub fn ns_of(&self, member: &str) -> &str {
        if member == "main-1" {
            &self.main
        } else {
            &self.backup
        }
    }

    pub fn log_of(&self, member: &str) -> PathBuf {
        self.dir.path().join(member).join("agent.log")
    }

    /// Starts `understudy run` for `member` inside its namespace (log appended to agent.log;
    /// `ip netns exec` execs the agent, so the guard's SIGKILL reaches the agent itself).
    pub fn start(&self, member: &str) -> Proc {
        let base = self.dir.path().join(member);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_of(member))
            .expect("log");
        Proc::spawn(
            "understudy run in its namespace",
            Command::new("ip")
                .args(["netns", "exec", self.ns_of(member)])
                .arg(env!("CARGO_BIN_EXE_understudy"))
                .args(["run", "--config"])
                .arg(base.join("agent.toml"))
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log)),
        )
    }

    /// Starts both agents (the Backup first), waits until they have met and replicated and
    /// the service answers from the Main; returns the guards of (main, backup).
    pub fn start_group(&self) -> (Proc, Proc) {
        let backup = self.start("backup-1");
        let main = self.start("main-1");
        self.wait_ready();
        self.wait_service_from("main-1", Duration::from_secs(10));
        (main, backup)
    }

    /// Kills `member`'s service responder with SIGKILL (as a crash would).
    pub fn kill_responder(&self, member: &str) {
        let pidfile = self.dir.path().join(member).join("run/responder.pid");
        if let Ok(pid) = std::fs::read_to_string(pidfile) {
            let _ = run(&["kill", "-9", pid.trim()]);
        }
    }

    /// Runs a command inside a namespace.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        run(&all)
    }

    /// `curl -sf ARGS...` inside `ns`; the body when the answer is 2xx.
    fn curl_ok(&self, ns: &str, args: &[&str]) -> Option<String> {
        let mut all = vec!["curl", "-sf"];
        all.extend_from_slice(args);
        let out = self.exec(ns, &all);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// GET from the client's namespace; the body when the answer is 2xx.
    pub fn client_get(&self, url: &str) -> Option<String> {
        self.curl_ok(&self.client, &["-m", "1", url])
    }

    /// A GET to `member`'s agent from inside its own namespace (works while the plant network
    /// is cut); the body when the answer is 2xx.
    pub fn local_get(&self, member: &str, route: &str) -> Option<String> {
        let url = format!("http://127.0.0.1:{AGENT_PORT}{route}");
        self.curl_ok(self.ns_of(member), &["-m", "1", &url])
    }

    /// The group as `member`'s agent shows it, fetched inside its own namespace.
    pub fn local_group(&self, member: &str) -> Option<serde_json::Value> {
        self.local_get(member, "/api/v1/group")
            .and_then(|b| serde_json::from_str(&b).ok())
    }

    /// A request with the API token from the client's namespace: (HTTP status, body).
    pub fn client_send(&self, method: &str, url: &str, body: &str) -> (u16, String) {
        let auth = format!("Authorization: Bearer {TOKEN}");
        let out = self.exec(
            &self.client,
            &[
                "curl",
                "-s",
                "-m",
                "20",
                "-X",
                method,
                "-H",
                &auth,
                "-d",
                body,
                "-w",
                "\n%{http_code}",
                url,
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// POSTs `body` to `/api/v1/{route}` of the agent on `host` from the client's namespace
    /// (it must be answered 200), then waits until the service answers from `member`. Returns
    /// the time from the command to that answer.
    pub fn command_until_served_by(
        &self,
        host: &str,
        route: &str,
        body: &str,
        member: &str,
    ) -> Duration {
        let t0 = Instant::now();
        let url = format!("http://{host}:{AGENT_PORT}/api/v1/{route}");
        let (status, answer) = self.client_send("POST", &url, body);
        assert_eq!(status, 200, "{route} refused: {answer}\n{}", self.logs());
        self.wait_service_from(member, Duration::from_secs(10)) - t0
    }

    /// Sets the Main's auto-failover flag through the Main's API (from the client's namespace).
    pub fn set_auto_failover(&self, on: bool) {
        let (status, body) = self.client_send(
            "PUT",
            &format!("http://{MAIN_HOST}:{AGENT_PORT}/api/v1/members/main-1/auto-failover"),
            &format!(r#"{{"enabled":{on}}}"#),
        );
        assert_eq!(status, 200, "{body}");
    }

    /// The group as `member`'s agent shows it, fetched from the client's namespace.
    pub fn group(&self, member: &str) -> Option<serde_json::Value> {
        let host = if member == "main-1" {
            MAIN_HOST
        } else {
            BACKUP_HOST
        };
        self.client_get(&format!("http://{host}:{AGENT_PORT}/api/v1/group"))
            .and_then(|b| serde_json::from_str(&b).ok())
    }

    /// Who answers on the service address (first line of the responder's answer). The client
    /// gives a connection 250 ms (then tries again), so a SYN sent to a server that no longer
    /// holds the address costs at most that.
    pub fn service_answer(&self) -> Option<String> {
        let url = if self.addrs.service.contains(':') {
            format!("http://[{}]:{SERVICE_PORT}/", self.addrs.service)
        } else {
            format!("http://{}:{SERVICE_PORT}/", self.addrs.service)
        };
        self.curl_ok(
            &self.client,
            &["--connect-timeout", "0.25", "-m", "1", &url],
        )
    }

    /// The member whose responder answers on the service address (the answer's first line).
    pub fn served_by(&self) -> Option<String> {
        self.service_answer()
            .and_then(|a| a.lines().next().map(str::to_string))
    }

    /// Addresses configured on `dev` in `ns`.
    pub fn addresses(&self, ns: &str, dev: &str) -> Vec<String> {
        addresses_in(ns, dev)
    }

    /// Whether `ns` holds `address` on its plant interface.
    pub fn holds(&self, ns: &str, address: &str) -> bool {
        self.addresses(ns, "lan").iter().any(|a| a == address)
    }

    /// Asserts, for each (namespace, address, held), whether the namespace holds the address
    /// on its plant interface.
    pub fn assert_holds(&self, expected: &[(&str, &str, bool)]) {
        for (ns, address, held) in expected {
            let addrs = self.addresses(ns, "lan");
            assert_eq!(
                addrs.iter().any(|a| a == address),
                *held,
                "{ns} holds {address}: {addrs:?}"
            );
        }
    }

    /// Sets a link up or down in a namespace.
    pub fn link(&self, ns: &str, dev: &str, up: bool) {
        must(&[
            "ip",
            "-n",
            ns,
            "link",
            "set",
            dev,
            if up { "up" } else { "down" },
        ]);
    }

    /// The agents' logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for m in ["main-1", "backup-1"] {
            let text = std::fs::read_to_string(self.log_of(m)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s += &format!("--- {m} (last lines)\n");
            for l in tail.into_iter().rev() {
                s += l;
                s.push('\n');
            }
            let hooks = std::fs::read_to_string(self.dir.path().join(m).join("run/hooks.log"))
                .unwrap_or_default();
            s += &format!("--- {m} hooks\n{hooks}");
        }
        s
    }

    /// Polls `f` every 20 ms until it returns Some; panics with the logs after `limit`.
    pub fn wait<T>(&self, limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
        Deadline::new(limit, what).poll_with(|| self.logs(), f)
    }

    /// Waits until the service address answers from `member`; returns when.
    pub fn wait_service_from(&self, member: &str, limit: Duration) -> Instant {
        self.wait(
            limit,
            &format!("the service address to answer from {member}"),
            || {
                self.service_answer()
                    .filter(|a| a.lines().next() == Some(member))
                    .map(|_| Instant::now())
            },
        )
    }

    /// Waits until both agents see each other and the Backup has replicated the Main.
    pub fn wait_ready(&self) {
        self.wait(
            Duration::from_secs(20),
            "the group to meet and replicate",
            || {
                let b = self.group("backup-1")?;
                let m = self.group("main-1")?;
                let replicated = member(&b, "backup-1")["last_replication"]["result"] == "success";
                (all_heard(&b) && all_heard(&m) && replicated).then_some(())
            },
        );
    }
}

/// Removes namespaces of earlier runs of this test whose process is gone.
fn remove_leftovers(tag: &str) {
    let out = run(&["ip", "netns", "list"]);
    let prefix = format!("us{tag}");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = !pid.is_empty() && Path::new(&format!("/proc/{pid}")).exists();
        if !alive || pid == std::process::id().to_string() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

impl Drop for Plant {
    fn drop(&mut self) {
        // A failed test shows what the agents said and did (their logs and hook runs), not
        // only the assertion: the namespaces and their files go with the plant.
        if std::thread::panicking() {
            eprintln!("the plant's agents when the test failed:\n{}", self.logs());
        }
        // Processes started inside the namespaces: the agents are killed by their own guards;
        // the responders (detached by the hook) are killed here.
        for m in ["main-1", "backup-1"] {
            self.kill_responder(m);
        }
        let quorum = self.quorum_ns();
        for ns in [&self.main, &self.backup, &self.client, &quorum] {
            // Anything still running inside (a hook's child) is killed before the namespace
            // goes, so nothing keeps it alive.
            let pids = run(&["ip", "netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                let _ = run(&["kill", "-9", pid]);
            }
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}
