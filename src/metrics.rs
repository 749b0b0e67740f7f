//! Prometheus exposition of one snapshot: every member row as this agent sees it, with the
//! metric names of the product contract. Pure (renders text from a snapshot).

use prometheus::{Encoder, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::group::{OpKind, OperState, ReplicationResult, Role};
use crate::snapshot::{Snapshot, VERSION};

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
];

fn gauge(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    reg.register(Box::new(g.clone()))
        .expect("each metric is registered once");
    g
}

/// Renders the snapshot in the Prometheus text format.
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
    for m in &snap.members {
        let r = &m.record;
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
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&reg.gather(), &mut out)
        .expect("text encoding into a Vec cannot fail");
    String::from_utf8(out).expect("the text format is UTF-8")
}
