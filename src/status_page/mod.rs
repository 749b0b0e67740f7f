//! The status page at `GET /`: the seed's "Redundancy configuration page", rendered on the
//! server from one snapshot. Pure.
//!
//! Besides the seed's columns it shows, when configured, the lease each member holds its
//! address under, the quorum source and the fence command's last run.
//!
//! The page is complete without JavaScript for reading (it refreshes itself with a meta refresh
//! inside `<noscript>`). A small inline script (`status_page/app.js`, no external files, no
//! CDN) adds the commands: the Manual Take-Over drop-down + Go on every Backup row, Reverse
//! takeover on every taken-over Main row, the token, the refusal reasons, and a refresh of the
//! live part of the page that keeps what the operator typed. The controls are rendered here,
//! disabled; the script enables them.

use std::fmt::Write;

use crate::command::OutcomeKind;
use crate::group::{Millis, OpKind, OperState, ReplicationResult, Role};
use crate::snapshot::{rfc3339, FenceOutcome, MemberSnapshot, Snapshot, VERSION};

/// The page's style sheet and script, inlined so the agent serves one self-contained page.
const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// Seconds between refreshes without JavaScript (the script refreshes on its own timer).
const META_REFRESH_SECS: u32 = 5;

/// How many recent events the page lists.
const RECENT_EVENTS: usize = 5;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes any displayable value.
fn esc(v: impl std::fmt::Display) -> String {
    escape(&v.to_string())
}

fn state_word(s: OperState) -> &'static str {
    match s {
        OperState::Online => "Online",
        OperState::Standby => "Standby",
        OperState::Offline => "Offline",
        OperState::Unknown => "Unknown",
    }
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Main => "Main",
        Role::Backup => "Backup",
    }
}

fn kind_word(k: OpKind) -> &'static str {
    match k {
        OpKind::Manual => "manual takeover",
        OpKind::Failover => "auto-failover",
        OpKind::Reverse => "reverse takeover",
        OpKind::Replace => "replace takeover",
        OpKind::Reconfigure => "reconfigure",
        OpKind::AutoFailover => "auto-failover setting",
        OpKind::Maintenance => "maintenance mode",
    }
}

/// Renders the page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::with_capacity(8192 + SCRIPT.len() + STYLE.len());
    let title = if s.redundancy.redundant() {
        format!("Redundancy — {} — {}", s.group, s.local)
    } else {
        format!("NO REDUNDANCY — {} — {}", s.group, s.local)
    };
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <noscript><meta http-equiv=\"refresh\" content=\"{META_REFRESH_SECS}\"></noscript>\
         <title>{title}</title><style>{STYLE}</style></head><body>\
         <header><h1>Redundancy configuration</h1>\
         <p class=\"sub\">Group <b>{group}</b> · seen from <b>{local}</b> (this server) · \
         <a href=\"/\" id=\"refresh\">Refresh</a> · <span id=\"updated\">refreshes every \
         {META_REFRESH_SECS} s</span></p></header><main>",
        title = escape(&title),
        group = escape(&s.group),
        local = escape(&s.local),
    );
    h.push_str(
        "<div id=\"commands\" hidden>\
         <label>API token <input id=\"token\" type=\"password\" autocomplete=\"off\" \
         size=\"18\" placeholder=\"asked when needed\"></label>\
         <label>Reason (optional) <input id=\"reason\" type=\"text\" size=\"32\" \
         maxlength=\"1024\"></label>\
         <div id=\"message\" role=\"status\" aria-live=\"polite\"></div></div>\
         <noscript><p>Reading only: the commands on this page need JavaScript. Without it use \
         <code>understudy takeover --url …</code> or the HTTP API.</p></noscript>",
    );
    h.push_str("<div id=\"live\">");
    render_redundancy(&mut h, s);
    render_maintenance(&mut h, s);
    render_safety(&mut h, s);
    render_area(&mut h, s, Role::Main);
    render_area(&mut h, s, Role::Backup);
    h.push_str(
        "<p class=\"legend\"><span class=\"swatch\"></span> Yellow row: a manual takeover or a \
         failover has occurred on this member (takeover flag); it stays yellow until the pair \
         is restored.</p>",
    );
    render_events(&mut h, s);
    render_extra_ip(&mut h, s);
    h.push_str("</div></main>");
    let _ = write!(
        h,
        "<footer>understudy {VERSION} · JSON: <a href=\"/api/v1/group\">/api/v1/group</a> · \
         <a href=\"/api/v1/events\">/api/v1/events</a> · <a href=\"/metrics\">/metrics</a>\
         </footer><script>{SCRIPT}</script></body></html>"
    );
    h
}

