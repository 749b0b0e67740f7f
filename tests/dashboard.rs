//! The Grafana dashboard `dashboards/understudy.json`: fixed uid, template variables, every
//! panel titled, described, with a unit and the datasource variable; every PromQL query
//! (panel targets and annotations) proven valid by `promtool check rules`, using only the
//! group / instance variables and only metric names the agent exports
//! (`understudy::metrics::METRIC_NAMES`).
//!
//! It also carries the rules of Grafana's dashboard linter (grafana/dashboard-linter) that
//! the dashboard must pass: uneditable-dashboard, template-job-rule, template-instance-rule,
//! target-job-rule and target-instance-rule. The linter is a Go program that cannot be
//! installed here (no Go toolchain or Go module registry on the test machines), so its rules
//! are written out below as the linter states them (`lint/rule_uneditable.go`,
//! `lint/template_utils.go` `checkTemplate`, `lint/rule_target_job_instance.go` and
//! `lint/target_utils.go` `checkForMatcher`), with a small PromQL tokenizer in place of the
//! Prometheus parser's `ExtractSelectors`.
//!
//! Does I/O: reads the dashboard, writes a rules file under CARGO_TARGET_TMPDIR and runs
//! promtool. A missing promtool is a failure, never a skip: `./scripts/test` installs it.

mod support;

use support::metric_names::understudy_identifiers;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

const DASHBOARD: &str = "dashboards/understudy.json";

fn dashboard_text() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(DASHBOARD);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

fn dashboard() -> Value {
    serde_json::from_str(&dashboard_text()).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Every panel, rows first-class and the panels nested in (collapsed) rows too.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            if let Some(nested) = panel.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn is_row(panel: &Value) -> bool {
    panel["type"] == "row"
}

/// A datasource reference that points at the `datasource` template variable.
fn uses_datasource_variable(datasource: &Value) -> bool {
    matches!(
        datasource.get("uid").and_then(Value::as_str),
        Some("${datasource}" | "$datasource")
    )
}

/// Every PromQL query: (where, expr) for panel targets and annotation queries.
fn queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let place = format!("panel {:?} target {}", panel["title"], target["refId"]);
                out.push((place, expr.to_string()));
            }
        }
    }
    for annotation in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for expr in [&annotation["expr"], &annotation["target"]["expr"]] {
            if let Some(expr) = expr.as_str() {
                out.push((
                    format!("annotation {:?}", annotation["name"]),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

/// Replaces Grafana's variables by the kind of value Grafana puts there; a variable not
/// known here is an error (it would reach Prometheus verbatim).
fn substitute_variables(expr: &str) -> Result<String, String> {
    // Longest names first: `$__range_s` before `$__range`.
    const VALUES: &[(&str, &str)] = &[
        ("__rate_interval", "1m"),
        ("__interval_ms", "60000"),
        ("__interval", "1m"),
        ("__range_ms", "3600000"),
        ("__range_s", "3600"),
        ("__range", "1h"),
        ("group", "(g1|g2)"),
        ("job", "(understudy|understudy-dc2)"),
        ("instance", "(main-1:9400|backup-1:9401)"),
    ];
    let mut out = expr.to_string();
    for (name, value) in VALUES {
        out = out.replace(&format!("${{{name}}}"), value);
        out = out.replace(&format!("${name}"), value);
    }
    // `$1` and the like are label_replace replacements, not Grafana variables.
    let unknown = out
        .match_indices('$')
        .find(|(i, _)| !out[i + 1..].starts_with(|c: char| c.is_ascii_digit()));
    match unknown {
        Some((i, _)) => Err(format!("unknown variable at {:?} in {expr:?}", &out[i..])),
        None => Ok(out),
    }
}

#[test]
fn dashboard_has_a_fixed_uid_and_its_variables() {
    let d = dashboard();
    assert_eq!(d["uid"], "understudy-overview");
    assert!(!str_at(&d, "/title").is_empty());
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion"
    );

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("template variable {name} is missing"))
    };
    let datasource = var("datasource");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");

    let query_of = |v: &Value| match &v["query"] {
        Value::String(s) => s.clone(),
        q => q["query"].as_str().unwrap_or("").to_string(),
    };
    let group = var("group");
    assert_eq!(group["type"], "query");
    assert_eq!(
        query_of(group),
        "label_values(understudy_member_info{job=~\"$job\"}, group)"
    );
    assert!(
        uses_datasource_variable(&group["datasource"]),
        "group variable datasource"
    );

    let instance = var("instance");
    assert_eq!(instance["type"], "query");
    assert!(
        query_of(instance).starts_with("label_values(")
            && query_of(instance).ends_with(", instance)")
    );
    assert_eq!(instance["multi"], true, "instance is multi-valued");
    assert_eq!(instance["includeAll"], true, "instance offers All");
    assert!(
        uses_datasource_variable(&instance["datasource"]),
        "instance variable datasource"
    );
}

#[test]
fn every_panel_has_title_description_unit_and_the_datasource_variable() {
    let d = dashboard();
    let panels = all_panels(&d);
    assert!(
        panels.iter().filter(|p| !is_row(p)).count() >= 8,
        "too few panels"
    );
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = str_at(panel, "/title");
        assert!(!title.trim().is_empty(), "a panel has no title: {panel}");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title:?} has no id"));
        assert!(ids.insert(id), "panel id {id} is used twice");
        assert!(
            panel.get("gridPos").is_some(),
            "panel {title:?} has no gridPos"
        );
        if is_row(panel) {
            continue;
        }
        assert!(
            !str_at(panel, "/description").trim().is_empty(),
            "panel {title:?}: description"
        );
        assert!(
            !str_at(panel, "/fieldConfig/defaults/unit").is_empty(),
            "panel {title:?}: fieldConfig.defaults.unit"
        );
        assert!(
            uses_datasource_variable(&panel["datasource"]),
            "panel {title:?}: datasource"
        );
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {title:?} has no query"));
        for target in targets {
            assert!(
                uses_datasource_variable(&target["datasource"]),
                "panel {title:?} target {}: datasource",
                target["refId"]
            );
        }
    }
}

