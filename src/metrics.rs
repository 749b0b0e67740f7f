//! Prometheus exposition of one snapshot: every member row as this agent sees it, with the
//! metric names of the product contract. Pure (renders text from a snapshot).

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::group::{OpKind, OperState, ReplicationResult, Role};
use crate::snapshot::{FenceOutcome, Snapshot, VERSION};

/// Every metric family the agent exports (alert rules and dashboards may use only these).
pub const METRIC_NAMES: &[&str] = &[
    "understudy_build_info",
    "understudy_member_info",
    "understudy_member_state",
    "understudy_member_current_address_info",
    "understudy_member_auto_failover_enabled",
    "understudy_member_takeover_flag",
    "understudy_member_last_replication_timestamp_seconds",
    "understudy_member_last_replication_success",
    "understudy_member_replicated_timestamp_seconds",
    "understudy_group_redundant",
    "understudy_no_redundancy_since_timestamp_seconds",
    "understudy_takeovers_total",
    "understudy_peer_up",
    "understudy_replication_failures_total",
    "understudy_snmp_notifications_total",
    "understudy_state_writable",
    "understudy_member_address_lease_expiry_timestamp_seconds",
    "understudy_coordination_up",
    "understudy_coordination_changed_timestamp_seconds",
    "understudy_coordination_session_expiry_timestamp_seconds",
    "understudy_fencing_total",
    "understudy_fencing_last_timestamp_seconds",
    "understudy_fencing_last_duration_seconds",
    "understudy_group_maintenance",
    "understudy_group_maintenance_since_timestamp_seconds",
    "understudy_group_maintenance_alert_after_seconds",
    "understudy_member_state_changed_timestamp_seconds",
];

/// The metric families that are absent unless something is configured or has happened: the
/// alarm's raise time, the lease and quorum-source and fence-command families (a deployment
/// without leases, `[coordination]` or `[fencing]` exports none of them), and a member's last
/// state change (absent for a member whose state never changed).
pub const CONDITIONAL_METRIC_NAMES: &[&str] = &[
    "understudy_no_redundancy_since_timestamp_seconds",
    "understudy_member_address_lease_expiry_timestamp_seconds",
    "understudy_coordination_up",
    "understudy_coordination_changed_timestamp_seconds",
    "understudy_coordination_session_expiry_timestamp_seconds",
    "understudy_fencing_total",
    "understudy_fencing_last_timestamp_seconds",
    "understudy_fencing_last_duration_seconds",
    "understudy_group_maintenance_since_timestamp_seconds",
    "understudy_member_state_changed_timestamp_seconds",
];

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    reg.register(Box::new(g.clone()))
        .expect("each metric is registered once");
    g
}

/// A wall-clock time in milliseconds as Prometheus seconds.
fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The quorum source's families: present only with a `[coordination]` section.
fn coordination(reg: &Registry, snap: &Snapshot) {
    let Some(c) = &snap.coordination else {
        return;
    };
    let g = snap.group.as_str();
    let labels = [g, c.backend];
    gauge(
        reg,
        "understudy_coordination_up",
        "1 while this agent reaches its quorum source (its session there is renewed); 0 while \
         it does not: failover is suspended (present only with a quorum source configured).",
        &["group", "backend"],
    )
    .with_label_values(&labels)
    .set(f64::from(u8::from(c.up)));
    gauge(
        reg,
        "understudy_coordination_changed_timestamp_seconds",
        "When this agent's quorum source last went up or down.",
        &["group", "backend"],
    )
    .with_label_values(&labels)
    .set(seconds(c.since));
    let session = gauge(
        reg,
        "understudy_coordination_session_expiry_timestamp_seconds",
        "Until when this agent's session at its quorum source (the etcd lease behind the \
         addresses it holds) is known to be valid (present while it has one).",
        &["group", "backend"],
    );
    if let Some(until) = c.session_until {
        session.with_label_values(&labels).set(seconds(until));
    }
}

