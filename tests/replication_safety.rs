//! Replication that loses nothing, between separate agents on loopback: any UTF-8 file name
//! travels (a name that cannot is a failed copy naming it); modes, symlinks (as links, never
//! followed) and empty directories are replicated; the Main never serves through a symlink;
//! a Main that is taken over is not replicated over the replica its Backup acts from.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::*;

const TOKEN: Option<&str> = Some(GROUP_TOKEN);

fn replica_dir(dir: &Path) -> PathBuf {
    dir.join("backup-1/state/replicas/main-1/current")
}

/// Asks backup-1 (through its own API) to replicate main-1 now; the one result.
async fn replicate_now(backup_url: &str) -> Value {
    let url = format!("{backup_url}/api/v1/members/backup-1/replicate");
    let (status, body) = post(&url, TOKEN, r#"{"main":"main-1"}"#).await;
    assert_eq!(status, 200, "{body}");
    body["results"][0].clone()
}

/// A group of main-1 and backup-1 running, backup-1 having replicated main-1 once.
async fn started(dir: &Path) -> (Vec<GroupMember>, Proc, Proc) {
    let group = write_group(dir, 1, 1);
    let main = start_agent(&group[0]).await;
    let backup = start_agent(&group[1]).await;
    wait_replicated(&group[1].url, "backup-1").await;
    (group, main, backup)
}

#[tokio::test]
async fn names_with_reserved_and_non_ascii_characters_replicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, _main, _backup) = started(dir.path()).await;
    let data = dir.path().join("main-1/data");
    let names = [
        "what?.txt",
        "issue#12.txt",
        "100%.txt",
        "back\\slash.txt",
        "with space.txt",
        "ünïcødé ☃.txt",
        "sub dir/a?b#c%d.txt",
        "%2e%2e/x.txt",
    ];
    for name in names {
        write(&data.join(name), &format!("content of {name}\n"));
    }
    let r = replicate_now(&group[1].url).await;
    assert_eq!(r["result"], "success", "{r}");
    for name in names {
        let got = std::fs::read_to_string(replica_dir(dir.path()).join(name));
        assert_eq!(
            got.ok().as_deref(),
            Some(format!("content of {name}\n").as_str()),
            "{name}"
        );
    }
    // Still replicating afterwards (a bad name used to break every later replication).
    write(&data.join("sample.txt"), "later\n");
    let r = replicate_now(&group[1].url).await;
    assert_eq!(r["result"], "success", "{r}");
}

#[tokio::test]
async fn a_name_that_is_not_utf8_fails_the_copy_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, _main, _backup) = started(dir.path()).await;
    let data = dir.path().join("main-1/data");
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.txt");
    std::fs::write(data.join(name), b"cannot travel in JSON\n").expect("write");
    let r = replicate_now(&group[1].url).await;
    assert_eq!(r["result"], "failed", "{r}");
    let error = r["error"].as_str().unwrap_or("");
    assert!(error.contains("bad\u{FFFD}.txt"), "{r}");
}
