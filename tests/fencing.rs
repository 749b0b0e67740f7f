//! The fence command with real processes: main-1 and backup-1 are separate `understudy run`
//! agents on loopback, backup-1 has a `[fencing]` section whose command is a shell script
//! written by the test. The script appends one line per call (time, target) to `calls`,
//! writes its environment to `env`, and then does what the file `mode` says: `ok` (exit 0),
//! `fail` (a line on stderr, exit 1) or `hang` (records its pid and a child's, then waits
//! for the child, a long sleep).
//!
//! - A killed Main is fenced (once), with its name and addresses in the environment, and
//!   then failed over; the failover's history entry says it was fenced.
//! - A fence that fails stops the failover: an event, the `fencing_failed` alarm in
//!   `GET /api/v1/group`, retries whose gaps grow and stay under `retry_max`; once the
//!   script succeeds the failover is carried out and the alarm clears.
//! - A fence that runs past its `timeout` is a `timeout` failure, and its process group (the
//!   script and its child) is killed.
//! - With a `delay`, a Main paused (SIGSTOP) for longer than `failover_after` but shorter
//!   than `failover_after + delay` is neither fenced nor failed over; killed, it is fenced
//!   after the delay and failed over.
//! - A manual takeover of a Main that does not answer never runs the fence command.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// The script's directory (`calls`, `env`, `mode`, `pids`) and the script.
struct Fence {
    dir: PathBuf,
}

impl Fence {
    fn new(dir: &Path, mode: &str) -> Fence {
        let dir = dir.join("fence");
        let script = dir.join("fence.sh");
        write(
            &script,
            &format!(
                "#!/bin/sh\n\
                 d={d}\n\
                 echo \"$(date +%s.%N) $UNDERSTUDY_FENCE_TARGET\" >> $d/calls\n\
                 env | grep ^UNDERSTUDY_ | sort > $d/env\n\
                 case $(cat $d/mode) in\n\
                 ok) exit 0 ;;\n\
                 fail) echo 'bmc not answering' >&2; exit 1 ;;\n\
                 hang) sleep 60 & echo \"$$ $!\" >> $d/pids; wait; exit 0 ;;\n\
                 esac\n\
                 exit 2\n",
                d = dir.display()
            ),
        );
        let ok = Command::new("chmod")
            .arg("755")
            .arg(&script)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chmod the fence script");
        let f = Fence { dir };
        f.set(mode);
        f
    }

    fn script(&self) -> PathBuf {
        self.dir.join("fence.sh")
    }

    fn set(&self, mode: &str) {
        write(&self.dir.join("mode"), &format!("{mode}\n"));
    }

    /// The times (seconds) of the calls so far, each checked to name main-1.
    fn calls(&self) -> Vec<f64> {
        let text = std::fs::read_to_string(self.dir.join("calls")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let (t, target) = l.split_once(' ').expect("time and target");
                assert_eq!(target, "main-1", "{text}");
                t.parse().expect("time")
            })
            .collect()
    }

    fn env(&self) -> String {
        std::fs::read_to_string(self.dir.join("env")).expect("env written")
    }

    /// Per hanging run: the script's pid and its child's.
    fn hung(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.join("pids")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
}

/// Adds `[fencing]` to backup-1's configuration: the script, with `extra` keys.
fn configure(group: &[GroupMember], fence: &Fence, extra: &str) {
    let cfg = &group[1].config;
    let text = std::fs::read_to_string(cfg).expect("read config");
    write(
        cfg,
        &format!(
            "{text}\n[fencing]\ncommand = [\"{}\"]\n{extra}\n",
            fence.script().display()
        ),
    );
}

/// main-1 (agent) and backup-1 (agent, logging warnings to a file), replicated.
async fn start(dir: &Path, group: Vec<GroupMember>) -> (Proc, Proc, Vec<GroupMember>) {
    let main = start_agent(&group[0]).await;
    let backup = start_agent_logged(&group[1], dir.join("backup-1.log")).await;
    for m in &group[..2] {
        wait_replicated(&m.url, "backup-1").await;
    }
    (main, backup, group)
}

async fn group_json(url: &str) -> Value {
    get_json(&format!("{url}/api/v1/group")).await
}

fn failed_over(g: &Value) -> bool {
    let b = member(g, "backup-1");
    b["operational_state"] == "online" && b["acting_for"] == "main-1"
}