fn render_redundancy(h: &mut String, s: &Snapshot) {
    if s.redundancy.redundant() {
        h.push_str(
            "<div class=\"redundant\" id=\"redundancy\">Redundant: a Backup is in standby to \
             take over.</div>",
        );
        return;
    }
    let _ = write!(
        h,
        "<div class=\"banner\" id=\"redundancy\" role=\"alert\"><strong>NO REDUNDANCY</strong>{}\
         <ul>",
        s.redundancy
            .since()
            .map(|t| format!(" since {}", rfc3339(t)))
            .unwrap_or_default()
    );
    for a in &s.redundancy.alarms {
        let _ = write!(h, "<li>{}</li>", escape(&a.reason));
    }
    h.push_str(
        "</ul><p>Restore the group: fix the Main, then Reverse takeover (recommended); or \
         reconfigure the roles; or replace the Main (replace takeover).</p></div>",
    );
}

/// The maintenance mode banner, while it is on: since when, by whom, why.
fn render_maintenance(h: &mut String, s: &Snapshot) {
    let m = &s.maintenance;
    if !m.enabled {
        return;
    }
    let _ = write!(
        h,
        "<div class=\"maintenance\" id=\"maintenance\" role=\"status\"><strong>MAINTENANCE \
         MODE</strong>{since}{by}: no automatic failover anywhere in the group; manual \
         operations still work.{reason}</div>",
        since = m
            .since
            .map(|t| format!(" since {}", rfc3339(t)))
            .unwrap_or_default(),
        by = m
            .changed_by
            .as_ref()
            .map(|r| format!(" (set by {})", escape(&r.to_string())))
            .unwrap_or_default(),
        reason = m
            .reason
            .as_deref()
            .map(|r| format!(" Reason: {}", escape(r)))
            .unwrap_or_default(),
    );
}

/// One area of the page: the configured Mains (with Reverse Take-Over) or the configured
/// Backups (with Manual Take-Over).
fn render_area(h: &mut String, s: &Snapshot, role: Role) {
    let (id, heading, action) = match role {
        Role::Main => ("mains", "Main application servers", "Reverse Take-Over"),
        Role::Backup => ("backups", "Backup application servers", "Manual Take-Over"),
    };
    let _ = write!(
        h,
        "<h2>{heading}</h2><table class=\"members area\" id=\"{id}\"><thead><tr><th>Name</th>\
         <th>Configured role</th><th>Operational state</th><th>Configured IP</th>\
         <th>Current IP</th><th>Auto-failover</th><th>Last replication result</th>\
         <th>{action}</th></tr></thead><tbody>"
    );
    let rows: Vec<&MemberSnapshot> = s.members.iter().filter(|m| m.record.role == role).collect();
    if rows.is_empty() {
        h.push_str("<tr><td colspan=\"8\">none configured</td></tr>");
    }
    for m in rows {
        render_row(h, s, m);
    }
    h.push_str("</tbody></table>");
}

