//! The Debian package and its systemd unit (README "Installing the package"):
//! - the unit passes `systemd-analyze verify` (its ExecStart pointed at the built binary, its
//!   man pages generated), and a broken copy does not;
//! - the notify protocol: `understudy run` with `NOTIFY_SOCKET` and `WATCHDOG_USEC` pointing at
//!   a socket this test reads says READY=1 only after its first heartbeat round and its
//!   address set-up (its on_online hook has run), WATCHDOG=1 at half the interval, and
//!   STOPPING=1 on SIGTERM;
//! - the .deb, built by scripts/package from the debug build (stripped; the release build is
//!   the script's default), holds every asset, the conffile and the unit; as root it is
//!   installed with `dpkg -i` (user, directories, the unit enabled and nothing started, man
//!   pages, the installed alert rules' tests pass) and purged. Not as root, the install is
//!   skipped with a printed reason.
//!
//! Needs systemd-analyze (Debian systemd), cargo-deb, dpkg, man-db and promtool
//! (scripts/test installs them). Does I/O.

mod support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e}. Run ./scripts/test, which installs it")
    })
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{}", describe(cmd, &out));
    text(&out.stdout)
}

/// The man pages and completions the binary generates, under `dir` (`dir/man/man1/...`).
fn generate_docs(dir: &Path) {
    run_ok(
        Command::new(bin())
            .args(["generate-docs", "--out"])
            .arg(dir),
    );
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("debian/understudy.service")).expect("the unit")
}

/// `systemd-analyze verify` on `unit` (written as understudy.service in `dir`) with the man
/// pages in `man`: true when it exits 0 and says nothing (it only warns about unknown keys
/// and bad values), and what it said.
fn verify(dir: &Path, unit: &str, man: &Path) -> (bool, String) {
    let path = dir.join("understudy.service");
    write(&path, unit);
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", man));
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.success() && said.trim().is_empty(), said)
}

#[test]
fn the_unit_passes_systemd_analyze_verify_and_a_broken_one_does_not() {
    require_tool("systemd-analyze", &["--version"], "systemd");
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("docs");
    generate_docs(&docs);
    let man = docs.join("man");
    let unit = unit_text();
    assert!(
        unit.contains("\nExecStart=/usr/bin/understudy run "),
        "{unit}"
    );
    // verify checks that ExecStart's program exists: the built binary stands in for the
    // installed one.
    let here = unit.replace("/usr/bin/understudy", bin());
    let (clean, said) = verify(dir.path(), &here, &man);
    assert!(clean, "systemd-analyze verify: {said}");

    let broken = [
        (
            "a missing program",
            here.replace(bin(), "/nonexistent/understudy"),
        ),
        (
            "a misspelt key",
            here.replace("\nWatchdogSec=", "\nWatchdogSecs="),
        ),
        ("a bad value", here.replace("\nType=notify", "\nType=notfy")),
        (
            "a missing man page",
            here.replace("man:understudy-run(1)", "man:understudy-running(1)"),
        ),
    ];
    for (what, unit) in broken {
        let (clean, said) = verify(dir.path(), &unit, &man);
        assert!(!clean, "{what}: systemd-analyze verify found nothing");
        assert!(!said.trim().is_empty(), "{what}: no message");
    }

    // What the unit promises (README "Installing the package").
    let settings: Vec<&str> = unit.lines().map(str::trim).collect();
    for line in [
        "Type=notify",
        "User=understudy",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=understudy",
        "ConfigurationDirectory=understudy",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_PACKET AF_UNIX",
        "Restart=on-failure",
        "RestartPreventExitStatus=64 65",
        "ConditionFileNotEmpty=/etc/understudy/understudy.toml",
    ] {
        assert!(settings.contains(&line), "the unit lacks {line}");
    }
    assert!(
        settings.iter().any(|l| l.starts_with("WatchdogSec=")),
        "the unit sets no WatchdogSec"
    );
}

/// One message from the notify socket, or None after `limit`.
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket
        .set_read_timeout(Some(limit))
        .expect("socket time-out");
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("notify socket: {e}"),
    }
}

