//! `understudy demo`: a whole group in one process on 127.0.0.1. Every member is a full agent
//! with its own HTTP listener and state directory; they share no memory and talk over their
//! real loopback sockets. Addressing is simulated: nothing is configured on the host and no
//! packet goes to a service address. Does I/O.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::agent::Agent;
use crate::cli::DemoArgs;
use crate::config::{
    AddressConfig, Config, ConfigFile, HttpConfig, MemberConfig, PeerConfig, ReplicationConfig,
};
use crate::group::{Role, DEFAULT_EXTRA_ADDRESS};
use crate::node::{self, Node};
use crate::secret::Secret;

pub const DEMO_GROUP: &str = "demo";
pub const DEMO_GROUP_SECRET: &str = "demo-group-secret";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot listen on {addr}: {source} (choose another --http-port)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("demo configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    #[error("too many members for the port range starting at {0}")]
    Ports(u16),
}

/// One member of the demo group.
#[derive(Debug, Clone)]
pub struct DemoMember {
    pub name: String,
    pub role: Role,
    pub http: SocketAddr,
    pub address: IpAddr,
    pub extra: IpAddr,
}

/// Lays out the demo group: `main-1..N` then `backup-1..M`, member k on port P+k, service
/// addresses from the documentation range 192.0.2.0/24 (never configured anywhere).
pub fn layout(mains: u16, backups: u16, http_port: u16) -> Result<Vec<DemoMember>, DemoError> {
    let mut out = Vec::new();
    let total = u32::from(mains) + u32::from(backups);
    if http_port != 0 && u32::from(http_port) + total > 65535 {
        return Err(DemoError::Ports(http_port));
    }
    for k in 0..total {
        let port = if http_port == 0 {
            0
        } else {
            http_port + k as u16
        };
        let (name, role, address, extra) = if k < u32::from(mains) {
            let i = k + 1;
            let extra = if i == 1 {
                DEFAULT_EXTRA_ADDRESS
            } else {
                IpAddr::V4(Ipv4Addr::new(10, 0, 3, (5 + i) as u8))
            };
            (
                format!("main-{i}"),
                Role::Main,
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, (10 + i) as u8)),
                extra,
            )
        } else {
            let i = k - u32::from(mains) + 1;
            (
                format!("backup-{i}"),
                Role::Backup,
                IpAddr::V4(Ipv4Addr::new(198, 51, 100, (10 + i) as u8)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 4, (5 + i) as u8)),
            )
        };
        out.push(DemoMember {
            name,
            role,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            address,
            extra,
        });
    }
    Ok(out)
}

/// The configuration of one demo member (validated like any configuration file).
pub fn member_config(
    members: &[DemoMember],
    me: &DemoMember,
    state_root: &Path,
    token: &str,
    replication_interval: Duration,
) -> Result<Config, DemoError> {
    let dir = state_root.join(&me.name);
    let file = ConfigFile {
        group: DEMO_GROUP.into(),
        member: me.name.clone(),
        state_dir: dir.join("state"),
        heartbeat_interval: Duration::from_millis(500),
        failover_after: Duration::from_secs(2),
        http: HttpConfig {
            listen: me.http,
            token_file: PathBuf::from("(demo: --token)"),
        },
        peer: PeerConfig {
            secret_file: PathBuf::from("(demo: built in)"),
            request_timeout: Duration::from_millis(1000),
            replay_window: Duration::from_secs(30),
        },
        address: AddressConfig::default(),
        hooks: Default::default(),
        replication: ReplicationConfig {
            data_dir: (me.role == Role::Main).then(|| dir.join("data")),
            interval: replication_interval,
        },
        device_checks: Vec::new(),
        snmp: None,
        coordination: None,
        fencing: None,
        maintenance: Default::default(),
        tls: None,
        members: members
            .iter()
            .map(|m| MemberConfig {
                name: m.name.clone(),
                role: m.role,
                address: m.address,
                extra_address: Some(m.extra),
                peer_urls: BTreeMap::from([("lan".to_string(), format!("http://{}", m.http))]),
                auto_failover: m.role == Role::Main,
            })
            .collect(),
    };
    file.validate().map_err(DemoError::Config)?;
    Ok(Config {
        file,
        token: Secret::new(token),
        peer_secret: Secret::new(DEMO_GROUP_SECRET),
        tls: None,
    })
}

/// Creates a Main's sample data directory (what its Backups replicate), if missing.
fn sample_data(dir: &Path, member: &str) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("playlists"))?;
    std::fs::write(
        dir.join("channel.conf"),
        format!("# sample configuration served by {member}\nchannel = 1\nformat = 1080i50\n"),
    )?;
    std::fs::write(
        dir.join("playlists/today.txt"),
        "06:00 news\n07:00 morning show\n09:00 film\n",
    )?;
    Ok(())
}

