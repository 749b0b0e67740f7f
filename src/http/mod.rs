//! The HTTP interface: the JSON API, `/metrics`, the status page and `/healthz`; the peer
//! protocol's routes ([`crate::peer::server`]) are merged into the same router. A thin
//! adapter: reads come from the published snapshot, commands go to [`Agent::submit`]. The
//! router is built by [`router`] and tested without a socket; [`serve`] binds it. Network I/O.

pub mod error;
pub mod request;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::warn;

use self::error::ApiError;
use self::request::{parse_json, ClientAddr};
use crate::agent::Agent;
use crate::command::{Command, Event};
use crate::group::{Operation, Requester, Role};
use crate::snapshot::{rfc3339, FenceOutcome, Snapshot, VERSION};
use crate::tls::{Remote, TlsListener};
use crate::{metrics, peer, status_page};

/// Builds the whole router for `agent`: the API, `/metrics`, the status page and `/healthz`,
/// with the peer protocol's routes merged in.
pub fn router(agent: Agent) -> Router {
    Router::new()
        .route("/", get(status))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/api/v1/group", get(group))
        .route("/api/v1/events", get(events))
        .route("/api/v1/takeover", post(command::<TakeoverBody>))
        .route("/api/v1/reverse-takeover", post(command::<ReverseBody>))
        .route("/api/v1/reconfigure", post(command::<ReconfigureBody>))
        .route("/api/v1/replace-takeover", post(command::<ReplaceBody>))
        .route("/api/v1/members/{name}/auto-failover", put(auto_failover))
        .route("/api/v1/members/{name}/replicate", post(replicate))
        .route("/api/v1/maintenance", put(maintenance))
        .fallback(not_found)
        .with_state(agent.clone())
        .merge(peer::server::routes(agent))
}

/// Serves `router(agent)` on `listener` until `shutdown` resolves: HTTPS when the agent has a
/// `[tls]` section, plain HTTP otherwise.
pub async fn serve(
    listener: TcpListener,
    agent: Agent,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(agent.clone()).into_make_service_with_connect_info::<Remote>();
    match agent.config().tls.clone() {
        Some(tls) => {
            let listener = TlsListener::new(listener, &tls, agent.name().to_string())?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// 200 while the agent can act; 503 while it cannot write its state (it then takes part in no
/// operation), with the reason.
async fn healthz(State(agent): State<Agent>) -> impl IntoResponse {
    match agent.state_error() {
        None => (
            StatusCode::OK,
            Json(json!({"status": "ok", "member": agent.name(), "version": VERSION})),
        ),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "state_not_writable", "member": agent.name(),
                "version": VERSION, "message": why}),
            ),
        ),
    }
}

async fn metrics_text(State(agent): State<Agent>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&agent.snapshot()),
    )
}

async fn status(State(agent): State<Agent>) -> Html<String> {
    Html(status_page::render(&agent.snapshot()))
}

// ------------------------------------------------------------------ the group as JSON

#[derive(Debug, Serialize)]
pub struct GroupJson {
    pub group: String,
    pub agent: String,
    pub version: &'static str,
    pub redundancy: RedundancyJson,
    pub members: Vec<MemberJson>,
    pub takeovers: std::collections::BTreeMap<String, u64>,
    /// The quorum source as this agent sees it; `null` without a `[coordination]` section.
    pub coordination: Option<CoordinationJson>,
    /// This agent's fence command runs; `null` without a `[fencing]` section.
    pub fencing: Option<FencingJson>,
    /// The group's maintenance mode (no automatic failover anywhere while enabled).
    pub maintenance: MaintenanceJson,
}

/// The group's maintenance mode.
#[derive(Debug, Serialize)]
pub struct MaintenanceJson {
    pub enabled: bool,
    /// When it was switched on (RFC 3339), while it is on.
    pub since: Option<String>,
    /// The last change: when (RFC 3339), by whom (`interface:identity`), why, through which
    /// agent. `null` in a group whose maintenance mode was never set.
    pub changed_at: Option<String>,
    pub changed_by: Option<String>,
    pub reason: Option<String>,
    pub changed_through: Option<String>,
    /// `[maintenance] alert_after` in seconds: how long it may stay on before the alert.
    pub alert_after_seconds: u64,
}

/// A member's lease on its current address.
#[derive(Debug, Serialize)]
pub struct LeaseJson {
    /// When it runs out unless renewed (RFC 3339).
    pub until: String,
    /// `kernel` or `agent`: who removes the address when it runs out.
    pub enforced_by: &'static str,
}

