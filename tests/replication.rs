//! Replication between separate agents on loopback: a change on the Main reaches the Backup's
//! replica after the next replication (asked for on demand through the API and the CLI, only
//! changed files transferred); a corrupted or interrupted transfer from a (fake) Main leaves
//! the previous replica intact and is recorded as `failed` and counted.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::metric_names::sample;
use support::*;

const TOKEN: Option<&str> = Some(GROUP_TOKEN);

fn replica(dir: &Path, backup: &str, main: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(
        dir.join(backup)
            .join("state/replicas")
            .join(main)
            .join("current")
            .join(file),
    )
    .ok()
}

#[tokio::test]
async fn a_change_on_the_main_appears_on_the_backup_after_the_next_replication() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let (main_url, backup_url) = (group[0].url.clone(), group[1].url.clone());
    let _main = start_agent(&group[0]).await;
    let _backup = start_agent(&group[1]).await;
    wait_replicated(&backup_url, "backup-1").await;
    assert_eq!(
        replica(dir.path(), "backup-1", "main-1", "sample.txt").as_deref(),
        Some("data of main-1\n")
    );

    // Change one file and add another on the Main; ask through the Main's agent (forwarded
    // to the Backup's).
    let data = dir.path().join("main-1/data");
    write(&data.join("sample.txt"), "changed on the main\n");
    write(&data.join("sub/new.txt"), "a new file\n");
    write(&data.join("unchanged.txt"), "same\n");
    let url = format!("{main_url}/api/v1/members/backup-1/replicate");
    let (status, body) = post(&url, TOKEN, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "done", "{body}");
    let r = &body["results"][0];
    assert_eq!(r["main"], "main-1", "{body}");
    assert_eq!(r["result"], "success", "{body}");
    assert_eq!(r["files"], 3, "{body}");
    assert_eq!(r["fetched"], 3, "{body}");
    assert_eq!(
        replica(dir.path(), "backup-1", "main-1", "sample.txt").as_deref(),
        Some("changed on the main\n")
    );
    assert_eq!(
        replica(dir.path(), "backup-1", "main-1", "sub/new.txt").as_deref(),
        Some("a new file\n")
    );

    // Only changed files travel: one change, one file fetched. Through the CLI this time.
    write(&data.join("sub/new.txt"), "changed again\n");
    let out = understudy([
        "replicate",
        "backup-1",
        "--main",
        "main-1",
        "--json",
        "--url",
        backup_url.as_str(),
        "--token",
        GROUP_TOKEN,
    ]);
    assert!(out.status.success(), "{out:?}");
    let body: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(body["results"][0]["fetched"], 1, "{body}");
    assert_eq!(body["results"][0]["files"], 3, "{body}");
    assert_eq!(
        replica(dir.path(), "backup-1", "main-1", "sub/new.txt").as_deref(),
        Some("changed again\n")
    );
    // The group as the Main sees it once the result reached it (asserted on that view, not
    // on one read before the wait).
    let g = wait_for_async(Duration::from_secs(5), "the Main to see the result", || {
        let main_url = main_url.clone();
        async move {
            let g = get_json(&format!("{main_url}/api/v1/group")).await;
            (member(&g, "backup-1")["last_replication"]["result"] == "success").then_some(g)
        }
    })
    .await;
    assert!(member(&g, "backup-1")["last_replication"]["time"].is_string());

    // Asking a Main to replicate is refused.
    let (status, body) = post(
        &format!("{backup_url}/api/v1/members/main-1/replicate"),
        TOKEN,
        "",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(&url, None, "{}").await;
    assert_eq!(status, 401);
}

/// What the fake Main serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Good,
    /// The file's bytes do not match the manifest's checksum.
    Corrupt,
    /// The connection breaks in the middle of the file.
    Interrupted,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
}

const GOOD: &[u8] = b"version 1 of the data\n";
const NEXT: &[u8] = b"version 2 of the data, a bit longer\n";

fn mode(f: &Fake) -> Mode {
    *f.mode.lock().unwrap_or_else(|p| p.into_inner())
}

async fn fake_heartbeat() -> Json<Value> {
    Json(json!({
        "protocol": understudy::peer::PROTOCOL,
        "from": "main-1",
        "records": [],
        "want": []
    }))
}

async fn fake_manifest(State(f): State<Fake>) -> Json<Value> {
    let content = if mode(&f) == Mode::Good { GOOD } else { NEXT };
    Json(json!({"files": [{
        "path": "sample.txt",
        "size": content.len(),
        "sha256": hex::encode(Sha256::digest(content)),
    }]}))
}