#[test]
fn run_tells_the_service_manager_ready_after_its_first_round_then_watchdog_then_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let main = &group[0];
    // The on_online hook takes a second and then notes that it ran: READY must wait for it.
    let marker = dir.path().join("online-hook-ran");
    let config = std::fs::read_to_string(&main.config).expect("config");
    let config = format!(
        "{config}\n[hooks]\non_online = [\"/bin/sh\", \"-c\", \"sleep 1; echo online \
         $UNDERSTUDY_ADDRESS > {}\"]\n",
        marker.display()
    );
    write(&main.config, &config);
    // backup-1's port accepts and never answers: the first heartbeat round lasts
    // peer.request_timeout (500 ms).
    let backup_port: u16 = group[1]
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("backup-1's port");
    let silent = std::net::TcpListener::bind(("127.0.0.1", backup_port)).expect("backup port");

    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    let log = output_dir("package").join("notify-agent.log");
    let started = Instant::now();
    let mut agent = Proc::spawn_logged(
        "understudy run",
        Command::new(bin())
            .args(["run", "--config"])
            .arg(&main.config)
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "1000000"),
        log,
    );

    let first = next_message(&socket, Duration::from_secs(15));
    let ready_after = started.elapsed();
    agent.assert_running();
    let first = first.expect("a first message from the agent within 15 s");
    assert_eq!(
        first, "READY=1\nSTATUS=main-1: online (192.0.2.10)",
        "the first message is READY=1 with the member's state"
    );
    // The address set-up, hooks included, came first; so did the heartbeat round before it.
    let hook = std::fs::read_to_string(&marker).unwrap_or_default();
    assert_eq!(
        hook.trim(),
        "online 192.0.2.10",
        "READY=1 came before the on_online hook had run"
    );
    assert!(
        ready_after >= Duration::from_millis(1_500),
        "READY=1 after {ready_after:?}: sooner than the first round (500 ms) and the hook (1 s)"
    );
    assert!(
        agent
            .log_text()
            .contains("ready: first heartbeat round done, address set up"),
        "the agent's log: {}",
        agent.log_tail(20)
    );
    drop(silent); // backup-1 now refuses at once: quick rounds

    // WATCHDOG=1 every half second (WATCHDOG_USEC is 1 s), for three seconds.
    let mut pings = Vec::new();
    let watch_from = Instant::now();
    while watch_from.elapsed() < Duration::from_secs(3) {
        if let Some(m) = next_message(&socket, Duration::from_millis(1_500)) {
            assert_eq!(m, "WATCHDOG=1", "between READY and shutdown");
            pings.push(Instant::now());
        }
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        (4..=8).contains(&pings.len()),
        "{} pings in 3 s, expected about 6: gaps {gaps:?}",
        pings.len()
    );
    let longest = gaps.iter().max().copied().unwrap_or_default();
    assert!(
        longest < Duration::from_millis(1_000),
        "a gap of {longest:?} between pings: the service manager (1 s) would restart the agent"
    );
    let mean = gaps.iter().sum::<Duration>() / gaps.len().max(1) as u32;
    assert!(
        mean >= Duration::from_millis(350) && mean <= Duration::from_millis(700),
        "mean gap {mean:?}, expected about 500 ms: {gaps:?}"
    );

    eprintln!(
        "notify: READY=1 {ready_after:?} after the start; {} WATCHDOG=1 in 3 s, mean gap \
         {mean:?}, longest {longest:?}",
        pings.len()
    );

    // SIGTERM: STOPPING=1 (pings that were in flight may come first), then exit 0.
    support::process::signal(agent.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stopping = None;
    while Instant::now() < deadline && stopping.is_none() {
        match next_message(&socket, Duration::from_millis(500)) {
            Some(m) if m == "WATCHDOG=1" => {}
            Some(m) => stopping = Some(m),
            None => {}
        }
    }
    assert_eq!(
        stopping.as_deref(),
        Some("STOPPING=1\nSTATUS=shutting down"),
        "after SIGTERM"
    );
    let status = agent.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit after SIGTERM: {status:?}"
    );
}

