//! Every example configuration parses and validates, secrets included; its secret files hold
//! published values, which `check-config` warns about and `run` refuses.

use std::path::Path;

#[test]
fn every_example_config_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
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
