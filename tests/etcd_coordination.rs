//! The etcd quorum source against real etcd servers on loopback (tests/support/etcd.rs): keys
//! claimed and released in transactions, sessions that run out when no longer kept alive, the
//! status while etcd is away and after it returns, the operation lock, and a three-member
//! cluster losing one member (still a quorum) and then two (none). etcdctl checks what is
//! really stored. Nothing is mocked.
#![cfg(feature = "etcd")]

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use understudy::coordination::config::{CoordinationBackend, CoordinationConfig};
use understudy::coordination::etcd::Etcd;
use understudy::coordination::{Quorum, QuorumError, QuorumStatus};

use support::etcd::EtcdCluster;
use support::Deadline;

const TTL: Duration = Duration::from_secs(2);
const GROUP: &str = "plant";

fn config(endpoints: Vec<String>) -> CoordinationConfig {
    CoordinationConfig {
        backend: CoordinationBackend::Etcd,
        endpoints,
        prefix: "/understudy".into(),
        session_ttl: TTL,
        request_timeout: Duration::from_millis(300),
        tls: None,
        username: None,
        password_file: None,
        password: None,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn key(address: &str) -> String {
    format!("/understudy/{GROUP}/address/{address}")
}

/// One member's agent: its quorum source and the task keeping its session alive.
struct Agent {
    etcd: Arc<Etcd>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Agent {
    /// Connects and keeps the session alive; returns once the session is up.
    async fn start(cluster: &EtcdCluster, member: &str) -> Agent {
        Agent::start_on(cluster.endpoints(), member).await
    }

    async fn start_on(endpoints: Vec<String>, member: &str) -> Agent {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .try_init();
        let etcd = Arc::new(Etcd::connect(&config(endpoints), GROUP, member).expect("connect"));
        let mut agent = Agent {
            etcd,
            stop: CancellationToken::new(),
            task: None,
        };
        agent.run();
        agent.wait_up(Duration::from_secs(5)).await;
        agent
    }

    fn run(&mut self) {
        let etcd = self.etcd.clone();
        self.stop = CancellationToken::new();
        let stop = self.stop.clone();
        self.task = Some(tokio::spawn(async move { etcd.run(stop).await }));
    }

    /// Stops keeping the session alive, as a killed agent would (its keys stay until the
    /// TTL runs out).
    async fn halt(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("run task");
        }
    }

    fn status(&self) -> QuorumStatus {
        self.etcd.status()
    }

    async fn wait_up(&self, limit: Duration) -> QuorumStatus {
        let d = Deadline::new(limit, format!("{} up", self.etcd.member())).every_ms(20);
        loop {
            let s = self.status();
            if s.up {
                return s;
            }
            d.check(|| format!("{s:?}"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_down(&self, limit: Duration) -> QuorumStatus {
        let d = Deadline::new(limit, format!("{} down", self.etcd.member())).every_ms(20);
        loop {
            let s = self.status();
            if !s.up {
                return s;
            }
            d.check(|| format!("{s:?}"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Runs a blocking support call (etcdctl, starting or killing etcd) off the async workers.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_puts_the_member_under_its_own_lease() {
    let etcd = blocking(EtcdCluster::single);
    let a = Agent::start(&etcd, "main-1").await;

    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("a free key is taken at once");
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("main-1")
    );
    let lease = a.etcd.lease_id().await.expect("a session");
    assert_eq!(blocking(|| etcd.lease_of(&key("192.0.2.10"))), lease);
    assert_eq!(
        a.status()
            .holders
            .get(&ip("192.0.2.10"))
            .map(String::as_str),
        Some("main-1")
    );

    // Taking it again is fine (same member, same lease); IPv6 keys too.
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("again");
    a.etcd
        .acquire(ip("2001:db8::10"), Duration::ZERO)
        .await
        .expect("v6");
    assert_eq!(
        blocking(|| etcd.value(&key("2001:db8::10"))).as_deref(),
        Some("main-1")
    );

    // The holders are reread after keep-alives: a key written by someone else shows up.
    blocking(|| etcd.etcdctl(&["put", &key("192.0.2.99"), "by-hand"]));
    let d = Deadline::new(Duration::from_secs(2), "holders reread");
    loop {
        let h = a.status().holders;
        if h.get(&ip("192.0.2.99")).map(String::as_str) == Some("by-hand") {
            assert_eq!(h.len(), 3, "{h:?}");
            break;
        }
        d.tick().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_key_is_refused_until_the_holders_session_runs_out() {
    let etcd = blocking(EtcdCluster::single);
    let mut a = Agent::start(&etcd, "main-1").await;
    let b = Agent::start(&etcd, "backup-1").await;
    let addr = ip("192.0.2.10");
    a.etcd
        .acquire(addr, Duration::ZERO)
        .await
        .expect("a takes it");

    let refused = b.etcd.acquire(addr, Duration::ZERO).await;
    assert_eq!(
        refused,
        Err(QuorumError::HeldBy {
            backend: "etcd",
            address: addr,
            holder: "main-1".into()
        })
    );
    // Waiting while a's session lives changes nothing: b retries and is refused.
    let t = Instant::now();
    let refused = b.etcd.acquire(addr, Duration::from_millis(800)).await;
    let waited = t.elapsed();
    assert!(
        matches!(refused, Err(QuorumError::HeldBy { .. })),
        "{refused:?}"
    );
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(1500),
        "waited {waited:?}"
    );
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("main-1")
    );

    // a is "killed": its session is no longer kept alive. b gets the key once a's lease
    // has run out in etcd, never before a's own bound on its session.
    let a_until = a.status().session_until.expect("a's session");
    let halted = Instant::now();
    a.halt().await;
    b.etcd
        .acquire(addr, TTL + Duration::from_secs(3))
        .await
        .expect("b takes the key after a's TTL");
    let took = Instant::now();
    let after_halt = took - halted;
    eprintln!(
        "etcd: b acquired {after_halt:?} after a stopped keeping its session alive \
         (TTL {TTL:?}; {:?} after a's session_until)",
        took - a_until
    );
    assert!(took >= a_until, "b acquired before a's session_until");
    assert!(
        after_halt <= TTL + Duration::from_secs(1),
        "b acquired {after_halt:?} after a stopped (TTL {TTL:?})"
    );
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("backup-1")
    );
    assert_eq!(
        blocking(|| etcd.lease_of(&key("192.0.2.10"))),
        b.etcd.lease_id().await.expect("b's session")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_deletes_only_the_members_own_key() {
    let etcd = blocking(EtcdCluster::single);
    let a = Agent::start(&etcd, "main-1").await;
    let b = Agent::start(&etcd, "backup-1").await;
    let addr = ip("192.0.2.10");
    a.etcd
        .acquire(addr, Duration::ZERO)
        .await
        .expect("a takes it");

    b.etcd
        .release(addr)
        .await
        .expect("releasing another's key is a no-op");
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("main-1")
    );

    a.etcd.release(addr).await.expect("a releases");
    assert_eq!(blocking(|| etcd.value(&key("192.0.2.10"))), None);
    assert_eq!(a.status().holders.get(&addr), None);
    a.etcd
        .release(addr)
        .await
        .expect("an absent key is released already");

    b.etcd
        .acquire(addr, Duration::ZERO)
        .await
        .expect("free again: b takes it at once");
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("backup-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_until_never_overestimates_and_keeps_advancing() {
    let etcd = blocking(EtcdCluster::single);
    let a = Agent::start(&etcd, "main-1").await;
    let lease = a.etcd.lease_id().await.expect("a session");
    let mut last: Option<Instant> = None;
    let mut advances = 0;
    let mut least_margin = TTL;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let read = Instant::now();
        let s = a.status();
        let until = s.session_until.expect("a session");
        // Every keep-alive was sent before this read: its bound cannot pass read + TTL.
        assert!(
            until <= read + TTL,
            "session_until {:?} past read + TTL",
            until - read
        );
        assert!(s.up && s.error.is_none(), "{s:?}");
        if let Some(prev) = last {
            assert!(until >= prev, "session_until went back");
            if until > prev {
                advances += 1;
            }
        }
        least_margin = least_margin.min(until.saturating_duration_since(read));
        last = Some(until);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!("etcd: {advances} keep-alives in 3 s; least validity left {least_margin:?}");
    // A keep-alive every 300 ms: about 10 in 3 s.
    assert!(advances >= 7, "{advances} advances in 3 s");
    assert!(
        least_margin >= TTL - Duration::from_millis(700),
        "{least_margin:?}"
    );
    assert_eq!(a.etcd.lease_id().await, Some(lease), "one lease all along");
    // etcd agrees: the lease is alive with (nearly) its whole TTL left.
    let ttl = blocking(|| etcd.etcdctl(&["lease", "timetolive", &format!("{lease:x}")]));
    assert!(ttl.contains("granted with TTL(2s)"), "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_goes_down_while_etcd_is_away_and_up_when_it_returns() {
    let mut etcd = blocking(EtcdCluster::single);
    let a = Agent::start(&etcd, "main-1").await;
    let before = a.status();
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("take");

    let killed = Instant::now();
    blocking(|| etcd.kill(0));
    let down = a.wait_down(TTL).await;
    eprintln!(
        "etcd: status down {:?} after etcd was killed",
        killed.elapsed()
    );
    assert!(down.error.is_some(), "{down:?}");
    assert!(down.since >= before.since);
    // Requests fail fast (bounded by request_timeout), and say so.
    let t = Instant::now();
    let refused = a.etcd.acquire(ip("192.0.2.11"), Duration::ZERO).await;
    assert!(
        matches!(refused, Err(QuorumError::Unreachable { .. })),
        "{refused:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The session's bound is passed while etcd is away.
    tokio::time::sleep(TTL).await;
    let s = a.status();
    assert!(
        !s.up && s.session_until.is_some_and(|u| u <= Instant::now()),
        "{s:?}"
    );

    let back = Instant::now();
    blocking(|| etcd.restart(0));
    let up = a.wait_up(Duration::from_secs(5)).await;
    eprintln!(
        "etcd: status up {:?} after etcd was back (healthy)",
        back.elapsed()
    );
    assert!(up.error.is_none() && up.since >= back, "{up:?}");
    assert!(up.session_until.is_some_and(|u| u > Instant::now()));
    // etcd renews every lease when it elects a leader: the old session (and its key) may
    // live on; if it did not, a new session was granted and the key is gone. Both are
    // consistent with what etcd holds.
    let lease = a.etcd.lease_id().await.expect("a session");
    let stored = blocking(|| etcd.value(&key("192.0.2.10")));
    if stored.is_some() {
        assert_eq!(blocking(|| etcd.lease_of(&key("192.0.2.10"))), lease);
    }
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::from_secs(1))
        .await
        .expect("taken again after etcd returned");
    assert_eq!(blocking(|| etcd.lease_of(&key("192.0.2.10"))), lease);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_session_is_replaced_by_a_new_one() {
    let etcd = blocking(EtcdCluster::single);
    let mut a = Agent::start(&etcd, "main-1").await;
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("take");
    let first = a.etcd.lease_id().await.expect("a session");

    // Revoked by an operator: the next keep-alive is told the lease is gone, and a new
    // session is granted; the key went with the old lease.
    blocking(|| etcd.etcdctl(&["lease", "revoke", &format!("{first:x}")]));
    let d = Deadline::new(Duration::from_secs(2), "a new lease");
    let second = loop {
        match a.etcd.lease_id().await {
            Some(l) if l != first => break l,
            _ => d.tick().await,
        }
    };
    a.wait_up(Duration::from_secs(1)).await;
    assert_eq!(blocking(|| etcd.value(&key("192.0.2.10"))), None);
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("re-acquire");
    assert_eq!(blocking(|| etcd.lease_of(&key("192.0.2.10"))), second);

    // Not kept alive for longer than the TTL (a paused agent): the lease expires in etcd;
    // when the agent resumes, it learns so and takes a new one.
    a.halt().await;
    tokio::time::sleep(TTL + Duration::from_millis(1500)).await;
    assert!(!a.status().up);
    assert_eq!(blocking(|| etcd.value(&key("192.0.2.10"))), None);
    a.run();
    a.wait_up(Duration::from_secs(2)).await;
    let third = a.etcd.lease_id().await.expect("a session");
    assert_ne!(third, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operation_lock_is_exclusive_and_released_by_its_holder() {
    let etcd = blocking(EtcdCluster::single);
    let mut a = Agent::start(&etcd, "main-1").await;
    let b = Agent::start(&etcd, "backup-1").await;
    let op_key = format!("/understudy/{GROUP}/operation");

    a.etcd.lock_operation("op-1").await.expect("free lock");
    a.etcd
        .lock_operation("op-1")
        .await
        .expect("the same op again");
    let stored = blocking(|| etcd.value(&op_key)).expect("the lock is stored");
    let v: serde_json::Value = serde_json::from_str(&stored).expect("JSON");
    assert_eq!(v["operation"], "op-1");
    assert_eq!(v["member"], "main-1");
    assert_eq!(
        blocking(|| etcd.lease_of(&op_key)),
        a.etcd.lease_id().await.expect("a's session")
    );

    let busy = Err(QuorumError::Busy {
        backend: "etcd",
        holder: "op-1".into(),
    });
    assert_eq!(b.etcd.lock_operation("op-2").await, busy);
    assert_eq!(a.etcd.lock_operation("op-2").await, busy);
    // Unlocking someone else's operation changes nothing.
    b.etcd.unlock_operation("op-2").await.expect("no-op");
    a.etcd.unlock_operation("op-2").await.expect("no-op");
    assert!(blocking(|| etcd.value(&op_key)).is_some());

    a.etcd.unlock_operation("op-1").await.expect("unlock");
    assert_eq!(blocking(|| etcd.value(&op_key)), None);
    b.etcd.lock_operation("op-2").await.expect("free again");

    // A coordinator that dies holding the lock: the lock goes with its session.
    b.etcd.unlock_operation("op-2").await.expect("unlock");
    a.etcd.lock_operation("op-3").await.expect("a locks");
    a.halt().await;
    let t = Instant::now();
    let d = Deadline::new(TTL + Duration::from_secs(2), "the dead holder's lock to go");
    while b.etcd.lock_operation("op-4").await.is_err() {
        d.tick().await;
    }
    eprintln!(
        "etcd: the operation lock was free {:?} after its holder stopped",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_member_cluster_serves_with_two_and_not_with_one() {
    let mut etcd = blocking(EtcdCluster::three);
    let a = Agent::start(&etcd, "main-1").await;
    a.etcd
        .acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("take");
    let lease = a.etcd.lease_id().await.expect("a session");

    // The leader is the member most likely to hurt: kill it.
    let leader = blocking(|| leader_index(&etcd));
    let killed = Instant::now();
    blocking(|| etcd.kill(leader));
    // Quorum 2 of 3: the session never runs out and keys can still be taken.
    let mut downs = Vec::new();
    let mut went_down: Option<Instant> = None;
    while killed.elapsed() < 3 * TTL {
        let s = a.status();
        assert!(
            s.session_until.is_some_and(|u| u > Instant::now()),
            "session ran out with 2 of 3 members: {s:?}"
        );
        match (s.up, went_down) {
            (false, None) => {
                eprintln!("etcd: down: {:?}", s.error);
                went_down = Some(Instant::now())
            }
            (true, Some(t)) => {
                downs.push(t.elapsed());
                went_down = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("etcd: one of three killed (the leader): status down for {downs:?}");
    // Down at most while the two left elect a leader (election time-out 500 ms).
    let total: Duration = downs.iter().sum();
    assert!(
        total < Duration::from_millis(1500),
        "down for {downs:?} with 2 of 3"
    );
    a.etcd
        .acquire(ip("192.0.2.11"), Duration::from_secs(1))
        .await
        .expect("acquire with 2 of 3");
    assert_eq!(a.etcd.lease_id().await, Some(lease), "the session lived on");
    let s = a.wait_up(Duration::from_secs(1)).await;
    assert_eq!(s.holders.len(), 2, "{s:?}");
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.11"))).as_deref(),
        Some("main-1")
    );

    // Two of three gone: no quorum. The status goes down within the TTL.
    let second = (0..3).find(|&i| i != leader).expect("another member");
    let killed = Instant::now();
    blocking(|| etcd.kill(second));
    let down = a.wait_down(TTL).await;
    eprintln!(
        "etcd: two of three killed: status down after {:?}",
        killed.elapsed()
    );
    assert!(down.error.is_some(), "{down:?}");
    let refused = a.etcd.acquire(ip("192.0.2.12"), Duration::ZERO).await;
    assert!(
        matches!(refused, Err(QuorumError::Unreachable { .. })),
        "{refused:?}"
    );
}

/// Which member leads, from `etcdctl endpoint status`.
fn leader_index(etcd: &EtcdCluster) -> usize {
    let out = etcd.etcdctl(&["endpoint", "status", "--cluster", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("endpoint status JSON");
    let entries = v.as_array().expect("array");
    let leader = entries
        .iter()
        .find(|e| e["Status"]["leader"] == e["Status"]["header"]["member_id"])
        .expect("a leader");
    let url = leader["Endpoint"].as_str().expect("endpoint");
    (0..etcd.len())
        .find(|&i| etcd.node(i).client_url == url)
        .expect("the leader is one of ours")
}

#[test]
fn the_example_coordination_section_is_valid_once_uncommented() {
    use std::os::unix::fs::PermissionsExt;
    let example = support::repo().join("examples/two-server");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&example).expect("examples") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name");
        if path.extension().is_some_and(|e| e == "toml") {
            std::fs::copy(&path, dir.path().join(name)).expect("copy");
        } else {
            // A secret file: `run` refuses the example's published value and its mode.
            let own = format!("own-{}", name.to_string_lossy());
            support::write(&dir.path().join(name), &own);
        }
    }
    let text = std::fs::read_to_string(example.join("main-1.toml")).expect("read");
    let start = text.find("#[coordination]").expect("the commented section");
    // Uncomment the settings ("#key"), keep the prose ("# ..."); failover_after as it says.
    let section: String = text[start..]
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.starts_with(' ') => format!("{rest}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let main =
        text[..start].replace("failover_after = \"2s\"", "failover_after = \"3s\"") + &section;
    let file = dir.path().join("main-1.toml");
    std::fs::write(&file, main).expect("write");
    let password = dir.path().join("etcd-password");
    std::fs::write(&password, "s3cret\n").expect("write");
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let cfg = understudy::config::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let c = cfg.file.coordination.expect("the section");
    assert_eq!(c.endpoints.len(), 3);
    assert_eq!(c.username.as_deref(), Some("understudy"));
    assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("s3cret"));
    let tls = c.tls.expect("tls");
    assert_eq!(
        tls.ca_file,
        dir.path().join("etcd-ca.pem"),
        "relative to the file"
    );

    // A password file others may read is refused.
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = understudy::config::Config::load(&file).expect_err("0644");
    assert!(e.to_string().contains("coordination.password_file"), "{e}");
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etcd_user_with_its_password_from_the_configuration() {
    let etcd = blocking(EtcdCluster::single);
    blocking(|| {
        for args in [
            &["user", "add", "root:root-pw"][..],
            &["user", "add", "understudy:agent-pw"],
            &["role", "add", "understudy"],
            &[
                "role",
                "grant-permission",
                "understudy",
                "--prefix=true",
                "readwrite",
                "/understudy/",
            ],
            &["user", "grant-role", "understudy", "understudy"],
            &["auth", "enable"],
        ] {
            etcd.etcdctl(args);
        }
    });
    let with_password = |pw: &str| {
        let mut c = config(etcd.endpoints());
        c.username = Some("understudy".into());
        c.password_file = Some("etcd-password".into());
        c.password = Some(understudy::secret::Secret::new(pw));
        c
    };

    let a = Arc::new(Etcd::connect(&with_password("agent-pw"), GROUP, "main-1").expect("connect"));
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (a, stop) = (a.clone(), stop.clone());
        async move { a.run(stop).await }
    });
    let d = Deadline::new(Duration::from_secs(5), "up as etcd user understudy");
    while !a.status().up {
        d.tick().await;
    }
    a.acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("acquire as the user");
    let stored = blocking(|| {
        etcd.etcdctl(&[
            "--user=root:root-pw",
            "get",
            "--print-value-only",
            &key("192.0.2.10"),
        ])
    });
    assert_eq!(stored.trim(), "main-1");
    stop.cancel();
    task.await.expect("run");

    // A wrong password: never up, and the status says why.
    let b = Arc::new(Etcd::connect(&with_password("wrong"), GROUP, "backup-1").expect("connect"));
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (b, stop) = (b.clone(), stop.clone());
        async move { b.run(stop).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let s = b.status();
    assert!(!s.up, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .is_some_and(|e| e.contains("authentication failed")),
        "{s:?}"
    );
    let refused = b.acquire(ip("192.0.2.11"), Duration::ZERO).await;
    assert!(
        matches!(refused, Err(QuorumError::Unreachable { .. })),
        "{refused:?}"
    );
    stop.cancel();
    task.await.expect("run");

    // A user without its password is refused before any request.
    let mut no_password = with_password("x");
    no_password.password = None;
    assert!(Etcd::connect(&no_password, GROUP, "main-1").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate() {
    use understudy::coordination::config::EtcdTls;
    let etcd = blocking(EtcdCluster::single_tls);
    let pki = etcd.pki().expect("tls").clone();
    assert!(etcd.endpoints()[0].starts_with("https://127.0.0.1:"));
    let with_tls = |client_cert: bool| {
        let mut c = config(etcd.endpoints());
        c.tls = Some(EtcdTls {
            ca_file: pki.ca.clone(),
            cert_file: client_cert.then(|| pki.client_cert.clone()),
            key_file: client_cert.then(|| pki.client_key.clone()),
            domain: None,
        });
        c
    };

    let a = Arc::new(Etcd::connect(&with_tls(true), GROUP, "main-1").expect("connect"));
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (a, stop) = (a.clone(), stop.clone());
        async move { a.run(stop).await }
    });
    let d = Deadline::new(Duration::from_secs(5), "up over TLS");
    while !a.status().up {
        d.tick().await;
    }
    a.acquire(ip("192.0.2.10"), Duration::ZERO)
        .await
        .expect("acquire over TLS");
    assert_eq!(
        blocking(|| etcd.value(&key("192.0.2.10"))).as_deref(),
        Some("main-1")
    );
    stop.cancel();
    task.await.expect("run");

    // etcd requires a client certificate: without one the session never comes up.
    let b = Arc::new(Etcd::connect(&with_tls(false), GROUP, "backup-1").expect("connect"));
    let refused = b.acquire(ip("192.0.2.11"), Duration::ZERO).await;
    assert!(
        matches!(refused, Err(QuorumError::Unreachable { .. })),
        "{refused:?}"
    );
    let s = b.status();
    assert!(!s.up && s.error.is_some(), "{s:?}");

    // A missing CA file is refused when connecting.
    let mut missing = with_tls(true);
    if let Some(t) = missing.tls.as_mut() {
        t.ca_file = etcd.dir().join("no-such-ca.pem");
    }
    let e = Etcd::connect(&missing, GROUP, "main-1").expect_err("no CA file");
    assert!(e.to_string().contains("no-such-ca.pem"), "{e}");
}
