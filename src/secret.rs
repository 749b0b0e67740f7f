//! Secrets (token, group secret, community, SNMPv3 pass phrase, etcd password, TLS key): a
//! value that is never printed (its `Debug` shows `<secret>`), and [`read_secret_file`], the
//! one way to read one from a file, with the rule ssh applies to a private key: a file its
//! group or others may read or write is refused, and so is a value published in understudy's
//! examples or demo. Does file I/O only in [`read_secret_file`].

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret read from a file; never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// Values published in the examples (`examples/*/`), the demo and the README: anyone can
/// read them, so they protect nothing outside the demo.
pub const KNOWN_VALUES: &[&str] = &[
    // the demo (`understudy demo`, src/demo.rs)
    "demo-token",
    "demo-group-secret",
    "public",
    "private",
    "noc-auth-pass",
    "noc-priv-pass",
    // the example configurations
    "example-api-token-change-me",
    "example-group-secret-change-me",
    "change-me-noc-auth-pass",
    "change-me-noc-priv-pass",
    "change-me-read-community",
    "change-me-trap-community",
];

/// How a secret file that breaks the rule is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPolicy {
    /// `understudy run`: refused (the agent does not start).
    Enforce,
    /// `understudy check-config`: reported as a warning, the value is still read.
    Warn,
}

/// Why a secret file cannot be used. Every variant names the configuration key and the
/// resolved path.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{key} = {path}: cannot read the secret file: {source}")]
    Unreadable {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key} = {path}: the secret file is empty")]
    Empty { key: String, path: PathBuf },
    #[error(
        "{key} = {path}: the secret file's mode is {mode:04o}: its group or others may read or \
         write it; fix: chmod 600 {path}"
    )]
    TooOpen {
        key: String,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "{key} = {path}: the secret file holds a value published in understudy's examples or \
         demo, which protects nothing; write a secret of your own into it (for example: \
         openssl rand -hex 24 > {path})"
    )]
    Known { key: String, path: PathBuf },
}

impl SecretError {
    /// The resolved path of the file.
    pub fn path(&self) -> &Path {
        match self {
            SecretError::Unreadable { path, .. }
            | SecretError::Empty { path, .. }
            | SecretError::TooOpen { path, .. }
            | SecretError::Known { path, .. } => path,
        }
    }
}

/// Why a secret file with permission bits `mode` is refused: its group or others may read or
/// write it (0600 and 0400 are fine). Pure.
pub fn too_open(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// Whether `value` is one of [`KNOWN_VALUES`]. Pure.
pub fn is_known(value: &str) -> bool {
    KNOWN_VALUES.contains(&value)
}

/// Reads the secret in `path` (named `key` in the configuration; surrounding whitespace is
/// not part of it). An unreadable or empty file is always an error; a file its group or
/// others may read or write, or a value from [`KNOWN_VALUES`], is an error under
/// [`SecretPolicy::Enforce`] and is pushed to `warnings` under [`SecretPolicy::Warn`].
pub fn read_secret_file(
    key: &str,
    path: &Path,
    policy: SecretPolicy,
    warnings: &mut Vec<SecretError>,
) -> Result<Secret, SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |source| SecretError::Unreadable {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let mode = std::fs::metadata(path)
        .map_err(unreadable)?
        .permissions()
        .mode();
    let value = text.trim();
    if value.is_empty() {
        return Err(SecretError::Empty {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
    }
    let mut problems = Vec::new();
    if too_open(mode) {
        problems.push(SecretError::TooOpen {
            key: key.to_string(),
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    if is_known(value) {
        problems.push(SecretError::Known {
            key: key.to_string(),
            path: path.to_path_buf(),
        });
    }
    match policy {
        SecretPolicy::Enforce => {
            if let Some(first) = problems.into_iter().next() {
                return Err(first);
            }
        }
        SecretPolicy::Warn => warnings.extend(problems),
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn group_or_other_bits_are_too_open() {
        assert!(!too_open(0o100600));
        assert!(!too_open(0o100400));
        for mode in [0o100640, 0o100604, 0o100620, 0o100644, 0o100602, 0o100660] {
            assert!(too_open(mode), "{mode:o}");
        }
    }

    fn file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("s");
        std::fs::write(&p, text).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    #[test]
    fn enforce_refuses_an_open_file_and_a_known_value_naming_key_and_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Vec::new();
        let p = file(dir.path(), "a-real-secret\n", 0o640);
        let e = read_secret_file("peer.secret_file", &p, SecretPolicy::Enforce, &mut w)
            .expect_err("0640 is refused");
        let text = e.to_string();
        assert!(text.starts_with("peer.secret_file = "), "{text}");
        assert!(text.contains("0640"), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", p.display())),
            "{text}"
        );
        let p = file(dir.path(), "demo-token\n", 0o600);
        let e = read_secret_file("http.token_file", &p, SecretPolicy::Enforce, &mut w)
            .expect_err("a known value is refused");
        assert!(matches!(e, SecretError::Known { .. }), "{e}");
        assert!(w.is_empty());
        let p = file(dir.path(), "  a-real-secret \n", 0o600);
        let s = read_secret_file("http.token_file", &p, SecretPolicy::Enforce, &mut w)
            .expect("0600 with an own value");
        assert_eq!(s.expose(), "a-real-secret");
    }

    #[test]
    fn warn_reads_the_value_and_reports_each_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Vec::new();
        let p = file(dir.path(), "public\n", 0o644);
        let s = read_secret_file("k", &p, SecretPolicy::Warn, &mut w).expect("read");
        assert_eq!(s.expose(), "public");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(matches!(w[0], SecretError::TooOpen { mode: 0o644, .. }));
        assert!(matches!(w[1], SecretError::Known { .. }));
    }

    #[test]
    fn empty_and_missing_files_are_errors_under_either_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut w = Vec::new();
        let p = file(dir.path(), " \n", 0o600);
        let e = read_secret_file("k", &p, SecretPolicy::Warn, &mut w).expect_err("empty");
        assert!(matches!(e, SecretError::Empty { .. }), "{e}");
        let missing = dir.path().join("missing");
        let e = read_secret_file(
            "snmp.users[\"noc\"].auth_password_file",
            &missing,
            SecretPolicy::Warn,
            &mut w,
        )
        .expect_err("missing");
        assert_eq!(e.path(), missing);
        assert!(e.to_string().contains("auth_password_file"), "{e}");
    }
}
