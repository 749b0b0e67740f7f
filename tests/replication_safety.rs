//! Replication that loses nothing, between separate agents on loopback: any UTF-8 file name
//! travels (a name that cannot is a failed copy naming it); modes, symlinks (as links, never
//! followed) and empty directories are replicated; the Main never serves through a symlink;
//! a Main that is taken over is not replicated over the replica its Backup acts from.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::tmpfs::Tmpfs;
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

/// A signed peer GET on `main-1`'s replication routes, as backup-1 would send it: (status,
/// body).
async fn peer_get(main_url: &str, route: &str) -> (u16, String) {
    use understudy::peer::signing::{Signer, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
    let signer = Signer::new(
        understudy::secret::Secret::new("test-group-secret"),
        "backup-1",
    );
    let path = format!("/peer/v1/{route}");
    let h = signer.sign("GET", &path, b"");
    let resp = client()
        .get(format!("{main_url}{path}"))
        .header(TIMESTAMP_HEADER, h.timestamp)
        .header(NONCE_HEADER, h.nonce)
        .header(SIGNATURE_HEADER, h.signature)
        .send()
        .await
        .expect("peer GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

#[tokio::test]
async fn modes_symlinks_and_empty_directories_replicate() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, _main, _backup) = started(dir.path()).await;
    let data = dir.path().join("main-1/data");
    let mode = |p: &Path| {
        std::fs::symlink_metadata(p)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let set = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    write(&data.join("secret.key"), "private\n");
    set(&data.join("secret.key"), 0o600);
    write(&data.join("bin/run.sh"), "#!/bin/sh\necho hi\n");
    set(&data.join("bin/run.sh"), 0o755);
    std::fs::create_dir_all(data.join("empty/nested")).expect("mkdir");
    set(&data.join("empty"), 0o750);
    std::os::unix::fs::symlink("bin/run.sh", data.join("run")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", data.join("link-to-etc-passwd")).expect("symlink");
    std::os::unix::fs::symlink("../../..", data.join("bin/up")).expect("symlink");

    let r = replicate_now(&group[1].url).await;
    assert_eq!(r["result"], "success", "{r}");
    let rep = replica_dir(dir.path());
    assert_eq!(mode(&rep.join("secret.key")), 0o600);
    assert_eq!(mode(&rep.join("bin/run.sh")), 0o755);
    assert_eq!(mode(&rep.join("empty")), 0o750);
    assert!(rep.join("empty/nested").is_dir());
    for (link, target) in [
        ("run", "bin/run.sh"),
        ("link-to-etc-passwd", "/etc/passwd"),
        ("bin/up", "../../.."),
    ] {
        let meta = std::fs::symlink_metadata(rep.join(link)).expect(link);
        assert!(meta.file_type().is_symlink(), "{link} is a link");
        assert_eq!(
            std::fs::read_link(rep.join(link)).ok(),
            Some(PathBuf::from(target)),
            "{link}"
        );
    }
}

#[tokio::test]
async fn the_main_serves_no_file_through_a_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (group, _main, _backup) = started(dir.path()).await;
    let data = dir.path().join("main-1/data");
    write(&data.join("bin/run.sh"), "#!/bin/sh\necho hi\n");
    std::os::unix::fs::symlink("bin/run.sh", data.join("run")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", data.join("link-to-etc-passwd")).expect("symlink");
    std::os::unix::fs::symlink("../../..", data.join("bin/up")).expect("symlink");
    // The Main serves no file through a link, whether it leaves the data directory or not.
    let url = &group[0].url;
    for route in [
        "replication/file/link-to-etc-passwd",
        "replication/file/run",
        "replication/file/bin/up/etc/passwd",
    ] {
        let (status, body) = peer_get(url, route).await;
        assert_eq!(status, 400, "{route}: {body}");
        assert!(!body.contains("root:"), "{route}: {body}");
    }
    let (status, body) = peer_get(url, "replication/file/bin/run.sh").await;
    assert_eq!((status, body.as_str()), (200, "#!/bin/sh\necho hi\n"));
}

#[tokio::test]
async fn a_taken_over_main_is_not_replicated_over_the_replica_its_backup_acts_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = Pair::start(write_group(dir.path(), 1, 1)).await;
    let link = dir.path().join("backup-1/state/replicas/main-1/current");
    let (status, body) = post(
        &format!("{}/api/v1/takeover", pair.backup_url()),
        TOKEN,
        r#"{"backup":"backup-1","main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = std::fs::read_link(&link).expect("the replica's current generation");

    // The Main's agent still answers and its data changed: a copy would switch the replica.
    write(
        &dir.path().join("main-1/data/sample.txt"),
        "changed later\n",
    );
    for url in [pair.backup_url(), pair.main_url()] {
        let (status, body) = post(
            &format!("{url}/api/v1/members/backup-1/replicate"),
            TOKEN,
            r#"{"main":"main-1"}"#,
        )
        .await;
        assert_eq!(status, 409, "{body}");
        let failed = body["failed"].as_array().cloned().unwrap_or_default();
        assert!(failed.iter().any(|c| c == "main_taken_over"), "{body}");
    }
    assert_eq!(std::fs::read_link(&link).ok(), Some(before));
    assert_eq!(
        std::fs::read_to_string(link.join("sample.txt"))
            .ok()
            .as_deref(),
        Some("data of main-1\n")
    );
}

#[tokio::test]
async fn a_copy_that_cannot_fit_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let replicas = dir.path().join("backup-1/state/replicas");
    let _disk = Tmpfs::mount(&replicas, "8m");
    let _main = start_agent(&group[0]).await;
    let _backup = start_agent(&group[1]).await;
    wait_replicated(&group[1].url, "backup-1").await;
    let link = replicas.join("main-1/current");
    let before = std::fs::read_link(&link).expect("current generation");

    let big = vec![b'x'; 12 * 1024 * 1024];
    std::fs::write(dir.path().join("main-1/data/big.bin"), &big).expect("write");
    // A replication already under way (the periodic one) answers for the request with what it
    // saw before big.bin was written; the first one to see it must fail.
    let mut r = replicate_now(&group[1].url).await;
    for _ in 0..20 {
        if r["result"] == "failed" || r["files"].as_u64() != Some(1) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        r = replicate_now(&group[1].url).await;
    }
    assert_eq!(r["result"], "failed", "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("not enough free space")),
        "{r}"
    );
    assert_eq!(r["fetched"], 0, "{r}");
    assert_eq!(std::fs::read_link(&link).ok(), Some(before));
    let gens = std::fs::read_dir(replicas.join("main-1"))
        .expect("replica dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
        .count();
    assert_eq!(gens, 1, "only the current generation");
}