#[test]
fn every_query_uses_the_group_and_instance_variables() {
    for (place, expr) in queries(&dashboard()) {
        assert!(
            expr.contains("$instance"),
            "{place}: no $instance in {expr:?}"
        );
        // `up` has no group label; every understudy metric but build_info has one.
        let needs_group = understudy_identifiers(&expr)
            .iter()
            .any(|m| m != "understudy_build_info");
        assert!(
            !needs_group || expr.contains("$group"),
            "{place}: no $group in {expr:?}"
        );
    }
}

#[test]
fn every_query_is_valid_promql() {
    let queries = queries(&dashboard());
    assert!(
        queries.len() >= 10,
        "expected the panels' and annotations' queries"
    );
    let mut rules = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    for (n, (place, expr)) in queries.iter().enumerate() {
        let expr = substitute_variables(expr).unwrap_or_else(|e| panic!("{place}: {e}"));
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = serde_json::to_string(&expr).expect("string to JSON");
        rules.push_str(&format!(
            "      # {place}\n      - record: dashboard:query_{n}\n        expr: {quoted}\n"
        ));
    }
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-queries.rules.yml");
    fs::write(&file, &rules).unwrap_or_else(|e| panic!("cannot write {}: {e}", file.display()));

    let output = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `promtool` ({e}). This test needs promtool (Debian package \
                 prometheus): run ./scripts/test, which installs it, or install it yourself"
            )
        });
    assert!(
        output.status.success(),
        "promtool rejects a dashboard query ({}):\n{}\n{}\n--- {}:\n{rules}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        file.display()
    );
}

#[test]
fn dashboard_uses_only_exported_metric_names() {
    // The whole file: queries, variable queries, descriptions.
    support::metric_names::assert_only_exported(DASHBOARD, &dashboard_text());
}

