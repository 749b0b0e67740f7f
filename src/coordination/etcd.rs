//! The etcd implementation of [`Quorum`] (cargo feature `etcd`): one lease per agent (its
//! session) kept alive over a keep-alive stream, one key per held service address and one
//! operation key under that lease, each claimed or deleted in a single transaction.
//!
//! Keys: `<prefix>/<group>/address/<ip>` (value: the holder's member name) and
//! `<prefix>/<group>/operation` (value: JSON naming the operation and the member). Both are
//! put under the holder's lease, so a crashed agent's keys go away when its TTL runs out.
//!
//! Does network I/O (gRPC to etcd, every request bounded by `request_timeout`) and reads the
//! TLS files in [`Etcd::connect`]. The key names, values and the status bookkeeping are pure
//! functions below, tested without etcd; `tests/etcd_coordination.rs` runs the rest against a
//! real etcd.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity,
    LeaseKeepAliveStream, LeaseKeeper, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::config::{CoordinationConfig, EtcdTls};
use super::BoxFuture;
use super::{Quorum, QuorumError, QuorumStatus};

/// The backend's name in errors and the status.
pub const BACKEND: &str = "etcd";
/// How often `acquire` tries again while it may still wait.
const RETRY: Duration = Duration::from_millis(100);
/// The longest pause between two keep-alives, whatever the TTL.
const MAX_KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(300);

/// The keys of one group under the configured prefix. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// `<prefix>/<group>` (a trailing `/` of the prefix is dropped).
    pub fn new(prefix: &str, group: &str) -> Keys {
        Keys {
            base: format!("{}/{group}", prefix.trim_end_matches('/')),
        }
    }

    /// `<prefix>/<group>/address/`: every address key starts with it.
    pub fn addresses(&self) -> String {
        format!("{}/address/", self.base)
    }

    /// `<prefix>/<group>/address/<ip>`.
    pub fn address(&self, address: IpAddr) -> String {
        format!("{}{address}", self.addresses())
    }

    /// `<prefix>/<group>/operation`.
    pub fn operation(&self) -> String {
        format!("{}/operation", self.base)
    }

    /// The address an address key names (`None` for any other key).
    pub fn address_of(&self, key: &[u8]) -> Option<IpAddr> {
        std::str::from_utf8(key)
            .ok()?
            .strip_prefix(&self.addresses())?
            .parse()
            .ok()
    }
}

/// The value of the operation key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationLock {
    pub operation: String,
    pub member: String,
}

impl OperationLock {
    /// The key's value: JSON, always written the same way (the transactions compare it).
    pub fn value(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.operation.clone())
    }

    /// The operation named by a value read from etcd (the raw text if it is not ours).
    pub fn holder_of(value: &[u8]) -> String {
        serde_json::from_slice::<OperationLock>(value)
            .map(|l| l.operation)
            .unwrap_or_else(|_| String::from_utf8_lossy(value).into_owned())
    }
}

/// `status` as of `now`: a session whose validity has run out is down since it ran out,
/// whatever the last keep-alive said. Pure.
pub fn status_as_of(mut status: QuorumStatus, now: Instant) -> QuorumStatus {
    if status.up {
        let until = status.session_until.unwrap_or(status.since);
        if until <= now {
            status.up = false;
            status.since = until;
            status.error = Some("session expired: no keep-alive was answered in time".into());
        }
    }
    status
}

/// Sets `up` (and `since` when it changes) and the error. Pure.
fn set_up(status: &mut QuorumStatus, up: bool, error: Option<String>, now: Instant) {
    if status.up != up {
        status.since = now;
    }
    status.up = up;
    status.error = error;
}

/// The pause between two keep-alives: a sixth of the TTL, at most 300 ms. Pure.
pub fn keep_alive_interval(ttl: Duration) -> Duration {
    (ttl / 6).min(MAX_KEEP_ALIVE_INTERVAL)
}

/// What a claim transaction found.
#[derive(Debug)]
enum Claim {
    /// The key is ours now (under the current lease).
    Taken,
    /// Another value holds the key.
    HeldBy(Vec<u8>),
}

