//! [`SnmpError`]: why the SNMP interface could not be set up (its socket, the engine ID file,
//! the engine, the responder or a notification target). Pure.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("cannot listen for SNMP on udp {addr}: {source}{}", crate::node::listen_hint(.addr, .source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SNMP engine ID file {path}: {message}")]
    EngineId { path: PathBuf, message: String },
    #[error("SNMP engine: {0}")]
    Engine(String),
    #[error("SNMP agent: {0}")]
    Agent(String),
}
