//! The SNMP interface of a member's agent: GET/GETNEXT/GETBULK/SET over v1, v2c and v3 on
//! UNDERSTUDY-MIB and the SNMPv2-MIB `system` and `snmp` groups, read from the same published
//! snapshot as HTTP and metrics; SETs go through the one command path; notifications go to the
//! configured targets. Does I/O (sockets, the engine ID file). This file only declares the parts.
//!
//! The parts:
//! - [`config`]: the `[snmp]` section (pure); [`error`]: [`SnmpError`] (pure);
//! - [`mib`]: snapshot to OID table (pure); [`control`]: SET to operation (pure);
//! - [`wire`]: the first look at a datagram (pure); [`gate`]: the public socket and counters;
//! - [`engine`], [`responder`], [`notifier`]: the `async-snmp` wiring (the only files that use
//!   the crate): the local engine (ID file, boots, USM users, VACM); the command responder; the
//!   notification originator of one target;
//! - [`transitions`]: which notifications a snapshot change calls for (pure);
//!   [`notify`]: their delivery to every target, and the counting of outcomes;
//! - [`server`]: [`SnmpServer`], which puts the parts together.
//!
//! A request travels: public socket ([`gate`]) → responder on a loopback port ([`responder`]) →
//! [`mib`] table of the current snapshot, or for a SET [`control`] →
//! [`crate::agent::Agent::submit`].

pub mod config;
pub mod control;
pub mod engine;
pub mod error;
pub mod gate;
pub mod mib;
pub mod notifier;
pub mod notify;
pub mod responder;
pub mod server;
pub mod transitions;
pub mod wire;

pub use error::SnmpError;
pub use server::SnmpServer;
