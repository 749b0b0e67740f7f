//! The status page in a real headless Chromium: starts the demo group, then runs
//! `tests/browser/status_page.mjs` (playwright-core driving Debian's `/usr/bin/chromium`)
//! against backup-1's page. The script takes over main-1 through the drop-down and Go, checks
//! both rows turn yellow and the banner shows, that a refusal lists its failed preconditions,
//! reverses the takeover, and reads the page without JavaScript. Screenshots are written to
//! `target/test-output/browser/` (`status-page-after-takeover.png` is the one in docs/).
//!
//! Does I/O: runs `npm ci` in `tests/browser/` when `node_modules` is missing, starts the demo
//! on 127.0.0.1 (HTTP 23440+) and a browser. A missing tool is a failure, never a skip:
//! `./scripts/test` installs them (Debian packages `nodejs`, `npm`, `chromium`).

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// First HTTP port of the demo (main-1; backup-1 is +1). Apart from the defaults (9400/16100)
/// and from the other tests (e2e_alerting uses 23400+).
const DEMO_HTTP: u16 = 23440;
const DEMO_SNMP: u16 = 23460;
const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// `target/test-output/browser` (next to the integration tests' own tmp dir).
fn output_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("test-output/browser");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn require(tool: &str, args: &[&str], package: &str) {
    let ok = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "cannot run `{tool} {}`: this test needs the Debian package {package}. Run \
         ./scripts/test, which installs it (or apt-get install {package})",
        args.join(" ")
    );
}

/// A child process killed (and reaped) on drop, also when the test fails.
struct Killed {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Killed {
    fn spawn(name: &'static str, cmd: &mut Command, log: PathBuf) -> Killed {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Killed { name, child, log }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit; kills it after that.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} log ({}):\n{}",
                self.name,
                self.log.display(),
                self.log_text()
            );
        }
    }
}

/// A minimal HTTP GET of `path` on 127.0.0.1:`port`; the body, if the status is 200.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Waits until backup-1 has replicated main-1 and the group is redundant.
fn wait_ready(demo: &mut Killed) {
    let start = Instant::now();
    loop {
        let ready = http_get(DEMO_HTTP + 1, "/api/v1/group")
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .is_some_and(|g| {
                g["redundancy"]["redundant"] == true
                    && g["members"].as_array().is_some_and(|ms| {
                        ms.iter().any(|m| {
                            m["name"] == "backup-1" && m["last_replication"]["result"] == "success"
                        })
                    })
                    && http_get(DEMO_HTTP, "/healthz").is_some()
            });
        if ready {
            return;
        }
        if let Ok(Some(status)) = demo.child.try_wait() {
            panic!("the demo exited ({status}):\n{}", demo.log_text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for the demo group to be ready (backup-1 replicated, redundant)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `npm ci` in tests/browser when playwright-core is not installed there.
fn install_playwright_core() {
    let dir = browser_dir();
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run npm ({e}): run ./scripts/test, which installs nodejs and npm")
        });
    assert!(
        out.status.success(),
        "`npm ci` in {} failed ({}):\n{}\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn status_page_takeover_in_headless_chromium() {
    require("node", &["--version"], "nodejs");
    require("npm", &["--version"], "npm");
    require(CHROMIUM, &["--version"], "chromium");
    install_playwright_core();

    let tmp = tempfile::Builder::new()
        .prefix("understudy-browser-")
        .tempdir()
        .expect("temp dir");
    let out = output_dir();
    for entry in fs::read_dir(&out).expect("output dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = fs::remove_file(entry.path());
        }
    }

    let mut demo = Killed::spawn(
        "understudy demo",
        Command::new(env!("CARGO_BIN_EXE_understudy"))
            .args(["demo", "--http-port", &DEMO_HTTP.to_string()])
            .args(["--snmp-port", &DEMO_SNMP.to_string()])
            .args(["--token", "demo-token", "--state-dir"])
            .arg(tmp.path().join("demo")),
        tmp.path().join("demo.log"),
    );
    wait_ready(&mut demo);

    // The seed's procedure starts on the Backup's page.
    let url = format!("http://127.0.0.1:{}/", DEMO_HTTP + 1);
    let mut script = Killed::spawn(
        "status_page.mjs",
        Command::new("node")
            .arg(browser_dir().join("status_page.mjs"))
            .arg(&url)
            .arg(&out)
            .env("UNDERSTUDY_CHROMIUM", CHROMIUM)
            .env("UNDERSTUDY_TOKEN", "demo-token")
            .current_dir(browser_dir()),
        out.join("status_page.log"),
    );
    let status = script.wait(SCRIPT_TIMEOUT);
    let log = script.log_text();
    println!("{log}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("the browser script failed ({s}):\n{log}"),
        None => panic!("the browser script did not finish in {SCRIPT_TIMEOUT:?}:\n{log}"),
    }
    assert!(
        log.contains("browser test: every check passed"),
        "the script exited 0 without finishing its checks:\n{log}"
    );
    for name in [
        "status-page-before.png",
        "status-page-after-takeover.png",
        "status-page-refused.png",
        "status-page-after-reverse.png",
        "status-page-no-js.png",
    ] {
        let path = out.join(name);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            bytes.len() > 10_000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a screenshot",
            path.display()
        );
    }
    println!("screenshots in {}", out.display());
}
