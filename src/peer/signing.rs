//! Authentication of the peer protocol: every request between the agents of a group is signed
//! with HMAC-SHA256 keyed by the group secret, over the method, the path, a timestamp, a
//! per-sender nonce and the body. The secret itself never travels. A receiver refuses a
//! missing or wrong MAC, a timestamp outside the replay window and a nonce it has already
//! seen inside that window. Pure except for [`Signer`]'s clock read and [`ReplayGuard`]'s
//! memory; no I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// Header carrying the signer's clock in milliseconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "x-understudy-timestamp";
/// Header carrying a value the signer never repeats (sender name, boot time and a counter).
pub const NONCE_HEADER: &str = "x-understudy-nonce";
/// Header carrying `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-understudy-signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("unsigned request (no {0} header)")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("timestamp {skew_ms} ms away from this agent's clock (window {window_ms} ms): stale, replayed, or clocks out of step")]
    Stale { skew_ms: i128, window_ms: u128 },
    #[error("nonce already seen: replayed request")]
    Replayed,
    #[error("wrong signature: the sender does not hold this group's secret")]
    BadMac,
}

/// The bytes that are signed. The body is hashed first so the signed string stays small.
fn signing_input(method: &str, path: &str, timestamp: u64, nonce: &str, body: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let body_hash = hex::encode(Sha256::digest(body));
    format!(
        "understudy-peer-v1\n{}\n{path}\n{timestamp}\n{nonce}\n{body_hash}",
        method.to_ascii_uppercase()
    )
    .into_bytes()
}

fn mac(secret: &Secret) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
}

