//! The API router without a socket: a real agent opened in-process (the demo's configuration
//! for backup-1, simulated addressing, its loops not started) and `understudy::http::router`
//! driven with `tower::ServiceExt::oneshot`. Checks the contract of SPEC.md ("HTTP API"): the
//! read routes and their content types, and that commands without a token, with bad JSON or
//! naming an unknown member are refused with the documented status and error code, changing
//! nothing. Does I/O only in a temporary state directory.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use support::{free_tcp_port, member, TOKEN};
use tower::ServiceExt;
use understudy::address::Simulated;
use understudy::agent::Agent;
use understudy::demo::{layout, member_config};

const TAKEOVER: &str = r#"{"backup":"backup-1","main":"main-1"}"#;

/// backup-1's router in a demo group of main-1 and backup-1, and its state directory. The
/// peers' URLs are free loopback ports where nobody listens: no test here reaches a peer.
fn router() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut members = layout(1, 1, 0).expect("layout");
    for m in &mut members {
        m.http.set_port(free_tcp_port());
    }
    let me = &members[1];
    assert_eq!(me.name, "backup-1");
    let cfg = member_config(&members, me, dir.path(), TOKEN, Duration::from_secs(30))
        .expect("the demo's configuration of backup-1");
    let backend = Arc::new(Simulated {
        member: me.name.clone(),
    });
    let agent = Agent::open(cfg, backend).expect("open the agent");
    // No connection, so no client address: the router works without one.
    (understudy::http::router(agent), dir)
}

/// One answer: status, Content-Type, body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    www_authenticate: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Sends one request to `app` without a socket.
async fn call(app: &Router, method: Method, uri: &str, token: Option<&str>, body: &str) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req.body(Body::from(body.to_string())).expect("a request");
    let resp = app.clone().oneshot(req).await.expect("the router answers");
    let header_text = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let status = resp.status();
    let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
    let www_authenticate = header_text(header::WWW_AUTHENTICATE);
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    Answer {
        status,
        content_type,
        www_authenticate,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, uri: &str) -> Answer {
    call(app, Method::GET, uri, None, "").await
}

/// `GET uri`, which must be answered 200 with a Content-Type starting with `content_type`.
async fn get_ok(app: &Router, uri: &str, content_type: &str) -> Answer {
    let a = get(app, uri).await;
    assert_eq!(a.status, StatusCode::OK, "GET {uri}: {a:?}");
    assert!(a.content_type.starts_with(content_type), "GET {uri}: {a:?}");
    a
}

#[tokio::test]
async fn healthz_names_the_member() {
    let (app, _dir) = router();
    let a = get_ok(&app, "/healthz", "application/json").await;
    let h = a.json();
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["member"], "backup-1", "{h}");
    assert!(h["version"].as_str().is_some_and(|v| !v.is_empty()), "{h}");
}

