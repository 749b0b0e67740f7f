//! TLS (`[tls]`): the API, /metrics and the status page over HTTPS (curl and the CLI, which
//! verifies the agent against `--ca` and says so clearly when it cannot); a two-agent group
//! over mutual TLS that heartbeats and takes over; a peer request without a client
//! certificate, and a peer with a certificate from another CA, refused and logged; the
//! configuration rules. Certificates are made at test time with openssl (support::etcd's
//! TestPki: a CA, a certificate for 127.0.0.1 with serverAuth and clientAuth, a client-only
//! certificate).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::etcd::TestPki;
use support::*;

/// A group of `write_group` turned to TLS: https:// peer URLs, and a `[tls]` section naming
/// `cert`, `key` and `ca` (absolute paths). Returns the members with https:// URLs.
fn tls_group(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Vec<GroupMember> {
    let members = write_group(dir, 1, 1);
    members
        .into_iter()
        .map(|m| {
            retls(&m.config, cert, key, ca);
            GroupMember {
                url: m.url.replace("http://", "https://"),
                ..m
            }
        })
        .collect()
}

/// A CA with its certificates (support::etcd's TestPki), made in the new folder `dir`/`name`.
fn pki_in(dir: &Path, name: &str) -> TestPki {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("mkdir");
    TestPki::make(&folder)
}

/// The group's CA (in `dir`/pki) and a [`tls_group`] in `dir`/group with its certificate.
fn group_with_pki(dir: &Path) -> (TestPki, Vec<GroupMember>) {
    let pki = pki_in(dir, "pki");
    let group = tls_group(
        &dir.join("group"),
        &pki.server_cert,
        &pki.server_key,
        &pki.ca,
    );
    (pki, group)
}

/// Rewrites the configuration `file` (as `write_group` wrote it) for TLS with these files.
fn retls(file: &Path, cert: &Path, key: &Path, ca: &Path) {
    let text = std::fs::read_to_string(file).expect("read config");
    let base = match text.find("\n[tls]") {
        Some(i) => text[..i].to_string(),
        None => text.replace("\"http://127.0.0.1:", "\"https://127.0.0.1:"),
    };
    let tls = format!(
        "{base}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        cert.display(),
        key.display(),
        ca.display()
    );
    write(file, &tls);
}

/// Starts the agent of `m` (its log in `log`) and waits until it answers /healthz over HTTPS.
async fn start_tls_agent(m: &GroupMember, ca: &Path, log: &Path) -> Proc {
    start_tls_agent_with(m, ca, log, None).await
}

/// As [`start_tls_agent`], its system CA certificates being those of `system_roots` if given
/// (SSL_CERT_FILE).
async fn start_tls_agent_with(
    m: &GroupMember,
    ca: &Path,
    log: &Path,
    system_roots: Option<&Path>,
) -> Proc {
    let mut cmd = Command::new(bin());
    cmd.args(["run", "--log-format", "json", "--config"])
        .arg(&m.config)
        .env("RUST_LOG", "info");
    if let Some(roots) = system_roots {
        cmd.env("SSL_CERT_FILE", roots);
    }
    let proc = Proc::spawn_logged("understudy run", &mut cmd, log.to_path_buf());
    let client = client_trusting(ca);
    let url = format!("{}/healthz", m.url);
    wait_for_async(Duration::from_secs(10), "/healthz over HTTPS", || async {
        let ok = client.get(&url).send().await.ok()?;
        ok.status().is_success().then_some(())
    })
    .await;
    proc
}

async fn group_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(format!("{url}/api/v1/group"))
        .send()
        .await
        .expect("GET /api/v1/group over HTTPS")
        .json()
        .await
        .expect("JSON")
}

fn curl(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(program("curl", "curl"));
    cmd.args(["-sS", "--max-time", "10"]).args(args);
    cmd.output().expect("run curl")
}

/// An unsigned heartbeat POSTed with curl (no client certificate) to the agent at `url`,
/// trusting `ca`; curl's output is the HTTP status.
fn unsigned_heartbeat(ca: &str, url: &str) -> std::process::Output {
    curl(&[
        "--cacert",
        ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
        "-d",
        "{}",
        &format!("{url}/peer/v1/heartbeat"),
    ])
}

fn log_has(log: &Path, needle: &str) -> bool {
    std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle))
}