fn render_row(h: &mut String, s: &Snapshot, m: &MemberSnapshot) {
    let r = &m.record;
    let name = escape(&r.name);
    let _ = write!(
        h,
        "<tr class=\"{cls}\" data-member=\"{name}\" data-state=\"{state}\"><td><b>{name}</b>{this}\
         </td><td>{role}</td><td><span class=\"state-{state}\">{state_word}</span>",
        cls = if r.takeover.is_some() { "takeover" } else { "" },
        this = if s.is_local(m) {
            "<span class=\"this\">this server</span>"
        } else {
            ""
        },
        role = role_word(r.role),
        state = m.state.as_str(),
        state_word = state_word(m.state),
    );
    if let Some(at) = r.state_changed {
        let _ = write!(
            h,
            "<span class=\"note state-since\" title=\"state last changed\">since {}</span>",
            rfc3339(at)
        );
    }
    if m.state == OperState::Unknown {
        h.push_str("<span class=\"note\">not reachable from this agent</span>");
    }
    if let Some(main) = &r.acting_for {
        let _ = write!(h, "<span class=\"note\">acting for {}</span>", escape(main));
    }
    if let Some(t) = &r.takeover {
        if r.acting_for.is_none() && t.main == r.name {
            let _ = write!(
                h,
                "<span class=\"note\">taken over by {} ({}, {})</span>",
                escape(&t.backup),
                kind_word(t.kind),
                rfc3339(t.at)
            );
        }
    }
    if !r.failing_checks.is_empty() {
        let _ = write!(
            h,
            "<span class=\"note rep-failed\">device check failing: {}</span>",
            escape(&r.failing_checks.join(", "))
        );
    }
    let _ = write!(
        h,
        "</td><td>{caddr}</td><td>{cur}",
        caddr = esc(r.configured_address),
        cur = r.current_address.map_or_else(|| "none".to_string(), esc),
    );
    render_lease(h, s, m);
    let _ = write!(
        h,
        "</td><td>{auto}</td><td>",
        auto = if r.auto_failover {
            "Enabled"
        } else {
            "Disabled"
        },
    );
    render_replication(h, r);
    h.push_str("</td><td>");
    match r.role {
        Role::Backup => render_takeover_control(h, s, &r.name),
        Role::Main if r.is_taken_over() => {
            let _ = write!(
                h,
                "<button type=\"button\" data-op=\"reverse\" data-main=\"{name}\" disabled>\
                 Reverse takeover</button>"
            );
        }
        Role::Main => h.push('—'),
    }
    h.push_str("</td></tr>");
}

/// `HH:MM:SS` (UTC) of a time, for notes that only need the time of day.
fn time_of_day(ms: Millis) -> String {
    let full = rfc3339(ms);
    full.get(11..19)
        .map_or_else(|| full.clone(), str::to_string)
}

/// Under the current IP: the lease it is held under ("lease until HH:MM:SS UTC", the full time
/// as a tooltip). Where the group uses leases (some member holds one) a member that holds an
/// address without one shows "no lease"; a group without leases shows nothing.
fn render_lease(h: &mut String, s: &Snapshot, m: &MemberSnapshot) {
    match &m.lease {
        Some(l) => {
            let _ = write!(
                h,
                "<span class=\"note lease\" title=\"{full}, removed by the {by} when it runs \
                 out\">lease until {time} UTC</span>",
                full = rfc3339(l.until),
                by = escape(l.enforced_by),
                time = time_of_day(l.until),
            );
        }
        None if m.record.current_address.is_some()
            && s.members.iter().any(|m| m.lease.is_some()) =>
        {
            h.push_str("<span class=\"note rep-failed lease\">no lease</span>");
        }
        None => {}
    }
}

