//! Real etcd servers for the quorum-source tests: one node or a three-node cluster on
//! 127.0.0.1 (loopback only) with free ports, a temporary data directory and fast Raft timings
//! (50 ms heartbeats, 500 ms election time-out: etcd then honours TTLs of 2 s); a member can
//! be killed and started again on its data. One node can serve TLS only, with client
//! certificates required, from a throw-away CA made with openssl ([`TestPki`]). etcdctl reads
//! what is really stored. Every etcd is killed (the process guard) and its data removed when
//! the cluster is dropped. Does I/O.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::group::free_tcp_port;
use super::process::{program, Proc};
use super::wait::Deadline;
use super::{describe, text};

/// How long a node may take to answer `endpoint health` after it was started.
const START_LIMIT: Duration = Duration::from_secs(30);

/// One etcd member: its URLs, its data and its process while it runs.
#[derive(Debug)]
pub struct EtcdNode {
    pub name: String,
    /// `http://127.0.0.1:<port>`.
    pub client_url: String,
    args: Vec<String>,
    log: PathBuf,
    proc: Option<Proc>,
}

/// PEM files: a throw-away CA, a server certificate for 127.0.0.1 and a client certificate.
#[derive(Debug, Clone)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Makes the CA and both certificates in `dir` with openssl (P-256 keys, valid 2 days).
    pub fn make(dir: &Path) -> TestPki {
        let openssl = program("openssl", "openssl");
        let run = |args: &[&str]| {
            let mut cmd = Command::new(&openssl);
            cmd.current_dir(dir).args(args);
            let out = cmd.output().expect("run openssl");
            assert!(out.status.success(), "{}", describe(&cmd, &out));
        };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &key,
            &[
                "-keyout",
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=understudy-test-ca",
            ],
        ]
        .concat());
        for (name, cn, ext) in [
            ("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"),
            ("client", "understudy", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
            let key_file = format!("{name}-key.pem");
            let csr = format!("{name}.csr");
            let cert = format!("{name}.pem");
            let subj = format!("/CN={cn}");
            let ext_file = format!("{name}.ext");
            run(&[&["req"][..], &key, &["-keyout", &key_file, "-out", &csr, "-subj", &subj]].concat());
            run(&["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", &cert, "-days", "2", "-extfile", &ext_file]);
        }
        TestPki {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        }
    }
}

/// A running etcd cluster (one or three members).
#[derive(Debug)]
pub struct EtcdCluster {
    // Declared before `dir`: the processes are killed before their data is removed.
    nodes: Vec<EtcdNode>,
    tls: Option<TestPki>,
    dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// One etcd, ready.
    pub fn single() -> EtcdCluster {
        EtcdCluster::start(1, false)
    }

    /// Three etcd members in one cluster, every one ready.
    pub fn three() -> EtcdCluster {
        EtcdCluster::start(3, false)
    }

    /// One etcd serving clients over TLS only, requiring a client certificate from the CA
    /// of [`EtcdCluster::pki`].
    pub fn single_tls() -> EtcdCluster {
        EtcdCluster::start(1, true)
    }

    /// The certificates of a TLS cluster.
    pub fn pki(&self) -> Option<&TestPki> {
        self.tls.as_ref()
    }