async fn fake_file(State(f): State<Fake>) -> Response {
    match mode(&f) {
        Mode::Good => GOOD.to_vec().into_response(),
        Mode::Corrupt => {
            let mut bad = NEXT.to_vec();
            bad[3] ^= 0x20;
            bad.into_response()
        }
        Mode::Interrupted => {
            let parts: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
                Ok(bytes::Bytes::from_static(&NEXT[..10])),
                Err(std::io::Error::other("connection cut")),
            ];
            let body = Body::from_stream(futures_util::stream::iter(parts));
            Response::builder()
                .header("content-length", NEXT.len().to_string())
                .body(body)
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
    }
}

#[tokio::test]
async fn a_corrupted_or_interrupted_transfer_keeps_the_previous_replica_and_records_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let backup_url = group[1].url.clone();
    // main-1's URL in the configuration is served by a fake Main.
    let main_addr: SocketAddr = group[0]
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let fake = Fake {
        mode: Arc::new(Mutex::new(Mode::Good)),
    };
    let app = Router::new()
        .route("/peer/v1/heartbeat", routing::post(fake_heartbeat))
        .route("/peer/v1/replication/manifest", routing::get(fake_manifest))
        .route("/peer/v1/replication/file/{*path}", routing::get(fake_file))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind(main_addr)
        .await
        .expect("bind fake main");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let _backup = start_agent(&group[1]).await;
    let replicate = format!("{backup_url}/api/v1/members/backup-1/replicate");
    let (status, body) = post(&replicate, TOKEN, r#"{"main":"main-1"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["result"], "success", "{body}");
    let good = std::str::from_utf8(GOOD).expect("utf-8");
    assert_eq!(
        replica(dir.path(), "backup-1", "main-1", "sample.txt").as_deref(),
        Some(good)
    );

    for (m, expect, count) in [
        (Mode::Corrupt, "checksum mismatch", 1),
        (Mode::Interrupted, "", 2),
    ] {
        *fake.mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
        let (status, body) = post(&replicate, TOKEN, r#"{"main":"main-1"}"#).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["outcome"], "failed", "{m:?}: {body}");
        let r = &body["results"][0];
        assert_eq!(r["result"], "failed", "{m:?}: {body}");
        assert!(
            r["error"].as_str().unwrap_or("").contains(expect),
            "{m:?}: {body}"
        );
        // The CLI says so with its exit status: a script can rely on it. (Off the runtime's
        // thread: the fake Main is served by this test's runtime.)
        let url = backup_url.clone();
        let out = tokio::task::spawn_blocking(move || {
            understudy([
                "replicate",
                "backup-1",
                "--main",
                "main-1",
                "--url",
                url.as_str(),
                "--token",
                GROUP_TOKEN,
            ])
        })
        .await
        .expect("the CLI ran");
        assert_eq!(out.status.code(), Some(1), "{m:?}: a failed copy: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Z: failed ("),
            "{m:?}: {out:?}"
        );
        // The previous replica is intact and no half-written generation is left.
        assert_eq!(
            replica(dir.path(), "backup-1", "main-1", "sample.txt").as_deref(),
            Some(good),
            "{m:?}"
        );
        let gens = std::fs::read_dir(dir.path().join("backup-1/state/replicas/main-1"))
            .expect("replica dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
            .count();
        assert_eq!(gens, 1, "{m:?}: only the current generation remains");
        let g = get_json(&format!("{backup_url}/api/v1/group")).await;
        let rep = &member(&g, "backup-1")["last_replication"];
        assert_eq!(rep["result"], "failed", "{m:?}: {g}");
        assert!(rep["error"].is_string(), "{g}");
        let metrics = get_text(&format!("{backup_url}/metrics")).await;
        // At least this many failures (the background loop may have failed once more).
        let failures = sample(
            &metrics,
            "understudy_replication_failures_total{group=\"test\"}",
        )
        .unwrap_or_else(|| panic!("no failure counter in\n{metrics}"))
            as u64;
        assert!(failures >= count, "{failures} < {count}\n{metrics}");
        assert!(metrics.contains(
            "understudy_member_last_replication_success{group=\"test\",member=\"backup-1\"} 0"
        ));
    }

    // Recovered: the next good transfer replaces the replica.
    *fake.mode.lock().unwrap_or_else(|p| p.into_inner()) = Mode::Good;
    let (_, body) = post(&replicate, TOKEN, r#"{"main":"main-1"}"#).await;
    assert_eq!(body["results"][0]["result"], "success", "{body}");
}
