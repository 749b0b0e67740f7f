//! The SNMP commands the product prints or documents, run as they are written: the commands
//! `understudy demo` prints, on a stock net-snmp configuration that loads no MIB module
//! (Debian's `snmp.conf` says `mibs :`), and the `smilint` block of `mibs/README.md`.
//!
//! Does I/O: starts the demo (loopback, ephemeral ports) and runs bash, net-snmp's tools and
//! smilint. A missing tool fails the test (`./scripts/test` installs them).

mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use support::snmp::{std_mibs, wait_replicated};
use support::{describe, output_dir, program, repo, text, Demo};

/// Runs `line` with bash in the repository root, as a user whose `~/.snmp/snmp.conf` says
/// `mibs :` and with no MIB settings in the environment.
fn as_stock_user(home: &Path, line: &str) -> (Command, Output) {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(line)
        .current_dir(repo())
        .env("HOME", home)
        .env("SNMP_PERSISTENT_DIR", home.join("persistent"))
        .env_remove("MIBS")
        .env_remove("MIBDIRS")
        .env_remove("SNMPCONFPATH");
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash: {e}"));
    (cmd, out)
}

/// The shell commands of the demo's `snmp:` lines (the text after `snmp: ` and the
/// continuation lines that start a command), and the flags its "names" line says to add.
fn printed_commands(banner: &str) -> (Vec<String>, String) {
    let mut commands = Vec::new();
    let mut names = None;
    let mut in_snmp = false;
    for line in banner.lines() {
        if let Some(rest) = line.strip_prefix("snmp: ") {
            in_snmp = true;
            commands.push(rest.trim().to_string());
            continue;
        }
        if line.starts_with("try:") {
            in_snmp = false;
        }
        // Log lines may come between the banner's lines (the log shares the file).
        if !in_snmp || !line.starts_with("      ") {
            continue;
        }
        let line = line.trim();
        if line.starts_with("snmpwalk ") || line.starts_with("snmpset ") {
            commands.push(line.to_string());
        } else if let Some((_, flags)) = line.split_once(" add ") {
            names = Some(flags.trim().to_string());
        }
    }
    let names = names.unwrap_or_else(|| panic!("no `add -M ...` names line in:\n{banner}"));
    (commands, names)
}

#[test]
fn the_demos_snmp_commands_run_as_printed_on_a_stock_snmp_conf() {
    program("snmpwalk", "snmp");
    let log = output_dir("snmp_docs").join("demo.log");
    let _ = fs::remove_file(&log);
    let demo = Demo::start_logged(&[], log.clone());
    let first = demo.members[0].snmp.clone();
    wait_replicated(&demo.member("backup-1").snmp, 2);
    let banner = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let (commands, names) = printed_commands(&banner);
    assert_eq!(commands.len(), 3, "{commands:?}\n{banner}");

    let home = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(home.path().join(".snmp")).expect("~/.snmp");
    fs::write(home.path().join(".snmp").join("snmp.conf"), "mibs :\n").expect("snmp.conf");

    let mut outputs = Vec::new();
    for command in &commands {
        assert!(command.contains(&first), "{command} is not for {first}");
        let (cmd, out) = as_stock_user(home.path(), command);
        let stderr = text(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("Unknown Object Identifier"),
            "the demo's printed `{command}` fails on a stock snmp.conf\n{}",
            describe(&cmd, &out)
        );
        outputs.push(text(&out.stdout));
    }
    // The v2c walk of the MIB, the v3 walk of the system group, the manual takeover.
    assert!(
        outputs[0].contains(".32473.36.1.1.1.0 = STRING: \"demo\""),
        "v2c walk: {}",
        outputs[0]
    );
    assert!(
        outputs[1].contains(".1.3.6.1.2.1.1.1.0 = STRING: \"understudy ")
            || outputs[1].contains("iso.3.6.1.2.1.1.1.0 = STRING: \"understudy "),
        "v3 walk of system: {}",
        outputs[1]
    );
    assert!(
        outputs[2].contains(".32473.36.1.2.1.12.2 = INTEGER: 1"),
        "snmpset: {}",
        outputs[2]
    );

    // With the flags the banner names, from the source tree: names, and the row of each
    // member (mibs/README.md: how to find a member's row index).
    let flags = names.replace("STD", &std_mibs().display().to_string());
    let named = format!("snmpwalk -v2c -c public {flags} {first} UNDERSTUDY-MIB::rgMemberName");
    let (cmd, out) = as_stock_user(home.path(), &named);
    let walk = text(&out.stdout);
    assert!(
        out.status.success()
            && walk.contains("UNDERSTUDY-MIB::rgMemberName.1 = STRING: main-1")
            && walk.contains("UNDERSTUDY-MIB::rgMemberName.2 = STRING: backup-1"),
        "{}",
        describe(&cmd, &out)
    );
}

#[test]
fn mibs_readme_smilint_block_prints_nothing() {
    program("smilint", "smitools");
    let readme = fs::read_to_string(repo().join("mibs").join("README.md")).expect("README");
    let block = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block))
        .find(|block| block.contains("smilint -l 6"))
        .expect("mibs/README.md has a sh block running smilint -l 6");
    let script: String = block
        .lines()
        .map(|line| match line.starts_with("STD=") {
            true => format!("STD='{}'\n", std_mibs().display()),
            false => format!("{line}\n"),
        })
        .collect();
    assert!(script.contains("STD='"), "the block sets STD:\n{block}");
    let home = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -eu\n{script}"))
        .current_dir(repo())
        .env("HOME", home.path())
        .env_remove("SMIPATH");
    let out = cmd.output().expect("bash");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "the smilint block of mibs/README.md printed something\n{}",
        describe(&cmd, &out)
    );
}

#[test]
fn printed_commands_are_read_from_the_banner() {
    let banner = "SNMP: ...\n      no notification targets\n\
                  snmp: snmpwalk -v2c -c public 127.0.0.1:1 1.3\n      \
                  snmpset -v2c -c private 127.0.0.1:1 1.3.2 i 1  # comment\n      \
                  names instead of numbers (X): from the source tree add -M +STD:mibs -m A:B\n      \
                  (STD = ...)\ntry:  curl -s http://x\n";
    let (commands, names) = printed_commands(banner);
    assert_eq!(
        commands,
        [
            "snmpwalk -v2c -c public 127.0.0.1:1 1.3",
            "snmpset -v2c -c private 127.0.0.1:1 1.3.2 i 1  # comment"
        ]
    );
    assert_eq!(names, "-M +STD:mibs -m A:B");
}