/// What the package must hold (README "Installing the package"), as dpkg-deb -c lists it.
const ASSETS: &[&str] = &[
    "./usr/bin/understudy",
    "./usr/lib/systemd/system/understudy.service",
    "./etc/default/understudy",
    "./usr/share/man/man1/understudy.1.gz",
    "./usr/share/man/man1/understudy-run.1.gz",
    "./usr/share/man/man1/understudy-check-config.1.gz",
    "./usr/share/man/man1/understudy-demo.1.gz",
    "./usr/share/man/man1/understudy-status.1.gz",
    "./usr/share/man/man1/understudy-takeover.1.gz",
    "./usr/share/man/man1/understudy-reverse-takeover.1.gz",
    "./usr/share/man/man1/understudy-reconfigure.1.gz",
    "./usr/share/man/man1/understudy-replace-takeover.1.gz",
    "./usr/share/man/man1/understudy-auto-failover.1.gz",
    "./usr/share/man/man1/understudy-replicate.1.gz",
    "./usr/share/man/man1/understudy-events.1.gz",
    "./usr/share/bash-completion/completions/understudy",
    "./usr/share/zsh/vendor-completions/_understudy",
    "./usr/share/fish/vendor_completions.d/understudy.fish",
    "./usr/share/snmp/mibs/UNDERSTUDY-MIB.txt",
    "./usr/share/understudy/mibs/README.md",
    "./usr/share/understudy/mibs/snmp_exporter/generator.yml",
    "./usr/share/understudy/alerts/understudy.rules.yml",
    "./usr/share/understudy/alerts/runbook.md",
    "./usr/share/understudy/alerts/alertmanager.example.yml",
    "./usr/share/understudy/dashboards/understudy.json",
    "./usr/share/doc/understudy/README.md",
    "./usr/share/doc/understudy/copyright",
    "./usr/share/doc/understudy/examples/two-server/main-1.toml",
    "./usr/share/doc/understudy/examples/two-server/backup-1.toml",
    "./usr/share/doc/understudy/examples/n-plus-1/main-1.toml",
    "./usr/share/doc/understudy/examples/n-plus-1/backup-1.toml",
    "./usr/share/doc/understudy/examples/tls/main-1.toml",
    "./usr/share/doc/understudy/examples/tls/make-certs.sh",
];

/// Removes the package when dropped (also when the test fails).
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "understudy"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    run_ok(Command::new("id").arg("-u")).trim() == "0"
}