#[test]
fn member_table_shows_the_configuration_page_with_yellow_takeover_rows() {
    let d = dashboard();
    let table = all_panels(&d)
        .into_iter()
        .find(|p| p["type"] == "table")
        .expect("a table panel of the members");
    let queries: Vec<&str> = table["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect();
    for metric in [
        "understudy_member_info",
        "understudy_member_state",
        "understudy_member_current_address_info",
        "understudy_member_auto_failover_enabled",
        "understudy_member_last_replication_timestamp_seconds",
        "understudy_member_last_replication_success",
        "understudy_member_takeover_flag",
    ] {
        assert!(
            queries.iter().any(|q| q.contains(metric)),
            "member table lacks {metric}"
        );
    }
    let takeover_flag = table["fieldConfig"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["matcher"]["options"] == "Takeover flag")
        .expect("an override for the Takeover flag column");
    let text = takeover_flag.to_string();
    assert!(
        text.contains("\"yellow\""),
        "takeover flag is not yellow: {text}"
    );
    assert!(
        text.contains("color-background"),
        "takeover flag cells are not colored: {text}"
    );
}

#[test]
fn variable_substitution() {
    assert_eq!(
        substitute_variables(
            "rate(x{g=~\"$group\"}[$__rate_interval]) + y[${__range}] + $__range_s"
        )
        .expect("known variables"),
        "rate(x{g=~\"(g1|g2)\"}[1m]) + y[1h] + 3600"
    );
    assert!(substitute_variables("x{a=\"$nope\"}").is_err());
    assert!(substitute_variables("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\")").is_ok());
    assert!(
        substitute_variables("label_replace(x, \"a\", \"$1\", \"b\", \"(.*)\") + y{a=\"$x\"}")
            .is_err()
    );
}

// ---- grafana/dashboard-linter rules ----

/// uneditable-dashboard-rule: "is editable, it should be set to 'editable: false'". A
/// dashboard shipped with the product is provisioned, not edited in place.
#[test]
fn linter_uneditable_dashboard() {
    assert_eq!(
        dashboard()["editable"],
        false,
        "{DASHBOARD}: \"editable\" must be false (dashboard-linter uneditable-dashboard-rule)"
    );
}

/// The linter's `checkTemplate`: the variable exists, uses the `$datasource` variable, is a
/// query variable, is labelled with the title-cased name (a warning in the linter, kept
/// here), is a multi select and its All value is `.+`. includeAll is what makes that All
/// value reachable, so it is required too.
fn check_template(d: &Value, name: &str) -> Vec<String> {
    let Some(t) = d["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
    else {
        return vec![format!("is missing the {name} template")];
    };
    let mut errors = Vec::new();
    let uid = t["datasource"]["uid"].as_str().unwrap_or("");
    if !["$datasource", "${datasource}"].contains(&uid) {
        errors.push(format!(
            "{name} template should use datasource '$datasource', is currently '{uid}'"
        ));
    }
    if t["type"] != "query" {
        errors.push(format!(
            "{name} template should be a Prometheus query, is currently {}",
            t["type"]
        ));
    }
    let mut title = name.to_string();
    title[..1].make_ascii_uppercase();
    if t["label"] != title.as_str() {
        errors.push(format!(
            "{name} template should be labeled '{title}', is currently {}",
            t["label"]
        ));
    }
    if t["multi"] != true {
        errors.push(format!("{name} template should be a multi select"));
    }
    if t["includeAll"] != true {
        errors.push(format!("{name} template should offer All"));
    }
    if t["allValue"] != ".+" {
        errors.push(format!(
            "{name} template allValue should be '.+', is currently {}",
            t["allValue"]
        ));
    }
    errors
}

/// template-job-rule and template-instance-rule.
#[test]
fn linter_template_job_and_instance() {
    let d = dashboard();
    for name in ["job", "instance"] {
        let errors = check_template(&d, name);
        assert!(errors.is_empty(), "{DASHBOARD}: {errors:#?}");
    }
    // The job variable lists the jobs that scrape agents (label_values on a metric only an
    // agent exports), and the instance variable follows the job and group selection.
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let query = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["query"]["query"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(query("job"), "label_values(understudy_member_info, job)");
    assert_eq!(
        query("instance"),
        "label_values(understudy_member_info{job=~\"$job\", group=~\"$group\"}, instance)"
    );
}

/// The rule checks themselves fail on a dashboard that breaks them.
#[test]
fn linter_template_check_finds_each_fault() {
    let bad: Value = serde_json::json!({"templating": {"list": [
        {"name": "instance", "label": "Agent", "type": "custom",
         "datasource": {"uid": "prom-1"}, "multi": false, "includeAll": false}
    ]}});
    assert_eq!(check_template(&bad, "job"), ["is missing the job template"]);
    assert_eq!(check_template(&bad, "instance").len(), 6);
}

/// One token of a PromQL expression, as far as selectors are concerned.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Punct(char),
    /// `=`, `!=`, `=~`, `!~`, `==` and the other comparison operators.
    Op(String),
    Number,
}

fn tokenize(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Token::Str(s));
        } else if c == '[' {
            // A range or subquery duration: no selector inside.
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Number);
        } else if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if "=!<>".contains(c) {
            let start = i;
            while i < chars.len() && "=!~<>".contains(chars[i]) {
                i += 1;
            }
            out.push(Token::Op(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    out
}

/// A label matcher of a selector: (label, operator, value).
type Matcher = (String, String, String);

/// Every vector selector of `expr` with its matchers, as Prometheus's `ExtractSelectors`
/// gives them (a metric name becomes a `__name__` matcher): identifiers that are not
/// functions, aggregations, keywords or label lists, and `{...}` blocks.
fn selectors(expr: &str) -> Vec<Vec<Matcher>> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "atan2",
        "inf",
        "nan",
        "Inf",
        "NaN",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let tokens = tokenize(expr);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(word) if LABEL_LISTS.contains(&word.as_str()) => {
                // Skip the label list in parentheses that follows.
                i += 1;
                if tokens.get(i) == Some(&Token::Punct('(')) {
                    while i < tokens.len() && tokens[i] != Token::Punct(')') {
                        i += 1;
                    }
                }
                i += 1;
            }
            Token::Ident(word) if KEYWORDS.contains(&word.as_str()) => i += 1,
            Token::Ident(word) => {
                let next = tokens.get(i + 1);
                let is_call = next == Some(&Token::Punct('('))
                    || matches!(next, Some(Token::Ident(w)) if w == "by" || w == "without");
                if is_call {
                    i += 1;
                    continue;
                }
                let mut matchers = vec![("__name__".to_string(), "=".to_string(), word.clone())];
                i += 1;
                if tokens.get(i) == Some(&Token::Punct('{')) {
                    let (more, after) = matchers_at(&tokens, i);
                    matchers.extend(more);
                    i = after;
                }
                out.push(matchers);
            }
            Token::Punct('{') => {
                let (matchers, after) = matchers_at(&tokens, i);
                out.push(matchers);
                i = after;
            }
            _ => i += 1,
        }
    }
    out
}

