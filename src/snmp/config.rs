//! The `[snmp]` section of a member's configuration: listen address, communities and SNMPv3
//! users (secrets read from files), notification targets and the alarm repeat interval, with
//! its cross-field validation. Pure, except [`SnmpConfig::load_secrets`], which reads the
//! secret files through the reader it is given.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The root of UNDERSTUDY-MIB (RFC 5612's documentation enterprise number, arc 36).
pub const DEFAULT_MIB_ROOT: &str = "1.3.6.1.4.1.32473.36";
/// The largest response the agent sends unless configured: an Ethernet frame's UDP payload.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1472;
/// The smallest message every SNMP engine must accept (RFC 3417).
pub const MIN_MAX_MESSAGE_SIZE: usize = 484;
/// The largest UDP payload over IPv4.
pub const MAX_MAX_MESSAGE_SIZE: usize = 65507;
/// USM passwords shorter than this are refused (RFC 3414 11.2 and net-snmp).
pub const MIN_USM_PASSWORD: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpConfig {
    /// UDP address of the SNMP agent (GET, GETNEXT, GETBULK, SET over v1, v2c and v3).
    pub listen: SocketAddr,
    /// How often `rgNoRedundancy` is sent again while the no-redundancy alarm is raised, and
    /// `rgReplicationFailed` while this member's replication keeps failing.
    #[serde(default = "default_alarm_repeat", with = "humantime_serde")]
    pub alarm_repeat: Duration,
    /// Which agents send the group-level notifications (`rgTakeover`, `rgFailover`,
    /// `rgNoRedundancy` of a takeover, failover or missing standby, `rgRedundancyRestored`):
    /// `one` (default) or `every`.
    #[serde(default)]
    pub group_notifications: GroupNotifications,
    /// The largest response, in octets; GETBULK responses are cut to fit.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: usize,
    /// `sysContact.0`.
    #[serde(default)]
    pub contact: String,
    /// `sysLocation.0`.
    #[serde(default)]
    pub location: String,
    /// Where UNDERSTUDY-MIB is rooted; change it only together with the MIB file
    /// (see mibs/README.md, "Re-rooting under your own enterprise number").
    #[serde(default = "default_mib_root")]
    pub mib_root: String,
    /// SNMPv1/v2c communities.
    #[serde(default)]
    pub communities: Vec<CommunityConfig>,
    /// SNMPv3 (USM) users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Where notifications go.
    #[serde(default)]
    pub targets: Vec<TargetConfig>,
}

fn default_alarm_repeat() -> Duration {
    Duration::from_secs(300)
}
fn default_max_message_size() -> usize {
    DEFAULT_MAX_MESSAGE_SIZE
}
fn default_mib_root() -> String {
    DEFAULT_MIB_ROOT.to_string()
}

/// Which agents of the group send a group-level notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupNotifications {
    /// One agent: the lowest-index member this agent hears (itself included). Every agent
    /// decides alike from its own view, so a manager gets one copy while the agents hear each
    /// other, and one from each side of a partition. Every member must list the same targets.
    #[default]
    One,
    /// Every agent sends its own copy (deduplicate on `rgNotifyEventId`).
    Every,
}