/// Processes running the installed binary.
fn installed_processes() -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(exe) = std::fs::read_link(e.path().join("exe")) {
            if exe == Path::new("/usr/bin/understudy") {
                found.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn the_deb_holds_every_asset_and_installs_and_purges_cleanly() {
    require_tool(
        "cargo",
        &["deb", "--version"],
        "cargo-deb (cargo install cargo-deb)",
    );
    require_tool("dpkg-deb", &["--version"], "dpkg");
    let out = output_dir("package").join("deb");
    let _ = std::fs::remove_dir_all(&out);
    let script = repo().join("scripts/package");
    run_ok(Command::new(&script).args(["--out"]).arg(&out).args([
        "--from-binary",
        bin(),
        "--",
        "--fast",
    ]));
    let deb: PathBuf = std::fs::read_dir(&out)
        .expect("package output")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .unwrap_or_else(|| panic!("no .deb in {}", out.display()));

    let field = |name: &str| {
        run_ok(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "understudy");
    assert_eq!(field("Section"), "net");
    assert!(field("Depends").contains("adduser"), "{}", field("Depends"));
    assert!(field("Depends").contains("libc6"), "{}", field("Depends"));

    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for asset in ASSETS {
        assert!(
            paths.contains(asset),
            "the package lacks {asset}:\n{listing}"
        );
    }
    for test in std::fs::read_dir(repo().join("alerts/tests"))
        .expect("alerts/tests")
        .flatten()
    {
        let name = format!(
            "./usr/share/understudy/alerts/tests/{}",
            test.file_name().to_string_lossy()
        );
        assert!(paths.contains(&name.as_str()), "the package lacks {name}");
    }
    let info = run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for part in ["conffiles", "postinst", "postrm", "prerm"] {
        assert!(
            info.contains(part),
            "no {part} in the control archive:\n{info}"
        );
    }
    let control = |file: &str| {
        run_ok(Command::new("sh").arg("-c").arg(format!(
            "dpkg-deb --ctrl-tarfile '{}' | tar -xO ./{file}",
            deb.display()
        )))
    };
    assert_eq!(control("conffiles").trim(), "/etc/default/understudy");
    let postinst = control("postinst");
    assert!(postinst.contains("adduser --system"), "{postinst}");
    assert!(
        postinst.contains("deb-systemd-helper enable understudy.service"),
        "{postinst}"
    );
    let unpacked = out.join("unpacked");
    run_ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked));
    assert_eq!(
        std::fs::read_to_string(unpacked.join("usr/lib/systemd/system/understudy.service"))
            .expect("packaged unit"),
        unit_text(),
        "the packaged unit is debian/understudy.service"
    );

    if !is_root() {
        eprintln!(
            "package: SKIPPED installing it: dpkg -i needs root (CI runs as root); the .deb \
             was built and its contents checked"
        );
        return;
    }
    let installed_before = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", "understudy"])
        .output()
        .is_ok_and(|o| text(&o.stdout).contains("installed"));
    assert!(
        !installed_before,
        "understudy is installed on this machine already; this test installs and purges the \
         package: remove it first (dpkg --purge understudy)"
    );
    let guard = Installed;
    run_ok(Command::new("dpkg").arg("-i").arg(&deb));

    let passwd = run_ok(Command::new("getent").args(["passwd", "understudy"]));
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields.get(5), Some(&"/var/lib/understudy"), "{passwd}");
    assert!(
        fields.get(6).is_some_and(|s| s.ends_with("nologin")),
        "a system user without a login shell: {passwd}"
    );
    let uid: u32 = fields[2].parse().expect("uid");
    let state = std::fs::metadata("/var/lib/understudy").expect("/var/lib/understudy");
    assert_eq!(
        state.uid(),
        uid,
        "/var/lib/understudy belongs to understudy"
    );
    assert_eq!(state.mode() & 0o777, 0o750);
    let etc = std::fs::metadata("/etc/understudy").expect("/etc/understudy");
    assert_eq!((etc.uid(), etc.mode() & 0o777), (0, 0o750));
    // Enabled (deb-systemd-helper works without a running systemd), not started: there is
    // no configuration, and no systemd here to start it anyway.
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/understudy.service").exists(),
        "the unit is not enabled"
    );
    assert!(
        installed_processes().is_empty(),
        "the installed agent runs: {:?}",
        installed_processes()
    );
    let version = run_ok(Command::new("/usr/bin/understudy").arg("--version"));
    assert!(version.starts_with("understudy "), "{version}");
    let page = run_ok(
        Command::new("man")
            .args(["-l", "/usr/share/man/man1/understudy-run.1.gz"])
            .env("MANWIDTH", "80"),
    );
    assert!(page.contains("understudy-run"), "{page}");
    // The installed alert rules with their installed tests.
    let tests: Vec<PathBuf> = std::fs::read_dir("/usr/share/understudy/alerts/tests")
        .expect("installed alert tests")
        .flatten()
        .map(|e| e.path())
        .collect();
    run_ok(
        Command::new(program("promtool", "prometheus"))
            .args(["test", "rules"])
            .args(&tests),
    );

    run_ok(Command::new("dpkg").args(["--purge", "understudy"]));
    std::mem::forget(guard);
    for gone in [
        "/usr/bin/understudy",
        "/var/lib/understudy",
        "/etc/understudy",
        "/etc/default/understudy",
        "/etc/systemd/system/multi-user.target.wants/understudy.service",
    ] {
        assert!(
            !Path::new(gone).exists(),
            "{gone} is still there after purge"
        );
    }
    let user = run(Command::new("getent").args(["passwd", "understudy"]));
    assert!(
        !user.status.success(),
        "the user is still there after purge"
    );
    let group = run(Command::new("getent").args(["group", "understudy"]));
    assert!(
        !group.status.success(),
        "the group is still there after purge"
    );
}
