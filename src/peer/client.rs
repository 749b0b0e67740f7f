//! The client side of the peer protocol: signed JSON requests to the other agents of the
//! group, each tried on every heartbeat path in turn, with time-outs by kind (a heartbeat, an
//! apply that persists and moves an address, a forwarded command, a replication transfer).
//! Does network I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::messages::{
    ApplyReply, ApplyRequest, ClaimAnswer, ClaimRequest, CommandRequest, Heartbeat, HeartbeatReply,
    ReplicateReply, ReplicateRequest,
};
use super::signing::{Signer, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::command::{CommandError, ErrorBody, Event};
use crate::config::MemberConfig;
use crate::secret::Secret;
use crate::tls::Tls;

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("{member} cannot be reached on any heartbeat path ({detail})")]
    Unreachable { member: String, detail: String },
    #[error("{member} answered {status}: {message}")]
    Rejected {
        member: String,
        status: u16,
        message: String,
    },
}

/// Talks to the other agents of the group.
#[derive(Debug, Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    signer: std::sync::Arc<Signer>,
    urls: BTreeMap<String, BTreeMap<String, String>>,
    /// How long an `apply` may take (the receiver persists, moves the address and runs its
    /// hook before it answers); connecting still fails after the request timeout.
    operation_timeout: Duration,
    /// How long a replication transfer (one file, or a whole on-demand replication) may take.
    transfer_timeout: Duration,
}

