//! The SNMP-to-Prometheus path a NOC uses: a demo group scraped through Debian's
//! snmp_exporter (`prometheus-snmp-exporter`) with the module `understudy` built by Debian's
//! generator (`prometheus-snmp-generator`) from `mibs/snmp_exporter/generator.yml`, both run
//! by the shell block of `mibs/README.md` as it is written there (only its settings `STD`,
//! `OUT` and the port are the test's).
//!
//! What it checks: a DateAndTime that was never set (rgNoRedundancySince while redundant,
//! rgMemberLastReplicationTime of the Main, the lease, quorum-source and fencing times of a
//! demo without them) comes out as 0, Prometheus's "never", not as -62169984000 (year 0);
//! no sample of the scrape is negative; and a time that is set (the Backup's last
//! replication) is the epoch second the agent's own `/metrics` gives.
//!
//! Does I/O: starts the demo (loopback, ephemeral ports), runs bash, the generator and the
//! exporter (loopback). A missing tool fails the test (`./scripts/test` installs them).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::snmp::{isolate, std_mibs, wait_replicated};
use support::{block_on, free_tcp_port, program, repo, try_get, wait_for, Demo, Proc};

const README: &str = "mibs/README.md";

/// The `sh` block of mibs/README.md that runs Debian's generator and exporter, with `STD`,
/// `OUT` and the exporter's port set by the test, and the exporter `exec`ed (so the process
/// the test holds is the exporter itself).
fn readme_block(std: &Path, out: &Path, port: u16) -> String {
    let readme = fs::read_to_string(repo().join(README))
        .unwrap_or_else(|e| panic!("cannot read {README}: {e}"));
    let block = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .find(|block| block.contains("prometheus-snmp-generator"))
        .unwrap_or_else(|| panic!("{README} has no sh block running prometheus-snmp-generator"));
    let mut script = String::from("set -eu\n");
    let mut settings = 0;
    let mut exporter = 0;
    for line in block.lines() {
        if line.starts_with("STD=") {
            script.push_str(&format!("STD='{}'\n", std.display()));
            settings += 1;
        } else if line.starts_with("OUT=") {
            script.push_str(&format!("OUT='{}'\n", out.display()));
            settings += 1;
        } else if line.starts_with("prometheus-snmp-exporter ") {
            let line = line.replace("127.0.0.1:9116", &format!("127.0.0.1:{port}"));
            script.push_str(&format!("exec {line}\n"));
            exporter += 1;
        } else {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert_eq!(
        settings, 2,
        "{README}: the block sets STD= and OUT=\n{block}"
    );
    assert_eq!(
        exporter, 1,
        "{README}: the block ends starting the exporter\n{block}"
    );
    script
}

/// The samples of a Prometheus text exposition: (name and labels, value).
fn samples(exposition: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {l}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|e| panic!("sample value of {l}: {e}"));
            (series.to_string(), value)
        })
        .collect()
}

/// The value of the one sample whose series is `name` with all of `labels` (`k="v"`).
fn value(samples: &[(String, f64)], name: &str, labels: &[&str]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(series, _)| {
            let bare = series.split('{').next() == Some(name);
            bare && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "wanted one sample {name}{labels:?}, found {found:?} in {samples:?}"
    );
    found[0]
}

/// backup-1's last replication time in the agent's own metrics (seconds, with ms).
fn agent_replication_time(http: &str) -> f64 {
    let metrics = block_on(try_get(&format!("{http}/metrics")))
        .map(|(_, body)| body)
        .unwrap_or_default();
    value(
        &samples(&metrics),
        "understudy_member_last_replication_timestamp_seconds",
        &["member=\"backup-1\""],
    )
}

#[test]
fn demo_through_debians_snmp_exporter_gives_sane_times() {
    program("prometheus-snmp-generator", "prometheus-snmp-exporter");
    program("prometheus-snmp-exporter", "prometheus-snmp-exporter");
    let demo = Demo::start(&[]);
    let backup = demo.member("backup-1").clone();
    wait_replicated(&backup.snmp, 2);

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let port = free_tcp_port();
    let script = readme_block(std_mibs(), &out, port);
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(&script).current_dir(repo());
    // No MIBS/MIBDIRS or snmp.conf of the machine or the user: only the block's MIBDIRS.
    isolate(&mut cmd, &dir.path().join("snmp-persistent"));
    let mut exporter = Proc::spawn_logged(
        "the README's generator and exporter",
        &mut cmd,
        dir.path().join("exporter.log"),
    );

    let target = &backup.snmp;
    let url = format!("http://127.0.0.1:{port}/snmp?module=understudy&target={target}");
    let mut before = 0.0;
    let scrape = wait_for(
        Duration::from_secs(60),
        "the exporter to scrape the demo",
        || {
            exporter.assert_running();
            before = agent_replication_time(&backup.http);
            match block_on(try_get(&url)) {
                Some((200, body)) if body.contains("rgGroupName") => Some(body),
                _ => None,
            }
        },
    );
    let after = agent_replication_time(&backup.http);
    let snmp_yml = out.join("snmp.yml");
    assert!(
        snmp_yml.is_file(),
        "the README block wrote no {}",
        snmp_yml.display()
    );

    let s = samples(&scrape);
    // Redundant, so no time for rgNoRedundancySince.
    assert_eq!(
        value(
            &s,
            "rgRedundancyStatus",
            &["rgRedundancyStatus=\"redundant\""]
        ),
        1.0,
        "{scrape}"
    );
    let never = [
        ("rgNoRedundancySince", vec![]),
        (
            "rgMemberLastReplicationTime",
            vec!["rgMemberName=\"main-1\""],
        ),
        ("rgMemberLeaseExpiry", vec!["rgMemberName=\"main-1\""]),
        ("rgMemberLeaseExpiry", vec!["rgMemberName=\"backup-1\""]),
        ("rgCoordinationSince", vec![]),
        ("rgCoordinationSessionExpiry", vec![]),
        ("rgFencingLastTime", vec![]),
    ];
    for (name, labels) in &never {
        assert_eq!(
            value(&s, name, labels),
            0.0,
            "{name}{labels:?}: a time never set must read 0\n{scrape}"
        );
    }
    // No sample at all below 0 (year 0 was -62169984000).
    let negative: Vec<&(String, f64)> = s.iter().filter(|(_, v)| *v < 0.0).collect();
    assert!(negative.is_empty(), "negative samples: {negative:?}");

    // A time that is set: the epoch second of the agent's own metric (DateAndTime carries
    // tenths of seconds; the exporter gives whole seconds). The Backup replicates
    // periodically, so it is the value the agent had before or after the scrape.
    let replicated = value(
        &s,
        "rgMemberLastReplicationTime",
        &["rgMemberName=\"backup-1\""],
    );
    assert!(
        replicated == before.floor() || replicated == after.floor(),
        "rgMemberLastReplicationTime of backup-1 through the exporter is {replicated}, the \
         agent's metric was {before} and then {after}"
    );
    assert!(replicated > 1.7e9, "{replicated} is not a recent Unix time");
}

#[test]
fn sample_parsing() {
    let s = samples("# HELP x y\n# TYPE x gauge\nx{a=\"1\",b=\"2\"} -6.2169984e+10\ny 3\n");
    assert_eq!(value(&s, "x", &["b=\"2\""]), -62_169_984_000.0);
    assert_eq!(value(&s, "y", &[]), 3.0);
}
