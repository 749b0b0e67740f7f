//! Which `understudy_` metric names a text (PromQL, YAML, JSON, prose) uses, and which of
//! those the agent does not export (the alert-rule and dashboard tests); one sample's value in
//! a scrape. Pure.

use std::collections::BTreeSet;

use understudy::metrics::METRIC_NAMES;

/// Every identifier in `text` that starts with `understudy_` (a metric name, as far as
/// PromQL, YAML or prose is concerned).
pub fn understudy_identifiers(text: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("understudy_") {
        if text[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        found.insert(text[i..].chars().take_while(|&c| is_ident(c)).collect());
    }
    found
}

/// Asserts that `text` (named `what`) uses at least one metric and only exported ones.
pub fn assert_only_exported(what: &str, text: &str) {
    let known: BTreeSet<&str> = METRIC_NAMES.iter().copied().collect();
    let used = understudy_identifiers(text);
    assert!(!used.is_empty(), "no understudy_ metric found in {what}");
    let unknown: Vec<&String> = used
        .iter()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "{what} uses metrics the agent does not export: {unknown:?} (known: {known:?})"
    );
}

/// The value of the sample `sample` (name and labels, as printed) in Prometheus text.
pub fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample))
        .and_then(|v| v.trim().parse().ok())
}

/// Fails unless `promtool check metrics` (Debian package prometheus) accepts `text` without a
/// word; `what` names the text in the failure.
pub fn assert_promtool_accepts(what: &str, text: &str) {
    use std::io::Write;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool (Debian package prometheus) is needed: run ./scripts/test ({e})")
        });
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "{what}: promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