impl PeerClient {
    /// A client for the agent `sender`, signing with the group `secret`; over TLS with `tls`
    /// (its `ca` the only root, this agent's certificate presented as client certificate).
    pub fn new(
        members: &[MemberConfig],
        secret: Secret,
        sender: &str,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> PeerClient {
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30));
        let builder = match tls {
            Some(t) => builder.use_preconfigured_tls(t.peer_client_config()),
            None => builder,
        };
        // Building fails only when the system's resolver cannot be set up; the TLS set-up was
        // checked when the configuration was loaded. A default client reaches no peer over
        // TLS (it does not trust their CA), which the log and the heartbeats then show.
        let http = builder.build().unwrap_or_else(|e| {
            tracing::error!(member = %sender, error = %e, "cannot build the peer client");
            reqwest::Client::default()
        });
        PeerClient {
            http,
            signer: std::sync::Arc::new(Signer::new(secret, sender)),
            urls: members
                .iter()
                .map(|m| (m.name.clone(), m.peer_urls.clone()))
                .collect(),
            operation_timeout: timeout,
            transfer_timeout: Duration::from_secs(300),
        }
    }

    /// Sets how long an `apply` (and, three times that, a forwarded command) may take, and
    /// how long a replication transfer may take.
    pub fn with_timeouts(mut self, operation: Duration, transfer: Duration) -> PeerClient {
        self.operation_timeout = operation;
        self.transfer_timeout = transfer;
        self
    }

    /// Heartbeat paths of `member`, by name.
    pub fn paths(&self, member: &str) -> Vec<(String, String)> {
        self.urls
            .get(member)
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    async fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        member: &str,
        base: &str,
        route: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<Result<R, ErrorBody>, PeerError> {
        let url = format!("{}/peer/v1/{route}", base.trim_end_matches('/'));
        let body = serde_json::to_vec(body).map_err(|e| PeerError::Unreachable {
            member: member.to_string(),
            detail: format!("cannot encode the request: {e}"),
        })?;
        let resp = self
            .signed(reqwest::Method::POST, &url, body)
            .map_err(|detail| PeerError::Unreachable {
                member: member.to_string(),
                detail,
            })?
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        let resp = match timeout {
            Some(t) => resp.timeout(t),
            None => resp,
        };
        let resp = resp.send().await.map_err(|e| PeerError::Unreachable {
            member: member.to_string(),
            detail: e.to_string(),
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| PeerError::Unreachable {
            member: member.to_string(),
            detail: e.to_string(),
        })?;
        if status.is_success() {
            serde_json::from_slice(&bytes)
                .map(Ok)
                .map_err(|e| PeerError::Rejected {
                    member: member.to_string(),
                    status: status.as_u16(),
                    message: format!("unreadable answer: {e}"),
                })
        } else {
            match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(body) if status.as_u16() != 401 && status.as_u16() != 403 => Ok(Err(body)),
                _ => Err(PeerError::Rejected {
                    member: member.to_string(),
                    status: status.as_u16(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                }),
            }
        }
    }

    /// A request to `url` carrying `body`, signed over its method, path and body.
    fn signed(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::RequestBuilder, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad peer URL {url}: {e}"))?;
        let h = self.signer.sign(method.as_str(), parsed.path(), &body);
        Ok(self
            .http
            .request(method, parsed)
            .header(TIMESTAMP_HEADER, h.timestamp)
            .header(NONCE_HEADER, h.nonce)
            .header(SIGNATURE_HEADER, h.signature)
            .body(body))
    }

    /// One heartbeat on one path.
    pub async fn heartbeat(
        &self,
        member: &str,
        url: &str,
        hb: &Heartbeat,
    ) -> Result<HeartbeatReply, PeerError> {
        match self.post(member, url, "heartbeat", hb, None).await? {
            Ok(r) => Ok(r),
            Err(body) => Err(PeerError::Rejected {
                member: member.to_string(),
                status: 0,
                message: body.message,
            }),
        }
    }

    /// POSTs to `member` on each of its paths in turn until one answers (with a result or
    /// an error body); the last path's failure when none does.
    async fn post_any_path<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        member: &str,
        route: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<Result<R, ErrorBody>, PeerError> {
        let mut last = PeerError::Unreachable {
            member: member.to_string(),
            detail: "no heartbeat path configured".into(),
        };
        for (_, url) in self.paths(member) {
            match self.post(member, &url, route, body, timeout).await {
                Err(e) => last = e,
                answered => return answered,
            }
        }
        Err(last)
    }

    /// Hands `member` its new record, trying every path in turn.
    pub async fn apply(&self, member: &str, req: &ApplyRequest) -> Result<ApplyReply, PeerError> {
        let within = Some(self.operation_timeout);
        self.post_any_path(member, "apply", req, within)
            .await?
            .map_err(|body| PeerError::Rejected {
                member: member.to_string(),
                status: 0,
                message: body.message,
            })
    }

    /// Claims members for an operation on `member`, or releases the claim: its answer, or
    /// `Unreachable` when no path answers.
    pub async fn claim(&self, member: &str, req: &ClaimRequest) -> ClaimAnswer {
        match self.post_any_path(member, "claim", req, None).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(body)) => ClaimAnswer::Refused {
                message: body.message,
            },
            Err(_) => ClaimAnswer::Unreachable,
        }
    }

    /// Forwards a command to the agent that must carry it out.
    pub async fn command(&self, member: &str, req: &CommandRequest) -> Result<Event, CommandError> {
        let within = Some(self.operation_timeout * 3);
        match self.post_any_path(member, "command", req, within).await {
            Ok(answer) => answer.map_err(CommandError::from_body),
            Err(e) => Err(CommandError::Unavailable(format!(
                "the command must be carried out by {member}'s agent, which cannot be reached: {e}"
            ))),
        }
    }

    /// Asks `member` (a Backup) to replicate now.
    pub async fn replicate(
        &self,
        member: &str,
        req: &ReplicateRequest,
    ) -> Result<ReplicateReply, CommandError> {
        match self.post_any_path(member, "replicate", req, None).await {
            Ok(answer) => answer.map_err(CommandError::from_body),
            Err(e) => Err(CommandError::Unavailable(format!(
                "{member}'s agent cannot be reached to replicate: {e}"
            ))),
        }
    }

    /// GET a replication resource from `member`'s agent, read whole (the manifest).
    pub async fn fetch(&self, member: &str, route: &str) -> Result<bytes::Bytes, PeerError> {
        let resp = self.fetch_response(member, route).await?;
        resp.bytes().await.map_err(|e| PeerError::Unreachable {
            member: member.into(),
            detail: e.to_string(),
        })
    }

    /// GET a replication resource from `member`'s agent, trying every path in turn until one
    /// answers: the successful answer, its body not yet read (a file is streamed by the
    /// caller, in bounded memory), or the error the agent answered.
    pub async fn fetch_response(
        &self,
        member: &str,
        route: &str,
    ) -> Result<reqwest::Response, PeerError> {
        let mut last = None;
        for (_, base) in self.paths(member) {
            let url = format!("{}/peer/v1/{route}", base.trim_end_matches('/'));
            let res = match self.signed(reqwest::Method::GET, &url, Vec::new()) {
                Ok(rb) => rb.timeout(self.transfer_timeout).send().await,
                Err(detail) => {
                    last = Some(PeerError::Unreachable {
                        member: member.into(),
                        detail,
                    });
                    continue;
                }
            };
            match res {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    return Err(PeerError::Rejected {
                        member: member.into(),
                        status,
                        message: text.chars().take(200).collect(),
                    });
                }
                Err(e) => {
                    last = Some(PeerError::Unreachable {
                        member: member.into(),
                        detail: e.to_string(),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| PeerError::Unreachable {
            member: member.to_string(),
            detail: "no heartbeat path configured".into(),
        }))
    }
}