/// What a community or user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// GET, GETNEXT, GETBULK.
    ReadOnly,
    /// Also SET on the control columns (takeover, reverse takeover, auto-failover).
    ReadWrite,
    /// Nothing: the user only authenticates notifications sent to a target.
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityConfig {
    /// How logs and the event history name this community (`requested_by` is `snmp:NAME`);
    /// never the community string itself.
    pub name: String,
    /// File holding the community string (a secret).
    pub secret_file: PathBuf,
    pub access: Access,
    #[serde(skip)]
    pub secret: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProtocol {
    #[serde(rename = "sha-1")]
    Sha1,
    #[serde(rename = "sha-256")]
    Sha256,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivProtocol {
    #[serde(rename = "aes-128")]
    Aes128,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The USM user name (shown in the event history as `snmp:NAME`).
    pub name: String,
    pub access: Access,
    /// Authentication is required: `sha-1` or `sha-256`.
    pub auth: AuthProtocol,
    pub auth_password_file: PathBuf,
    /// `aes-128`, or absent for authNoPriv.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_password_file: Option<PathBuf>,
    #[serde(skip)]
    pub auth_password: Secret,
    #[serde(skip)]
    pub privacy_password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Unconfirmed: sent once.
    Trap,
    /// Confirmed: retried with back-off until acknowledged or given up.
    Inform,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `HOST:PORT` of the receiver (snmptrapd, an NMS).
    pub address: String,
    pub notify: NotifyKind,
    /// SNMPv2c: file holding the community the receiver expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community_file: Option<PathBuf>,
    /// SNMPv3: one of `[[snmp.users]]`, whose credentials are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Informs: how long to wait for each acknowledgement; retries are spaced by an
    /// exponential back-off from 0.5 s up to 10 s.
    #[serde(default = "default_inform_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Informs: how many times to send again before giving up.
    #[serde(default = "default_inform_retries")]
    pub retries: u32,
    #[serde(skip)]
    pub community: Secret,
}

fn default_inform_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_inform_retries() -> u32 {
    4
}

/// The most inform retries accepted (async-snmp's bound is higher; this keeps a dead receiver
/// from holding a queue for long).
pub const MAX_INFORM_RETRIES: u32 = 10;

/// Parses a dotted OID (`1.3.6.1`, a leading dot allowed).
pub fn parse_oid(text: &str) -> Option<Vec<u32>> {
    let t = text.strip_prefix('.').unwrap_or(text);
    let arcs: Option<Vec<u32>> = t.split('.').map(|a| a.parse().ok()).collect();
    let arcs = arcs?;
    let first_ok = arcs.first().is_some_and(|a| *a <= 2);
    let second_ok = arcs.get(1).is_some_and(|b| arcs[0] == 2 || *b < 40);
    (arcs.len() >= 2 && first_ok && second_ok).then_some(arcs)
}

impl SnmpConfig {
    /// The configured MIB root as arcs (validated).
    pub fn root(&self) -> Vec<u32> {
        parse_oid(&self.mib_root).unwrap_or_else(|| {
            parse_oid(DEFAULT_MIB_ROOT).unwrap_or_else(|| vec![1, 3, 6, 1, 4, 1, 32473, 36])
        })
    }

    /// The cross-field rules; one message per problem.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.alarm_repeat < Duration::from_secs(1) {
            errs.push("snmp.alarm_repeat: must be at least 1s".to_string());
        }
        if !(MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(&self.max_message_size) {
            errs.push(format!(
                "snmp.max_message_size: must be between {MIN_MAX_MESSAGE_SIZE} and \
                 {MAX_MAX_MESSAGE_SIZE} octets"
            ));
        }
        if parse_oid(&self.mib_root).is_none() {
            errs.push(format!(
                "snmp.mib_root: {:?} is not a dotted OID such as {DEFAULT_MIB_ROOT}",
                self.mib_root
            ));
        }
        if self.communities.is_empty() && !self.users.iter().any(|u| u.access != Access::None) {
            errs.push(
                "snmp: no community and no user may query the agent (add [[snmp.communities]] \
                 or [[snmp.users]])"
                    .to_string(),
            );
        }
        let mut names = BTreeSet::new();
        for c in &self.communities {
            if !valid_name(&c.name) {
                errs.push(format!(
                    "snmp.communities: name {:?} must be 1 to 32 letters, digits, '-', '_' or '.' \
                     (it names the community in logs; the string itself is in secret_file)",
                    c.name
                ));
            }
            if !names.insert(c.name.as_str()) {
                errs.push(format!("snmp.communities: {:?} is listed twice", c.name));
            }
            if c.access == Access::None {
                errs.push(format!(
                    "snmp.communities {:?}: access must be read-only or read-write",
                    c.name
                ));
            }
        }
        let mut users = BTreeSet::new();
        for u in &self.users {
            if !valid_name(&u.name) {
                errs.push(format!(
                    "snmp.users: name {:?} must be 1 to 32 letters, digits, '-', '_' or '.'",
                    u.name
                ));
            }
            if !users.insert(u.name.as_str()) {
                errs.push(format!("snmp.users: {:?} is listed twice", u.name));
            }
            match (&u.privacy, &u.privacy_password_file) {
                (Some(_), None) => errs.push(format!(
                    "snmp.users {:?}: privacy needs privacy_password_file",
                    u.name
                )),
                (None, Some(_)) => errs.push(format!(
                    "snmp.users {:?}: privacy_password_file is set but privacy is not",
                    u.name
                )),
                _ => {}
            }
        }
        for t in &self.targets {
            if !valid_host_port(&t.address) {
                errs.push(format!(
                    "snmp.targets: address {:?} is not HOST:PORT (for example 192.0.2.1:162)",
                    t.address
                ));
            }
            match (&t.community_file, &t.user) {
                (Some(_), None) => {}
                (None, Some(user)) => {
                    if !self.users.iter().any(|u| &u.name == user) {
                        errs.push(format!(
                            "snmp.targets {:?}: user {user:?} is not one of [[snmp.users]]",
                            t.address
                        ));
                    }
                }
                _ => errs.push(format!(
                    "snmp.targets {:?}: set exactly one of community_file (SNMPv2c) or user \
                     (SNMPv3)",
                    t.address
                )),
            }
            if t.notify == NotifyKind::Inform {
                if t.timeout < Duration::from_millis(100) || t.timeout > Duration::from_secs(60) {
                    errs.push(format!(
                        "snmp.targets {:?}: timeout must be between 100ms and 60s",
                        t.address
                    ));
                }
                if t.retries > MAX_INFORM_RETRIES {
                    errs.push(format!(
                        "snmp.targets {:?}: retries must be at most {MAX_INFORM_RETRIES}",
                        t.address
                    ));
                }
            }
        }
        errs
    }

    /// Reads every secret file through `read`, which is given the configuration key (as
    /// `snmp.users["noc"].auth_password_file`) and the file name as written (it resolves it
    /// relative to the configuration file and applies the secret-file rule), and checks the
    /// USM password lengths.
    pub fn load_secrets<E>(
        &mut self,
        mut read: impl FnMut(&str, &Path) -> Result<Secret, E>,
        too_short: impl Fn(&Path, String) -> E,
    ) -> Result<(), E> {
        for c in &mut self.communities {
            let key = format!("snmp.communities[{:?}].secret_file", c.name);
            c.secret = read(&key, &c.secret_file)?;
        }
        for u in &mut self.users {
            let key = format!("snmp.users[{:?}].auth_password_file", u.name);
            u.auth_password = read(&key, &u.auth_password_file)?;
            if u.auth_password.expose().len() < MIN_USM_PASSWORD {
                return Err(too_short(
                    &u.auth_password_file,
                    format!("the password of SNMPv3 user {:?} must be at least {MIN_USM_PASSWORD} characters", u.name),
                ));
            }
            if let Some(p) = &u.privacy_password_file {
                let key = format!("snmp.users[{:?}].privacy_password_file", u.name);
                u.privacy_password = read(&key, p)?;
                if u.privacy_password.expose().len() < MIN_USM_PASSWORD {
                    return Err(too_short(
                        p,
                        format!("the privacy password of SNMPv3 user {:?} must be at least {MIN_USM_PASSWORD} characters", u.name),
                    ));
                }
            }
        }
        for t in &mut self.targets {
            if let Some(f) = &t.community_file {
                let key = format!("snmp.targets[{:?}].community_file", t.address);
                t.community = read(&key, f)?;
            }
        }
        Ok(())
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn valid_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(':')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && port.parse::<u16>().is_ok_and(|p| p != 0)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SnmpConfig, String> {
        let c: SnmpConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        let errs = c.validate();
        if errs.is_empty() {
            Ok(c)
        } else {
            Err(errs.join("\n"))
        }
    }

    const GOOD: &str = r#"
listen = "0.0.0.0:161"
alarm_repeat = "1m"
# an array of inline tables: the same users as [[users]] tables would be
users = [{ name = "noc", access = "read-write", auth = "sha-256", auth_password_file = "noc-auth", privacy = "aes-128", privacy_password_file = "noc-priv" }]
[[communities]]
name = "noc-read"
secret_file = "snmp-read-community"
access = "read-only"
[[targets]]
address = "192.0.2.1:162"
notify = "inform"
user = "noc"
[[targets]]
address = "nms.example.net:162"
notify = "trap"
community_file = "trap-community"
"#;

    #[test]
    fn parses_a_good_section_with_defaults() {
        let c = parse(GOOD).expect("valid");
        assert_eq!(c.alarm_repeat, Duration::from_secs(60));
        assert_eq!(c.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
        assert_eq!(c.root(), vec![1, 3, 6, 1, 4, 1, 32473, 36]);
        assert_eq!(c.targets[0].retries, 4);
    }

    #[test]
    fn rejects_unknown_keys_and_values() {
        let e = parse(&GOOD.replace("alarm_repeat", "alarm_repeats")).expect_err("unknown key");
        assert!(e.contains("alarm_repeats"), "{e}");
        let e = parse(&GOOD.replace("\"sha-256\"", "\"md5\"")).expect_err("unknown protocol");
        assert!(e.contains("md5"), "{e}");
        let e = parse(&GOOD.replace("\"read-only\"", "\"everything\"")).expect_err("access");
        assert!(e.contains("everything"), "{e}");
    }

    #[test]
    fn cross_field_rules() {
        let e = parse(&GOOD.replace("user = \"noc\"", "user = \"nobody\"")).expect_err("user");
        assert!(e.contains("\"nobody\" is not one of"), "{e}");
        let e = parse(&GOOD.replace("privacy = \"aes-128\", ", "")).expect_err("priv file");
        assert!(e.contains("privacy is not"), "{e}");
        let e = parse(&GOOD.replace("alarm_repeat = \"1m\"", "alarm_repeat = \"10ms\""))
            .expect_err("repeat");
        assert!(e.contains("alarm_repeat"), "{e}");
        let e = parse(&GOOD.replace("192.0.2.1:162", "192.0.2.1")).expect_err("address");
        assert!(e.contains("HOST:PORT"), "{e}");
        let e = parse(&GOOD.replace(
            "community_file = \"trap-community\"",
            "community_file = \"trap-community\"\nuser = \"noc\"",
        ))
        .expect_err("both");
        assert!(e.contains("exactly one"), "{e}");
        let e = parse(&format!("mib_root = \"1.3.x\"\n{GOOD}")).expect_err("root");
        assert!(e.contains("mib_root"), "{e}");
        let e = parse(&GOOD.replace("name = \"noc-read\"", "name = \"public community\""))
            .expect_err("name");
        assert!(e.contains("letters"), "{e}");
    }

    #[test]
    fn oid_parsing() {
        assert_eq!(parse_oid(".1.3.6"), Some(vec![1, 3, 6]));
        assert_eq!(parse_oid("1"), None);
        assert_eq!(parse_oid("3.1"), None);
        assert_eq!(parse_oid("1.40"), None);
        assert_eq!(parse_oid("1.3..6"), None);
    }

    #[test]
    fn secrets_are_read_and_checked() {
        let mut c = parse(GOOD).expect("valid");
        let read = |_key: &str, p: &Path| -> Result<Secret, String> {
            Ok(Secret::new(match p.to_str() {
                Some("noc-auth") => "noc-auth-pass",
                Some("noc-priv") => "short",
                _ => "public",
            }))
        };
        let e = c
            .load_secrets(read, |p, m| format!("{}: {m}", p.display()))
            .expect_err("short privacy password");
        assert!(
            e.starts_with("noc-priv:") && e.contains("at least 8"),
            "{e}"
        );
    }
}