/// A running demo group.
#[derive(Debug)]
pub struct Demo {
    pub members: Vec<DemoMember>,
    pub state_root: PathBuf,
    pub agents: Vec<Agent>,
    /// Each member's SNMP address, in member order.
    pub snmp: Vec<SocketAddr>,
    stop: CancellationToken,
    nodes: tokio::task::JoinSet<()>,
    _temp: Option<tempfile::TempDir>,
}

impl Demo {
    /// Binds every member's HTTP listener first (so a port conflict fails before anything
    /// starts), then starts every member as a [`Node`].
    pub async fn start(args: &DemoArgs) -> Result<Demo, DemoError> {
        let mut members = layout(args.mains, args.backups, args.http_port)?;
        let (temp, state_root) = match &args.state_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("understudy-demo-")
                    .tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        std::fs::create_dir_all(&state_root)?;
        // With --http-port 0 every member gets an ephemeral port (tests and benchmarks).
        let mut listeners = Vec::new();
        for m in &mut members {
            let want = if args.http_port == 0 {
                SocketAddr::from(([127, 0, 0, 1], 0))
            } else {
                m.http
            };
            let l = TcpListener::bind(want)
                .await
                .map_err(|source| DemoError::Bind { addr: want, source })?;
            m.http = l.local_addr()?;
            listeners.push(l);
        }
        let stop = CancellationToken::new();
        let mut nodes = tokio::task::JoinSet::new();
        let mut agents = Vec::new();
        let mut snmp = Vec::new();
        for (m, listener) in members.iter().zip(listeners) {
            let mut cfg = member_config(
                &members,
                m,
                &state_root,
                &args.token,
                args.replication_interval,
            )?;
            // --http-port 0 (tests, benchmarks) makes the SNMP ports ephemeral too, unless
            // --snmp-port says otherwise.
            let snmp_port = if args.http_port == 0 && args.snmp_port == DEFAULT_SNMP_PORT {
                0
            } else {
                args.snmp_port
            };
            cfg.file.snmp = Some(demo_snmp(
                demo_snmp_addr(snmp_port, snmp.len())?,
                &args.trap_target,
            ));
            cfg.file.validate().map_err(DemoError::Config)?;
            if let Some(d) = &cfg.file.replication.data_dir {
                sample_data(d, &m.name)?;
            }
            let node = Node::start(cfg, Some(listener)).await?;
            snmp.extend(node.snmp_addr());
            agents.push(node.agent().clone());
            nodes.spawn(node.run(stop.clone()));
        }
        Ok(Demo {
            members,
            state_root,
            agents,
            snmp,
            stop,
            nodes,
            _temp: temp,
        })
    }

