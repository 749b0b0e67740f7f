//! Every example configuration parses and validates, secrets included; its secret files hold
//! published values, which `check-config` warns about and `run` refuses. The TLS example's
//! certificates are made at test time with its own make-certs.sh (the README's commands), in
//! a copy of the example.

mod support;

use std::path::Path;
use std::process::Command;

use support::describe;

#[test]
fn every_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let tls_example = root.join("tls");
    let mut seen = 0;
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        if dir == tls_example {
            continue;
        }
        for entry in std::fs::read_dir(&dir).expect("read examples") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let (cfg, warnings) = understudy::config::Config::check(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!cfg.token.expose().is_empty());
                let published = warnings
                    .iter()
                    .filter(|w| matches!(w, understudy::secret::SecretError::Known { .. }))
                    .count();
                assert!(
                    published >= 2,
                    "{}: the token and the group secret are published values: {warnings:?}",
                    path.display()
                );
                let refused = understudy::config::Config::load(&path)
                    .expect_err("run refuses the published secrets");
                assert!(
                    matches!(refused, understudy::config::ConfigError::Secret { .. }),
                    "{refused}"
                );
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 6,
        "expected the two-server and N+1 examples, found {seen} files"
    );
}

#[test]
fn the_tls_example_is_valid_with_certificates_from_its_make_certs_script() {
    use std::os::unix::fs::PermissionsExt;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tls");
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(&example).expect("read the TLS example") {
        let path = entry.expect("entry").path();
        let to = dir.path().join(path.file_name().expect("file name"));
        std::fs::copy(&path, &to).expect("copy");
        // Secrets are kept mode 0600, as the example says.
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut cmd = Command::new("sh");
    cmd.current_dir(dir.path()).args([
        "make-certs.sh",
        "tls",
        "main-1=IP:192.0.2.1,IP:198.51.100.1",
        "backup-1=IP:192.0.2.2,IP:198.51.100.2",
    ]);
    let out = cmd.output().expect("run make-certs.sh");
    assert!(out.status.success(), "{}", describe(&cmd, &out));
    for name in ["main-1", "backup-1"] {
        let path = dir.path().join(format!("{name}.toml"));
        let (cfg, warnings) = understudy::config::Config::check(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The key made by the script is 0600: the only warnings are the published values.
        assert!(
            warnings
                .iter()
                .all(|w| matches!(w, understudy::secret::SecretError::Known { .. })),
            "{name}: {warnings:?}"
        );
        let tls = cfg.tls.expect("the [tls] section loaded");
        assert!(tls.mutual(), "{name}: a ca is set");
        let key = dir.path().join(format!("tls/{name}-key.pem"));
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{name}'s key is readable by others: {mode:o}"
        );
    }
}