#[derive(Debug, Serialize)]
pub struct CoordinationJson {
    pub backend: &'static str,
    pub up: bool,
    /// Since when it has been up / down (RFC 3339).
    pub since: String,
    /// Why it is down, while it is.
    pub error: Option<String>,
    /// Until when this agent's session is known to be valid (RFC 3339), if it has one.
    pub session_until: Option<String>,
    /// Service address → the member holding it at the quorum source.
    pub holders: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct FencingJson {
    /// Runs by outcome (`success`, `failed`, `timeout`; zeros listed) since the agent started.
    pub runs: std::collections::BTreeMap<&'static str, u64>,
    pub last: Option<FenceRunJson>,
}

#[derive(Debug, Serialize)]
pub struct FenceRunJson {
    pub target: String,
    pub outcome: &'static str,
    /// When it ended (RFC 3339).
    pub at: String,
    pub duration_ms: u64,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct RedundancyJson {
    pub status: &'static str,
    pub redundant: bool,
    pub since: Option<String>,
    pub alarms: Vec<AlarmJson>,
}

#[derive(Debug, Serialize)]
pub struct AlarmJson {
    #[serde(rename = "type")]
    pub kind: crate::group::AlarmKind,
    pub raised_at: String,
    pub reason: String,
    pub main: Option<String>,
    pub backup: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MemberJson {
    pub index: usize,
    pub name: String,
    pub configured_role: Role,
    pub operational_state: crate::group::OperState,
    /// When the member's own state last changed (RFC 3339); `null` while it never did.
    pub state_changed_at: Option<String>,
    pub configured_address: String,
    pub current_address: Option<String>,
    pub extra_address: String,
    pub auto_failover: bool,
    pub takeover_flag: bool,
    pub acting_for: Option<String>,
    pub last_replication: ReplicationJson,
    pub failing_device_checks: Vec<String>,
    pub local: bool,
    pub peer_paths: std::collections::BTreeMap<String, bool>,
    /// The lease on its current address; `null` when it holds none.
    pub lease: Option<LeaseJson>,
}

#[derive(Debug, Serialize)]
pub struct ReplicationJson {
    pub time: Option<String>,
    pub result: &'static str,
    pub main: Option<String>,
    pub error: Option<String>,
}

/// The JSON form of a snapshot (`GET /api/v1/group`).
pub fn group_json(s: &Snapshot) -> GroupJson {
    GroupJson {
        group: s.group.clone(),
        agent: s.local.clone(),
        version: VERSION,
        redundancy: RedundancyJson {
            status: if s.redundancy.redundant() {
                "redundant"
            } else {
                "not_redundant"
            },
            redundant: s.redundancy.redundant(),
            since: s.redundancy.since().map(rfc3339),
            alarms: s
                .redundancy
                .alarms
                .iter()
                .map(|a| AlarmJson {
                    kind: a.kind,
                    raised_at: rfc3339(a.raised_at),
                    reason: a.reason.clone(),
                    main: a.main.clone(),
                    backup: a.backup.clone(),
                })
                .collect(),
        },
        members: s
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let r = &m.record;
                MemberJson {
                    index: i + 1,
                    name: r.name.clone(),
                    configured_role: r.role,
                    operational_state: m.state,
                    state_changed_at: r.state_changed.map(rfc3339),
                    configured_address: r.configured_address.to_string(),
                    current_address: r.current_address.map(|a| a.to_string()),
                    extra_address: r.extra_address.to_string(),
                    auto_failover: r.auto_failover,
                    takeover_flag: r.takeover.is_some(),
                    acting_for: r.acting_for.clone(),
                    last_replication: ReplicationJson {
                        time: r.replication.as_ref().map(|x| rfc3339(x.at)),
                        result: r.replication_result().as_str(),
                        main: r.replication.as_ref().map(|x| x.main.clone()),
                        error: r.replication.as_ref().and_then(|x| x.error.clone()),
                    },
                    failing_device_checks: r.failing_checks.clone(),
                    local: s.is_local(m),
                    peer_paths: m.paths.iter().cloned().collect(),
                    lease: m.lease.as_ref().map(|l| LeaseJson {
                        until: rfc3339(l.until),
                        enforced_by: l.enforced_by,
                    }),
                }
            })
            .collect(),
        takeovers: crate::group::OpKind::COUNTED
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    s.takeovers.get(k).copied().unwrap_or(0),
                )
            })
            .collect(),
        coordination: s.coordination.as_ref().map(|c| CoordinationJson {
            backend: c.backend,
            up: c.up,
            since: rfc3339(c.since),
            error: c.error.clone(),
            session_until: c.session_until.map(rfc3339),
            holders: c.holders.clone(),
        }),
        fencing: s.fencing.as_ref().map(|f| FencingJson {
            runs: FenceOutcome::ALL
                .iter()
                .map(|o| (o.as_str(), f.runs.get(o).copied().unwrap_or(0)))
                .collect(),
            last: f.last.as_ref().map(|r| FenceRunJson {
                target: r.target.clone(),
                outcome: r.outcome.as_str(),
                at: rfc3339(r.at),
                duration_ms: r.duration_ms,
                detail: r.detail.clone(),
            }),
        }),
        maintenance: MaintenanceJson {
            enabled: s.maintenance.enabled,
            since: s.maintenance.since.map(rfc3339),
            changed_at: s.maintenance.changed_at.map(rfc3339),
            changed_by: s.maintenance.changed_by.as_ref().map(|r| r.to_string()),
            reason: s.maintenance.reason.clone(),
            changed_through: (s.maintenance.version > 0).then(|| s.maintenance.writer.clone()),
            alert_after_seconds: s.maintenance_alert_after / 1000,
        },
    }
}