/// The matchers of the `{...}` block that starts at `tokens[open]`, and the index after it.
fn matchers_at(tokens: &[Token], open: usize) -> (Vec<Matcher>, usize) {
    let mut matchers = Vec::new();
    let mut i = open + 1;
    while i < tokens.len() && tokens[i] != Token::Punct('}') {
        if let (Some(Token::Ident(label)), Some(Token::Op(op)), Some(Token::Str(value))) =
            (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
        {
            matchers.push((label.clone(), op.clone(), value.clone()));
            i += 3;
        } else {
            i += 1;
        }
    }
    (matchers, i + 1)
}

/// The linter's `checkForMatcher`: the selector has `name=~"$name"`.
fn check_for_matcher(selector: &[Matcher], name: &str) -> Result<(), String> {
    let wanted = format!("${name}");
    let mut result = Err(format!("{name} selector not found"));
    for (label, op, value) in selector.iter().filter(|(l, _, _)| l == name) {
        if op == "=~" && *value == wanted {
            return Ok(());
        }
        result = Err(format!(
            "{label} selector is {label}{op}\"{value}\", not {name}=~\"{wanted}\""
        ));
    }
    result
}

/// target-job-rule and target-instance-rule: every selector of every query (the linter
/// checks the panels' targets; the annotations' queries are held to the same rule) matches
/// `job=~"$job"` and `instance=~"$instance"`.
#[test]
fn linter_every_selector_matches_job_and_instance() {
    let mut checked = 0;
    for (place, expr) in queries(&dashboard()) {
        let found = selectors(&expr);
        assert!(!found.is_empty(), "{place}: no selector found in {expr:?}");
        for selector in &found {
            for name in ["job", "instance"] {
                if let Err(e) = check_for_matcher(selector, name) {
                    panic!("{place}: {e} in {selector:?} of {expr:?}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} selectors found");
}

#[test]
fn selector_extraction_and_matcher_check() {
    let expr = "max by (group, member) (x{job=~\"$job\", instance=~\"$instance\"} \
                and on (group) label_replace(y{a=\"b\"}[5m], \"l\", \"$1\", \"m\", \"(.*)\")) \
                * 1000 > bool 0 or sum without (instance) (rate(z[$__rate_interval])) or {q=\"1\"}";
    let found = selectors(expr);
    let names: Vec<&str> = found
        .iter()
        .map(|s| s.first().map_or("", |(_, _, v)| v.as_str()))
        .collect();
    assert_eq!(names, ["x", "y", "z", "1"], "{found:?}");
    assert!(check_for_matcher(&found[0], "job").is_ok());
    assert!(check_for_matcher(&found[0], "instance").is_ok());
    assert_eq!(
        check_for_matcher(&found[1], "job"),
        Err("job selector not found".to_string())
    );
    let wrong = selectors("up{job=~\".*understudy.*\"}");
    assert!(check_for_matcher(&wrong[0], "job").is_err());
    let equal = selectors("up{job=\"$job\"}");
    assert!(check_for_matcher(&equal[0], "job").is_err());
}
