//! Device checks at run time: each probe on its interval, a check failing after `fail_after`
//! failures in a row, recorded on the member's own record. Does I/O.

use super::*;
use crate::group::check_failing;

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
            let failing = check_failing(consecutive_failures, check.fail_after);
            let mut st = self.inner.state.lock().await;
            let mut next = st.clone();
            match next
                .view
                .set_device_check(&self.inner.name, &check.name, failing)
            {
                None => return,
                Some(false) => continue,
                Some(true) if !failing => {
                    info!(member = %self.inner.name, check = %check.name, "device check passing");
                }
                Some(true) => {}
            }
            // Not persisted, not changed: the next probe tries again.
            if self.commit(&mut st, next).is_err() {
                continue;
            }
            drop(st);
            self.publish().await;
            self.inner.gossip_now.notify_one();
        }
    }
}