    fn start(n: usize, tls: bool) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("temp dir for etcd");
        let pki = tls.then(|| TestPki::make(dir.path()));
        let scheme = if tls { "https" } else { "http" };
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_tcp_port(), free_tcp_port())).collect();
        let peer_url = |p: u16| format!("http://127.0.0.1:{p}");
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("etcd-{i}={}", peer_url(*peer)))
            .collect();
        let token = format!("understudy-test-{}-{}", std::process::id(), ports[0].0);
        let mut nodes = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("etcd-{i}");
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let mut args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", dir.path().join(&name).display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={}", peer_url(*peer)),
                format!("--initial-advertise-peer-urls={}", peer_url(*peer)),
                format!("--initial-cluster={}", initial.join(",")),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token={token}"),
                "--heartbeat-interval=50".into(),
                "--election-timeout=500".into(),
                "--logger=zap".into(),
                "--log-outputs=stderr".into(),
            ];
            if let Some(pki) = &pki {
                args.extend([
                    format!("--cert-file={}", pki.server_cert.display()),
                    format!("--key-file={}", pki.server_key.display()),
                    format!("--trusted-ca-file={}", pki.ca.display()),
                    "--client-cert-auth".into(),
                ]);
            }
            let log = dir.path().join(format!("{name}.log"));
            nodes.push(EtcdNode {
                name,
                client_url,
                args,
                log,
                proc: None,
            });
        }
        let mut cluster = EtcdCluster {
            nodes,
            tls: pki,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_healthy(i);
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let etcd = program("etcd", "etcd-server");
        let node = &mut self.nodes[i];
        // Appends to the log across restarts.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", node.log.display()));
        let err = log.try_clone().expect("log file");
        let mut cmd = Command::new(etcd);
        cmd.args(&node.args)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(err);
        node.proc = Some(Proc::spawn(&node.name, &mut cmd).with_log(node.log.clone()));
    }

    /// Every member's client URL (running or not), as the agent's `endpoints`.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.client_url.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &EtcdNode {
        &self.nodes[i]
    }

    /// Kills member `i` with SIGKILL (as a crash or a power cut would).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].proc.take() {
            p.kill9();
        }
    }

    /// Starts member `i` again on its data (after [`EtcdCluster::kill`]) and waits until it
    /// is healthy.
    pub fn restart(&mut self, i: usize) {
        assert!(
            self.nodes[i].proc.is_none(),
            "{} still runs",
            self.nodes[i].name
        );
        self.spawn(i);
        self.wait_healthy(i);
    }

    /// Waits until member `i` answers `etcdctl endpoint health` (it has a leader and serves).
    pub fn wait_healthy(&mut self, i: usize) {
        let deadline = Deadline::new(START_LIMIT, format!("{} to be healthy", self.nodes[i].name))
            .every_ms(100);
        loop {
            if let Some(p) = self.nodes[i].proc.as_mut() {
                p.assert_running();
            }
            let out = self
                .etcdctl_command(&[&self.nodes[i].client_url], &["endpoint", "health"])
                .output()
                .expect("run etcdctl");
            if out.status.success() {
                return;
            }
            let last = text(&out.stderr);
            deadline.check(|| format!("etcdctl endpoint health: {last}"));
            deadline.sleep();
        }
    }

    /// The client URLs of the members that run.
    pub fn running_endpoints(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.proc.is_some())
            .map(|n| n.client_url.clone())
            .collect()
    }

    fn etcdctl_command(&self, endpoints: &[&str], args: &[&str]) -> Command {
        let mut cmd = Command::new(program("etcdctl", "etcd-client"));
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .arg("--command-timeout=2s");
        if let Some(pki) = &self.tls {
            cmd.arg(format!("--cacert={}", pki.ca.display()))
                .arg(format!("--cert={}", pki.client_cert.display()))
                .arg(format!("--key={}", pki.client_key.display()));
        }
        cmd.args(args);
        cmd
    }

    /// Runs `etcdctl ARGS...` against the running members; fails the test if it fails.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let running = self.running_endpoints();
        let endpoints: Vec<&str> = running.iter().map(String::as_str).collect();
        let mut cmd = self.etcdctl_command(&endpoints, args);
        let out = cmd.output().expect("run etcdctl");
        assert!(out.status.success(), "{}", describe(&cmd, &out));
        text(&out.stdout)
    }

    /// The value stored at `key` (`None`: absent), read with etcdctl.
    pub fn value(&self, key: &str) -> Option<String> {
        let out = self.etcdctl(&["get", "--print-value-only", key]);
        let v = out.strip_suffix('\n').unwrap_or(&out);
        (!out.is_empty()).then(|| v.to_string())
    }

    /// The lease id (decimal, as the etcd API gives it) `key` is attached to (0: none).
    pub fn lease_of(&self, key: &str) -> i64 {
        let out = self.etcdctl(&["get", "-w", "json", key]);
        let json: serde_json::Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("etcdctl get -w json {key}: {e}: {out}"));
        json["kvs"][0]["lease"].as_i64().unwrap_or(0)
    }

    /// The data directory (the logs are there too).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