/// Why the session could not be refreshed.
#[derive(Debug)]
enum SessionError {
    /// etcd answered: the lease is gone (TTL 0, not found).
    Lost,
    /// No answer, or an error.
    Unreachable(String),
}

/// This agent's lease and its keep-alive stream.
#[derive(Default)]
struct Session {
    lease: Option<i64>,
    stream: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

/// The etcd quorum source of one member of one group.
pub struct Etcd {
    keys: Keys,
    member: String,
    endpoints: Vec<String>,
    /// Holds the password: never printed (see the `Debug` below).
    options: ConnectOptions,
    ttl: Duration,
    request_timeout: Duration,
    /// Built on first use; tonic's channels reconnect by themselves after that.
    client: Mutex<Option<Client>>,
    /// One refresh of the session at a time (the `run` loop, or a claim needing a session).
    session: tokio::sync::Mutex<Session>,
    status: Mutex<QuorumStatus>,
}

impl fmt::Debug for Etcd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Etcd")
            .field("keys", &self.keys)
            .field("member", &self.member)
            .field("endpoints", &self.endpoints)
            .field("ttl", &self.ttl)
            .field("request_timeout", &self.request_timeout)
            .field("status", &*self.lock_status())
            .finish_non_exhaustive()
    }
}

fn unreachable(message: impl fmt::Display) -> QuorumError {
    QuorumError::Unreachable {
        backend: BACKEND,
        message: message.to_string(),
    }
}

/// Runs one request, bounded by `limit`.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(no_answer(what, limit)),
    }
}

fn no_answer(what: &str, limit: Duration) -> String {
    format!(
        "{what}: no answer within {}",
        humantime::format_duration(limit)
    )
}

/// gRPC's status code UNAVAILABLE: the request reached no serving etcd member (a refused
/// connection, a member without a leader).
const GRPC_UNAVAILABLE: i32 = 14;
/// The pause before sending a refused request again (to another member, as the balancer picks).
const RESEND_PAUSE: Duration = Duration::from_millis(10);

/// Whether another member may serve a request that failed this way: it was not served (all
/// our requests may be sent again: the claims are idempotent, a second lease expires).
fn worth_another_member(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => i32::from(s.code()) == GRPC_UNAVAILABLE,
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// etcd's answer when a put names a lease that has expired or was revoked.
fn is_lease_not_found(e: &str) -> bool {
    e.contains("lease not found")
}

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, QuorumError> {
    std::fs::read(path).map_err(|e| unreachable(format!("cannot read {}: {e}", path.display())))
}

fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, QuorumError> {
    let mut out = TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem(&tls.ca_file)?));
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        out = out.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
    }
    if let Some(domain) = &tls.domain {
        out = out.domain_name(domain.clone());
    }
    Ok(out)
}