/// Below the redundancy banner, when configured: the quorum source (up / down since when,
/// why) and the fence command's last run.
fn render_safety(h: &mut String, s: &Snapshot) {
    if s.coordination.is_none() && s.fencing.is_none() {
        return;
    }
    h.push_str("<div id=\"safety\">");
    if let Some(c) = &s.coordination {
        if c.up {
            let _ = write!(
                h,
                "<p id=\"coordination\" class=\"safety-ok\">Quorum source ({backend}): \
                 <b>up</b> since {since}</p>",
                backend = escape(c.backend),
                since = rfc3339(c.since),
            );
        } else {
            let _ = write!(
                h,
                "<p id=\"coordination\" class=\"safety-down\" role=\"alert\">Quorum source \
                 ({backend}): <b>DOWN</b> since {since}{error}. Failover is suspended.</p>",
                backend = escape(c.backend),
                since = rfc3339(c.since),
                error = c
                    .error
                    .as_deref()
                    .map(|e| format!(": {}", escape(e)))
                    .unwrap_or_default(),
            );
        }
    }
    if let Some(f) = &s.fencing {
        let runs = FenceOutcome::ALL
            .iter()
            .map(|o| format!("{} {}", f.runs.get(o).copied().unwrap_or(0), o.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        match &f.last {
            None => {
                let _ = write!(
                    h,
                    "<p id=\"fencing\">Fence command: not run yet (runs: {runs})</p>"
                );
            }
            Some(run) => {
                let failed = run.outcome != FenceOutcome::Success;
                let _ = write!(
                    h,
                    "<p id=\"fencing\"{cls}>Fence command: last run against <b>{target}</b> \
                     ended {at}: <span class=\"{outcome_cls}\">{outcome}</span> after {secs:.1} \
                     s{detail} (runs: {runs})</p>",
                    cls = if failed {
                        " class=\"safety-down\" role=\"alert\""
                    } else {
                        ""
                    },
                    target = escape(&run.target),
                    at = rfc3339(run.at),
                    outcome_cls = if failed { "rep-failed" } else { "rep-success" },
                    outcome = run.outcome.as_str(),
                    secs = run.duration_ms as f64 / 1000.0,
                    detail = if run.detail.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", escape(&run.detail))
                    },
                );
            }
        }
    }
    h.push_str("</div>");
}

fn render_replication(h: &mut String, r: &crate::group::MemberRecord) {
    let Some(x) = &r.replication else {
        h.push_str(if r.role == Role::Backup {
            "Never"
        } else {
            "—"
        });
        return;
    };
    let (cls, word) = match x.result {
        ReplicationResult::Success => ("rep-success", "Success"),
        ReplicationResult::Failed => ("rep-failed", "Failed"),
        ReplicationResult::Never => ("rep-never", "Never"),
    };
    let _ = write!(
        h,
        "<span class=\"{cls}\">{word}</span> {} <span class=\"note\">of {}</span>",
        rfc3339(x.at),
        escape(&x.main)
    );
    if let Some(e) = &x.error {
        let _ = write!(h, "<span class=\"note\">{}</span>", escape(e));
    }
    if x.result != ReplicationResult::Success {
        if let Some(ok) = x.last_success.get(&x.main) {
            let _ = write!(
                h,
                "<span class=\"note\">last success {}</span>",
                rfc3339(*ok)
            );
        }
    }
}

/// The seed's drop-down + Go on a Backup row: every configured Main is an option.
fn render_takeover_control(h: &mut String, s: &Snapshot, backup: &str) {
    let backup = escape(backup);
    let _ = write!(
        h,
        "<select data-backup=\"{backup}\" aria-label=\"Main for {backup} to take over\" disabled>"
    );
    for m in s.members.iter().filter(|m| m.record.role == Role::Main) {
        let r = &m.record;
        let _ = write!(
            h,
            "<option value=\"{name}\">{name} ({addr}){taken}</option>",
            name = escape(&r.name),
            addr = esc(r.configured_address),
            taken = if r.is_taken_over() {
                " — taken over"
            } else {
                ""
            },
        );
    }
    let _ = write!(
        h,
        "</select> <button type=\"button\" data-op=\"takeover\" data-backup=\"{backup}\" \
         disabled>Go</button>"
    );
}

fn render_events(h: &mut String, s: &Snapshot) {
    if s.events.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Recent events</h2><table class=\"members\" id=\"events\"><thead><tr><th>Time</th>\
         <th>Operation</th><th>Outcome</th><th>Asked by</th><th>Message</th></tr></thead><tbody>",
    );
    for e in s.events.iter().take(RECENT_EVENTS) {
        let outcome = match e.outcome {
            OutcomeKind::Done => "done",
            OutcomeKind::Refused => "refused",
            OutcomeKind::Failed => "failed",
        };
        let repeated = match e.last_at {
            Some(last) if e.repeats > 0 => {
                format!(" (and {} times more, last {})", e.repeats, rfc3339(last))
            }
            _ => String::new(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{outcome}{repeated}</td><td>{}</td><td>{}</td></tr>",
            rfc3339(e.at),
            kind_word(e.kind),
            esc(&e.requested_by),
            escape(&e.message)
        );
    }
    h.push_str("</tbody></table>");
}

/// Near the bottom, as on the seed's page: the Extra IP address. A taken-over Main moves to
/// its extra address; the operator notes it before a takeover to reach that Main afterwards.
fn render_extra_ip(h: &mut String, s: &Snapshot) {
    h.push_str("<section id=\"extra-ip\"><h2>Extra IP address</h2>");
    if let Some(me) = s.member(&s.local) {
        let _ = write!(
            h,
            "<p>This server ({}): <span class=\"addr\">{}</span></p>",
            escape(&me.record.name),
            esc(me.record.extra_address)
        );
    }
    let mains: Vec<&MemberSnapshot> = s
        .members
        .iter()
        .filter(|m| m.record.role == Role::Main)
        .collect();
    if !mains.is_empty() {
        h.push_str(
            "<p>A taken-over Main goes to its extra IP address (browse there to reach it):</p>\
             <ul>",
        );
        for m in mains {
            let _ = write!(
                h,
                "<li><b>{}</b> → <span class=\"addr\">{}</span></li>",
                escape(&m.record.name),
                esc(m.record.extra_address)
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    use super::*;
    use crate::group::{Alarm, AlarmKind, MemberRecord, Replication, TakeoverMark};
    use crate::snapshot::Redundancy;

    fn ip(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, d))
    }

    fn member(name: &str, role: Role, d: u8) -> MemberSnapshot {
        let record = MemberRecord::initial(name, role, ip(d), ip(d + 100), role == Role::Main);
        MemberSnapshot {
            state: record.state,
            record,
            paths: vec![("lan".into(), true)],
            lease: None,
        }
    }

    fn snapshot(members: Vec<MemberSnapshot>) -> Snapshot {
        Snapshot {
            group: "g1".into(),
            local: "backup-1".into(),
            members,
            redundancy: Redundancy { alarms: Vec::new() },
            takeovers: BTreeMap::new(),
            events: Arc::new(Vec::new()),
            replication_failures: 0,
            notifications: None,
            state_error: None,
            mismatched: Default::default(),
            boots: 1,
            started_at: 0,
            coordination: None,
            fencing: None,
            maintenance: Default::default(),
            maintenance_alert_after: 4 * 3600 * 1000,
        }
    }

    fn healthy() -> Snapshot {
        let mut b = member("backup-1", Role::Backup, 21);
        b.record.replication = Some(Replication {
            at: 1_000,
            result: ReplicationResult::Success,
            main: "main-1".into(),
            last_success: BTreeMap::from([("main-1".to_string(), 1_000)]),
            error: None,
        });
        snapshot(vec![
            member("main-1", Role::Main, 11),
            member("main-2", Role::Main, 12),
            b,
        ])
    }

    /// main-1 taken over by backup-1, as the agents publish it.
    fn taken_over() -> Snapshot {
        let mut s = healthy();
        let mark = TakeoverMark {
            kind: OpKind::Manual,
            main: "main-1".into(),
            backup: "backup-1".into(),
            at: 5_000,
        };
        {
            let m = &mut s.members[0];
            m.state = OperState::Offline;
            m.record.state = OperState::Offline;
            m.record.current_address = Some(m.record.extra_address);
            m.record.auto_failover = false;
            m.record.takeover = Some(mark.clone());
        }
        {
            let b = &mut s.members[2];
            b.state = OperState::Online;
            b.record.state = OperState::Online;
            b.record.current_address = Some(ip(11));
            b.record.acting_for = Some("main-1".into());
            b.record.takeover = Some(mark);
        }
        s.redundancy = Redundancy {
            alarms: vec![Alarm {
                kind: AlarmKind::Takeover,
                raised_at: 5_000,
                reason: "manual takeover: main-1 was taken over by backup-1".into(),
                main: Some("main-1".into()),
                backup: Some("backup-1".into()),
            }],
        };
        s
    }

    /// The opening tag of the row of `member`.
    fn row_tag<'a>(html: &'a str, member: &str) -> &'a str {
        let key = format!("data-member=\"{member}\"");
        let at = html
            .find(&key)
            .unwrap_or_else(|| panic!("no row for {member}"));
        let start = html[..at].rfind("<tr").expect("row start");
        let end = at + html[at..].find('>').expect("row end");
        &html[start..=end]
    }

    /// The whole row of `member`.
    fn row<'a>(html: &'a str, member: &str) -> &'a str {
        let tag = row_tag(html, member);
        let start = html.find(tag).expect("row");
        let end = start + html[start..].find("</tr>").expect("row end");
        &html[start..end]
    }

    #[test]
    fn escape_covers_the_html_specials() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("main-1"), "main-1");
    }

    #[test]
    fn everything_from_the_snapshot_is_escaped() {
        let mut s = taken_over();
        s.group = "<g&1>".into();
        s.local = "x\"><script>alert(1)</script>".into();
        s.members[1].record.name = "<img src=x onerror=alert(2)>".into();
        s.members[2].record.failing_checks = vec!["<b>check</b>".into()];
        if let Some(r) = s.members[2].record.replication.as_mut() {
            r.error = Some("<i>disk</i>".into());
            r.main = "<m>".into();
        }
        s.redundancy.alarms[0].reason = "<script>alert(3)</script>".into();
        let html = render(&s);
        for raw in [
            "<g&1>",
            "<script>alert(1)",
            "<img src=x",
            "<script>alert(3)",
            "<b>check</b>",
            "<i>disk</i>",
            "<m>",
        ] {
            assert!(!html.contains(raw), "unescaped {raw:?} in the page");
        }
        assert!(html.contains("&lt;g&amp;1&gt;"));
        assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
        assert!(html.contains("&lt;script&gt;alert(3)&lt;/script&gt;"));
        // The only script element is the page's own.
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn flagged_rows_are_yellow_and_others_are_not() {
        let html = render(&taken_over());
        assert!(row_tag(&html, "main-1").contains("class=\"takeover\""));
        assert!(row_tag(&html, "backup-1").contains("class=\"takeover\""));
        assert!(!row_tag(&html, "main-2").contains("takeover"));
        assert!(STYLE.contains("tr.takeover{background:#ffe95c}"));
        let html = render(&healthy());
        for m in ["main-1", "main-2", "backup-1"] {
            assert!(!row_tag(&html, m).contains("takeover"), "{m} yellow");
        }
    }

    #[test]
    fn rows_show_the_seeds_columns() {
        let html = render(&taken_over());
        let table = [
            ("main-1", ">Main<"),
            ("main-1", ">Offline<"),
            ("main-1", "192.0.2.111"), // current IP = extra IP
            ("main-1", "Disabled"),
            ("main-1", "taken over by backup-1 (manual takeover"),
            ("backup-1", ">Backup<"),
            ("backup-1", ">Online<"),
            ("backup-1", "<td>192.0.2.11</td>"), // current IP = main's
            ("backup-1", "acting for main-1"),
            ("backup-1", "Success</span> 1970-01-01T00:00:01.000Z"),
            (
                "backup-1",
                "<b>backup-1</b><span class=\"this\">this server</span>",
            ),
        ];
        for (member, want) in table {
            let r = row(&html, member);
            assert!(r.contains(want), "{member}'s row shows {want:?}: {r}");
        }
    }

    #[test]
    fn a_state_change_time_shows_under_the_state_and_none_without_one() {
        let mut s = taken_over();
        s.members[0].record.state_changed = Some(5_000);
        let html = render(&s);
        assert!(
            row(&html, "main-1").contains("since 1970-01-01T00:00:05.000Z</span>"),
            "{html}"
        );
        assert!(!row(&html, "main-2").contains("state-since"));
    }

    #[test]
    fn banner_only_without_redundancy() {
        let html = render(&taken_over());
        assert!(html.contains("class=\"banner\" id=\"redundancy\""));
        assert!(html.contains("NO REDUNDANCY</strong> since 1970-01-01T00:00:05.000Z"));
        assert!(html.contains("<li>manual takeover: main-1 was taken over by backup-1</li>"));
        assert!(html.contains("<title>NO REDUNDANCY"));
        let html = render(&healthy());
        assert!(!html.contains("class=\"banner\""));
        assert!(!html.contains("NO REDUNDANCY"));
        assert!(html.contains("class=\"redundant\" id=\"redundancy\""));
    }

    #[test]
    fn maintenance_banner_only_while_on_with_who_and_why() {
        let mut s = healthy();
        assert!(!render(&s).contains("id=\"maintenance\""));
        let by = crate::group::Requester {
            interface: "http".into(),
            identity: "token@127.0.0.1".into(),
        };
        s.maintenance = s
            .maintenance
            .set(true, &by, Some("<b>router</b> swap"), 7_000, "main-1");
        let html = render(&s);
        assert!(html.contains(
            "<strong>MAINTENANCE MODE</strong> since 1970-01-01T00:00:07.000Z (set by \
             http:token@127.0.0.1): no automatic failover"
        ));
        assert!(html.contains("Reason: &lt;b&gt;router&lt;/b&gt; swap"));
        s.maintenance = s.maintenance.set(false, &by, None, 8_000, "main-1");
        assert!(!render(&s).contains("id=\"maintenance\""));
    }

    #[test]
    fn backup_rows_have_the_drop_down_listing_every_main() {
        let html = render(&healthy());
        let backup = row(&html, "backup-1");
        assert!(backup.contains("<select data-backup=\"backup-1\""));
        assert!(backup.contains("<option value=\"main-1\">main-1 (192.0.2.11)</option>"));
        assert!(backup.contains("<option value=\"main-2\">main-2 (192.0.2.12)</option>"));
        assert!(backup.contains("data-op=\"takeover\" data-backup=\"backup-1\" disabled>Go<"));
        assert!(!row(&html, "main-1").contains("<select"));
    }

    #[test]
    fn reverse_takeover_only_on_taken_over_mains() {
        let html = render(&healthy());
        assert!(!html.contains("data-op=\"reverse\""));
        let html = render(&taken_over());
        assert!(row(&html, "main-1").contains("data-op=\"reverse\" data-main=\"main-1\""));
        assert!(!row(&html, "main-2").contains("data-op=\"reverse\""));
        assert!(!row(&html, "backup-1").contains("data-op=\"reverse\""));
    }

    #[test]
    fn extra_ip_near_the_bottom() {
        let html = render(&taken_over());
        let extra = html.find("id=\"extra-ip\"").expect("extra IP section");
        assert!(extra > html.find("id=\"backups\"").expect("backup area"));
        let section = &html[extra..];
        assert!(section.contains("This server (backup-1): <span class=\"addr\">192.0.2.121</span>"));
        assert!(
            section.contains("<li><b>main-1</b> → <span class=\"addr\">192.0.2.111</span></li>")
        );
    }

    #[test]
    fn self_contained_and_readable_without_javascript() {
        let html = render(&healthy());
        // No external resources: no CDN, no external fonts, no script/style files.
        for external in [
            "src=\"http",
            "href=\"http",
            "<link",
            "@import",
            "url(",
            "<script src",
        ] {
            assert!(!html.contains(external), "external resource {external:?}");
        }
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>"));
        // The inlined script cannot close its own element early.
        assert!(!SCRIPT.contains("</script"));
        assert!(!STYLE.contains("</style"));
        // Controls are disabled until the script enables them; commands area hidden.
        assert!(html.contains("<div id=\"commands\" hidden>"));
        assert!(html.contains("<div id=\"live\">"));
    }

    #[test]
    fn a_repeated_failure_shows_how_often_and_when_last() {
        let mut s = healthy();
        let cmd: crate::command::Command = serde_json::from_str(
            r#"{"operation": {"op": "failover", "backup": "backup-1", "main": "main-1"},
                "requested_by": {"interface": "detector", "identity": "backup-1"}}"#,
        )
        .expect("a command");
        let mut e = crate::command::Event::of(&cmd, "e1".into(), "backup-1", 1_000);
        e.outcome = OutcomeKind::Failed;
        e.repeats = 2;
        e.last_at = Some(3_000);
        s.events = Arc::new(vec![e]);
        let html = render(&s);
        assert!(
            html.contains("failed (and 2 times more, last 1970-01-01T00:00:03.000Z)"),
            "{html}"
        );
    }

    #[test]
    fn leases_show_under_the_current_ip_and_a_member_without_one_stands_out() {
        use crate::snapshot::LeaseView;
        // No member holds a lease: nothing about leases on the page.
        let html = render(&healthy());
        assert!(!html.contains("lease"), "{html}");
        let mut s = healthy();
        s.members[0].lease = Some(LeaseView {
            until: 1_700_000_030_000,
            enforced_by: "kernel",
        });
        s.members[2].lease = Some(LeaseView {
            until: 1_700_000_029_000,
            enforced_by: "agent",
        });
        let html = render(&s);
        let main = row(&html, "main-1");
        assert!(main.contains(">lease until 22:13:50 UTC</span>"), "{main}");
        assert!(
            main.contains(
                "title=\"2023-11-14T22:13:50.000Z, removed by the kernel when it runs out\""
            ),
            "{main}"
        );
        assert!(row(&html, "backup-1").contains("lease until 22:13:49 UTC"));
        // main-2 holds its address without a lease while the others have one.
        assert!(row(&html, "main-2").contains(">no lease</span>"));
        assert!(!row(&html, "main-1").contains("no lease"));
    }

    #[test]
    fn the_quorum_source_and_the_last_fence_run_show_when_configured() {
        use crate::snapshot::{CoordinationView, FenceRun, FencingView};
        let html = render(&healthy());
        assert!(!html.contains("id=\"safety\""), "nothing without them");
        let mut s = healthy();
        s.coordination = Some(CoordinationView {
            backend: "etcd",
            up: true,
            since: 2_000,
            error: None,
            session_until: None,
            holders: BTreeMap::new(),
        });
        s.fencing = Some(FencingView::default());
        let html = render(&s);
        assert!(html.contains(
            "<p id=\"coordination\" class=\"safety-ok\">Quorum source (etcd): <b>up</b> since \
             1970-01-01T00:00:02.000Z</p>"
        ));
        assert!(html.contains(
            "<p id=\"fencing\">Fence command: not run yet (runs: 0 success, 0 failed, 0 timeout)</p>"
        ));
        // The quorum source sits right below the redundancy line, above the members.
        let at = html.find("id=\"safety\"").expect("safety");
        assert!(html.find("id=\"redundancy\"").is_some_and(|r| r < at));
        assert!(html.find("id=\"mains\"").is_some_and(|m| m > at));
        if let Some(c) = s.coordination.as_mut() {
            c.up = false;
            c.since = 3_000;
            c.error = Some("<connection refused>".into());
        }
        s.fencing = Some(FencingView {
            runs: BTreeMap::from([(FenceOutcome::Timeout, 2)]),
            last: Some(FenceRun {
                target: "main-1".into(),
                outcome: FenceOutcome::Timeout,
                at: 4_000,
                duration_ms: 5_000,
                detail: "no answer within 5s".into(),
            }),
        });
        let html = render(&s);
        assert!(
            html.contains(
                "Quorum source (etcd): <b>DOWN</b> since 1970-01-01T00:00:03.000Z: \
             &lt;connection refused&gt;. Failover is suspended."
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<p id=\"fencing\" class=\"safety-down\" role=\"alert\">Fence command: last run \
             against <b>main-1</b> ended 1970-01-01T00:00:04.000Z: <span class=\"rep-failed\">\
             timeout</span> after 5.0 s — no answer within 5s (runs: 0 success, 0 failed, 2 \
             timeout)</p>"
            ),
            "{html}"
        );
    }

    #[test]
    fn unknown_members_and_refused_events_are_shown() {
        let mut s = healthy();
        s.members[0].state = OperState::Unknown;
        let events = vec![crate::command::Event {
            id: "e1".into(),
            at: 9_000,
            kind: OpKind::Manual,
            operation: crate::group::Operation::Takeover {
                backup: "backup-1".into(),
                main: "main-1".into(),
            },
            requested_by: crate::group::Requester {
                interface: "http".into(),
                identity: "token@127.0.0.1".into(),
            },
            members: vec!["backup-1".into(), "main-1".into()],
            reason: None,
            coordinator: "backup-1".into(),
            outcome: OutcomeKind::Refused,
            failed: vec!["never_replicated".into()],
            message: "refused: never_replicated (<x>)".into(),
            repeats: 0,
            last_at: None,
        }];
        s.events = Arc::new(events);
        let html = render(&s);
        assert!(row(&html, "main-1").contains("not reachable from this agent"));
        assert!(html.contains("<td>refused</td><td>http:token@127.0.0.1</td>"));
        assert!(html.contains("refused: never_replicated (&lt;x&gt;)"));
    }
}
