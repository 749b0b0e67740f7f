//! The `[coordination]` section: which quorum source, where, and how to authenticate; its
//! cross-field validation. Pure, except [`CoordinationConfig::load_files`], which reads the
//! password file (through the reader it is given) and checks the file's mode.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The smallest session TTL accepted: etcd's own minimum lease TTL is 1.5 election timeouts,
/// and a session that short leaves no room for a keep-alive to be late.
pub const MIN_SESSION_TTL: Duration = Duration::from_secs(2);

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
    /// The etcd password, read from `password_file` by [`CoordinationConfig::load_files`]
    /// (`Config::load` calls it).
    #[serde(skip)]
    pub password: Option<Secret>,
}

impl CoordinationConfig {
    /// The cross-field rules, every problem found (empty: valid). `failover_after` is the
    /// group's: a failed Main's keys must be gone (its session's TTL run out) by the time a
    /// Backup fails it over.
    pub fn validate(&self, failover_after: Duration) -> Vec<String> {
        let mut errs = Vec::new();
        #[cfg(not(feature = "etcd"))]
        errs.push(
            "coordination: this build has no etcd support: build with --features etcd \
             (or remove the [coordination] section)"
                .to_string(),
        );
        if self.endpoints.is_empty() {
            errs.push("coordination.endpoints: at least one etcd endpoint is required".into());
        }
        for e in &self.endpoints {
            match endpoint_scheme(e) {
                Err(why) => errs.push(format!("coordination.endpoints: {e:?} {why}")),
                Ok(Scheme::Https) if self.tls.is_none() => errs.push(format!(
                    "coordination.endpoints: {e:?} is https:// but there is no [coordination.tls] \
                     (set its ca_file)"
                )),
                Ok(Scheme::Http) if self.tls.is_some() => errs.push(format!(
                    "coordination.endpoints: {e:?} is http:// but [coordination.tls] is set \
                     (every endpoint must be https:// with TLS)"
                )),
                Ok(_) => {}
            }
        }
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_whitespace) {
            errs.push(format!(
                "coordination.prefix {:?}: give a key prefix such as \"/understudy\" (no spaces)",
                self.prefix
            ));
        }
        let ttl = self.session_ttl;
        if ttl.subsec_nanos() != 0 {
            errs.push(format!(
                "coordination.session_ttl ({}): etcd leases have whole seconds",
                humantime::format_duration(ttl)
            ));
        }
        if ttl < MIN_SESSION_TTL {
            errs.push(format!(
                "coordination.session_ttl ({}): must be at least {}",
                humantime::format_duration(ttl),
                humantime::format_duration(MIN_SESSION_TTL)
            ));
        }
        if ttl >= failover_after {
            errs.push(format!(
                "coordination.session_ttl ({}) must be shorter than failover_after ({}): a failed \
                 Main's address keys must have expired when a Backup fails it over",
                humantime::format_duration(ttl),
                humantime::format_duration(failover_after)
            ));
        }
        if self.request_timeout.is_zero() || self.request_timeout >= ttl / 3 {
            errs.push(format!(
                "coordination.request_timeout ({}) must be more than 0 and shorter than a third \
                 of session_ttl ({})",
                humantime::format_duration(self.request_timeout),
                humantime::format_duration(ttl / 3)
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                errs.push(
                    "coordination.tls: set both cert_file and key_file (a client certificate) \
                     or neither"
                        .into(),
                );
            }
            if tls.domain.as_deref().is_some_and(|d| d.trim().is_empty()) {
                errs.push("coordination.tls.domain: must not be empty".into());
            }
        }
        match (&self.username, &self.password_file) {
            (Some(u), Some(_)) if u.is_empty() => {
                errs.push("coordination.username: must not be empty".into())
            }
            (Some(_), None) => {
                errs.push("coordination.username needs password_file (the etcd password)".into())
            }
            (None, Some(_)) => {
                errs.push("coordination.password_file needs username (the etcd user)".into())
            }
            _ => {}
        }
        errs
    }