/// The fence command's families: present only with a `[fencing]` section.
fn fencing(reg: &Registry, snap: &Snapshot) {
    let Some(f) = &snap.fencing else {
        return;
    };
    let g = snap.group.as_str();
    let runs = IntCounterVec::new(
        Opts::new(
            "understudy_fencing_total",
            "Runs of the fence command by this agent since it started, by outcome (success, \
             failed, timeout); a failover waits for a run that succeeds.",
        ),
        &["group", "outcome"],
    )
    .expect("static metric definition");
    reg.register(Box::new(runs.clone()))
        .expect("registered once");
    for outcome in FenceOutcome::ALL {
        runs.with_label_values(&[g, outcome.as_str()])
            .inc_by(f.runs.get(&outcome).copied().unwrap_or(0));
    }
    let last_at = gauge(
        reg,
        "understudy_fencing_last_timestamp_seconds",
        "When the last fence command run by this agent ended, with the Main it fenced and its \
         outcome (present once a run ended).",
        &["group", "target", "outcome"],
    );
    let last_duration = gauge(
        reg,
        "understudy_fencing_last_duration_seconds",
        "How long the last fence command run by this agent took (present once a run ended).",
        &["group", "target", "outcome"],
    );
    if let Some(run) = &f.last {
        let labels = [g, run.target.as_str(), run.outcome.as_str()];
        last_at.with_label_values(&labels).set(seconds(run.at));
        last_duration
            .with_label_values(&labels)
            .set(run.duration_ms as f64 / 1000.0);
    }
}

/// Renders the snapshot in the Prometheus text format.
/// The group's maintenance mode: on or off, since when while on, and the configured time it
/// may last before `UnderstudyMaintenanceModeTooLong` fires.
fn maintenance(reg: &Registry, snap: &Snapshot) {
    let g = snap.group.as_str();
    let m = &snap.maintenance;
    gauge(
        reg,
        "understudy_group_maintenance",
        "1 while the group is in maintenance mode: no automatic failover anywhere in the group \
         (manual operations still work).",
        &["group"],
    )
    .with_label_values(&[g])
    .set(f64::from(u8::from(m.enabled)));
    if let (true, Some(since)) = (m.enabled, m.since) {
        gauge(
            reg,
            "understudy_group_maintenance_since_timestamp_seconds",
            "When maintenance mode was switched on; present while it is on.",
            &["group"],
        )
        .with_label_values(&[g])
        .set(seconds(since));
    }
    gauge(
        reg,
        "understudy_group_maintenance_alert_after_seconds",
        "[maintenance] alert_after: how long maintenance mode may last before \
         UnderstudyMaintenanceModeTooLong fires.",
        &["group"],
    )
    .with_label_values(&[g])
    .set(seconds(snap.maintenance_alert_after));
}

