//! HTTP to the agents under test, with reqwest only (the one HTTP client of the tests). Async
//! helpers for tokio tests; [`block_on`] and [`http_get`] for sync tests, on a current-thread
//! runtime. Does I/O (loopback).

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::wait::wait_for_async;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// A client of agents serving HTTPS: trusts the CA (PEM) `ca` alone.
pub fn client_trusting(ca: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap_or_else(|e| panic!("read {}: {e}", ca.display()));
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA certificate"))
        .build()
        .expect("https client")
}

/// Runs `f` to completion on a current-thread runtime (HTTP from a sync test).
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// `GET url`: (status, body), or None when no answer came.
pub async fn try_get(url: &str) -> Option<(u16, String)> {
    let resp = client().get(url).send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.text().await.ok()?))
}

/// The JSON body of a 2xx answer to `GET url`, or None.
pub async fn try_get_json(url: &str) -> Option<Value> {
    let (status, body) = try_get(url).await?;
    if !(200..300).contains(&status) {
        return None;
    }
    serde_json::from_str(&body).ok()
}

/// The body of `GET url`; fails the test unless it is answered 200.
pub async fn get_text(url: &str) -> String {
    let (status, body) = try_get(url)
        .await
        .unwrap_or_else(|| panic!("GET {url}: no answer"));
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// The JSON body of `GET url` (answered 200).
pub async fn get_json(url: &str) -> Value {
    let body = get_text(url).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// [`get_text`] from a sync test.
pub fn http_get(url: &str) -> String {
    block_on(get_text(url))
}

/// Whether `GET url` is answered with a 2xx status.
pub async fn answers(url: &str) -> bool {
    try_get(url)
        .await
        .is_some_and(|(status, _)| (200..300).contains(&status))
}

/// Sends `body` as JSON with `method`, with the token if any; returns (status, JSON body).
pub async fn send(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut rb = client()
        .request(method.clone(), url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let resp = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// POSTs `body` with the token if any; returns (status, JSON body).
pub async fn post(url: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    send(reqwest::Method::POST, url, token, body).await
}

/// POSTs `body` with `token`; fails the test unless it is answered 200. Returns the body.
pub async fn post_ok(url: &str, token: &str, body: &str) -> Value {
    let (status, json) = post(url, Some(token), body).await;
    assert_eq!(status, 200, "{json}");
    json
}

/// The member object `name` in a group JSON.
pub fn member<'a>(group: &'a Value, name: &str) -> &'a Value {
    group["members"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no member {name} in {group}"))
}

/// Whether every member of a group JSON has been heard (none `unknown`).
pub fn all_heard(group: &Value) -> bool {
    group["members"]
        .as_array()
        .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m["operational_state"] != "unknown"))
}

/// Waits until `backup` has replicated `main` (the takeover precondition), seen from `url`.
pub async fn wait_replicated(url: &str, backup: &str) {
    wait_for_async(Duration::from_secs(15), "the first replication", || async {
        let g = get_json(&format!("{url}/api/v1/group")).await;
        (member(&g, backup)["last_replication"]["result"] == "success").then_some(())
    })
    .await
}

/// Waits until the agent at `url` hears every member (no `unknown` state).
pub async fn wait_converged(url: &str) {
    wait_for_async(
        Duration::from_secs(10),
        "every member to be heard",
        || async { all_heard(&get_json(&format!("{url}/api/v1/group")).await).then_some(()) },
    )
    .await
}

/// `POST {url}/api/v1/{operation}` with the JSON `body` and the bearer `token`: the status
/// and the JSON answer.
pub async fn command(url: &str, operation: &str, token: &str, body: &str) -> (u16, Value) {
    post(&format!("{url}/api/v1/{operation}"), Some(token), body).await
}
