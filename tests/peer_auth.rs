//! The peer protocol refuses a peer without the group secret, a stale timestamp and a replayed
//! request, and logs each refusal with the peer's address; a correctly signed request passes.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;
use understudy::peer::signing::{sign, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use understudy::secret::Secret;

const PATH: &str = "/peer/v1/heartbeat";

fn body() -> String {
    format!(
        r#"{{"protocol":{},"group":"test","from":"backup-1","path":"lan","records":[],"digest":[]}}"#,
        understudy::peer::PROTOCOL
    )
}

async fn send(url: &str, secret: &str, ts: u64, nonce: &str) -> (u16, String) {
    let body = body();
    let sig = sign(
        &Secret::new(secret),
        "POST",
        PATH,
        ts,
        nonce,
        body.as_bytes(),
    );
    let resp = client()
        .post(format!("{url}{PATH}"))
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(NONCE_HEADER, nonce)
        .header(SIGNATURE_HEADER, sig)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .expect("clock")
}

#[tokio::test]
async fn peers_without_the_secret_stale_or_replayed_requests_are_refused_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let url = group[0].url.clone();
    let log = dir.path().join("main-1.log");
    let _agent = start_agent_logged(&group[0], log.clone()).await;

    // The old way (the secret in a header) is refused: the secret never travels any more.
    let r = client()
        .post(format!("{url}{PATH}"))
        .header("x-understudy-group-secret", "test-group-secret")
        .body(body())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);

    let (status, text) = send(&url, "not-the-group-secret", now(), "n-wrong").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("wrong signature"), "{text}");

    let (status, text) = send(&url, "test-group-secret", now() - 60_000, "n-stale").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("ms away"), "{text}");

    let ts = now();
    let (status, text) = send(&url, "test-group-secret", ts, "n-good").await;
    assert_eq!(status, 200, "a signed heartbeat passes: {text}");
    assert!(text.contains("\"from\":\"main-1\""), "{text}");
    let (status, text) = send(&url, "test-group-secret", ts, "n-good").await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("replayed"), "{text}");

    let logged = wait_for_async(Duration::from_secs(5), "the refusals in the log", || {
        let log = log.clone();
        async move {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.matches("peer request refused").count() >= 4).then_some(text)
        }
    })
    .await;
    assert!(
        logged.contains("127.0.0.1"),
        "the peer address is logged: {logged}"
    );
    assert!(logged.contains("wrong signature"), "{logged}");
}
