//! understudy: the redundancy agent for groups of application servers.
//!
//! The parts, from the pure core outwards (see ARCHITECTURE.md):
//! - [`group`]: the redundancy group state machine (pure);
//! - [`config`], [`store`]: configuration and durable state;
//! - [`agent`]: one member's agent at run time, the one command path;
//! - [`peer`], [`replication`], [`address`], [`device_check`], [`fence`]: what the agent does to
//!   the world;
//! - [`http`], [`metrics`], [`snmp`], [`status_page`], [`cli`]: the interfaces;
//! - [`demo`]: a whole group in one process;
//! - [`sd_notify`]: the service manager's notification protocol (`understudy run` under systemd).
#![forbid(unsafe_code)]

pub mod address;
pub mod agent;
pub mod cli;
pub mod command;
pub mod config;
pub mod coordination;
pub mod demo;
pub mod device_check;
pub mod fence;
pub mod group;
pub mod http;
pub mod metrics;
pub mod node;
pub mod peer;
pub mod replication;
pub mod sd_notify;
pub mod secret;
pub mod snapshot;
pub mod snmp;
pub mod status_page;
pub mod store;
pub mod tls;
