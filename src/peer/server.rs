//! The server side of the peer protocol: the `/peer/v1` routes, all behind one verification
//! layer (the request's signature, timestamp and nonce are checked before any handler runs),
//! and one envelope check for every message (protocol version, group, sender) before it
//! reaches the agent. Network I/O (through the router).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tracing::warn;

use super::messages::{
    check_envelope, ApplyRequest, ClaimRequest, CommandRequest, Envelope, Heartbeat,
    ReplicateRequest,
};
use super::signing::{Presented, Verifier, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::agent::Agent;
use crate::http::error::ApiError;
use crate::http::request::{parse_json, ClientAddr};
use crate::replication;

/// The largest peer request body read before its signature is checked (a heartbeat carrying
/// every record of a large group is tens of kilobytes).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The peer protocol's routes for `agent`, behind the verification layer.
pub fn routes(agent: Agent) -> Router {
    let cfg = agent.config();
    let verifier = Arc::new(Verifier::new(
        cfg.peer_secret.clone(),
        cfg.file.peer.replay_window,
    ));
    Router::new()
        .route("/peer/v1/heartbeat", post(heartbeat))
        .route("/peer/v1/apply", post(apply))
        .route("/peer/v1/claim", post(claim))
        .route("/peer/v1/command", post(command))
        .route("/peer/v1/replicate", post(replicate))
        .route("/peer/v1/replication/manifest", get(manifest))
        .route("/peer/v1/replication/file/{*path}", get(file))
        .route(
            "/peer/v1/replication/replica/{main}/manifest",
            get(replica_manifest),
        )
        .route(
            "/peer/v1/replication/replica/{main}/file/{*path}",
            get(replica_file),
        )
        .route_layer(middleware::from_fn_with_state(
            (agent.clone(), verifier),
            verify,
        ))
        .with_state(agent)
}

/// The verification layer: under mutual TLS (a `[tls]` ca), refuses a client that presented
/// no verified certificate; reads the body (bounded), checks the signature over method, path
/// and body, and hands the request on with the same body. A refusal is logged with the
/// peer's address.
async fn verify(
    State((agent, verifier)): State<(Agent, Arc<Verifier>)>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let client = ClientAddr::of(&parts).0;
    let mutual = agent.config().tls.as_ref().is_some_and(|t| t.mutual());
    if mutual && !ClientAddr::verified_client(&parts) {
        warn!(member = %agent.name(), peer = ?client, path = %parts.uri.path(),
            "peer request refused: no client certificate (mutual TLS)");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "peer requests need a client certificate signed by the group's CA (mutual TLS)",
        ));
    }
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_request",
            format!("cannot read the request body: {e}"),
        )
    })?;
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let presented = Presented {
        timestamp: h(TIMESTAMP_HEADER),
        nonce: h(NONCE_HEADER),
        signature: h(SIGNATURE_HEADER),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if let Err(e) = verifier.check(
        parts.method.as_str(),
        parts.uri.path(),
        presented,
        &bytes,
        now,
    ) {
        warn!(member = %agent.name(), peer = ?client, path = %parts.uri.path(), reason = %e,
            "peer request refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("peer request refused: {e}"),
        ));
    }
    Ok(next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await)
}

/// A peer message whose envelope was checked against this agent's configuration.
struct Message<T>(T);

impl<T: DeserializeOwned + Envelope> FromRequest<Agent> for Message<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, agent: &Agent) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, agent)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
        let msg: T = parse_json(&body)?;
        let cfg = &agent.config().file;
        let members = cfg.members.iter().map(|m| m.name.as_str());
        if let Err(e) = check_envelope(&msg, &cfg.group, members) {
            warn!(member = %agent.name(), from = %msg.from(), protocol = msg.protocol(),
                group = %msg.group(), error = %e, "peer message refused");
            return Err(e.into());
        }
        Ok(Message(msg))
    }
}

/// A route whose message goes to one `Agent` method and whose answer is that method's result.
macro_rules! to_agent {
    ($route:ident: $message:ty => $method:ident) => {
        async fn $route(
            State(agent): State<Agent>,
            Message(msg): Message<$message>,
        ) -> Result<Response, ApiError> {
            Ok(Json(agent.$method(msg).await?).into_response())
        }
    };
}

to_agent!(heartbeat: Heartbeat => handle_heartbeat);
to_agent!(apply: ApplyRequest => handle_apply);
to_agent!(claim: ClaimRequest => handle_claim);
to_agent!(command: CommandRequest => handle_forwarded);

async fn replicate(
    State(agent): State<Agent>,
    Message(req): Message<ReplicateRequest>,
) -> Result<Response, ApiError> {
    if req.backup != agent.name() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("this agent is {}, not {}", agent.name(), req.backup),
        ));
    }
    Ok(Json(agent.replicate_on_demand(req.backup, req.main).await?).into_response())
}

/// The directory this agent publishes now, or 404 `no_data` saying why it publishes nothing.
async fn published(agent: &Agent) -> Result<std::path::PathBuf, ApiError> {
    agent
        .published_dir()
        .await
        .map_err(|why| ApiError::new(StatusCode::NOT_FOUND, "no_data", why))
}

fn internal(kind: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, kind, e.to_string())
}

async fn manifest(State(agent): State<Agent>) -> Result<Response, ApiError> {
    let dir = published(&agent).await?;
    manifest_of(dir).await
}

/// This agent's replica of `main`, or 404 `no_data` (a replace takeover copies it back).
async fn replica(agent: &Agent, main: &str) -> Result<std::path::PathBuf, ApiError> {
    agent
        .replica_of(main)
        .await
        .map_err(|why| ApiError::new(StatusCode::NOT_FOUND, "no_data", why))
}

async fn replica_manifest(
    State(agent): State<Agent>,
    Path(main): Path<String>,
) -> Result<Response, ApiError> {
    manifest_of(replica(&agent, &main).await?).await
}

async fn replica_file(
    State(agent): State<Agent>,
    Path((main, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    serve_file(replica(&agent, &main).await?, path).await
}

async fn manifest_of(dir: std::path::PathBuf) -> Result<Response, ApiError> {
    let m = tokio::task::spawn_blocking(move || replication::manifest(&dir))
        .await
        .map_err(|e| internal("internal", e))?
        .map_err(|e| internal("io_error", e))?;
    Ok(Json(m).into_response())
}

/// Streams one published file (bounded memory). A path that leaves the data directory, or
/// that is or passes through a symbolic link, is refused: the Main never follows a link.
async fn file(State(agent): State<Agent>, Path(path): Path<String>) -> Result<Response, ApiError> {
    serve_file(published(&agent).await?, path).await
}

async fn serve_file(dir: std::path::PathBuf, path: String) -> Result<Response, ApiError> {
    let (file, size) =
        tokio::task::spawn_blocking(move || replication::open_published(&dir, &path))
            .await
            .map_err(|e| internal("internal", e))?
            .map_err(|e| match e {
                replication::ReplicationError::UnsafePath(_)
                | replication::ReplicationError::ThroughSymlink(_)
                | replication::ReplicationError::Unsupported(_) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
                }
                _ => ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            })?;
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err::<Bytes, std::io::Error>(e), None)),
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
