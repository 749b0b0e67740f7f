//! Member configuration: strict TOML (unknown keys rejected), cross-field validation, secrets
//! read from files. Does file I/O only in [`Config::load`]; [`Config::parse`] is pure.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::group::{DefinedMember, Definition, Role, DEFAULT_EXTRA_ADDRESS};
use crate::secret::{read_secret_file, Secret, SecretError, SecretPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A `[tls]` file that cannot be used (the key and the file named).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A secret file named by the configuration `config` cannot be used.
    #[error("{config}: {source}")]
    Secret {
        config: PathBuf,
        source: SecretError,
    },
}

/// The values of optional keys. serde's `default = "..."` names a function, so each is one.
mod defaults {
    use std::time::Duration;

    macro_rules! defaults {
        ($($(#[$doc:meta])* $name:ident: $t:ty = $value:expr;)*) => {
            $($(#[$doc])* pub fn $name() -> $t {
                $value
            })*
        };
    }

    defaults! {
        heartbeat: Duration = Duration::from_millis(500);
        failover_after: Duration = Duration::from_secs(2);
        replay_window: Duration = Duration::from_secs(30);
        peer_timeout: Duration = Duration::from_millis(1000);
        /// Five announcements 250 ms apart span a second, so a neighbour that missed the
        /// first (a lost frame, a port still coming up, an ARP lock time) takes a later one.
        garp_count: u32 = 5;
        garp_interval: Duration = Duration::from_millis(250);
        /// With the default heartbeat (500 ms) and failover_after (2 s): a lease of 1 s ends,
        /// kernel slack included, before the earliest failover (`group::lease`).
        address_lease: Duration = Duration::from_secs(1);
        hook_timeout: Duration = Duration::from_secs(10);
        replication_interval: Duration = Duration::from_secs(30);
        fail_after: u32 = 1;
        check_timeout: Duration = Duration::from_secs(2);
        check_interval: Duration = Duration::from_secs(5);
        /// A working shift: a maintenance window left on longer was most likely forgotten.
        maintenance_alert_after: Duration = Duration::from_secs(4 * 3600);
    }
}

/// The file format, exactly as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Name of the redundancy group (label `group`, `rgGroupName`).
    pub group: String,
    /// Which member of `members` this agent is.
    pub member: String,
    /// Where the agent keeps its state (created if missing).
    pub state_dir: PathBuf,
    #[serde(default = "defaults::heartbeat", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    #[serde(default = "defaults::failover_after", with = "humantime_serde")]
    pub failover_after: Duration,
    pub http: HttpConfig,
    pub peer: PeerConfig,
    #[serde(default)]
    pub address: AddressConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub replication: ReplicationConfig,
    #[serde(default)]
    pub device_checks: Vec<DeviceCheckConfig>,
    pub members: Vec<MemberConfig>,
    /// The SNMP agent and its notification targets (absent: no SNMP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snmp: Option<crate::snmp::config::SnmpConfig>,
    /// The quorum source (etcd) that decides who holds each address (absent: the peer
    /// protocol alone decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordination: Option<crate::coordination::CoordinationConfig>,
    /// The fence command a Backup runs before it fails over a Main that does not answer
    /// (absent: no fencing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing: Option<crate::fence::FencingConfig>,
    /// HTTPS for the listener and the peer protocol (absent: plain HTTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Maintenance mode: how long it may stay on before `UnderstudyMaintenanceModeTooLong`
    /// fires (exported as a metric the alert rule compares against).
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// How long maintenance mode may last before the alert fires
    /// (`understudy_group_maintenance_alert_after_seconds`).
    #[serde(
        default = "defaults::maintenance_alert_after",
        with = "humantime_serde"
    )]
    pub alert_after: Duration,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            alert_after: defaults::maintenance_alert_after(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP API, metrics and status page (and of the peer protocol).
    pub listen: SocketAddr,
    /// File holding the bearer token that commands must present.
    pub token_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// File holding the group secret shared by every member's agent.
    pub secret_file: PathBuf,
    #[serde(default = "defaults::peer_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// How far a signed peer request's timestamp may be from this agent's clock; older or
    /// newer requests are refused as replays (keep the members' clocks in step, e.g. NTP).
    #[serde(default = "defaults::replay_window", with = "humantime_serde")]
    pub replay_window: Duration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum AddressBackendKind {
    /// Addresses are recorded, never configured on the host (the demo's mode).
    #[default]
    Simulated,
    /// Addresses are added to / removed from `interface` through netlink and announced
    /// (gratuitous ARP / unsolicited neighbour advertisement). Needs root or CAP_NET_ADMIN +
    /// CAP_NET_RAW.
    Linux,
    /// No address is configured by the agent; only the `[hooks]` commands run.
    Hooks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressConfig {
    #[serde(default)]
    pub backend: AddressBackendKind,
    /// `linux`: the interface that carries the service addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// `linux`: prefix length of the service addresses (default /32, /128 for IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// `linux`: how many gratuitous ARPs / unsolicited NAs announce a taken address.
    #[serde(default = "defaults::garp_count")]
    pub garp_count: u32,
    /// `linux`: the time between two announcements.
    #[serde(default = "defaults::garp_interval", with = "humantime_serde")]
    pub garp_interval: Duration,
    /// `linux` and `hooks`: a held address lives this long unless the agent renews it (whole
    /// seconds: the kernel's unit). The linux backend gives the address this valid and
    /// preferred lifetime, so the kernel removes it from a host whose agent crashed, hung or
    /// was paused; the hooks backend runs `on_lease_lost` when a lease could not be renewed.
    #[serde(default = "defaults::address_lease", with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for AddressConfig {
    fn default() -> Self {
        AddressConfig {
            backend: AddressBackendKind::default(),
            interface: None,
            prefix_len: None,
            garp_count: defaults::garp_count(),
            garp_interval: defaults::garp_interval(),
            lease: defaults::address_lease(),
        }
    }
}

/// Commands run when this member goes online, standby or offline (in every address backend),
/// with the addresses in `UNDERSTUDY_*` environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_online: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_standby: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_offline: Option<Vec<String>>,
    /// Run when this member's lease on its address ran out without being renewed (the agent
    /// did not run for a while, or the quorum source stopped vouching for it): the address is
    /// gone (linux) or must be given up by the hook (hooks backend). `UNDERSTUDY_ADDRESS` is
    /// the address lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_lease_lost: Option<Vec<String>>,
    /// A hook still running after this is killed (and logged).
    #[serde(default = "defaults::hook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            on_online: None,
            on_standby: None,
            on_offline: None,
            on_lease_lost: None,
            timeout: defaults::hook_timeout(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// The directory this member publishes when it is a Main (required on a configured Main;
    /// a Backup needs none: after a reconfigure a former Backup publishes the replica it
    /// served from, and a replace takeover gives the Main's role to a new server that runs
    /// the Main's own configuration).
    pub data_dir: Option<PathBuf>,
    /// How often a Backup copies each Main's data.
    #[serde(default = "defaults::replication_interval", with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            data_dir: None,
            interval: defaults::replication_interval(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCheckConfig {
    pub name: String,
    /// `host:port` to connect to by TCP.
    pub tcp: Option<SocketAddr>,
    /// A command (program and arguments) whose exit status 0 means healthy.
    pub command: Option<Vec<String>>,
    #[serde(default = "defaults::check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "defaults::check_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// How many probes in a row must fail before the check counts as failing (it then gates
    /// takeover on a Backup and, on a Main with auto-failover, triggers failover).
    #[serde(default = "defaults::fail_after")]
    pub fail_after: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub name: String,
    pub role: Role,
    /// The member's own service address (its identity on the network).
    pub address: IpAddr,
    /// Where it goes when taken over; 10.0.3.6 when not set.
    pub extra_address: Option<IpAddr>,
    /// The member agent's URL on each heartbeat path, by path name.
    pub peer_urls: BTreeMap<String, String>,
    /// On a Main: may a Backup take it over automatically?
    #[serde(default)]
    pub auto_failover: bool,
}

impl MemberConfig {
    pub fn extra(&self) -> IpAddr {
        self.extra_address.unwrap_or(DEFAULT_EXTRA_ADDRESS)
    }
}

/// A validated configuration with its secrets loaded.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: ConfigFile,
    pub token: Secret,
    pub peer_secret: Secret,
    /// The `[tls]` section's certificates and key, loaded and checked.
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
}

impl Config {
    /// Reads, parses and validates `path`, then reads the secret files, refusing one that its
    /// group or others may read or write or that holds a published value (`understudy run`).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, SecretPolicy::Enforce, &mut Vec::new())
    }

    /// As [`Config::load`], but a secret file that breaks the rule is a warning, returned
    /// with the configuration (`understudy check-config`).
    pub fn check(path: &Path) -> Result<(Config, Vec<SecretError>), ConfigError> {
        let mut warnings = Vec::new();
        let cfg = Config::load_with(path, SecretPolicy::Warn, &mut warnings)?;
        Ok((cfg, warnings))
    }

    fn load_with(
        path: &Path,
        policy: SecretPolicy,
        warnings: &mut Vec<SecretError>,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file = ConfigFile::parse(&text).map_err(|e| e.at(path))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let secret_error = |source| ConfigError::Secret {
            config: path.to_path_buf(),
            source,
        };
        let mut read = |key: &str, p: &Path| {
            read_secret_file(key, &base.join(p), policy, warnings).map_err(secret_error)
        };
        if let Some(snmp) = file.snmp.as_mut() {
            snmp.load_secrets(&mut read, |p, message| ConfigError::Invalid {
                path: base.join(p),
                message,
            })?;
        }
        if let Some(coordination) = file.coordination.as_mut() {
            coordination.load_files(base, &mut read)?;
        }
        let token = read("http.token_file", &file.http.token_file)?;
        let peer_secret = read("peer.secret_file", &file.peer.secret_file)?;
        let tls = match &file.tls {
            Some(t) => Some(std::sync::Arc::new(crate::tls::Tls::load(
                t,
                base,
                |key| read_secret_file("tls.key", key, policy, warnings),
            )?)),
            None => None,
        };
        Ok(Config {
            file,
            token,
            peer_secret,
            tls,
        })
    }
}

/// A parse or validation error before it is tied to a file.
#[derive(Debug)]
pub struct FileError {
    message: String,
    parse: bool,
}

impl FileError {
    fn at(self, path: &Path) -> ConfigError {
        if self.parse {
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: self.message,
            }
        } else {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                message: self.message,
            }
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl ConfigFile {
    /// Parses and validates TOML text. Pure.
    pub fn parse(text: &str) -> Result<ConfigFile, FileError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| FileError {
            message: e.to_string(),
            parse: true,
        })?;
        file.validate().map_err(|message| FileError {
            message,
            parse: false,
        })?;
        Ok(file)
    }

    /// The group as this file lists it: what every member's file must list alike (compared
    /// between the agents at run time, since one file cannot see the others).
    pub fn definition(&self) -> Definition {
        Definition {
            members: self
                .members
                .iter()
                .map(|m| DefinedMember {
                    name: m.name.clone(),
                    role: m.role,
                    address: m.address,
                    extra_address: m.extra(),
                })
                .collect(),
        }
    }

    /// What is valid but worth a word to the operator (`check-config` prints it, `run` logs
    /// it): a Backup without a `data_dir` would publish nothing as the replacement of a
    /// replace takeover.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.tls.as_ref().is_some_and(|t| t.ca.is_none()) {
            out.push(
                "[tls] has no ca: peers are verified against the system roots and TLS between \
                 the agents is not mutual (the peer protocol is protected by its signatures \
                 alone); set ca to the CA of the agents' certificates"
                    .to_string(),
            );
        }
        out
    }

    pub fn local(&self) -> &MemberConfig {
        self.members
            .iter()
            .find(|m| m.name == self.member)
            .expect("validated: member is listed")
    }

    /// A Main that stops renewing must have lost its address before any Backup may fail it
    /// over (`group::lease`).
    fn validate_lease(&self) -> Vec<String> {
        let lease = self.address.lease;
        if lease < Duration::from_secs(1) || lease.subsec_nanos() != 0 {
            return vec![format!(
                "address.lease ({}): must be a whole number of seconds, at least 1s (the \
                 kernel's unit for address lifetimes)",
                humantime::format_duration(lease)
            )];
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let shortest =
            crate::group::lease::shortest_failover_after(ms(lease), ms(self.heartbeat_interval));
        if ms(self.failover_after) < shortest {
            return vec![format!(
                "failover_after ({}) must be at least address.lease ({}) + heartbeat_interval \
                 ({}) + {} ms of kernel slack = {}: a Main that stops renewing its address must \
                 have lost it before a Backup may fail it over; raise failover_after or lower \
                 heartbeat_interval",
                humantime::format_duration(self.failover_after),
                humantime::format_duration(lease),
                humantime::format_duration(self.heartbeat_interval),
                crate::group::lease::KERNEL_SLACK,
                humantime::format_duration(Duration::from_millis(shortest)),
            )];
        }
        let with_quorum = crate::group::lease::shortest_failover_after_with_quorum(
            ms(lease),
            ms(self.heartbeat_interval),
        );
        if self.coordination.is_some() && ms(self.failover_after) < with_quorum {
            return vec![format!(
                "failover_after ({}) must be at least address.lease + {} ms of kernel slack + \
                 3 × heartbeat_interval = {} with a [coordination] section: while the quorum \
                 source cannot be reached, a Main keeps its address only while it has heard \
                 every peer within failover_after - lease - slack - heartbeat_interval, which \
                 must span two heartbeats",
                humantime::format_duration(self.failover_after),
                crate::group::lease::KERNEL_SLACK,
                humantime::format_duration(Duration::from_millis(with_quorum)),
            )];
        }
        Vec::new()
    }

    fn validate_address(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let a = &self.address;
        match a.backend {
            AddressBackendKind::Linux => {
                match a.interface.as_deref() {
                    None | Some("") => errs.push(
                        "address.interface: backend \"linux\" needs the interface that carries \
                         the service addresses"
                            .to_string(),
                    ),
                    Some(i) if i.len() > 15 || i.contains('/') || i.contains(' ') => {
                        errs.push(format!("address.interface {i:?} is not an interface name"))
                    }
                    _ => {}
                }
                if a.garp_count > 100 {
                    errs.push("address.garp_count: at most 100".to_string());
                }
            }
            AddressBackendKind::Hooks => {
                if self.hooks.on_online.is_none() && self.hooks.on_offline.is_none() {
                    errs.push(
                        "hooks: backend \"hooks\" needs at least on_online or on_offline"
                            .to_string(),
                    );
                }
            }
            AddressBackendKind::Simulated => {}
        }
        if a.backend != AddressBackendKind::Simulated {
            errs.extend(self.validate_lease());
        }
        if let Some(p) = a.prefix_len {
            let v6 = self.members.iter().any(|m| m.address.is_ipv6());
            let v4 = self.members.iter().any(|m| m.address.is_ipv4());
            if p == 0 || (v4 && p > 32) || (v6 && p > 128) {
                errs.push(format!("address.prefix_len {p} does not fit the addresses"));
            }
        }
        for (name, cmd) in [
            ("on_online", &self.hooks.on_online),
            ("on_standby", &self.hooks.on_standby),
            ("on_offline", &self.hooks.on_offline),
            ("on_lease_lost", &self.hooks.on_lease_lost),
        ] {
            if cmd
                .as_ref()
                .is_some_and(|c| c.is_empty() || c[0].is_empty())
            {
                errs.push(format!("hooks.{name}: give the program and its arguments"));
            }
        }
        if self.hooks.timeout.is_zero() {
            errs.push("hooks.timeout: must be more than 0".to_string());
        }
        errs
    }

    /// The cross-field rules. Returns every problem found, one per line.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = Vec::new();
        if self.group.trim().is_empty() {
            errs.push("group: must not be empty".to_string());
        }
        if self.heartbeat_interval < Duration::from_millis(50) {
            errs.push("heartbeat_interval: must be at least 50ms".to_string());
        }
        if self.failover_after <= self.heartbeat_interval {
            errs.push(format!(
                "failover_after ({}) must be greater than heartbeat_interval ({})",
                humantime::format_duration(self.failover_after),
                humantime::format_duration(self.heartbeat_interval)
            ));
        }
        if self.peer.request_timeout >= self.failover_after {
            errs.push("peer.request_timeout must be shorter than failover_after".to_string());
        }
        if self.peer.replay_window < Duration::from_secs(1) {
            errs.push("peer.replay_window: must be at least 1s".to_string());
        }
        errs.extend(self.validate_address());
        if let Some(f) = &self.fencing {
            errs.extend(f.validate());
        }
        if self.replication.interval < Duration::from_secs(1) {
            errs.push("replication.interval: must be at least 1s".to_string());
        }
        if self.maintenance.alert_after < Duration::from_secs(1) {
            errs.push("maintenance.alert_after: must be at least 1s".to_string());
        }
        if self.members.is_empty() {
            errs.push("members: at least one member is required".to_string());
        }
        if !self.members.iter().any(|m| m.name == self.member) {
            errs.push(format!(
                "member {:?} is not one of the [[members]] ({})",
                self.member,
                self.members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut names = BTreeSet::new();
        let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
        for m in &self.members {
            if m.name.is_empty()
                || !m
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
            {
                errs.push(format!(
                    "member {:?}: names use letters, digits, '-', '_' and '.' only",
                    m.name
                ));
            }
            if !names.insert(m.name.as_str()) {
                errs.push(format!("member {:?} is listed twice", m.name));
            }
            if m.peer_urls.is_empty() {
                errs.push(format!(
                    "member {:?}: peer_urls needs at least one heartbeat path",
                    m.name
                ));
            }
            for (path, url) in &m.peer_urls {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    errs.push(format!(
                        "member {:?}: peer_urls.{path} = {url:?} is not an http:// URL",
                        m.name
                    ));
                } else if self.tls.is_some() && url.starts_with("http://") {
                    errs.push(format!(
                        "member {:?}: peer_urls.{path} = {url:?} is plain HTTP in a group with \
                         a [tls] section: every agent of a TLS group serves HTTPS only; use \
                         https://",
                        m.name
                    ));
                } else if self.tls.is_none() && url.starts_with("https://") {
                    errs.push(format!(
                        "member {:?}: peer_urls.{path} = {url:?} is HTTPS but there is no \
                         [tls] section: set [tls] cert, key and ca (the CA of the agents' \
                         certificates) so that this agent serves HTTPS and verifies its peers",
                        m.name
                    ));
                }
            }
            if m.role == Role::Backup && m.auto_failover {
                errs.push(format!(
                    "member {:?}: auto_failover is a Main's setting (\"a Backup may take me over\")",
                    m.name
                ));
            }
            // Backups never go to their extra address, so only Mains' extras must be distinct.
            let mut held = vec![("address", m.address)];
            if m.role == Role::Main {
                held.push(("extra address", m.extra()));
            }
            for (what, a) in held {
                if let Some(other) = addresses.insert(a, format!("{} of {}", what, m.name)) {
                    errs.push(format!(
                        "{a} is both the {other} and the {what} of {} \
                         (set distinct extra_address values)",
                        m.name
                    ));
                }
            }
        }
        if !self.members.iter().any(|m| m.role == Role::Backup) {
            errs.push("members: a group needs at least one backup".to_string());
        }
        let local = self.members.iter().find(|m| m.name == self.member);
        if local.is_some_and(|m| m.role == Role::Main) && self.replication.data_dir.is_none() {
            errs.push(format!(
                "member {:?} is a main but publishes nothing: set [replication] data_dir to \
                 the directory its Backups replicate (without it no Backup can ever replicate \
                 it, so every takeover of it is refused with never_replicated)",
                self.member
            ));
        }
        for c in &self.device_checks {
            match (&c.tcp, &c.command) {
                (Some(_), None) => {}
                (None, Some(cmd)) if !cmd.is_empty() => {}
                _ => errs.push(format!(
                    "device check {:?}: set exactly one of tcp or command",
                    c.name
                )),
            }
            if c.fail_after == 0 || c.fail_after > 1000 {
                errs.push(format!(
                    "device check {:?}: fail_after must be between 1 and 1000",
                    c.name
                ));
            }
            if c.timeout >= c.interval {
                errs.push(format!(
                    "device check {:?}: timeout must be shorter than interval",
                    c.name
                ));
            }
        }
        if let Some(snmp) = &self.snmp {
            errs.extend(snmp.validate());
        }
        if let Some(coordination) = &self.coordination {
            errs.extend(coordination.validate(self.failover_after));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
group = "plant"
member = "main-1"
state_dir = "/tmp/x"
[http]
listen = "127.0.0.1:9400"
token_file = "token"
[peer]
secret_file = "secret"
[replication]
data_dir = "/srv/data"
[[members]]
name = "main-1"
role = "main"
address = "192.0.2.10"
peer_urls = { lan = "http://127.0.0.1:9400" }
auto_failover = true
[[members]]
name = "backup-1"
role = "backup"
address = "192.0.2.20"
peer_urls = { lan = "http://127.0.0.1:9401" }
"#;

    #[test]
    fn parses_good_config_with_defaults() {
        let c = ConfigFile::parse(GOOD).expect("valid");
        assert_eq!(c.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(c.failover_after, Duration::from_secs(2));
        assert_eq!(c.local().extra(), DEFAULT_EXTRA_ADDRESS);
    }

    #[test]
    fn maintenance_alert_after_defaults_to_4h_and_must_be_a_second_or_more() {
        let c = ConfigFile::parse(GOOD).expect("valid");
        assert_eq!(c.maintenance.alert_after, Duration::from_secs(4 * 3600));
        let with = |v: &str| {
            GOOD.replace(
                "[[members]]\nname = \"main-1\"",
                &format!("[maintenance]\nalert_after = \"{v}\"\n[[members]]\nname = \"main-1\""),
            )
        };
        let c = ConfigFile::parse(&with("90m")).expect("valid");
        assert_eq!(c.maintenance.alert_after, Duration::from_secs(5400));
        let e = ConfigFile::parse(&with("500ms")).expect_err("too short");
        assert!(
            e.message.contains("maintenance.alert_after"),
            "{}",
            e.message
        );
        let text = GOOD.replace(
            "[[members]]\nname = \"main-1\"",
            "[maintenance]\nalert_afer = \"1h\"\n[[members]]\nname = \"main-1\"",
        );
        let e = ConfigFile::parse(&text).expect_err("typo");
        assert!(e.parse && e.message.contains("alert_afer"), "{}", e.message);
    }

    #[test]
    fn rejects_unknown_key() {
        let text = GOOD.replace("[http]", "colour = \"yellow\"\n[http]");
        let e = ConfigFile::parse(&text).expect_err("unknown key");
        assert!(e.parse && e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn rejects_failover_not_above_heartbeat() {
        let text = GOOD.replace(
            "state_dir = \"/tmp/x\"",
            "state_dir = \"/tmp/x\"\nheartbeat_interval = \"2s\"\nfailover_after = \"1s\"",
        );
        let e = ConfigFile::parse(&text).expect_err("cross-field");
        assert!(e.message.contains("failover_after"), "{}", e.message);
    }

    #[test]
    fn rejects_unknown_local_member_and_duplicates() {
        let text = GOOD
            .replace("member = \"main-1\"", "member = \"nobody\"")
            .replace("name = \"backup-1\"", "name = \"main-1\"");
        let e = ConfigFile::parse(&text).expect_err("bad members");
        assert!(
            e.message.contains("\"nobody\" is not one of"),
            "{}",
            e.message
        );
        assert!(e.message.contains("listed twice"), "{}", e.message);
    }

    #[test]
    fn a_main_must_publish_something_and_a_backup_needs_no_data_dir() {
        let no_data = GOOD.replace("data_dir = \"/srv/data\"\n", "");
        let e = ConfigFile::parse(&no_data).expect_err("a main without data_dir");
        assert!(
            e.message.contains(
                "member \"main-1\" is a main but publishes nothing: set [replication] data_dir"
            ),
            "{}",
            e.message
        );
        assert!(ConfigFile::parse(GOOD)
            .expect("valid")
            .warnings()
            .is_empty());
        let backup = no_data.replace("member = \"main-1\"", "member = \"backup-1\"");
        let c = ConfigFile::parse(&backup).expect("a backup may have no data_dir");
        // Nothing to warn about: a replace takeover gives the Main's role to a new server
        // that runs the Main's configuration, never to this Backup.
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    }

    #[test]
    fn the_definition_lists_the_members_in_order_with_roles_and_effective_addresses() {
        let c = ConfigFile::parse(GOOD).expect("valid");
        let d = c.definition();
        let listed: Vec<(String, Role, String, String)> = d
            .members
            .iter()
            .map(|m| {
                (
                    m.name.clone(),
                    m.role,
                    m.address.to_string(),
                    m.extra_address.to_string(),
                )
            })
            .collect();
        let want = |n: &str, r, a: &str| (n.to_string(), r, a.to_string(), "10.0.3.6".to_string());
        assert_eq!(
            listed,
            [
                want("main-1", Role::Main, "192.0.2.10"),
                want("backup-1", Role::Backup, "192.0.2.20")
            ]
        );
        // The local member, its URLs and timings are not part of it.
        let other = GOOD
            .replace("member = \"main-1\"", "member = \"backup-1\"")
            .replace(
                "state_dir = \"/tmp/x\"",
                "state_dir = \"/tmp/y\"\nheartbeat_interval = \"300ms\"",
            )
            .replace(":9401", ":9501");
        let other = ConfigFile::parse(&other).expect("valid");
        assert_eq!(other.definition(), d);
        assert_eq!(other.definition().digest(), d.digest());
    }

    #[test]
    fn tls_needs_https_peers_and_https_peers_need_tls() {
        let tls = "[tls]\ncert = \"agent.pem\"\nkey = \"agent-key.pem\"\nca = \"ca.pem\"\n";
        let e = ConfigFile::parse(&format!("{GOOD}{tls}")).expect_err("http:// with [tls]");
        assert!(
            e.message.contains(
                "member \"main-1\": peer_urls.lan = \"http://127.0.0.1:9400\" is plain HTTP in \
                 a group with a [tls] section"
            ),
            "{}",
            e.message
        );
        assert!(e.message.contains("\"backup-1\""), "{}", e.message);
        let https = GOOD.replace("\"http://", "\"https://");
        let e = ConfigFile::parse(&https).expect_err("https:// without [tls]");
        assert!(
            e.message
                .contains("is HTTPS but there is no [tls] section: set [tls] cert, key and ca"),
            "{}",
            e.message
        );
        let c = ConfigFile::parse(&format!("{https}{tls}")).expect("https:// with [tls]");
        assert_eq!(c.tls.map(|t| t.ca), Some(Some(PathBuf::from("ca.pem"))));
        let no_ca = tls.replace("ca = \"ca.pem\"\n", "");
        let c = ConfigFile::parse(&format!("{https}{no_ca}")).expect("[tls] without ca");
        assert!(
            c.warnings().iter().any(|w| w.contains("[tls] has no ca")),
            "{:?}",
            c.warnings()
        );
        let e = ConfigFile::parse(&format!("{https}{tls}colour = \"red\"\n"))
            .expect_err("unknown key in [tls]");
        assert!(e.parse && e.message.contains("colour"), "{}", e.message);
    }

    #[test]
    fn rejects_shared_extra_address_between_mains() {
        let text = GOOD.replace(
            "name = \"backup-1\"\nrole = \"backup\"",
            "name = \"main-2\"\nrole = \"main\"",
        )
            // ... and a Backup again: GOOD's last member on other addresses.
            + &GOOD[GOOD.rfind("[[members]]").unwrap_or(0)..]
            .replace("192.0.2.20", "192.0.2.30")
            .replace(":9401", ":9402");
        let e = ConfigFile::parse(&text).expect_err("two mains default to 10.0.3.6");
        assert!(e.message.contains("10.0.3.6"), "{}", e.message);
    }

    #[test]
    fn the_coordination_section_is_validated_with_the_group_failover_after() {
        let text = GOOD.replace("[http]", "failover_after = \"3s\"\n[http]")
            + "[coordination]\nbackend = \"etcd\"\nendpoints = [\"http://127.0.0.1:2379\"]\n";
        let parsed = ConfigFile::parse(&text);
        if cfg!(feature = "etcd") {
            let c = parsed.expect("valid with the etcd feature");
            assert_eq!(
                c.coordination.map(|c| c.session_ttl),
                Some(Duration::from_secs(2))
            );
        } else {
            let e = parsed.expect_err("a build without etcd refuses the section");
            assert!(
                e.message.contains("build with --features etcd"),
                "{}",
                e.message
            );
        }
        let e = ConfigFile::parse(&text.replace("\"3s\"", "\"2s\"")).expect_err("ttl = failover");
        assert!(
            e.message
                .contains("session_ttl (2s) must be shorter than failover_after (2s)"),
            "{}",
            e.message
        );
    }
}
