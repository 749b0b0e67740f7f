//! What handlers read from a request besides its route: the client's address (absent when the
//! router is driven without a socket, as the tests do) and a JSON body parsed whatever its
//! Content-Type says (operators send `curl -d`). Pure.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::error::ApiError;
use crate::tls::Remote;

/// The address of the client that sent the request, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl ClientAddr {
    /// Reads the address `serve` attached to the request's extensions.
    pub fn of(parts: &Parts) -> ClientAddr {
        let remote = parts
            .extensions
            .get::<ConnectInfo<Remote>>()
            .map(|c| c.0.addr);
        ClientAddr(remote.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        }))
    }

    /// Did the client present a certificate verified against the `[tls]` ca (mutual TLS)?
    pub fn verified_client(parts: &Parts) -> bool {
        parts
            .extensions
            .get::<ConnectInfo<Remote>>()
            .is_some_and(|c| c.0.verified_client)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(parts))
    }
}

/// Parses a JSON request body.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_json)
}