/// The signature of one request, as sent in [`SIGNATURE_HEADER`].
pub fn sign(
    secret: &Secret,
    method: &str,
    path: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut m = mac(secret);
    m.update(&signing_input(method, path, timestamp, nonce, body));
    format!("v1={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks the MAC in constant time and the timestamp against `now_ms`; returns the timestamp
/// and nonce presented. Pure.
pub fn verify(
    secret: &Secret,
    method: &str,
    path: &str,
    presented: Presented<'_>,
    body: &[u8],
    now_ms: u64,
    window: Duration,
) -> Result<(u64, String), AuthError> {
    let timestamp = presented
        .timestamp
        .ok_or(AuthError::Missing(TIMESTAMP_HEADER))?;
    let nonce = presented.nonce.ok_or(AuthError::Missing(NONCE_HEADER))?;
    let signature = presented
        .signature
        .ok_or(AuthError::Missing(SIGNATURE_HEADER))?;
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| AuthError::Malformed(TIMESTAMP_HEADER))?;
    if nonce.is_empty() || nonce.len() > 200 {
        return Err(AuthError::Malformed(NONCE_HEADER));
    }
    let presented = signature
        .strip_prefix("v1=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(AuthError::Malformed(SIGNATURE_HEADER))?;
    let mut m = mac(secret);
    m.update(&signing_input(method, path, ts, nonce, body));
    m.verify_slice(&presented).map_err(|_| AuthError::BadMac)?;
    let skew = i128::from(now_ms) - i128::from(ts);
    if skew.unsigned_abs() > window.as_millis() {
        return Err(AuthError::Stale {
            skew_ms: skew,
            window_ms: window.as_millis(),
        });
    }
    Ok((ts, nonce.to_string()))
}

/// Signs outgoing requests: one per agent.
#[derive(Debug)]
pub struct Signer {
    secret: Secret,
    prefix: String,
    counter: AtomicU64,
}

/// The headers of one signed request.
#[derive(Debug, Clone)]
pub struct SignedHeaders {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

impl Signer {
    pub fn new(secret: Secret, sender: &str) -> Signer {
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Signer {
            secret,
            prefix: format!("{sender}-{boot:x}-{:x}", std::process::id()),
            counter: AtomicU64::new(0),
        }
    }

    /// Signs a request now.
    pub fn sign(&self, method: &str, path: &str, body: &[u8]) -> SignedHeaders {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let nonce = format!("{}-{n:x}", self.prefix);
        SignedHeaders {
            signature: sign(&self.secret, method, path, ts, &nonce, body),
            timestamp: ts.to_string(),
            nonce,
        }
    }
}

/// Remembers the nonces accepted inside the replay window, so a captured request cannot be
/// sent again while its timestamp is still fresh.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<String, u64>>,
}

impl ReplayGuard {
    /// Records `nonce` (signed at `ts`); `Err(Replayed)` when it was already accepted.
    pub fn check(
        &self,
        nonce: &str,
        ts: u64,
        now_ms: u64,
        window: Duration,
    ) -> Result<(), AuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let window_ms = window.as_millis() as u64;
        if seen.len() > 4096 {
            seen.retain(|_, t| t.saturating_add(window_ms) >= now_ms);
        }
        if seen.contains_key(nonce) {
            return Err(AuthError::Replayed);
        }
        seen.insert(nonce.to_string(), ts);
        Ok(())
    }
}

/// The authentication headers of a peer request, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Presented<'a> {
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks the requests one agent receives: the MAC (made with the group secret), the
/// timestamp against the replay window, and that the nonce was not accepted before.
#[derive(Debug)]
pub struct Verifier {
    secret: Secret,
    window: Duration,
    replay: ReplayGuard,
}

impl Verifier {
    pub fn new(secret: Secret, window: Duration) -> Verifier {
        Verifier {
            secret,
            window,
            replay: ReplayGuard::default(),
        }
    }

    /// Checks one request received at `now_ms`.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        presented: Presented<'_>,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let (ts, nonce) = verify(
            &self.secret,
            method,
            path,
            presented,
            body,
            now_ms,
            self.window,
        )?;
        self.replay.check(&nonce, ts, now_ms, self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(30);

    fn secret() -> Secret {
        Secret::new("group-secret")
    }

    /// The headers of a request, each present.
    fn headers<'a>(timestamp: &'a str, nonce: &'a str, signature: &'a str) -> Presented<'a> {
        Presented {
            timestamp: Some(timestamp),
            nonce: Some(nonce),
            signature: Some(signature),
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let s = sign(&secret(), "POST", "/peer/v1/heartbeat", 1000, "n1", b"{}");
        let hb = "/peer/v1/heartbeat";
        let ok = verify(
            &secret(),
            "POST",
            hb,
            headers("1000", "n1", &s),
            b"{}",
            1500,
            W,
        );
        assert_eq!(ok, Ok((1000, "n1".to_string())));
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [u8], &'a str);
        let cases: &[Case] = &[
            ("GET", hb, "1000", "n1", b"{}", "method"),
            ("POST", "/peer/v1/apply", "1000", "n1", b"{}", "path"),
            ("POST", hb, "1001", "n1", b"{}", "timestamp"),
            ("POST", hb, "1000", "n2", b"{}", "nonce"),
            ("POST", hb, "1000", "n1", b"{ }", "body"),
        ];
        for (m, p, t, n, b, what) in cases {
            let r = verify(&secret(), m, p, headers(t, n, &s), b, 1500, W);
            assert_eq!(r, Err(AuthError::BadMac), "changed {what}");
        }
        let other = Secret::new("another-secret");
        let r = verify(
            &other,
            "POST",
            hb,
            headers("1000", "n1", &s),
            b"{}",
            1500,
            W,
        );
        assert_eq!(r, Err(AuthError::BadMac));
    }

    #[test]
    fn stale_missing_and_malformed_are_refused() {
        let s = sign(&secret(), "POST", "/p", 1_000, "n", b"");
        let at = |now: u64, window: Duration| {
            verify(
                &secret(),
                "POST",
                "/p",
                headers("1000", "n", &s),
                b"",
                now,
                window,
            )
        };
        assert!(at(31_000, W).is_ok());
        assert!(matches!(at(31_001, W), Err(AuthError::Stale { .. })));
        assert!(matches!(
            at(0, Duration::from_millis(500)),
            Err(AuthError::Stale { .. })
        ));
        let v = |timestamp: Option<&str>, nonce: Option<&str>, signature: Option<&str>| {
            let presented = Presented {
                timestamp,
                nonce,
                signature,
            };
            verify(&secret(), "POST", "/p", presented, b"", 1000, W)
        };
        assert_eq!(
            v(None, Some("n"), Some(&s)),
            Err(AuthError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v(Some("1000"), Some("n"), None),
            Err(AuthError::Missing(SIGNATURE_HEADER))
        );
        assert_eq!(
            v(Some("x"), Some("n"), Some(&s)),
            Err(AuthError::Malformed(TIMESTAMP_HEADER))
        );
        assert_eq!(
            v(Some("1000"), Some("n"), Some("v1=zz")),
            Err(AuthError::Malformed(SIGNATURE_HEADER))
        );
        assert_eq!(
            v(Some("1000"), Some("n"), Some("group-secret")),
            Err(AuthError::Malformed(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn a_nonce_is_accepted_once() {
        let g = ReplayGuard::default();
        assert_eq!(g.check("a", 1, 1, W), Ok(()));
        assert_eq!(g.check("b", 1, 1, W), Ok(()));
        assert_eq!(g.check("a", 1, 2, W), Err(AuthError::Replayed));
    }

    #[test]
    fn the_signer_never_repeats_a_nonce() {
        let s = Signer::new(secret(), "m");
        let a = s.sign("POST", "/p", b"x");
        let b = s.sign("POST", "/p", b"x");
        assert_ne!(a.nonce, b.nonce);
        let ts = a.timestamp.parse::<u64>().expect("number");
        let presented = headers(&a.timestamp, &a.nonce, &a.signature);
        assert!(verify(&secret(), "post", "/p", presented, b"x", ts, W).is_ok());
    }
}
