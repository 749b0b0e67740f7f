//! Secret files with the real binary, the rule ssh applies to a private key: `understudy run`
//! refuses a secret file (API token, group secret, SNMP community, SNMPv3 password) that its
//! group or others may read or write, and a value published in the examples or the demo, with
//! exit 64 and a message naming the configuration key, the file and the fix; `check-config`
//! warns about the same and exits 0; an unreadable secret names the key and the path.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

/// One member's configuration of a two-member group, with an `[snmp]` section whose read
/// community, SNMPv3 user and trap target read their secrets from files (all 0600, values of
/// their own).
fn member_with_snmp(dir: &Path) -> PathBuf {
    let group = write_group(dir, 1, 1);
    write(&dir.join("snmp-read"), "plant-read-community\n");
    write(&dir.join("noc-auth"), "plant-noc-auth-pass\n");
    write(&dir.join("noc-priv"), "plant-noc-priv-pass\n");
    write(&dir.join("trap-community"), "plant-trap-community\n");
    let config = group[0].config.clone();
    let text = std::fs::read_to_string(&config).expect("read config");
    write(
        &config,
        &format!(
            "{text}\n[snmp]\nlisten = \"127.0.0.1:{}\"\n\
             [[snmp.communities]]\nname = \"read\"\nsecret_file = \"snmp-read\"\naccess = \"read-only\"\n\
             [[snmp.users]]\nname = \"noc\"\naccess = \"read-write\"\nauth = \"sha-256\"\n\
             auth_password_file = \"noc-auth\"\nprivacy = \"aes-128\"\nprivacy_password_file = \"noc-priv\"\n\
             [[snmp.targets]]\naddress = \"127.0.0.1:{}\"\nnotify = \"trap\"\ncommunity_file = \"trap-community\"\n",
            free_udp_port(),
            free_udp_port()
        ),
    );
    config
}

fn run(config: &Path) -> Output {
    understudy_on(&["run", "--config"], config)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// `run` exits 64 and its message names `key`, `file`, the mode and the fix.
fn refused_for_its_mode(config: &Path, key: &str, file: &Path, mode: &str) {
    let o = run(config);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    let path = file.display().to_string();
    for needle in [
        key,
        path.as_str(),
        &format!("mode is {mode}"),
        &format!("chmod 600 {path}"),
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[tokio::test]
async fn a_world_readable_token_stops_run_with_64_naming_the_file_and_0600_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let token = dir.path().join("api-token");
    chmod(&token, 0o644);
    refused_for_its_mode(&group[0].config, "http.token_file", &token, "0644");
    // Nothing was touched: the agent stopped before its state directory was created.
    assert!(!dir.path().join("main-1/state").exists());

    chmod(&token, 0o600);
    let _agent = spawn_agent(&group[0].config);
    wait_healthy(&group[0].url).await;
}

#[test]
fn a_group_readable_group_secret_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let secret = dir.path().join("group-secret");
    chmod(&secret, 0o640);
    refused_for_its_mode(&group[0].config, "peer.secret_file", &secret, "0640");
}

#[test]
fn a_group_readable_community_and_a_trap_community_others_may_write_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = member_with_snmp(dir.path());
    let community = dir.path().join("snmp-read");
    chmod(&community, 0o640);
    refused_for_its_mode(
        &config,
        "snmp.communities[\"read\"].secret_file",
        &community,
        "0640",
    );
    chmod(&community, 0o600);
    let trap = dir.path().join("trap-community");
    chmod(&trap, 0o602);
    let o = run(&config);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(err.contains("community_file"), "{err}");
    assert!(err.contains(&trap.display().to_string()), "{err}");
}

#[test]
fn snmpv3_password_files_are_held_to_the_same_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = member_with_snmp(dir.path());
    let auth = dir.path().join("noc-auth");
    chmod(&auth, 0o604);
    refused_for_its_mode(
        &config,
        "snmp.users[\"noc\"].auth_password_file",
        &auth,
        "0604",
    );
    chmod(&auth, 0o600);
    let privacy = dir.path().join("noc-priv");
    chmod(&privacy, 0o660);
    refused_for_its_mode(
        &config,
        "snmp.users[\"noc\"].privacy_password_file",
        &privacy,
        "0660",
    );
}

#[test]
fn check_config_warns_about_each_open_file_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = member_with_snmp(dir.path());
    let token = dir.path().join("api-token");
    let community = dir.path().join("snmp-read");
    chmod(&token, 0o644);
    chmod(&community, 0o640);
    let o = understudy_on(&["check-config"], &config);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(text(&o.stdout).contains(": valid"), "{}", text(&o.stdout));
    for (key, file) in [
        ("http.token_file", &token),
        ("snmp.communities[\"read\"].secret_file", &community),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with("warning: ") && l.contains(key))
            .unwrap_or_else(|| panic!("no warning about {key}:\n{err}"));
        assert!(
            line.contains(&format!("chmod 600 {}", file.display())),
            "{line}"
        );
        assert!(line.contains("`understudy run` refuses it"), "{line}");
    }
    // The files that keep the rule are not mentioned.
    assert!(!err.contains("peer.secret_file"), "{err}");
    assert!(!err.contains("noc-auth"), "{err}");
}

#[test]
fn values_from_the_examples_and_the_demo_are_refused_outside_the_demo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = member_with_snmp(dir.path());
    let example_token = std::fs::read_to_string(repo().join("examples/two-server/api-token"))
        .expect("the example token");
    for (file, key, value) in [
        ("api-token", "http.token_file", example_token.trim()),
        ("api-token", "http.token_file", "demo-token"),
        ("group-secret", "peer.secret_file", "demo-group-secret"),
        (
            "snmp-read",
            "snmp.communities[\"read\"].secret_file",
            "public",
        ),
        (
            "noc-auth",
            "snmp.users[\"noc\"].auth_password_file",
            "noc-auth-pass",
        ),
    ] {
        let path = dir.path().join(file);
        let before = std::fs::read_to_string(&path).expect("read");
        write(&path, &format!("{value}\n"));
        let o = run(&config);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(64), "{value}: {err}");
        assert!(
            err.contains(key)
                && err.contains(&path.display().to_string())
                && err.contains("published in understudy's examples or demo"),
            "{value}: {err}"
        );
        assert!(!err.contains(value), "the message shows the secret: {err}");
        let o = understudy_on(&["check-config"], &config);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("published in understudy's examples or demo"),
            "{}",
            text(&o.stderr)
        );
        write(&path, &before);
    }
}

#[test]
fn an_unreadable_secret_names_the_key_and_the_resolved_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = member_with_snmp(dir.path());
    // A missing file, and a directory where the file should be (tests may run as root, for
    // whom no mode makes a file unreadable).
    let missing = dir.path().join("noc-priv");
    std::fs::remove_file(&missing).expect("remove");
    for command in ["run", "check-config"] {
        let o = if command == "run" {
            run(&config)
        } else {
            understudy_on(&["check-config"], &config)
        };
        let err = text(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{command}: {err}");
        assert!(
            err.contains(&format!(
                "snmp.users[\"noc\"].privacy_password_file = {}: cannot read the secret file",
                missing.display()
            )),
            "{command}: {err}"
        );
    }
    write(&missing, "plant-noc-priv-pass\n");
    let token = dir.path().join("api-token");
    std::fs::remove_file(&token).expect("remove");
    std::fs::create_dir(&token).expect("mkdir");
    let o = run(&config);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(64), "{err}");
    assert!(
        err.contains(&format!(
            "http.token_file = {}: cannot read the secret file",
            token.display()
        )),
        "{err}"
    );
}
