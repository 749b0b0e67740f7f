//! The status page at `GET /`: the seed's "Redundancy configuration page" rendered on the
//! server from one snapshot, readable without JavaScript. Pure.

use std::fmt::Write;

use crate::agent::{Snapshot, VERSION};
use crate::group::Role;
use crate::http::rfc3339;

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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.35em .6em;\
text-align:left}th{background:#eee}tr.takeover td{background:#fff3a0}\
.banner{background:#c0392b;color:#fff;padding:.8em 1em;font-weight:bold;margin:1em 0}\
.ok{background:#27ae60;color:#fff;padding:.5em 1em;margin:1em 0}\
.state-online{color:#1e7e34;font-weight:bold}.state-offline{color:#a00;font-weight:bold}\
.state-unknown{color:#777}footer{margin-top:1.5em;color:#555;font-size:.9em}";

/// Renders the page.
pub fn render(s: &Snapshot) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>Redundancy — {group}</title><style>{STYLE}</style></head><body>\
         <h1>Redundancy configuration — group {group}</h1>\
         <p>Seen from <b>{local}</b>.</p>",
        group = escape(&s.group),
        local = escape(&s.local)
    );
    if s.redundancy.redundant {
        h.push_str("<div class=\"ok\" id=\"redundancy\">Redundant</div>");
    } else {
        let _ = write!(
            h,
            "<div class=\"banner\" id=\"redundancy\">NO REDUNDANCY{}<ul>",
            s.redundancy
                .since
                .map(|t| format!(" since {}", rfc3339(t)))
                .unwrap_or_default()
        );
        for a in &s.redundancy.alarms {
            let _ = write!(h, "<li>{}</li>", escape(&a.reason));
        }
        h.push_str("</ul></div>");
    }
    h.push_str(
        "<table id=\"members\"><thead><tr><th>Member</th><th>Configured role</th>\
         <th>Operational state</th><th>Configured IP</th><th>Current IP</th>\
         <th>Auto-failover</th><th>Last replication result</th></tr></thead><tbody>",
    );
    for m in &s.members {
        let r = &m.record;
        let rep = match &r.replication {
            Some(x) => format!(
                "{} {} ({})",
                x.result.as_str(),
                rfc3339(x.at),
                escape(&x.main)
            ),
            None => "never".to_string(),
        };
        let _ = write!(
            h,
            "<tr class=\"{cls}\" data-member=\"{name}\"><td>{name}{local}</td><td>{role}</td>\
             <td class=\"state-{state}\">{state}</td><td>{caddr}</td><td>{cur}</td>\
             <td>{auto}</td><td>{rep}</td></tr>",
            cls = if r.takeover.is_some() { "takeover" } else { "" },
            name = escape(&r.name),
            local = if m.is_local { " (this server)" } else { "" },
            role = match r.role {
                Role::Main => "Main",
                Role::Backup => "Backup",
            },
            state = m.state,
            caddr = r.configured_address,
            cur = r
                .current_address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "—".into()),
            auto = if r.auto_failover {
                "enabled"
            } else {
                "disabled"
            },
        );
    }
    h.push_str("</tbody></table>");
    if let Some(me) = s.member(&s.local) {
        let _ = write!(
            h,
            "<p id=\"extra-ip\">Extra IP address: <b>{}</b></p>",
            me.record.extra_address
        );
    }
    let _ = write!(
        h,
        "<footer>understudy {VERSION} — JSON: <a href=\"/api/v1/group\">/api/v1/group</a>, \
         <a href=\"/api/v1/events\">events</a>, <a href=\"/metrics\">metrics</a></footer>\
         </body></html>"
    );
    h
}