async fn group(State(agent): State<Agent>) -> Json<GroupJson> {
    Json(group_json(&agent.snapshot()))
}

#[derive(Debug, Serialize)]
struct EventJson<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a Event,
}

async fn events(State(agent): State<Agent>) -> Response {
    let snap = agent.snapshot();
    let list: Vec<EventJson> = snap
        .events
        .iter()
        .map(|e| EventJson {
            time: rfc3339(e.at),
            event: e,
        })
        .collect();
    Json(json!({ "events": list })).into_response()
}

// ------------------------------------------------------------------ commands

/// The operator behind a command: the request carried the API's bearer token. As an
/// extractor placed before the body, a request without the token is refused (401) before its
/// body is looked at.
struct Operator(Requester);

impl FromRequestParts<Agent> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, agent: &Agent) -> Result<Self, ApiError> {
        let peer = ClientAddr::of(parts).0;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match token {
            Some(t) if agent.token_ok(t) => Ok(Operator(Requester {
                interface: "http".into(),
                identity: match peer {
                    Some(p) => format!("token@{}", p.ip()),
                    None => "token".into(),
                },
            })),
            _ => {
                warn!(member = %agent.name(), peer = ?peer,
                    "command refused: missing or wrong token");
                Err(ApiError::unauthorized())
            }
        }
    }
}

fn reason_ok(reason: Option<String>) -> Result<Option<String>, ApiError> {
    match reason {
        Some(r) if r.len() > 1024 => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "reason: at most 1024 bytes",
        )),
        Some(r) if r.trim().is_empty() => Ok(None),
        r => Ok(r),
    }
}