#[tokio::test]
async fn a_group_over_mutual_tls_serves_https_heartbeats_and_takes_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, group) = group_with_pki(dir.path());
    let other = pki_in(dir.path(), "other-ca");
    let (main, backup) = (&group[0], &group[1]);
    let main_log = dir.path().join("main-1.log");
    let _main = start_tls_agent(main, &pki.ca, &main_log).await;
    let _backup = start_tls_agent(backup, &pki.ca, &dir.path().join("backup-1.log")).await;
    let https = client_trusting(&pki.ca);

    // Heartbeats and replication over mutual TLS: each agent hears the other, the Backup
    // replicates the Main.
    for url in [&main.url, &backup.url] {
        wait_for_async(
            Duration::from_secs(20),
            "every member heard and main-1 replicated, over TLS",
            || async {
                let g = group_json(&https, url).await;
                (all_heard(&g) && member(&g, "backup-1")["last_replication"]["result"] == "success")
                    .then_some(())
            },
        )
        .await;
    }

    // The API, /metrics and the status page over HTTPS with curl, without a client
    // certificate; plain HTTP to the same port gets no answer from the API.
    let ca = pki.ca.to_string_lossy().to_string();
    let out = curl(&["--cacert", &ca, &format!("{}/api/v1/group", main.url)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let g: Value = serde_json::from_slice(&out.stdout).expect("group JSON from curl");
    assert_eq!(g["agent"], "main-1", "{g}");
    let out = curl(&["--cacert", &ca, &format!("{}/metrics", main.url)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("understudy_member_state"),
        "{}",
        text(&out.stdout)
    );
    let out = curl(&[
        "--cacert",
        &ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{}/", main.url),
    ]);
    assert_eq!(text(&out.stdout), "200", "{}", text(&out.stderr));
    let plain = main.url.replace("https://", "http://");
    let out = curl(&[&format!("{plain}/api/v1/group")]);
    assert!(
        !out.status.success() || !text(&out.stdout).contains("\"agent\""),
        "plain HTTP answered on a TLS listener: {}",
        text(&out.stdout)
    );

    // The CLI: verified against --ca; without it (system roots) or with another CA it fails
    // and says why.
    let out = understudy(["status", "--url", main.url.as_str(), "--ca", &ca]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backup-1"),
        "{}",
        text(&out.stdout)
    );
    let other_ca = other.ca.to_string_lossy().to_string();
    for args in [
        vec!["status", "--url", main.url.as_str(), "--ca", &other_ca],
        vec!["status", "--url", main.url.as_str()],
    ] {
        let out = Command::new(bin())
            .args(&args)
            .env_remove("UNDERSTUDY_CA")
            // No system CA store of the machine may know the test's CA; make sure of it.
            .env("SSL_CERT_FILE", &other.ca)
            .output()
            .expect("run understudy");
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        // The other CA has the same name as the group's: its signature does not verify.
        assert!(
            err.contains("the agent's TLS certificate is not trusted (UnknownIssuer)")
                || err.contains("the agent's TLS certificate is not trusted (BadSignature)"),
            "{args:?}: {err}"
        );
        let hint = if args.contains(&"--ca") {
            "--ca?"
        } else {
            "with --ca FILE"
        };
        assert!(err.contains(hint), "{args:?}: {err}");
    }

    // A peer request without a client certificate: refused (403) and logged with the address.
    let out = unsigned_heartbeat(&ca, &main.url);
    assert_eq!(text(&out.stdout), "403", "{}", text(&out.stderr));
    wait_for(
        Duration::from_secs(5),
        "the refusal in main-1's log",
        || log_has(&main_log, "no client certificate (mutual TLS)").then_some(()),
    );

    // A takeover over TLS, asked through the CLI.
    let out = understudy([
        "takeover",
        "--url",
        backup.url.as_str(),
        "--ca",
        &ca,
        "--token",
        GROUP_TOKEN,
        "--backup",
        "backup-1",
        "--main",
        "main-1",
        "--reason",
        "tls test",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    for url in [&main.url, &backup.url] {
        wait_for_async(
            Duration::from_secs(10),
            "the takeover seen by both",
            || async {
                let g = group_json(&https, url).await;
                (member(&g, "backup-1")["acting_for"] == "main-1").then_some(g)
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_peer_with_a_certificate_from_another_ca_is_refused_and_logged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, group) = group_with_pki(dir.path());
    let other = pki_in(dir.path(), "other-ca");
    let (main, backup) = (&group[0], &group[1]);
    // backup-1 trusts the group's CA but presents a certificate from another CA.
    retls(
        &backup.config,
        &other.server_cert,
        &other.server_key,
        &pki.ca,
    );
    let main_log = dir.path().join("main-1.log");
    let _main = start_tls_agent(main, &pki.ca, &main_log).await;
    let _rogue = start_tls_agent(backup, &other.ca, &dir.path().join("rogue.log")).await;
    let https = client_trusting(&pki.ca);

    wait_for(
        Duration::from_secs(10),
        "the refusal in main-1's log",
        || log_has(&main_log, "TLS client certificate refused").then_some(()),
    );
    let log = std::fs::read_to_string(&main_log).expect("main-1's log");
    let line = log
        .lines()
        .find(|l| l.contains("TLS client certificate refused"))
        .expect("the line");
    assert!(line.contains(r#""client":"127.0.0.1:"#), "{line}");
    // The other CA has the same name as the group's (TestPki's): its signature does not verify.
    assert!(
        line.contains("UnknownIssuer") || line.contains("BadSignature"),
        "{line}"
    );

    // The group stays consistent: main-1 never hears the rogue, keeps its address and is
    // never taken over; nothing it would accept came from backup-1.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let g = group_json(&https, &main.url).await;
    assert_eq!(
        member(&g, "backup-1")["operational_state"],
        "unknown",
        "{g}"
    );
    assert_eq!(member(&g, "main-1")["operational_state"], "online", "{g}");
    assert!(
        !log.contains("peer request refused"),
        "a request of the rogue got past TLS to the peer routes: {log}"
    );

    // With its proper certificate, backup-1 is heard.
    drop(_rogue);
    retls(&backup.config, &pki.server_cert, &pki.server_key, &pki.ca);
    let _backup = start_tls_agent(backup, &pki.ca, &dir.path().join("backup-1.log")).await;
    wait_for_async(
        Duration::from_secs(10),
        "backup-1 heard over TLS",
        || async { all_heard(&group_json(&https, &main.url).await).then_some(()) },
    )
    .await;
}

/// Without a `ca`: peers are verified against the system's CA certificates (here the test's
/// CA, through SSL_CERT_FILE), no client certificate is asked for, and the peer protocol is
/// protected by its signatures alone.
#[tokio::test]
async fn without_a_ca_peers_are_verified_against_the_system_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, group) = group_with_pki(dir.path());
    for m in &group {
        let cfg = std::fs::read_to_string(&m.config).expect("read");
        let no_ca = cfg.replace(&format!("ca = \"{}\"\n", pki.ca.display()), "");
        assert_ne!(cfg, no_ca);
        write(&m.config, &no_ca);
        let out = understudy_on(&["check-config"], &m.config);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("[tls] has no ca"),
            "{}",
            text(&out.stderr)
        );
    }
    let (main, backup) = (&group[0], &group[1]);
    let main_log = dir.path().join("main-1.log");
    let roots = Some(pki.ca.as_path());
    let _main = start_tls_agent_with(main, &pki.ca, &main_log, roots).await;
    let backup_log = dir.path().join("backup-1.log");
    let _backup = start_tls_agent_with(backup, &pki.ca, &backup_log, roots).await;
    let https = client_trusting(&pki.ca);
    wait_for_async(Duration::from_secs(10), "both heard over TLS", || async {
        all_heard(&group_json(&https, &main.url).await).then_some(())
    })
    .await;
    // A peer request without a client certificate reaches the signature check (401), not a
    // TLS refusal (403).
    let ca = pki.ca.to_string_lossy().to_string();
    let out = unsigned_heartbeat(&ca, &main.url);
    assert_eq!(text(&out.stdout), "401", "{}", text(&out.stderr));
}

/// check-config (and `run`, exit 64) on a TLS configuration with one thing wrong.
#[test]
fn tls_configuration_rules_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (pki, group) = group_with_pki(dir.path());
    let cfg = &group[0].config;
    let good = std::fs::read_to_string(cfg).expect("read");
    let out = understudy_on(&["check-config"], cfg);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("[tls]"), "{}", text(&out.stdout));

    let check = |text_: &str, want: &str| {
        write(cfg, text_);
        let out = understudy_on(&["check-config"], cfg);
        assert!(!out.status.success(), "accepted:\n{text_}");
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
        let out = understudy_on(&["run", "--config"], cfg);
        assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(want), "{}", text(&out.stderr));
    };
    // An http:// peer in a TLS group.
    check(
        &good.replacen("\"https://127.0.0.1:", "\"http://127.0.0.1:", 1),
        "is plain HTTP in a group with a [tls] section",
    );
    // https:// peers without [tls].
    let no_tls = &good[..good.find("\n[tls]").expect("[tls]")];
    check(no_tls, "is HTTPS but there is no [tls] section");
    // A missing key, a certificate that is no certificate, a key of another certificate.
    let missing = dir.path().join("nowhere-key.pem");
    check(
        &good.replace(
            &pki.server_key.display().to_string(),
            &missing.display().to_string(),
        ),
        &format!("tls.key = {}", missing.display()),
    );
    check(
        &good.replacen(
            &format!("cert = \"{}\"", pki.server_cert.display()),
            &format!("cert = \"{}\"", pki.server_key.display()),
            1,
        ),
        &format!(
            "tls.cert = {}: no certificate in the file",
            pki.server_key.display()
        ),
    );
    check(
        &good.replace(
            &pki.server_key.display().to_string(),
            &pki.client_key.display().to_string(),
        ),
        &format!(
            "tls.cert = {}: does not go with the key",
            pki.server_cert.display()
        ),
    );
    check(
        &good.replacen(
            &format!("ca = \"{}\"", pki.ca.display()),
            &format!("ca = \"{}\"", missing.display()),
            1,
        ),
        &format!("tls.ca = {}: cannot read", missing.display()),
    );
}
