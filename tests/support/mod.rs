//! The integration tests' support code, one of each: the process guard ([`Proc`]), the demo
//! launcher ([`Demo`]: `understudy demo` on port 0, its printed member table read), the wait
//! helper ([`Deadline`], [`wait_for`], [`wait_for_async`]) and reqwest as the HTTP client
//! ([`get_json`], [`post`], [`http_get`] for sync tests). Beside them: groups of separate
//! `understudy run` agents on loopback ([`write_group`]), net-snmp's tools ([`snmp`]), real
//! etcd servers ([`etcd`]), the network-namespace plant ([`netns`]) and the fault campaign run
//! in it ([`campaign`]), the metric names a text uses ([`metric_names`]), hand-built snapshots
//! of leases, the quorum source and fencing ([`safety`]) and a
//! small BER encoder ([`ber`]). Does I/O.
#![allow(dead_code, unused_imports)]

pub mod ber;
pub mod campaign;
pub mod demo;
pub mod etcd;
pub mod group;
pub mod http;
pub mod metric_names;
pub mod netns;
pub mod process;
pub mod safety;
pub mod snmp;
pub mod tmpfs;
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use demo::{Demo, Member, TOKEN};
pub use group::*;
pub use http::*;
pub use process::*;
pub use wait::*;

/// The crate's root directory.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/test-output/<name>` (next to the integration tests' own tmp dir), created.
pub fn output_dir(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-output").join(name);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command and what came of it, for failure messages.
pub fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "command: {cmd:?}\nstatus: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}