async fn run_command(
    agent: &Agent,
    requested_by: Requester,
    operation: Operation,
    reason: Option<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let cmd = Command {
        operation,
        requested_by,
        reason: reason_ok(reason)?,
    };
    let event = agent.submit(cmd).await?;
    let snap = agent.snapshot();
    Ok(Json(json!({
        "outcome": "done",
        "message": event.message,
        "event": EventJson { time: rfc3339(event.at), event: &event },
        "group": group_json(&snap),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoFailoverBody {
    enabled: bool,
    reason: Option<String>,
}

/// A command body of the API: the operation it asks for, and the operator's reason.
trait CommandBody: serde::de::DeserializeOwned {
    fn into_command(self) -> (Operation, Option<String>);
}

/// Declares the JSON body of one API operation (unknown fields refused: a typo is an error,
/// not a default) and the [`Operation`] it asks for.
macro_rules! command_body {
    ($body:ident => $variant:ident { $($field:ident),* }) => {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $body {
            $($field: String,)*
            reason: Option<String>,
        }

        impl CommandBody for $body {
            fn into_command(self) -> (Operation, Option<String>) {
                (Operation::$variant { $($field: self.$field),* }, self.reason)
            }
        }
    };
}

command_body!(TakeoverBody => Takeover { backup, main });
command_body!(ReverseBody => ReverseTakeover { main });
command_body!(ReconfigureBody => Reconfigure { main, backup });

/// `replacement` is the member the new server runs as: the Main itself, so it may be left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    main: String,
    replacement: Option<String>,
    reason: Option<String>,
}

impl CommandBody for ReplaceBody {
    fn into_command(self) -> (Operation, Option<String>) {
        let replacement = self.replacement.unwrap_or_else(|| self.main.clone());
        (
            Operation::ReplaceTakeover {
                main: self.main,
                replacement,
            },
            self.reason,
        )
    }
}

/// `POST /api/v1/<operation>`: token first (401 before the body is looked at), then the body.
async fn command<B: CommandBody>(
    State(agent): State<Agent>,
    Operator(who): Operator,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (op, reason) = parse_json::<B>(&body)?.into_command();
    run_command(&agent, who, op, reason).await
}

async fn auto_failover(
    State(agent): State<Agent>,
    Operator(who): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: AutoFailoverBody = parse_json(&body)?;
    let op = Operation::SetAutoFailover {
        member: name,
        enabled: b.enabled,
    };
    run_command(&agent, who, op, b.reason).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaintenanceBody {
    enabled: bool,
    reason: Option<String>,
}

/// `PUT /api/v1/maintenance {"enabled": bool, "reason"?}`: the group's maintenance mode, set
/// through this agent and pushed to every peer.
async fn maintenance(
    State(agent): State<Agent>,
    Operator(who): Operator,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: MaintenanceBody = parse_json(&body)?;
    let op = Operation::SetMaintenance { enabled: b.enabled };
    run_command(&agent, who, op, b.reason).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplicateBody {
    main: Option<String>,
}

/// How long an on-demand replication forwarded to the Backup's agent waits for the Backup's
/// record to reach this agent.
const HEAR_REPLICATION: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits (at most [`HEAR_REPLICATION`]) until this agent's snapshot shows a replication that
/// `backup` recorded at `at` or later. Whether it does.
async fn heard_replication(agent: &Agent, backup: &str, at: crate::group::Millis) -> bool {
    let seen = |s: &Snapshot| {
        s.member(backup)
            .and_then(|m| m.record.replication.as_ref())
            .is_some_and(|r| r.at >= at)
    };
    let mut rx = agent.subscribe();
    let wait = async {
        loop {
            let done = seen(&rx.borrow_and_update());
            if done || rx.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(HEAR_REPLICATION, wait).await;
    seen(&agent.snapshot())
}

/// On-demand replication: `POST /api/v1/members/{backup}/replicate` with an optional
/// `{"main": "..."}`. Answers with each Main's result (a failed copy is a result, not an error).
async fn replicate(
    State(agent): State<Agent>,
    Operator(who): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b: ReplicateBody = if body.iter().all(|c| c.is_ascii_whitespace()) {
        ReplicateBody::default()
    } else {
        parse_json(&body)?
    };
    tracing::info!(member = %agent.name(), backup = %name, main = ?b.main,
        requested_by = %who, "replication requested");
    let reply = agent.replicate_on_demand(name, b.main).await?;
    let failed = reply
        .results
        .iter()
        .filter(|r| r.result != crate::group::ReplicationResult::Success)
        .count();
    let mut message = if reply.results.is_empty() {
        format!("{} has no main to replicate", reply.backup)
    } else {
        reply
            .results
            .iter()
            .map(|r| {
                let at =
                    r.at.map(|t| format!(" at {}", rfc3339(t)))
                        .unwrap_or_default();
                match &r.error {
                    None => format!("{} replicated {}{at}: success", reply.backup, r.main),
                    Some(e) => format!("{} replicated {}{at}: failed ({e})", reply.backup, r.main),
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    // Forwarded to the Backup's agent: its record (the "last replication" the answer's group
    // shows) reaches this agent by gossip, which the Backup sends at once; wait for it.
    let latest = reply.results.iter().filter_map(|r| r.at).max();
    if let Some(at) = latest.filter(|_| reply.backup != agent.name()) {
        if !heard_replication(&agent, &reply.backup, at).await {
            message += &format!(
                " ({} has not yet heard {}'s record: the group below may show an earlier \
                 replication)",
                agent.name(),
                reply.backup
            );
        }
    }
    Ok(Json(json!({
        "outcome": if failed == 0 { "done" } else { "failed" },
        "message": message,
        "backup": reply.backup,
        "results": reply.results,
        "group": group_json(&agent.snapshot()),
    })))
}
