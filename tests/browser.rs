//! The status page in a real headless Chromium: starts the demo group, then runs
//! `tests/browser/status_page.mjs` (playwright-core driving Debian's `/usr/bin/chromium`)
//! against backup-1's page. The script takes over main-1 through the drop-down and Go, checks
//! both rows turn yellow and the banner shows, that a refusal lists its failed preconditions,
//! reverses the takeover, and reads the page without JavaScript. Screenshots are written to
//! `target/test-output/browser/` (`status-page-after-takeover.png` is the one in docs/).
//!
//! Does I/O: runs `npm ci` in `tests/browser/` when `node_modules` is missing, starts the demo
//! on ephemeral 127.0.0.1 ports and a browser. A missing tool is a failure, never a skip:
//! `./scripts/test` installs them (Debian packages `nodejs`, `npm`, `chromium`).

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{
    answers, block_on, output_dir, repo, require_tool, try_get_json, Deadline, Demo, Proc, TOKEN,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn browser_dir() -> PathBuf {
    repo().join("tests/browser")
}

/// Waits until backup-1 has replicated main-1 and the group is redundant.
fn wait_ready(demo: &mut Demo) {
    let group = format!("{}/api/v1/group", demo.url("backup-1"));
    let healthz = format!("{}/healthz", demo.url("main-1"));
    Deadline::new(
        Duration::from_secs(60),
        "the demo group to be ready (backup-1 replicated, redundant)",
    )
    .every_ms(100)
    .poll(|| {
        demo.proc.assert_running();
        let ready = block_on(async {
            try_get_json(&group).await.is_some_and(|g| {
                g["redundancy"]["redundant"] == true
                    && g["members"].as_array().is_some_and(|ms| {
                        ms.iter().any(|m| {
                            m["name"] == "backup-1" && m["last_replication"]["result"] == "success"
                        })
                    })
            }) && answers(&healthz).await
        });
        ready.then_some(())
    });
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
    require_tool("node", &["--version"], "nodejs");
    require_tool("npm", &["--version"], "npm");
    require_tool(CHROMIUM, &["--version"], "chromium");
    install_playwright_core();

    let tmp = tempfile::Builder::new()
        .prefix("understudy-browser-")
        .tempdir()
        .expect("temp dir");
    let out = output_dir("browser");
    for entry in fs::read_dir(&out).expect("output dir").flatten() {
        if entry.path().extension().is_some_and(|e| e == "png") {
            let _ = fs::remove_file(entry.path());
        }
    }

    let mut demo = Demo::start_logged(&["--token", TOKEN], tmp.path().join("demo.log"));
    wait_ready(&mut demo);

    // The seed's procedure starts on the Backup's page.
    let url = format!("{}/", demo.url("backup-1"));
    let mut script = Proc::spawn_logged(
        "status_page.mjs",
        Command::new("node")
            .arg(browser_dir().join("status_page.mjs"))
            .arg(&url)
            .arg(&out)
            .env("UNDERSTUDY_CHROMIUM", CHROMIUM)
            .env("UNDERSTUDY_TOKEN", TOKEN)
            .current_dir(browser_dir()),
        out.join("status_page.log"),
    );
    let status = script.wait_exit(SCRIPT_TIMEOUT);
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