#[tokio::test]
async fn the_group_has_every_member_with_the_documented_fields() {
    let (app, _dir) = router();
    let a = get_ok(&app, "/api/v1/group", "application/json").await;
    let g = a.json();
    assert_eq!(g["group"], "demo", "{g}");
    assert_eq!(g["agent"], "backup-1", "{g}");
    assert!(g["redundancy"]["redundant"].is_boolean(), "{g}");
    assert!(g["redundancy"]["status"].is_string(), "{g}");
    assert!(g["redundancy"]["alarms"].is_array(), "{g}");
    let names: Vec<&str> = g["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["main-1", "backup-1"], "{g}");
    for (name, role, address, local) in [
        ("main-1", "main", "192.0.2.11", false),
        ("backup-1", "backup", "198.51.100.11", true),
    ] {
        let m = member(&g, name);
        assert_eq!(m["configured_role"], role, "{m}");
        assert_eq!(m["configured_address"], address, "{m}");
        assert_eq!(m["local"], local, "{m}");
        for field in [
            "index",
            "operational_state",
            "current_address",
            "extra_address",
            "auto_failover",
            "takeover_flag",
            "acting_for",
            "failing_device_checks",
            "peer_paths",
            "lease",
        ] {
            assert!(m.get(field).is_some(), "{name} lacks {field}: {m}");
        }
        for field in ["time", "result", "main", "error"] {
            assert!(
                m["last_replication"].get(field).is_some(),
                "{name}'s last_replication lacks {field}: {m}"
            );
        }
    }
    // The demo has no address leases, no quorum source and no fence command: null, not absent.
    for m in g["members"].as_array().expect("members") {
        assert!(m["lease"].is_null(), "{m}");
    }
    for field in ["coordination", "fencing"] {
        assert!(g.get(field).is_some_and(Value::is_null), "{field}: {g}");
    }
    // Before any heartbeat the peer is not known yet.
    assert_eq!(member(&g, "main-1")["operational_state"], "unknown", "{g}");
    let ev = get_ok(&app, "/api/v1/events", "application/json").await;
    assert!(ev.json()["events"].is_array(), "{ev:?}");
}

#[test]
fn leases_the_quorum_source_and_fencing_are_in_the_group_json() {
    use support::safety::{troubled, with_safety};
    let json = |s: &understudy::snapshot::Snapshot| {
        serde_json::to_value(understudy::http::group_json(s)).expect("JSON")
    };
    let g = json(&with_safety());
    assert_eq!(
        member(&g, "main-1")["lease"],
        serde_json::json!({"until": "2023-11-14T22:13:50.000Z", "enforced_by": "kernel"}),
        "{g}"
    );
    assert_eq!(
        g["coordination"],
        serde_json::json!({
            "backend": "etcd",
            "up": true,
            "since": "2023-11-14T22:12:20.000Z",
            "error": null,
            "session_until": "2023-11-14T22:13:30.000Z",
            "holders": {"192.0.2.11": "main-1", "198.51.100.11": "backup-1"},
        }),
        "{g}"
    );
    assert_eq!(
        g["fencing"],
        serde_json::json!({"runs": {"success": 0, "failed": 0, "timeout": 0}, "last": null}),
        "{g}"
    );
    let g = json(&troubled());
    assert!(member(&g, "main-1")["lease"].is_null(), "{g}");
    assert_eq!(g["coordination"]["up"], false, "{g}");
    assert_eq!(
        g["coordination"]["since"], "2023-11-14T22:13:25.000Z",
        "{g}"
    );
    assert_eq!(g["coordination"]["error"], "connection refused", "{g}");
    assert!(g["coordination"]["session_until"].is_null(), "{g}");
    assert_eq!(
        g["fencing"],
        serde_json::json!({
            "runs": {"success": 1, "failed": 0, "timeout": 1},
            "last": {
                "target": "main-1",
                "outcome": "timeout",
                "at": "2023-11-14T22:13:28.000Z",
                "duration_ms": 5000,
                "detail": "no answer within 5s",
            },
        }),
        "{g}"
    );
}

#[test]
fn promtool_accepts_the_lease_quorum_and_fencing_metrics() {
    use support::safety::{troubled, with_safety};
    for (what, snap) in [("with_safety", with_safety()), ("troubled", troubled())] {
        let text = understudy::metrics::render(&snap);
        for name in [
            "understudy_coordination_up",
            "understudy_fencing_total",
            "understudy_coordination_changed_timestamp_seconds",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{what}: {name}\n{text}"
            );
        }
        support::metric_names::assert_promtool_accepts(what, &text);
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let (app, _dir) = router();
    let a = get_ok(&app, "/metrics", "text/plain").await;
    assert_eq!(a.content_type, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        "# TYPE understudy_group_redundant gauge",
        "understudy_member_state{group=\"demo\",member=\"main-1\",state=\"unknown\"} 1",
    ] {
        assert!(a.body.contains(line), "/metrics lacks {line:?}\n{}", a.body);
    }
    // The metrics every agent exports from its first snapshot on (the others need a
    // replication, an alarm or a heartbeat; tests/http_api.rs checks them in a running group).
    for name in [
        "understudy_build_info",
        "understudy_member_info",
        "understudy_member_state",
        "understudy_member_auto_failover_enabled",
        "understudy_member_takeover_flag",
        "understudy_group_redundant",
    ] {
        assert!(
            understudy::metrics::METRIC_NAMES.contains(&name),
            "{name} is not a metric name"
        );
        assert!(
            a.body.contains(&format!("# TYPE {name} ")),
            "/metrics lacks {name}\n{}",
            a.body
        );
    }
}

#[tokio::test]
async fn the_status_page_is_html() {
    let (app, _dir) = router();
    let a = get_ok(&app, "/", "text/html").await;
    assert!(a.body.to_ascii_lowercase().contains("<html"), "{}", a.body);
    for name in ["main-1", "backup-1"] {
        assert!(a.body.contains(name), "the status page lacks {name}");
    }
}

/// A request that must be refused: method, URI, token, body, then the status and error code.
type Refusal<'a> = (
    &'a Method,
    &'a str,
    Option<&'a str>,
    &'a str,
    (StatusCode, &'a str),
);

#[tokio::test]
async fn refused_commands_get_their_status_and_code_and_change_nothing() {
    let (app, _dir) = router();
    let before = get(&app, "/api/v1/group").await.json();
    let (post, put) = (Method::POST, Method::PUT);
    let takeover = "/api/v1/takeover";
    let auto_failover = |m: &str| format!("/api/v1/members/{m}/auto-failover");
    let (main_1, main_7) = (auto_failover("main-1"), auto_failover("main-7"));
    let off = r#"{"enabled":false}"#;
    let unauthorized = (StatusCode::UNAUTHORIZED, "unauthorized");
    let bad = (StatusCode::BAD_REQUEST, "bad_request");
    let unknown = (StatusCode::NOT_FOUND, "unknown_member");
    let (token, wrong) = (Some(TOKEN), Some("wrong"));
    #[rustfmt::skip]
    let cases: &[Refusal] = &[
        // Token first: without it, or with a wrong one, nothing else is looked at.
        (&post, takeover, None, TAKEOVER, unauthorized),
        (&post, takeover, wrong, TAKEOVER, unauthorized),
        (&post, takeover, wrong, "{not json", unauthorized),
        (&put, &main_1, None, off, unauthorized),
        // Bad JSON, a missing or an unknown field.
        (&post, takeover, token, "{not json", bad),
        (&post, takeover, token, r#"{"backup":"backup-1"}"#, bad),
        (&post, takeover, token, r#"{"backup":"backup-1","main":"main-1","colour":1}"#, bad),
        // Unknown members.
        (&post, takeover, token, r#"{"backup":"backup-1","main":"main-9"}"#, unknown),
        (&put, &main_7, token, off, unknown),
        // No such route.
        (&post, "/api/v1/nothing-here", token, "{}", (StatusCode::NOT_FOUND, "not_found")),
    ];
    for (method, uri, token, body, (want_status, want_code)) in cases {
        let a = call(&app, (*method).clone(), uri, *token, body).await;
        let what = format!("{method} {uri} {body} (token {token:?})");
        assert_eq!(a.status, *want_status, "{what}: {a:?}");
        assert!(
            a.content_type.starts_with("application/json"),
            "{what}: {a:?}"
        );
        let json = a.json();
        assert_eq!(json["error"], *want_code, "{what}: {json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {json}"
        );
        if *want_status == StatusCode::UNAUTHORIZED {
            assert_eq!(
                a.www_authenticate.as_deref(),
                Some("Bearer realm=\"understudy\""),
                "{what}"
            );
        }
    }
    // A refused command changes nothing.
    assert_eq!(get(&app, "/api/v1/group").await.json(), before);
}

#[tokio::test]
async fn peer_routes_refuse_an_unsigned_request() {
    let (app, _dir) = router();
    let a = call(&app, Method::POST, "/peer/v1/heartbeat", None, "{}").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
}
