//! The Prometheus alert rules (`alerts/understudy.rules.yml`), their promtool unit tests
//! (`alerts/tests/*.yml`), the runbook and the example Alertmanager configuration, checked
//! with the real tools (`promtool`, `amtool`) and against the project's conventions: alert
//! names, labels and annotations, a runbook section and firing / not-firing tests for every
//! alert, and only metric names that the agent exports (`understudy::metrics::METRIC_NAMES`).
//!
//! Does I/O: reads files under `alerts/` and runs promtool / amtool. A missing tool is a
//! failure, never a skip: `./scripts/test` installs them.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::metric_names::understudy_identifiers;

const RULES: &str = "alerts/understudy.rules.yml";
const RUNBOOK: &str = "alerts/runbook.md";
const ALERTMANAGER: &str = "alerts/alertmanager.example.yml";
const RUNBOOK_URL: &str =
    "https://github.com/understudy-project/understudy/blob/main/alerts/runbook.md#";

fn path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read(relative: &str) -> String {
    let p = path(relative);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Runs `tool args...` in the crate root; panics with its output unless it exits 0.
/// Returns stdout.
fn run_tool(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{tool}` ({e}). These tests need promtool and amtool \
                 (Debian packages prometheus and prometheus-alertmanager): run ./scripts/test, \
                 which installs them, or install them yourself"
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        output.status
    );
    stdout
}

/// The promtool unit test files, sorted.
fn test_files() -> Vec<String> {
    let dir = path("alerts/tests");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yml") || name.ends_with(".yaml"))
        .map(|name| format!("alerts/tests/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool unit tests in alerts/tests/");
    files
}

/// One `- alert:` rule of the rules file: its name and the lines of its block.
struct AlertBlock {
    name: String,
    text: String,
}

/// Splits the rules file into alert blocks with plain line handling (the file is YAML; a
/// block runs from `- alert: NAME` to the next rule or group).
fn alert_blocks(rules: &str) -> Vec<AlertBlock> {
    let mut blocks: Vec<AlertBlock> = Vec::new();
    let mut current: Option<AlertBlock> = None;
    for line in rules.lines() {
        let trimmed = line.trim_start();
        let starts_rule = trimmed.starts_with("- alert:") || trimmed.starts_with("- record:");
        let starts_group = trimmed.starts_with("- name:");
        if starts_rule || starts_group {
            blocks.extend(current.take());
        }
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            current = Some(AlertBlock {
                name: name.trim().to_string(),
                text: String::new(),
            });
        }
        if let Some(block) = current.as_mut() {
            block.text.push_str(line);
            block.text.push('\n');
        }
    }
    blocks.extend(current);
    blocks
}

#[test]
fn promtool_accepts_the_rules() {
    run_tool("promtool", &["check", "rules", RULES]);
}

#[test]
fn promtool_unit_tests_pass() {
    let files = test_files();
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = run_tool("promtool", &args);
    assert!(!out.contains("FAILED"), "promtool test rules:\n{out}");
}

#[test]
fn amtool_accepts_the_example_alertmanager_config() {
    run_tool("amtool", &["check-config", ALERTMANAGER]);
}

#[test]
fn critical_alerts_page_and_the_others_go_to_the_webhook() {
    let config = format!("--config.file={ALERTMANAGER}");
    let cases = [
        ("UnderstudyNoRedundancy", "critical", "understudy-pager"),
        ("UnderstudyAddressHeldTwice", "critical", "understudy-pager"),
        (
            "UnderstudyReplicationStale",
            "warning",
            "understudy-webhook",
        ),
        ("UnderstudyTakeover", "info", "understudy-webhook"),
        ("UnderstudyCoordinationDown", "critical", "understudy-pager"),
        ("UnderstudyFencingFailed", "critical", "understudy-pager"),
    ];
    for (alertname, severity, receiver) in cases {
        let out = run_tool(
            "amtool",
            &[
                "config",
                "routes",
                "test",
                &config,
                &format!("alertname={alertname}"),
                &format!("severity={severity}"),
                "group=g1",
            ],
        );
        assert_eq!(
            out.trim(),
            receiver,
            "{alertname} ({severity}) was routed to {out:?}"
        );
    }
}

#[test]
fn alerts_follow_the_mixin_conventions() {
    let blocks = alert_blocks(&read(RULES));
    assert!(
        blocks.len() >= 10,
        "expected at least 10 alerts, found {}",
        blocks.len()
    );
    let mut seen = BTreeSet::new();
    for AlertBlock { name, text } in &blocks {
        assert!(seen.insert(name.clone()), "alert {name} is defined twice");
        assert!(
            name.starts_with("Understudy")
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name.len() > "Understudy".len(),
            "alert {name:?}: names are CamelCase and start with Understudy"
        );
        let severity = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("alert {name} has no severity label"));
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "alert {name}: severity {severity:?} is not critical, warning or info"
        );
        for key in ["summary:", "description:"] {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(key)),
                "alert {name} has no {key} annotation"
            );
        }
        assert!(
            text.contains("{{ $labels."),
            "alert {name}: the annotations should name the affected group/member ({{{{ $labels.* }}}})"
        );
        let runbook_url = format!("runbook_url: {RUNBOOK_URL}{}", name.to_lowercase());
        assert!(
            text.lines().any(|l| l.trim() == runbook_url),
            "alert {name} needs `{runbook_url}`"
        );
    }
    for required in [
        "UnderstudyNoRedundancy",
        "UnderstudyTakeover",
        "UnderstudyAddressHeldTwice",
        "UnderstudyNoMemberOnlineForMain",
        "UnderstudyReplicationFailing",
        "UnderstudyReplicationStale",
        "UnderstudyNeverReplicated",
        "UnderstudyAutoFailoverDisabled",
        "UnderstudyPeerDown",
        "UnderstudyAgentDown",
        "UnderstudyCoordinationDown",
        "UnderstudyFencingFailed",
        "UnderstudyAddressLeaseNotRenewed",
        "UnderstudyAddressLeaseLost",
    ] {
        assert!(seen.contains(required), "alert {required} is missing");
    }
}

#[test]
fn every_alert_has_a_firing_and_a_quiet_unit_test() {
    // In alert_rule_test, `alertname: X` is followed by `exp_alerts: []` (must not fire)
    // or by `exp_alerts:` and a list (must fire with these labels and annotations).
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in test_files() {
        let text = read(&file);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line.strip_prefix("alertname:") else {
                continue;
            };
            match lines.get(i + 1) {
                Some(&"exp_alerts: []") => quiet.insert(name.trim().to_string()),
                Some(&"exp_alerts:") => firing.insert(name.trim().to_string()),
                other => panic!("{file}: `alertname: {name}` followed by {other:?}"),
            };
        }
    }
    for AlertBlock { name, .. } in alert_blocks(&read(RULES)) {
        assert!(
            firing.contains(&name),
            "no promtool test where {name} fires"
        );
        assert!(
            quiet.contains(&name),
            "no promtool test where {name} stays quiet"
        );
    }
}

/// The `exp_labels` blocks of the promtool tests: (file, line, the block's label names).
fn expected_label_sets() -> Vec<(String, usize, Vec<String>)> {
    let mut out = Vec::new();
    for file in test_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "- exp_labels:" {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            // The labels are the following lines indented deeper than `- exp_labels:`'s
            // dash plus two (the list item's keys), up to the next key of the item.
            let labels = lines[i + 1..]
                .iter()
                .take_while(|l| l.len() - l.trim_start().len() > indent + 2)
                .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
                .collect();
            out.push((file.clone(), i + 1, labels));
        }
    }
    out
}

/// Alertmanager groups by `group` (alerts/alertmanager.example.yml, docs/noc.md): every
/// alert carries the redundancy group. promtool compares an alert's labels exactly with
/// `exp_labels`, so a firing expectation with `group` proves the alert has it.
#[test]
fn every_firing_alert_carries_the_group_label() {
    let sets = expected_label_sets();
    assert!(
        sets.len() >= 15,
        "only {} exp_labels blocks found",
        sets.len()
    );
    for (file, line, labels) in &sets {
        assert!(
            labels.iter().any(|l| l == "severity"),
            "{file}:{line}: exp_labels without severity (block not parsed?): {labels:?}"
        );
        assert!(
            labels.iter().any(|l| l == "group"),
            "{file}:{line}: an expected alert without the `group` label: {labels:?}"
        );
    }
    let config = read(ALERTMANAGER);
    assert!(
        config.contains("group_by: [group, alertname]"),
        "{ALERTMANAGER} no longer groups by group"
    );
}

#[test]
fn runbook_has_a_section_per_alert() {
    let runbook = read(RUNBOOK);
    for AlertBlock { name, .. } in alert_blocks(&read(RULES)) {
        assert!(
            runbook.lines().any(|l| l.trim() == format!("## {name}")),
            "{RUNBOOK} has no `## {name}` section (anchor #{})",
            name.to_lowercase()
        );
    }
}

#[test]
fn rules_use_only_exported_metric_names() {
    support::metric_names::assert_only_exported(RULES, &read(RULES));
}

#[test]
fn identifier_scanner_finds_metric_names_only() {
    let found = understudy_identifiers(
        "max(understudy_peer_up{a=\"b\"}) - x_understudy_no + understudy_member_info\n#understudyx",
    );
    let expected: BTreeSet<String> = ["understudy_member_info", "understudy_peer_up"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}
