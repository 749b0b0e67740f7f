//! Device checks at run time: each probe on its interval, a check failing after `fail_after`
//! failures in a row, recorded on the member's own record. Does I/O.

use super::*;

impl Agent {
    pub(super) async fn device_check_loop(&self, index: usize, stop: CancellationToken) {
        let Some(check) = self.inner.cfg.file.device_checks.get(index).cloned() else {
            return;
        };
        let mut tick = tokio::time::interval(check.interval);
        let mut consecutive_failures: u32 = 0;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let result = device_check::run(&check).await;
            if let Err(e) = &result {
                consecutive_failures = consecutive_failures.saturating_add(1);
                warn!(member = %self.inner.name, check = %check.name, error = %e,
                    failures = consecutive_failures, fail_after = check.fail_after,
                    "device check probe failed");
            } else {
                consecutive_failures = 0;
            }
            // A check is reported failing (gating takeover on a Backup, triggering failover
            // from a Main) only once it keeps failing: `fail_after` probes in a row.
            let failing = consecutive_failures >= check.fail_after.max(1);
            let mut st = self.inner.state.lock().await;
            let name = self.inner.name.clone();
            let Some(me) = st.view.members.iter_mut().find(|r| r.name == name) else {
                return;
            };
            let listed = me.failing_checks.contains(&check.name);
            if failing == listed {
                continue;
            }
            if failing {
                me.failing_checks.push(check.name.clone());
                me.failing_checks.sort();
            } else {
                me.failing_checks.retain(|c| c != &check.name);
                info!(member = %self.inner.name, check = %check.name, "device check passing");
            }
            me.status_version += 1;
            self.persist_or_log(&st);
            drop(st);
            self.publish().await;
            self.inner.gossip_now.notify_one();
        }
    }
}
