//! TLS with rustls (ring provider, no OpenSSL): the `[tls]` section's files read and checked
//! once at load time ([`Tls::load`]), the HTTPS listener that serves the API, `/metrics`, the
//! status page and the peer protocol ([`TlsListener`]), and the client configuration the peer
//! client presents to the other agents ([`Tls::peer_client_config`]).
//!
//! With a `ca`, TLS between agents is mutual: the listener asks every client for a
//! certificate and accepts only one that chains to `ca` (a client with a certificate from
//! another CA fails the handshake, which is logged with its address); a client without one
//! still gets the API, `/metrics` and the status page, and the peer routes refuse it
//! (`peer::server`). The peer client trusts `ca` alone and presents this agent's certificate.
//! Without a `ca`, peers are verified against the system roots and no client certificate is
//! asked for (the peer protocol is then protected by its HMAC signatures alone).
//!
//! Certificates are read at start only: a restart picks up new ones. Does file and network
//! I/O.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::secret::Secret;

/// How long a client has to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the HTTP server to take them.
const ACCEPT_QUEUE: usize = 64;

/// The `[tls]` section, as written (paths relative to the configuration file's directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// This agent's certificate chain (PEM, leaf first): served to every client, and
    /// presented to the other agents as client certificate.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1). A secret file.
    pub key: PathBuf,
    /// The CA (PEM, one or more certificates) that signs the agents' certificates: peers are
    /// verified against it alone, and TLS between agents is mutual. Absent: peers are
    /// verified against the system roots and no client certificate is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// A `[tls]` file that cannot be used: which key, which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("tls.{key} = {path}: {message}")]
pub struct TlsError {
    pub key: &'static str,
    pub path: PathBuf,
    pub message: String,
}

/// The `[tls]` section loaded: the listener's configuration and what the peer client needs.
#[derive(Clone)]
pub struct Tls {
    server: Arc<ServerConfig>,
    /// The peer client's: the `ca` (or the system roots) as roots, this agent's certificate
    /// as client certificate.
    client: Arc<ClientConfig>,
    /// Is a `ca` set (mutual TLS)?
    mutual: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("key", &"<secret>")
            .field("mutual", &self.mutual)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the TLS private key `path`: the one place the key file is read. `read_secret` is the
/// configuration's reader of secret files (with their checks): the key's PEM text is a secret
/// like the others.
pub fn read_key<E>(
    path: &Path,
    read_secret: impl FnOnce(&Path) -> Result<Secret, E>,
) -> Result<PrivateKeyDer<'static>, TlsError>
where
    E: fmt::Display,
{
    let err = |message: String| TlsError {
        key: "key",
        path: path.to_path_buf(),
        message,
    };
    let pem = read_secret(path).map_err(|e| err(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(pem.expose().as_bytes())
        .map_err(|e| err(format!("no private key in the file (PEM expected): {e}")))
}

/// Reads the certificates of the PEM file `path` (at least one).
fn read_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |message: String| TlsError {
        key,
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file (PEM expected)".into()));
    }
    Ok(certs)
}

impl Tls {
    /// Reads and checks the files `cfg` names (relative to `base`), the key through
    /// `read_secret`, and builds the listener's configuration: every problem names the key
    /// and the file.
    pub fn load<E: fmt::Display>(
        cfg: &TlsConfig,
        base: &Path,
        read_secret: impl FnOnce(&Path) -> Result<Secret, E>,
    ) -> Result<Tls, TlsError> {
        let cert_path = base.join(&cfg.cert);
        let key_path = base.join(&cfg.key);
        let chain = read_certs("cert", &cert_path)?;
        let key = read_key(&key_path, read_secret)?;
        let ca = match &cfg.ca {
            None => None,
            Some(p) => Some(read_roots("ca", &base.join(p))?),
        };
        let cert_err = |message: String| TlsError {
            key: "cert",
            path: cert_path.clone(),
            message,
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| cert_err(e.to_string()))?;
        let builder = match &ca {
            Some(roots) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.clone(),
                    provider(),
                )
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError {
                    key: "ca",
                    path: cfg.ca.as_ref().map(|p| base.join(p)).unwrap_or_default(),
                    message: format!("cannot verify clients with it: {e}"),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| {
                cert_err(format!(
                    "does not go with the key tls.key = {}: {e}",
                    key_path.display()
                ))
            })?;
        let roots = match &ca {
            Some(r) => r.clone(),
            None => Arc::new(system_roots()),
        };
        let client = client_builder(roots)
            .and_then(|b| b.with_client_auth_cert(chain, key))
            .map_err(|e| cert_err(format!("cannot be presented to the peers: {e}")))?;
        Ok(Tls {
            server: Arc::new(server),
            client: Arc::new(client),
            mutual: ca.is_some(),
        })
    }

    /// Is TLS between agents mutual (a `ca` is configured)?
    pub fn mutual(&self) -> bool {
        self.mutual
    }

    /// The listener's rustls configuration.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The peer client's rustls configuration: with a `ca`, that CA alone as root; without,
    /// the system roots; this agent's certificate presented as client certificate.
    pub fn peer_client_config(&self) -> ClientConfig {
        (*self.client).clone()
    }
}

/// A rustls client configuration (ring, the safe protocol versions) trusting `roots`.
fn client_builder(
    roots: Arc<RootCertStore>,
) -> Result<rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>, rustls::Error> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots))
}