    /// Stops every member (each through its node's shutdown path) and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.nodes.join_next().await.is_some() {}
        info!("demo stopped");
    }

    /// What the demo prints at start.
    pub fn banner(&self, args: &DemoArgs) -> String {
        let mut s = format!(
            "understudy demo: group {DEMO_GROUP:?}, {} main(s), {} backup(s), simulated addressing \
             (nothing is configured on this host)\nstate: {}{}\n\n",
            args.mains,
            args.backups,
            self.state_root.display(),
            if args.state_dir.is_none() {
                " (temporary: removed at exit; use --state-dir to keep it)"
            } else {
                ""
            }
        );
        s += &format!(
            "{:<10} {:<7} {:<26} {:<20} {:<15} {:<10}\n",
            "MEMBER", "ROLE", "HTTP (API, /metrics, /)", "SNMP (udp)", "ADDRESS", "EXTRA IP"
        );
        for (i, m) in self.members.iter().enumerate() {
            s += &format!(
                "{:<10} {:<7} {:<26} {:<20} {:<15} {:<10}\n",
                m.name,
                m.role,
                format!("http://{}", m.http),
                self.snmp.get(i).map(|a| a.to_string()).unwrap_or_default(),
                m.address,
                m.extra
            );
        }
        s += &format!(
            "\ndemo credentials (demo only): API token {:?}\n\
             {}\
             try:  curl -s http://{}/api/v1/group\n      \
             curl -s -H 'Authorization: Bearer {}' -d '{{\"backup\":\"backup-1\",\"main\":\"main-1\"}}' \
             http://{}/api/v1/takeover\n\nCtrl-C stops the demo.\n",
            args.token,
            self.snmp_banner(args),
            self.members[0].http,
            args.token,
            self.members[0].http
        );
        s
    }

    /// The SNMP part of the banner: credentials, targets, commands to try.
    fn snmp_banner(&self, args: &DemoArgs) -> String {
        let Some(first) = self.snmp.first() else {
            return String::new();
        };
        let backup_row = usize::from(args.mains) + 1;
        let targets = if args.trap_target.is_empty() {
            "no notification targets (add --trap-target HOST:PORT for v2c traps, community \
             \"public\")"
                .to_string()
        } else {
            format!(
                "v2c traps (community \"public\") to {}",
                args.trap_target
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        // Numeric OIDs: these run as printed on a stock net-snmp, whose snmp.conf may load no
        // MIB module at all (Debian's `mibs :`) and where the IETF modules are not installed.
        let root = crate::snmp::config::DEFAULT_MIB_ROOT;
        format!(
            "SNMP: v1/v2c communities {DEMO_READ_COMMUNITY:?} (read) and {DEMO_WRITE_COMMUNITY:?} \
             (write); SNMPv3 user {DEMO_V3_USER:?}, SHA-256 {DEMO_V3_AUTH:?}, AES-128 \
             {DEMO_V3_PRIV:?}, read-write;\n      {targets}\n\
             snmp: snmpwalk -v2c -c {DEMO_READ_COMMUNITY} {first} {root}\n      \
             snmpwalk -v3 -l authPriv -u {DEMO_V3_USER} -a SHA-256 -A {DEMO_V3_AUTH} -x AES \
             -X {DEMO_V3_PRIV} {first} 1.3.6.1.2.1.1\n      \
             snmpset -v2c -c {DEMO_WRITE_COMMUNITY} {first} {root}.1.2.1.12.{backup_row} i 1  \
             # rgMemberManualTakeover.{backup_row}: backup row {backup_row} takes over main row 1\n      \
             names instead of numbers (UNDERSTUDY-MIB::rgGroup): from the source tree add \
             -M +STD:mibs -m SNMPv2-MIB:UNDERSTUDY-MIB\n      \
             (STD = the standard modules, see mibs/README.md)\n"
        )
    }
}

/// The default of `--snmp-port`.
pub const DEFAULT_SNMP_PORT: u16 = 16100;

/// The demo's SNMP credentials (printed at start; demo only).
pub const DEMO_READ_COMMUNITY: &str = "public";
pub const DEMO_WRITE_COMMUNITY: &str = "private";
pub const DEMO_V3_USER: &str = "noc";
pub const DEMO_V3_AUTH: &str = "noc-auth-pass";
pub const DEMO_V3_PRIV: &str = "noc-priv-pass";

/// Member k's SNMP address: port Q+k (every member on an ephemeral port when Q is 0).
fn demo_snmp_addr(snmp_port: u16, k: usize) -> Result<SocketAddr, DemoError> {
    let port = if snmp_port == 0 {
        Some(0)
    } else {
        u16::try_from(k).ok().and_then(|k| snmp_port.checked_add(k))
    };
    port.map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .ok_or(DemoError::Ports(snmp_port))
}

/// A demo member's `[snmp]` section: the demo credentials and v2c traps to `targets`.
fn demo_snmp(listen: SocketAddr, targets: &[SocketAddr]) -> crate::snmp::config::SnmpConfig {
    use crate::snmp::config::{
        Access, AuthProtocol, CommunityConfig, NotifyKind, PrivProtocol, SnmpConfig, TargetConfig,
        UserConfig,
    };
    let built_in = || PathBuf::from("(demo: built in)");
    SnmpConfig {
        listen,
        alarm_repeat: Duration::from_secs(60),
        group_notifications: Default::default(),
        max_message_size: crate::snmp::config::DEFAULT_MAX_MESSAGE_SIZE,
        contact: String::new(),
        location: "understudy demo".into(),
        mib_root: crate::snmp::config::DEFAULT_MIB_ROOT.into(),
        communities: vec![
            CommunityConfig {
                name: "demo-read".into(),
                secret_file: built_in(),
                access: Access::ReadOnly,
                secret: Secret::new(DEMO_READ_COMMUNITY),
            },
            CommunityConfig {
                name: "demo-write".into(),
                secret_file: built_in(),
                access: Access::ReadWrite,
                secret: Secret::new(DEMO_WRITE_COMMUNITY),
            },
        ],
        users: vec![UserConfig {
            name: DEMO_V3_USER.into(),
            access: Access::ReadWrite,
            auth: AuthProtocol::Sha256,
            auth_password_file: built_in(),
            privacy: Some(PrivProtocol::Aes128),
            privacy_password_file: Some(built_in()),
            auth_password: Secret::new(DEMO_V3_AUTH),
            privacy_password: Secret::new(DEMO_V3_PRIV),
        }],
        targets: targets
            .iter()
            .map(|t| TargetConfig {
                address: t.to_string(),
                notify: NotifyKind::Trap,
                community_file: Some(built_in()),
                user: None,
                timeout: Duration::from_secs(2),
                retries: 4,
                community: Secret::new(DEMO_READ_COMMUNITY),
            })
            .collect(),
    }
}

/// `understudy demo`: starts the group, prints the banner, runs until SIGINT or SIGTERM.
/// Returns the process exit status.
pub async fn run(args: DemoArgs) -> i32 {
    let signal = node::shutdown_signal();
    node::raise_open_file_limit();
    let demo = match Demo::start(&args).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return crate::cli::exit::CONFIG;
        }
    };
    print!("{}", demo.banner(&args));
    signal.await;
    info!("stopping the demo");
    demo.stop().await;
    crate::cli::exit::OK
}