async fn wait_failed_over(url: &str) -> Value {
    wait_for_async(
        Duration::from_secs(20),
        "the failover of main-1",
        || async {
            let g = group_json(url).await;
            failed_over(&g).then_some(g)
        },
    )
    .await
}

fn fencing_alarms(g: &Value) -> Vec<Value> {
    g["redundancy"]["alarms"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["type"] == "fencing_failed")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

async fn events(url: &str) -> Vec<Value> {
    get_json(&format!("{url}/api/v1/events")).await["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether process `pid` runs (a zombie waiting to be reaped does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

#[tokio::test]
async fn a_killed_main_is_fenced_then_failed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let fence = Fence::new(dir.path(), "ok");
    configure(&group, &fence, "");
    let (mut main, _backup, group) = start(dir.path(), group).await;
    let url = group[1].url.clone();
    assert!(fence.calls().is_empty(), "fenced while main-1 runs");
    main.kill9();
    let g = wait_failed_over(&url).await;
    assert_eq!(g["takeovers"]["failover"], 1, "{g}");
    assert_eq!(fence.calls().len(), 1, "one fence run");
    let env = fence.env();
    for line in [
        "UNDERSTUDY_FENCE_ADDRESSES=192.0.2.10 10.0.3.6",
        "UNDERSTUDY_FENCE_TARGET=main-1",
        "UNDERSTUDY_GROUP=test",
        "UNDERSTUDY_MEMBER=backup-1",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing in\n{env}");
    }
    assert!(
        env.lines()
            .any(|l| l
                .starts_with("UNDERSTUDY_FENCE_REASON=main-1 unreachable on every heartbeat path")),
        "{env}"
    );
    let evs = events(&url).await;
    let done = evs
        .iter()
        .find(|e| e["kind"] == "failover" && e["outcome"] == "done")
        .unwrap_or_else(|| panic!("no failover event: {evs:?}"));
    assert!(
        done["reason"]
            .as_str()
            .is_some_and(|r| r.contains("; fenced in ")),
        "{done}"
    );
    assert!(fencing_alarms(&g).is_empty(), "{g}");
}

#[tokio::test]
async fn a_failing_fence_holds_the_failover_and_is_retried_with_back_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let fence = Fence::new(dir.path(), "fail");
    configure(&group, &fence, "retry_max = \"1s\"");
    let (mut main, _backup, group) = start(dir.path(), group).await;
    let url = group[1].url.clone();
    main.kill9();
    // Six runs: waits of 0.2, 0.4, 0.8 s, then the 1 s cap.
    Deadline::new(Duration::from_secs(20), "six fence runs")
        .poll_async(|| async { (fence.calls().len() >= 6).then_some(()) })
        .await;
    let g = group_json(&url).await;
    assert!(!failed_over(&g), "failed over without a fence: {g}");
    assert_eq!(g["takeovers"]["failover"], 0, "{g}");
    let alarms = fencing_alarms(&g);
    assert_eq!(alarms.len(), 1, "{g}");
    assert_eq!(alarms[0]["main"], "main-1", "{g}");
    assert_eq!(alarms[0]["backup"], "backup-1", "{g}");
    let reason = alarms[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("failed: exit status 1; stderr: bmc not answering"),
        "{reason}"
    );
    let evs = events(&url).await;
    let failed = evs
        .iter()
        .find(|e| e["kind"] == "failover" && e["outcome"] == "failed")
        .unwrap_or_else(|| panic!("no failed failover event: {evs:?}"));
    assert!(
        failed["message"].as_str().is_some_and(|m| m
            .contains("fencing main-1 failed (failed: exit status 1; stderr: bmc not answering)")),
        "{failed}"
    );
    // The same failure again is folded into that entry, not a new one each time.
    assert!(failed["repeats"].as_u64().unwrap_or(0) >= 4, "{failed}");
    let calls = fence.calls();
    let gaps: Vec<f64> = calls.windows(2).map(|w| w[1] - w[0]).collect();
    for g in &gaps {
        assert!(
            (0.15..1.8).contains(g),
            "gap {g:.3}s outside back-off bounds: {gaps:?}"
        );
    }
    assert!(
        gaps[2] > gaps[0] + 0.3,
        "the wait grows (0.2 s, then 0.8 s): {gaps:?}"
    );
    assert!(
        gaps[3] > 0.8 && gaps[4] > 0.8,
        "the wait reaches the 1 s cap: {gaps:?}"
    );
    // The fence works now: the next retry fences and the failover follows; the alarm clears.
    fence.set("ok");
    let g = wait_failed_over(&url).await;
    assert_eq!(g["takeovers"]["failover"], 1, "{g}");
    let g = wait_for_async(Duration::from_secs(5), "the alarm to clear", || async {
        let g = group_json(&url).await;
        fencing_alarms(&g).is_empty().then_some(g)
    })
    .await;
    assert!(failed_over(&g), "{g}");
}

#[tokio::test]
async fn a_fence_past_its_timeout_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let fence = Fence::new(dir.path(), "hang");
    configure(&group, &fence, "timeout = \"1s\"\nretry_max = \"30s\"");
    let (mut main, _backup, group) = start(dir.path(), group).await;
    let url = group[1].url.clone();
    main.kill9();
    let evs = wait_for_async(Duration::from_secs(15), "a timed-out fence", || async {
        let evs = events(&url).await;
        evs.iter()
            .any(|e| {
                e["outcome"] == "failed"
                    && e["message"].as_str().is_some_and(|m| {
                        m.contains("(timeout: no exit within 1s; its process group was killed)")
                    })
            })
            .then_some(evs)
    })
    .await;
    let hung = fence.hung();
    assert!(!hung.is_empty(), "the script ran: {evs:?}");
    let (script, child) = &hung[0];
    Deadline::new(
        Duration::from_secs(3),
        "the fence script and its child to be gone",
    )
    .poll_async(|| async { (!alive(script) && !alive(child)).then_some(()) })
    .await;
    let g = group_json(&url).await;
    assert!(!failed_over(&g), "failed over without a fence: {g}");
    let alarms = fencing_alarms(&g);
    assert_eq!(alarms.len(), 1, "{g}");
    assert!(
        alarms[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("timeout: no exit within 1s")),
        "{g}"
    );
}