pub fn render(snap: &Snapshot) -> String {
    let reg = Registry::new();
    let g = snap.group.as_str();
    gauge(
        &reg,
        "understudy_build_info",
        "Build of the understudy agent answering this scrape.",
        &["version"],
    )
    .with_label_values(&[VERSION])
    .set(1.0);
    let info = gauge(
        &reg,
        "understudy_member_info",
        "Configured role and addresses of each member of the redundancy group.",
        &[
            "group",
            "member",
            "configured_role",
            "configured_address",
            "extra_address",
        ],
    );
    let state = gauge(
        &reg,
        "understudy_member_state",
        "Operational state of each member as this agent sees it (1 for the current state).",
        &["group", "member", "state"],
    );
    let addr = gauge(
        &reg,
        "understudy_member_current_address_info",
        "The address each member holds now (moves on takeover).",
        &["group", "member", "address"],
    );
    let auto = gauge(
        &reg,
        "understudy_member_auto_failover_enabled",
        "1 when a Backup may take this member over automatically.",
        &["group", "member"],
    );
    let flag = gauge(
        &reg,
        "understudy_member_takeover_flag",
        "1 while the member is part of a takeover or failover that is not restored (the yellow row).",
        &["group", "member"],
    );
    let rep_ts = gauge(
        &reg,
        "understudy_member_last_replication_timestamp_seconds",
        "Time of the member's last replication attempt of a Main's data.",
        &["group", "member"],
    );
    let rep_ok = gauge(
        &reg,
        "understudy_member_last_replication_success",
        "1 when the member's last replication attempt succeeded.",
        &["group", "member"],
    );
    let replicated = gauge(
        &reg,
        "understudy_member_replicated_timestamp_seconds",
        "Per Main: time of the member's last successful replication of that Main's data \
         (absent until one succeeded: a takeover of that Main by it is refused, never_replicated).",
        &["group", "member", "main"],
    );
    let peer = gauge(
        &reg,
        "understudy_peer_up",
        "1 when this agent exchanged heartbeats with the member on the path recently.",
        &["group", "member", "path"],
    );
    let lease = gauge(
        &reg,
        "understudy_member_address_lease_expiry_timestamp_seconds",
        "When the lease under which the member holds its current address runs out unless it is \
         renewed (present only while it holds one; the kernel or the agent removes the address \
         when it runs out).",
        &["group", "member"],
    );
    let changed = gauge(
        &reg,
        "understudy_member_state_changed_timestamp_seconds",
        "When the member's operational state last changed (the time of the operation that \
         changed it; absent while it never changed).",
        &["group", "member"],
    );
    for m in &snap.members {
        let r = &m.record;
        if let Some(at) = r.state_changed {
            changed.with_label_values(&[g, &r.name]).set(seconds(at));
        }
        if let Some(l) = &m.lease {
            lease.with_label_values(&[g, &r.name]).set(seconds(l.until));
        }
        let name = r.name.as_str();
        info.with_label_values(&[
            g,
            name,
            match r.role {
                Role::Main => "main",
                Role::Backup => "backup",
            },
            &r.configured_address.to_string(),
            &r.extra_address.to_string(),
        ])
        .set(1.0);
        for s in OperState::ALL {
            state
                .with_label_values(&[g, name, s.as_str()])
                .set(if m.state == s { 1.0 } else { 0.0 });
        }
        if let Some(a) = r.current_address {
            addr.with_label_values(&[g, name, &a.to_string()]).set(1.0);
        }
        auto.with_label_values(&[g, name])
            .set(f64::from(u8::from(r.auto_failover)));
        flag.with_label_values(&[g, name])
            .set(f64::from(u8::from(r.takeover.is_some())));
        if let Some(rep) = &r.replication {
            rep_ts
                .with_label_values(&[g, name])
                .set(rep.at as f64 / 1000.0);
            rep_ok.with_label_values(&[g, name]).set(f64::from(u8::from(
                rep.result == ReplicationResult::Success,
            )));
            for (main, at) in &rep.last_success {
                replicated
                    .with_label_values(&[g, name, main])
                    .set(*at as f64 / 1000.0);
            }
        }
        if !snap.is_local(m) {
            for (path, up) in &m.paths {
                peer.with_label_values(&[g, name, path])
                    .set(f64::from(u8::from(*up)));
            }
        }
    }
    gauge(
        &reg,
        "understudy_group_redundant",
        "1 when the group is redundant; 0 while the no-redundancy alarm is raised.",
        &["group"],
    )
    .with_label_values(&[g])
    .set(f64::from(u8::from(snap.redundancy.redundant())));
    let since = gauge(
        &reg,
        "understudy_no_redundancy_since_timestamp_seconds",
        "When the no-redundancy alarm was raised (present only while it is raised).",
        &["group"],
    );
    if let (false, Some(t)) = (snap.redundancy.redundant(), snap.redundancy.since()) {
        since.with_label_values(&[g]).set(t as f64 / 1000.0);
    }
    let takeovers = IntCounterVec::new(
        Opts::new(
            "understudy_takeovers_total",
            "Operations seen in the group, by kind.",
        ),
        &["group", "kind"],
    )
    .expect("static metric definition");
    reg.register(Box::new(takeovers.clone()))
        .expect("registered once");
    for kind in OpKind::COUNTED {
        takeovers
            .with_label_values(&[g, kind.as_str()])
            .inc_by(snap.takeovers.get(&kind).copied().unwrap_or(0));
    }
    let failures = IntCounterVec::new(
        Opts::new(
            "understudy_replication_failures_total",
            "Failed replication attempts by this agent since it started.",
        ),
        &["group"],
    )
    .expect("static metric definition");
    reg.register(Box::new(failures.clone()))
        .expect("registered once");
    failures
        .with_label_values(&[g])
        .inc_by(snap.replication_failures);
    if let Some(counts) = &snap.notifications {
        let notes = IntCounterVec::new(
            Opts::new(
                "understudy_snmp_notifications_total",
                "SNMP notifications sent by this agent, by delivery (trap, inform) and outcome \
                 (sent, acknowledged, given_up, failed, dropped); present when SNMP is enabled.",
            ),
            &["group", "type", "outcome"],
        )
        .expect("static metric definition");
        reg.register(Box::new(notes.clone()))
            .expect("registered once");
        for ((kind, outcome), n) in counts {
            notes.with_label_values(&[g, kind, outcome]).inc_by(*n);
        }
    }
    gauge(
        &reg,
        "understudy_state_writable",
        "1 while this agent can write its state; 0 when its last write failed (full or \
         read-only disk): it then takes part in no operation until a write succeeds.",
        &["group"],
    )
    .with_label_values(&[g])
    .set(f64::from(u8::from(snap.state_error.is_none())));
    coordination(&reg, snap);
    fencing(&reg, snap);
    maintenance(&reg, snap);
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&reg.gather(), &mut out)
        .expect("text encoding into a Vec cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::snapshot::{CoordinationView, FenceRun, FencingView, LeaseView};
    use crate::snmp::mib::tests::snapshot;

    /// The lines of `text` that start with `name{` or `name ` (its samples).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            .collect()
    }

    #[test]
    fn maintenance_mode_is_exported_with_its_start_and_the_alert_threshold() {
        let mut snap = snapshot();
        let text = render(&snap);
        assert_eq!(
            samples(&text, "understudy_group_maintenance"),
            [format!(
                "understudy_group_maintenance{{group=\"{}\"}} 0",
                snap.group
            )]
        );
        assert!(samples(
            &text,
            "understudy_group_maintenance_since_timestamp_seconds"
        )
        .is_empty());
        assert_eq!(
            samples(&text, "understudy_group_maintenance_alert_after_seconds"),
            [format!(
                "understudy_group_maintenance_alert_after_seconds{{group=\"{}\"}} 14400",
                snap.group
            )]
        );
        let by = crate::group::Requester {
            interface: "cli".into(),
            identity: "ops".into(),
        };
        snap.maintenance = snap
            .maintenance
            .set(true, &by, None, 1_700_000_000_500, "main-1");
        let text = render(&snap);
        assert_eq!(
            samples(&text, "understudy_group_maintenance"),
            [format!(
                "understudy_group_maintenance{{group=\"{}\"}} 1",
                snap.group
            )]
        );
        assert_eq!(
            samples(
                &text,
                "understudy_group_maintenance_since_timestamp_seconds"
            ),
            [format!(
                "understudy_group_maintenance_since_timestamp_seconds{{group=\"{}\"}} \
                 1700000000.5",
                snap.group
            )]
        );
    }

    #[test]
    fn without_leases_quorum_source_or_fencing_their_families_are_absent() {
        let text = render(&snapshot());
        for name in CONDITIONAL_METRIC_NAMES {
            assert!(
                !text.contains(&format!("# TYPE {name} ")),
                "{name} present:\n{text}"
            );
        }
        for name in METRIC_NAMES {
            if !CONDITIONAL_METRIC_NAMES.contains(name)
                && *name != "understudy_member_last_replication_timestamp_seconds"
                && *name != "understudy_member_last_replication_success"
                && *name != "understudy_member_replicated_timestamp_seconds"
                && *name != "understudy_snmp_notifications_total"
                && *name != "understudy_member_current_address_info"
                && *name != "understudy_peer_up"
            {
                assert!(text.contains(&format!("# TYPE {name} ")), "{name} absent");
            }
        }
    }

    #[test]
    fn a_state_change_time_is_exported_per_member_and_absent_while_never() {
        let mut s = snapshot();
        let name = "understudy_member_state_changed_timestamp_seconds";
        assert!(samples(&render(&s), name).is_empty());
        s.members[0].record.state_changed = Some(1_700_000_040_250);
        let text = render(&s);
        assert_eq!(
            samples(&text, name),
            [format!(
                "{name}{{group=\"demo\",member=\"main-1\"}} 1700000040.25"
            )]
        );
    }

    #[test]
    fn a_lease_the_quorum_source_and_fence_runs_are_exported() {
        let mut s = snapshot();
        s.members[0].lease = Some(LeaseView {
            until: 1_700_000_030_500,
            enforced_by: "kernel",
        });
        s.coordination = Some(CoordinationView {
            backend: "etcd",
            up: false,
            since: 1_700_000_010_000,
            error: Some("connection refused".into()),
            session_until: Some(1_700_000_012_000),
            holders: BTreeMap::new(),
        });
        s.fencing = Some(FencingView {
            runs: BTreeMap::from([(FenceOutcome::Success, 2), (FenceOutcome::Timeout, 1)]),
            last: Some(FenceRun {
                target: "main-1".into(),
                outcome: FenceOutcome::Timeout,
                at: 1_700_000_020_000,
                duration_ms: 5_000,
                detail: "timed out after 5s".into(),
            }),
        });
        let text = render(&s);
        let table: [(&str, &[&str]); 7] = [
            (
                "understudy_member_address_lease_expiry_timestamp_seconds",
                &["understudy_member_address_lease_expiry_timestamp_seconds{group=\"demo\",member=\"main-1\"} 1700000030.5"],
            ),
            (
                "understudy_coordination_up",
                &["understudy_coordination_up{backend=\"etcd\",group=\"demo\"} 0"],
            ),
            (
                "understudy_coordination_changed_timestamp_seconds",
                &["understudy_coordination_changed_timestamp_seconds{backend=\"etcd\",group=\"demo\"} 1700000010"],
            ),
            (
                "understudy_coordination_session_expiry_timestamp_seconds",
                &["understudy_coordination_session_expiry_timestamp_seconds{backend=\"etcd\",group=\"demo\"} 1700000012"],
            ),
            (
                "understudy_fencing_total",
                &[
                    "understudy_fencing_total{group=\"demo\",outcome=\"failed\"} 0",
                    "understudy_fencing_total{group=\"demo\",outcome=\"success\"} 2",
                    "understudy_fencing_total{group=\"demo\",outcome=\"timeout\"} 1",
                ],
            ),
            (
                "understudy_fencing_last_timestamp_seconds",
                &["understudy_fencing_last_timestamp_seconds{group=\"demo\",outcome=\"timeout\",target=\"main-1\"} 1700000020"],
            ),
            (
                "understudy_fencing_last_duration_seconds",
                &["understudy_fencing_last_duration_seconds{group=\"demo\",outcome=\"timeout\",target=\"main-1\"} 5"],
            ),
        ];
        for (name, want) in table {
            assert!(METRIC_NAMES.contains(&name), "{name} is not listed");
            assert_eq!(samples(&text, name), want, "{name}:\n{text}");
        }
        // Only the member with a lease has the lease's sample.
        assert!(!text.contains(
            "understudy_member_address_lease_expiry_timestamp_seconds{group=\"demo\",member=\"backup-1\"}"
        ));
    }

    #[test]
    fn fencing_configured_but_never_run_lists_zeros_and_no_last_run() {
        let mut s = snapshot();
        s.fencing = Some(FencingView::default());
        let text = render(&s);
        assert_eq!(
            samples(&text, "understudy_fencing_total").len(),
            3,
            "{text}"
        );
        assert!(samples(&text, "understudy_fencing_total")
            .iter()
            .all(|l| l.ends_with(" 0")));
        assert!(samples(&text, "understudy_fencing_last_timestamp_seconds").is_empty());
        let mut s = snapshot();
        s.coordination = Some(CoordinationView {
            backend: "etcd",
            up: true,
            since: 1_000,
            error: None,
            session_until: None,
            holders: BTreeMap::new(),
        });
        let text = render(&s);
        assert_eq!(
            samples(&text, "understudy_coordination_up"),
            ["understudy_coordination_up{backend=\"etcd\",group=\"demo\"} 1"]
        );
        assert!(samples(
            &text,
            "understudy_coordination_session_expiry_timestamp_seconds"
        )
        .is_empty());
    }
}