impl Etcd {
    /// Prepares the quorum source of `member` in `group`: reads the TLS files and sets up the
    /// connection options (the password is `cfg.password`, read by `Config::load`). Does not
    /// wait for etcd: the first request connects (bounded by `request_timeout`), and `run`
    /// keeps trying while etcd is away. Fails on unreadable TLS files or a user without its
    /// password.
    pub fn connect(
        cfg: &CoordinationConfig,
        group: &str,
        member: &str,
    ) -> Result<Etcd, QuorumError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(cfg.request_timeout)
            .with_timeout(cfg.request_timeout)
            .with_keep_alive(cfg.request_timeout, cfg.request_timeout)
            // A member cut off from the others' quorum answers "no leader" at once.
            .with_require_leader(true)
            .with_auto_token_refresh(true);
        if let Some(tls) = &cfg.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        match (&cfg.username, &cfg.password) {
            (Some(user), Some(password)) => {
                options = options.with_user(user.clone(), password.expose().to_string());
            }
            (Some(user), None) => {
                return Err(unreachable(format!(
                    "etcd user {user:?} has no password (password_file was not read)"
                )))
            }
            _ => {}
        }
        let now = Instant::now();
        Ok(Etcd {
            keys: Keys::new(&cfg.prefix, group),
            member: member.to_string(),
            endpoints: cfg.endpoints.clone(),
            options,
            ttl: Duration::from_secs(cfg.session_ttl.as_secs().max(1)),
            request_timeout: cfg.request_timeout,
            client: Mutex::new(None),
            session: tokio::sync::Mutex::new(Session::default()),
            status: Mutex::new(QuorumStatus {
                backend: BACKEND,
                up: false,
                since: now,
                error: Some("no session yet".into()),
                session_until: None,
                holders: BTreeMap::new(),
            }),
        })
    }

    /// The member this source claims keys for.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// The keys of this group.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The current lease's id (`None` without a session), e.g. to look it up with etcdctl.
    pub async fn lease_id(&self) -> Option<i64> {
        self.session.lock().await.lease
    }

    fn lock_status(&self) -> MutexGuard<'_, QuorumStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a request error: down, with the error.
    fn mark_down(&self, error: &str) {
        let now = Instant::now();
        let mut st = self.lock_status();
        let was_up = st.up;
        *st = status_as_of(st.clone(), now);
        set_up(&mut st, false, Some(error.to_string()), now);
        drop(st);
        if was_up {
            tracing::warn!(backend = BACKEND, error, "quorum source down");
        } else {
            tracing::debug!(backend = BACKEND, error, "quorum source still down");
        }
    }

    /// Records an answered keep-alive or grant: valid until `until`.
    fn mark_session(&self, until: Instant) {
        let now = Instant::now();
        let mut st = self.lock_status();
        let was_up = st.up;
        *st = status_as_of(st.clone(), now);
        st.session_until = Some(until);
        let up = until > now;
        let error = (!up).then(|| "the keep-alive was answered too late".to_string());
        set_up(&mut st, up, error, now);
        drop(st);
        if up && !was_up {
            tracing::info!(backend = BACKEND, "quorum source up");
        }
    }

    /// Records that etcd said the lease is gone (so are the keys under it).
    fn mark_lost(&self) {
        let now = Instant::now();
        let mut st = self.lock_status();
        *st = status_as_of(st.clone(), now);
        st.session_until = None;
        st.holders.retain(|_, m| *m != self.member);
        set_up(
            &mut st,
            false,
            Some("session lost: etcd no longer knows its lease (expired)".into()),
            now,
        );
        drop(st);
        tracing::warn!(backend = BACKEND, member = %self.member, "session lost; granting a new one");
    }

    /// The client, built on first use.
    async fn client(&self) -> Result<Client, String> {
        let existing = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(c) = existing {
            return Ok(c);
        }
        let c = bounded(
            self.request_timeout,
            "connect",
            Client::connect(self.endpoints.clone(), Some(self.options.clone())),
        )
        .await?;
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
        Ok(c)
    }

    /// Runs `call` on the client, sent again while it is refused unserved (a member down:
    /// the balancer then picks another), all within `request_timeout`.
    async fn request<T, Fut>(
        &self,
        what: &str,
        mut call: impl FnMut(Client) -> Fut,
    ) -> Result<T, String>
    where
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + self.request_timeout;
        let client = self.client().await?;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, call(client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e))
                    if worth_another_member(&e)
                        && deadline.saturating_duration_since(Instant::now()) > RESEND_PAUSE =>
                {
                    tracing::debug!(backend = BACKEND, what, error = %e, "sending again");
                    tokio::time::sleep(RESEND_PAUSE).await;
                }
                Ok(Err(e)) => return Err(format!("{what}: {e}")),
                Err(_) => return Err(no_answer(what, self.request_timeout)),
            }
        }
    }

    /// Grants a new lease; the old one (if any) is forgotten.
    async fn grant(&self, session: &mut Session) -> Result<(), String> {
        session.stream = None;
        let sent = Instant::now();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let granted = self
            .request("lease grant", |mut c| async move {
                c.lease_grant(ttl, None).await
            })
            .await?;
        if granted.ttl() <= 0 {
            return Err(format!("lease grant: {}", granted.error()));
        }
        session.lease = Some(granted.id());
        tracing::info!(
            backend = BACKEND,
            member = %self.member,
            lease = granted.id(),
            ttl = granted.ttl(),
            "session granted"
        );
        self.mark_session(sent + Duration::from_secs(granted.ttl().unsigned_abs()));
        Ok(())
    }

    /// One keep-alive of `lease` over the session's stream (opened first if needed); the
    /// session is valid until its send time plus the TTL answered.
    async fn keep_alive(&self, session: &mut Session, lease: i64) -> Result<(), SessionError> {
        let timeout = self.request_timeout;
        if session.stream.is_none() {
            let opened = self
                .request("keep-alive", |mut c| async move {
                    c.lease_keep_alive(lease).await
                })
                .await;
            match opened {
                Ok(stream) => session.stream = Some(stream),
                Err(e) if is_lease_not_found(&e) => return Err(SessionError::Lost),
                Err(e) => return Err(SessionError::Unreachable(e)),
            }
        }
        let Some((keeper, stream)) = session.stream.as_mut() else {
            return Err(SessionError::Unreachable("keep-alive: no stream".into()));
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(timeout, async {
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await;
        let answer = match answer {
            Ok(Ok(Some(answer))) => answer,
            Ok(Ok(None)) => {
                return Err(SessionError::Unreachable(
                    "keep-alive: etcd closed the stream".into(),
                ))
            }
            Ok(Err(e)) => return Err(SessionError::Unreachable(format!("keep-alive: {e}"))),
            Err(_) => return Err(SessionError::Unreachable(no_answer("keep-alive", timeout))),
        };
        if answer.ttl() <= 0 {
            return Err(SessionError::Lost);
        }
        self.mark_session(sent + Duration::from_secs(answer.ttl().unsigned_abs()));
        Ok(())
    }

    /// Keeps the session alive once: grants a lease if there is none or it was lost. A
    /// stream that fails (its member went away) is replaced by a new one at once, once.
    async fn refresh(&self, session: &mut Session) -> Result<(), String> {
        let Some(lease) = session.lease else {
            return self.grant(session).await;
        };
        let mut tries = if session.stream.is_some() { 2 } else { 1 };
        loop {
            tries -= 1;
            match self.keep_alive(session, lease).await {
                Ok(()) => return Ok(()),
                Err(SessionError::Lost) => {
                    session.lease = None;
                    session.stream = None;
                    self.mark_lost();
                    return self.grant(session).await;
                }
                Err(SessionError::Unreachable(e)) => {
                    // A stream that failed once is not trusted again: the next try opens another.
                    session.stream = None;
                    if tries == 0 {
                        return Err(e);
                    }
                    tracing::debug!(backend = BACKEND, error = %e, "keep-alive stream failed");
                }
            }
        }
    }

    /// The lease of a session valid now, refreshed (or granted) first if it is not.
    async fn live_lease(&self) -> Result<i64, QuorumError> {
        let mut session = self.session.lock().await;
        let valid = |st: &QuorumStatus| st.session_until.is_some_and(|u| u > Instant::now());
        if let Some(lease) = session.lease {
            if valid(&self.lock_status()) {
                return Ok(lease);
            }
        }
        if let Err(e) = self.refresh(&mut session).await {
            self.mark_down(&e);
            return Err(unreachable(e));
        }
        match session.lease {
            Some(lease) if valid(&self.lock_status()) => Ok(lease),
            _ => Err(unreachable("no valid session")),
        }
    }

    /// Rereads the address keys into `holders`.
    async fn read_holders(&self) -> Result<(), String> {
        let prefix = self.keys.addresses();
        let got = self
            .request("read the address keys", |mut c| {
                let prefix = prefix.clone();
                async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        let holders: BTreeMap<IpAddr, String> = got
            .kvs()
            .iter()
            .filter_map(|kv| {
                let address = self.keys.address_of(kv.key())?;
                Some((address, String::from_utf8_lossy(kv.value()).into_owned()))
            })
            .collect();
        self.lock_status().holders = holders;
        Ok(())
    }

    /// One transaction: put `value` at `key` under `lease` if the key is absent or holds
    /// `value` already; otherwise read who holds it.
    async fn claim(&self, key: &str, value: &str, lease: i64) -> Result<Claim, String> {
        let put = || TxnOp::put(key, value, Some(PutOptions::new().with_lease(lease)));
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([put()])
            .or_else([TxnOp::txn(
                Txn::new()
                    .when([Compare::value(key, CompareOp::Equal, value)])
                    .and_then([put()])
                    .or_else([TxnOp::get(key, None)]),
            )]);
        let answer = self
            .request("transaction", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        if answer.succeeded() {
            return Ok(Claim::Taken);
        }
        let Some(TxnOpResponse::Txn(inner)) = answer.op_responses().into_iter().next() else {
            return Err("transaction: unexpected answer".into());
        };
        if inner.succeeded() {
            return Ok(Claim::Taken);
        }
        match inner.op_responses().into_iter().next() {
            Some(TxnOpResponse::Get(got)) => Ok(Claim::HeldBy(
                got.kvs()
                    .first()
                    .map(|kv| kv.value().to_vec())
                    .unwrap_or_default(),
            )),
            _ => Err("transaction: unexpected answer".into()),
        }
    }

    /// Claims `key` for `value` under a live session. A put naming a lease etcd no longer
    /// knows means the session was lost: the next try grants a new one.
    async fn claim_once(&self, key: &str, value: &str) -> Result<Claim, QuorumError> {
        let lease = self.live_lease().await?;
        match self.claim(key, value, lease).await {
            Ok(claim) => Ok(claim),
            Err(e) => {
                if is_lease_not_found(&e) {
                    let mut session = self.session.lock().await;
                    if session.lease == Some(lease) {
                        session.lease = None;
                        session.stream = None;
                        self.mark_lost();
                    }
                } else {
                    self.mark_down(&e);
                }
                Err(unreachable(e))
            }
        }
    }

    /// One transaction: deletes `key` if it holds `value`.
    async fn delete_if(&self, key: &str, value: &str) -> Result<(), QuorumError> {
        let txn = Txn::new()
            .when([Compare::value(key, CompareOp::Equal, value)])
            .and_then([TxnOp::delete(key, None)]);
        let result = self
            .request("transaction", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await;
        match result {
            Ok(answer) => {
                tracing::debug!(key, deleted = answer.succeeded(), "released");
                Ok(())
            }
            Err(e) => {
                self.mark_down(&e);
                Err(unreachable(e))
            }
        }
    }

    async fn try_acquire(&self, address: IpAddr) -> Result<(), QuorumError> {
        match self
            .claim_once(&self.keys.address(address), &self.member)
            .await?
        {
            Claim::Taken => {
                self.lock_status()
                    .holders
                    .insert(address, self.member.clone());
                Ok(())
            }
            Claim::HeldBy(holder) => Err(QuorumError::HeldBy {
                backend: BACKEND,
                address,
                holder: String::from_utf8_lossy(&holder).into_owned(),
            }),
        }
    }

    async fn run_loop(&self, stop: CancellationToken) {
        let interval = keep_alive_interval(self.ttl);
        loop {
            let result = {
                let mut session = self.session.lock().await;
                self.refresh(&mut session).await
            };
            let result = match result {
                Ok(()) => self.read_holders().await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.mark_down(&e);
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        tracing::debug!(backend = BACKEND, member = %self.member, "session no longer kept alive");
    }

    async fn acquire_within(&self, address: IpAddr, wait: Duration) -> Result<(), QuorumError> {
        let deadline = Instant::now() + wait;
        loop {
            let err = match self.try_acquire(address).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() + RETRY > deadline {
                return Err(err);
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn lock_op(&self, op: &str) -> Result<(), QuorumError> {
        let value = self.operation_value(op);
        match self.claim_once(&self.keys.operation(), &value).await? {
            Claim::Taken => Ok(()),
            Claim::HeldBy(holder) => Err(QuorumError::Busy {
                backend: BACKEND,
                holder: OperationLock::holder_of(&holder),
            }),
        }
    }

    fn operation_value(&self, op: &str) -> String {
        OperationLock {
            operation: op.to_string(),
            member: self.member.clone(),
        }
        .value()
    }
}

impl Quorum for Etcd {
    fn status(&self) -> QuorumStatus {
        status_as_of(self.lock_status().clone(), Instant::now())
    }

    fn run(&self, stop: CancellationToken) -> BoxFuture<'_, ()> {
        Box::pin(self.run_loop(stop))
    }

    fn acquire(&self, address: IpAddr, wait: Duration) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(self.acquire_within(address, wait))
    }

    fn release(&self, address: IpAddr) -> BoxFuture<'_, Result<(), QuorumError>> {
        Box::pin(async move {
            self.delete_if(&self.keys.address(address), &self.member)
                .await?;
            let mut st = self.lock_status();
            if st.holders.get(&address) == Some(&self.member) {
                st.holders.remove(&address);
            }
            Ok(())
        })
    }

    fn lock_operation<'a>(&'a self, op: &'a str) -> BoxFuture<'a, Result<(), QuorumError>> {
        Box::pin(self.lock_op(op))
    }

    fn unlock_operation<'a>(&'a self, op: &'a str) -> BoxFuture<'a, Result<(), QuorumError>> {
        Box::pin(async move {
            let value = self.operation_value(op);
            self.delete_if(&self.keys.operation(), &value).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_under_prefix_and_group() {
        let k = Keys::new("/understudy/", "plant");
        assert_eq!(k.addresses(), "/understudy/plant/address/");
        assert_eq!(
            k.address("192.0.2.10".parse().expect("ip")),
            "/understudy/plant/address/192.0.2.10"
        );
        assert_eq!(
            k.address("2001:db8::10".parse().expect("ip")),
            "/understudy/plant/address/2001:db8::10"
        );
        assert_eq!(k.operation(), "/understudy/plant/operation");
        assert_eq!(
            k.address_of(b"/understudy/plant/address/2001:db8::10"),
            "2001:db8::10".parse().ok()
        );
        assert_eq!(k.address_of(b"/understudy/other/address/192.0.2.10"), None);
        assert_eq!(k.address_of(b"/understudy/plant/address/nonsense"), None);
        assert_eq!(k.address_of(b"/understudy/plant/operation"), None);
    }

    #[test]
    fn the_operation_value_names_operation_and_member() {
        let lock = OperationLock {
            operation: "op-7".into(),
            member: "main-1".into(),
        };
        assert_eq!(lock.value(), r#"{"operation":"op-7","member":"main-1"}"#);
        assert_eq!(OperationLock::holder_of(lock.value().as_bytes()), "op-7");
        assert_eq!(OperationLock::holder_of(b"by hand"), "by hand");
    }

    #[test]
    fn keep_alives_come_every_sixth_of_the_ttl_at_most_300ms_apart() {
        assert_eq!(
            keep_alive_interval(Duration::from_secs(2)),
            Duration::from_millis(300)
        );
        assert_eq!(
            keep_alive_interval(Duration::from_secs(1)),
            Duration::from_nanos(166_666_666)
        );
    }

    fn status(up: bool, since: Instant, until: Option<Instant>) -> QuorumStatus {
        QuorumStatus {
            backend: BACKEND,
            up,
            since,
            error: None,
            session_until: until,
            holders: BTreeMap::new(),
        }
    }

    #[test]
    fn a_session_past_its_validity_is_down_since_it_ran_out() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let live = status(true, t0, Some(t0 + 2 * s));
        assert_eq!(status_as_of(live.clone(), t0 + s), live);
        let late = status_as_of(live, t0 + 3 * s);
        assert!(!late.up);
        assert_eq!(late.since, t0 + 2 * s);
        assert!(late.error.as_deref().is_some_and(|e| e.contains("expired")));
        // Down stays down, since unchanged.
        let down = status(false, t0, Some(t0 + 2 * s));
        assert_eq!(status_as_of(down.clone(), t0 + 3 * s), down);
    }

    #[test]
    fn since_changes_only_when_up_changes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let mut s = status(false, t0, None);
        set_up(&mut s, false, Some("refused".into()), t1);
        assert_eq!((s.up, s.since), (false, t0));
        set_up(&mut s, true, None, t1);
        assert_eq!((s.up, s.since, s.error), (true, t1, None));
    }
}
