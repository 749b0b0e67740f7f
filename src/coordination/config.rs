//! The `[coordination]` section: which quorum source, where, and how to authenticate.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The quorum source's kind. Only etcd (v3 API) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoordinationBackend {
    Etcd,
}

/// TLS towards etcd (all paths PEM files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// CA certificate(s) the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// Client certificate and key, for etcd's `--client-cert-auth`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the endpoint's host).
    #[serde(default)]
    pub domain: Option<String>,
}

mod defaults {
    use std::time::Duration;
    pub fn prefix() -> String {
        "/understudy".into()
    }
    pub fn session_ttl() -> Duration {
        Duration::from_secs(2)
    }
    pub fn request_timeout() -> Duration {
        Duration::from_millis(500)
    }
}

/// `[coordination]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinationConfig {
    pub backend: CoordinationBackend,
    /// Client URLs of the etcd cluster (`http://` or `https://`), every member's.
    pub endpoints: Vec<String>,
    /// Keys live under `<prefix>/<group>/`.
    #[serde(default = "defaults::prefix")]
    pub prefix: String,
    /// TTL of this agent's etcd lease (whole seconds; etcd's own minimum applies).
    #[serde(default = "defaults::session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Time-out of one request to etcd (connect included).
    #[serde(default = "defaults::request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(default)]
    pub tls: Option<EtcdTls>,
    /// etcd user (with `password_file`).
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}