    /// Resolves the file names against `base` (the configuration's directory, as for every
    /// secret file): the TLS files (read when connecting) and `password_file`, which it reads
    /// into `password` through `read`, given the configuration key and the file name as
    /// written (it resolves it against `base` and applies the secret-file rule:
    /// [`crate::secret::read_secret_file`]).
    pub fn load_files<E>(
        &mut self,
        base: &Path,
        read: impl FnOnce(&str, &Path) -> Result<Secret, E>,
    ) -> Result<(), E> {
        if let Some(tls) = self.tls.as_mut() {
            tls.ca_file = base.join(&tls.ca_file);
            for f in [&mut tls.cert_file, &mut tls.key_file]
                .into_iter()
                .flatten()
            {
                *f = base.join(&*f);
            }
        }
        let Some(file) = &self.password_file else {
            return Ok(());
        };
        self.password = Some(read("coordination.password_file", file)?);
        Ok(())
    }
}

/// An endpoint URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Checks `http://host:port` / `https://host:port` (a trailing `/` allowed; IPv6 hosts in
/// brackets). Pure.
pub fn endpoint_scheme(url: &str) -> Result<Scheme, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err("is not an http:// or https:// URL".into());
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err("has no port (http://host:port)".into());
    };
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
    };
    if !host_ok {
        return Err(format!("has no valid host ({host:?})"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(scheme),
        _ => Err(format!("has no valid port ({port:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CoordinationConfig {
        toml::from_str(
            r#"
backend = "etcd"
endpoints = ["http://127.0.0.1:2379", "http://[::1]:2379", "http://etcd-2.example:2379/"]
"#,
        )
        .expect("parses")
    }

    const FAILOVER: Duration = Duration::from_secs(3);

    /// The problems `validate` finds beside the one a build without etcd always reports.
    fn problems(c: &CoordinationConfig, failover_after: Duration) -> Vec<String> {
        let all = c.validate(failover_after);
        let (no_etcd, rest): (Vec<String>, Vec<String>) = all
            .into_iter()
            .partition(|e| e.contains("this build has no etcd support"));
        assert_eq!(no_etcd.len(), usize::from(cfg!(not(feature = "etcd"))));
        rest
    }

    fn one_problem(c: &CoordinationConfig, failover_after: Duration, needle: &str) {
        let p = problems(c, failover_after);
        assert!(p.len() == 1 && p[0].contains(needle), "{needle:?} in {p:?}");
    }

    #[test]
    fn defaults_and_a_good_section() {
        let c = good();
        assert_eq!(c.prefix, "/understudy");
        assert_eq!(c.session_ttl, Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(problems(&c, FAILOVER), Vec::<String>::new());
    }

    #[test]
    fn a_build_without_etcd_refuses_the_section() {
        let errs = good().validate(FAILOVER);
        let refused = errs
            .iter()
            .any(|e| e.contains("this build has no etcd support: build with --features etcd"));
        assert_eq!(refused, cfg!(not(feature = "etcd")), "{errs:?}");
    }

    #[test]
    fn endpoints_must_be_http_urls_with_host_and_port() {
        let mut c = good();
        c.endpoints.clear();
        one_problem(&c, FAILOVER, "at least one etcd endpoint");
        for (bad, why) in [
            ("127.0.0.1:2379", "not an http:// or https:// URL"),
            ("http://127.0.0.1", "has no port"),
            ("http://:2379", "no valid host"),
            ("http://[::1:2379", "no valid host"),
            ("http://a b:2379", "no valid host"),
            ("http://host:0", "no valid port"),
            ("http://host:99999", "no valid port"),
        ] {
            c.endpoints = vec![bad.into()];
            one_problem(&c, FAILOVER, why);
        }
    }

    #[test]
    fn https_needs_tls_and_tls_needs_https() {
        let mut c = good();
        c.endpoints = vec!["https://127.0.0.1:2379".into()];
        one_problem(&c, FAILOVER, "no [coordination.tls]");
        c.tls = Some(EtcdTls {
            ca_file: "ca.pem".into(),
            cert_file: None,
            key_file: None,
            domain: None,
        });
        assert_eq!(problems(&c, FAILOVER), Vec::<String>::new());
        c.endpoints.push("http://127.0.0.1:2380".into());
        one_problem(&c, FAILOVER, "is http:// but [coordination.tls] is set");
        c.endpoints.pop();
        if let Some(t) = c.tls.as_mut() {
            t.cert_file = Some("client.pem".into());
        }
        one_problem(&c, FAILOVER, "both cert_file and key_file");
        if let Some(t) = c.tls.as_mut() {
            t.key_file = Some("client-key.pem".into());
        }
        assert_eq!(problems(&c, FAILOVER), Vec::<String>::new());
    }

    #[test]
    fn session_ttl_is_whole_seconds_at_least_two_and_under_failover_after() {
        let mut c = good();
        c.session_ttl = Duration::from_millis(2500);
        one_problem(&c, FAILOVER, "whole seconds");
        c.session_ttl = Duration::from_secs(1);
        c.request_timeout = Duration::from_millis(100);
        one_problem(&c, FAILOVER, "at least 2s");
        c.session_ttl = Duration::from_secs(3);
        one_problem(&c, FAILOVER, "must be shorter than failover_after (3s)");
        // The defaults (2 s) against the group's default failover_after (2 s): refused too.
        one_problem(
            &good(),
            Duration::from_secs(2),
            "shorter than failover_after",
        );
    }

    #[test]
    fn request_timeout_is_under_a_third_of_the_ttl() {
        let mut c = good();
        c.request_timeout = Duration::from_millis(700);
        one_problem(&c, FAILOVER, "shorter than a third of session_ttl");
        c.request_timeout = Duration::ZERO;
        one_problem(&c, FAILOVER, "more than 0");
        c.request_timeout = Duration::from_millis(666);
        assert_eq!(problems(&c, FAILOVER), Vec::<String>::new());
    }

    #[test]
    fn username_and_password_file_go_together() {
        let mut c = good();
        c.username = Some("understudy".into());
        one_problem(&c, FAILOVER, "needs password_file");
        c.password_file = Some("etcd-password".into());
        assert_eq!(problems(&c, FAILOVER), Vec::<String>::new());
        c.username = None;
        one_problem(&c, FAILOVER, "needs username");
        c.username = Some(String::new());
        one_problem(&c, FAILOVER, "must not be empty");
    }

    #[test]
    fn prefix_must_be_a_key_prefix() {
        let mut c = good();
        c.prefix = String::new();
        one_problem(&c, FAILOVER, "coordination.prefix");
        c.prefix = "/under study".into();
        one_problem(&c, FAILOVER, "coordination.prefix");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<CoordinationConfig>(
            "backend = \"etcd\"\nendpoints = []\npasword_file = \"x\"\n",
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("pasword_file"), "{e}");
        assert!(
            toml::from_str::<CoordinationConfig>("backend = \"zookeeper\"\nendpoints = []\n")
                .is_err()
        );
    }

    #[test]
    fn load_files_reads_the_password_relative_to_the_config_through_the_secret_rule() {
        use crate::secret::{read_secret_file, SecretError, SecretPolicy};
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("etcd-password");
        std::fs::write(&file, "s3cret\n").expect("write");
        let base = dir.path();
        let read = |key: &str, p: &Path| {
            read_secret_file(key, &base.join(p), SecretPolicy::Enforce, &mut Vec::new())
        };
        let mut c = good();
        c.username = Some("understudy".into());
        c.password_file = Some("etcd-password".into());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = c.load_files(dir.path(), read).expect_err("0644 is refused");
        assert!(matches!(e, SecretError::TooOpen { mode: 0o644, .. }), "{e}");
        assert!(
            e.to_string().starts_with("coordination.password_file = "),
            "{e}"
        );
        assert_eq!(e.path(), file);
        assert_eq!(c.password, None);

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        c.load_files(dir.path(), read).expect("0600 is fine");
        assert_eq!(c.password, Some(Secret::new("s3cret")));

        let mut none = good();
        none.load_files(dir.path(), read)
            .expect("no password file, nothing to read");
        assert_eq!(none.password, None);
    }
}