#[tokio::test]
async fn a_main_heard_again_during_the_delay_is_not_fenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let fence = Fence::new(dir.path(), "ok");
    configure(&group, &fence, "delay = \"3s\"");
    let (mut main, backup, group) = start(dir.path(), group).await;
    let url = group[1].url.clone();
    // Silent for 2.5 s: past failover_after (1.5 s), short of failover_after + delay (4.5 s).
    support::process::signal(main.id(), "STOP");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    support::process::signal(main.id(), "CONT");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let log = backup.log_text();
    assert!(
        log.contains("failover decided; fencing the Main after the delay"),
        "the failover was decided while main-1 was stopped:\n{log}"
    );
    assert!(
        log.contains("the failover waiting for a fence is dropped"),
        "and dropped when it answered:\n{log}"
    );
    assert!(fence.calls().is_empty(), "main-1 was fenced");
    let g = group_json(&url).await;
    assert_eq!(member(&g, "main-1")["operational_state"], "online", "{g}");
    assert_eq!(
        member(&g, "backup-1")["operational_state"],
        "standby",
        "{g}"
    );
    assert_eq!(g["takeovers"]["failover"], 0, "{g}");
    // Silent for good: fenced once the delay has passed, then failed over.
    main.kill9();
    let killed = std::time::Instant::now();
    wait_failed_over(&url).await;
    // Without the delay it would take failover_after (1.5 s) at most.
    assert!(
        killed.elapsed() >= Duration::from_millis(3_500),
        "failed over {:?} after the kill: the delay was not waited",
        killed.elapsed()
    );
    assert_eq!(fence.calls().len(), 1);
}

#[tokio::test]
async fn a_manual_takeover_never_fences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let fence = Fence::new(dir.path(), "ok");
    configure(&group, &fence, "");
    let (mut main, _backup, group) = start(dir.path(), group).await;
    let url = group[1].url.clone();
    // No automatic failover: the operator takes main-1 over after it went silent.
    let (status, body) = send(
        reqwest::Method::PUT,
        &format!("{url}/api/v1/members/main-1/auto-failover"),
        Some(GROUP_TOKEN),
        r#"{"enabled":false}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for at in [&group[0].url, &url] {
        wait_for_async(Duration::from_secs(5), "main-1's flag off", || async {
            let g = group_json(at).await;
            (member(&g, "main-1")["auto_failover"] == false).then_some(())
        })
        .await;
    }
    main.kill9();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = command(
        &url,
        "takeover",
        GROUP_TOKEN,
        r#"{"backup":"backup-1","main":"main-1"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let g = group_json(&url).await;
    assert!(failed_over(&g), "{g}");
    assert_eq!(g["takeovers"]["manual"], 1, "{g}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(fence.calls().is_empty(), "a manual takeover ran the fence");
}