/// The CA certificates of the PEM file `path` as a root store.
fn read_roots(key: &'static str, path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(key, path)? {
        roots.add(c).map_err(|e| TlsError {
            key,
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// The system's CA certificates (those that can be read; SSL_CERT_FILE and SSL_CERT_DIR are
/// honoured, as by OpenSSL).
fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        warn!(error = %e, "cannot read some of the system's CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    debug!(added, ignored, "system CA certificates");
    roots
}

/// The client configuration of the CLI given `--ca FILE`: that CA alone as root, no client
/// certificate. The error names the file.
pub fn cli_client_config(ca: &Path) -> Result<ClientConfig, TlsError> {
    let b = client_builder(read_roots("ca", ca)?).map_err(|e| TlsError {
        key: "ca",
        path: ca.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(b.with_no_client_auth())
}

/// Who is at the other end of a connection: its address, and whether it presented a client
/// certificate that the listener verified against the `ca` (mutual TLS). The connection
/// information of both listeners, plain and TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub addr: SocketAddr,
    pub verified_client: bool,
}

impl Connected<IncomingStream<'_, TcpListener>> for Remote {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Remote {
            addr: *stream.remote_addr(),
            verified_client: false,
        }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Remote {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        *stream.remote_addr()
    }
}

/// Aborts the task it holds when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A TCP listener whose connections are handed on once their TLS handshake is done. Each
/// handshake runs in a task of its own (a slow or silent client holds up no other), for at
/// most [`HANDSHAKE_TIMEOUT`]; a refused handshake (a certificate from another CA, no TLS at
/// all) is logged with the client's address.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, Remote)>,
    _acceptor: AbortOnDrop,
}

impl TlsListener {
    /// Serves TLS with `tls` on `tcp`; `member` names the agent in the log.
    pub fn new(tcp: TcpListener, tls: &Tls, member: String) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(tls.server_config());
        let (tx, ready) = mpsc::channel(ACCEPT_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum's listener does.
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // The handshake and the answers are small writes the peer waits for: without
                // TCP_NODELAY, Nagle's algorithm and the client's delayed ACK held some of them
                // ~40 ms (bench/tls-overhead's p99). axum's plain listener answers in one write.
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let member = member.clone();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) => {
                            let verified_client = tls.get_ref().1.peer_certificates().is_some();
                            let remote = Remote {
                                addr,
                                verified_client,
                            };
                            let _ = tx.send((tls, remote)).await;
                        }
                        Ok(Err(e)) => log_refused(&member, addr, &e),
                        Err(_) => {
                            debug!(member = %member, client = %addr, "TLS handshake timed out")
                        }
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            ready,
            _acceptor: AbortOnDrop(task),
        })
    }
}

/// A handshake that failed over TLS itself (a certificate refused, no common version, not TLS
/// at all) is a warning; a client that merely went away is not.
fn log_refused(member: &str, addr: SocketAddr, e: &std::io::Error) {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(why)) => {
            warn!(member = %member, client = %addr, reason = ?why,
                "TLS client certificate refused");
        }
        Some(other) => {
            warn!(member = %member, client = %addr, error = %other, "TLS handshake refused")
        }
        None => debug!(member = %member, client = %addr, error = %e, "TLS handshake failed"),
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Remote;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The acceptor task ends only when aborted, with this listener: never reached
            // while the listener lives; wait for the server's shutdown instead.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Remote {
            addr: self.local,
            verified_client: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_the_key_and_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = TlsConfig {
            cert: "agent.pem".into(),
            key: "agent-key.pem".into(),
            ca: None,
        };
        let e = Tls::load(&cfg, dir.path(), |_| Ok::<_, String>(Secret::new("x")))
            .expect_err("no files");
        assert_eq!(e.key, "cert");
        assert!(e.to_string().starts_with("tls.cert = "), "{e}");
        assert!(e.to_string().contains("agent.pem: cannot read"), "{e}");
        std::fs::write(dir.path().join("agent.pem"), "not a certificate\n").expect("write");
        let e = Tls::load(&cfg, dir.path(), |_| Ok::<_, String>(Secret::new("x")))
            .expect_err("no certificate");
        assert!(e.to_string().contains("no certificate in the file"), "{e}");
    }
}
