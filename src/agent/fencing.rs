//! The failover detector with a fence command (`[fencing]`): the detector's decisions go
//! through the fence gate ([`crate::group::FenceGate`]: the delay, one run per Main, what an
//! outcome lets happen), fence runs are tasks of their own (bounded by the command's time-out,
//! so the detector keeps looking at the other Mains meanwhile), a failed run is an event and a
//! back-off, and only a run that succeeded lets the failover be submitted. A manual takeover
//! never comes here. Does process I/O (through [`crate::fence`]).

use super::*;
use crate::fence::{self, FenceRequest, Fencing};
use crate::group::{fence_needed, Failover, FenceNext, Sight};
use crate::snapshot::FenceOutcome;

impl Agent {
    /// The failovers the detector decides now for this Backup, each with whether it needs a
    /// fence (its Main is silent on every path).
    fn failovers_to_fence(&self, view: &GroupView) -> Vec<(Failover, bool)> {
        let liveness = self.liveness();
        let sight = Sight {
            view,
            local: &self.inner.name,
            liveness: &liveness,
            now: self.mono_now(),
            started: 0,
            after: self.inner.cfg.file.failover_after.as_millis() as Millis,
        };
        sight
            .failovers_due()
            .into_iter()
            .filter(|f| f.backup == self.inner.name)
            .map(|f| {
                let need = fence_needed(&sight, &f.main);
                (f, need)
            })
            .collect()
    }

    /// One look of the detector through the fence gate: submit what needs no fence, start the
    /// fence runs whose delay has passed, log the failovers dropped during their delay.
    pub(super) async fn detect_failover_fenced(&self, fencing: &Fencing, view: &GroupView) {
        let due = self.failovers_to_fence(view);
        let now = self.mono_now();
        let allowed = {
            let b = self.backoffs();
            due.iter()
                .filter(|(f, _)| b.get(&f.main).copied().unwrap_or_default().allows(now))
                .map(|(f, _)| f.main.clone())
                .collect()
        };
        let delay = fencing.config().delay;
        let tick = fencing
            .gate()
            .tick(&due, &allowed, now, delay.as_millis() as Millis);
        for main in &tick.delayed {
            warn!(member = %self.inner.name, %main, delay = %humantime::format_duration(delay),
                "failover decided; fencing the Main after the delay unless it answers meanwhile");
        }
        for main in &tick.dropped {
            warn!(member = %self.inner.name, %main,
                "the failover waiting for a fence is dropped: the Main answers again, or is \
                 taken over, or this Backup is no longer the one to act");
        }
        for next in tick.act {
            match next {
                FenceNext::Submit(f) => {
                    let _ = self.submit_failover(f).await;
                }
                FenceNext::Fence(f) => {
                    let me = self.clone();
                    self.inner
                        .operations
                        .spawn(async move { me.fence_then_fail_over(f).await });
                }
            }
        }
    }

    /// Runs the fence command against `f.main`; on success submits the failover if the
    /// detector still decides it, on failure records an event and backs off.
    async fn fence_then_fail_over(&self, f: Failover) {
        let Some(fencing) = self.inner.fencing.as_ref() else {
            return;
        };
        if self.quorum_keeps(&f.main).await.is_some() {
            return; // alive as far as the quorum source knows: neither fenced nor failed over
        }
        let req = {
            let st = self.inner.state.lock().await;
            FenceRequest {
                group: st.view.group.clone(),
                member: self.inner.name.clone(),
                target: f.main.clone(),
                addresses: st
                    .view
                    .member(&f.main)
                    .map(fence::target_addresses)
                    .unwrap_or_default(),
                reason: f.reason.clone(),
            }
        };
        warn!(member = %self.inner.name, main = %f.main, reason = %f.reason,
            "fencing the Main before failing it over");
        let report = fence::run(fencing.config(), &req).await;
        let at = now_ms();
        fencing.note(&f.main, &report, at);
        let view = self.inner.state.lock().await.view.clone();
        let again = self
            .failovers_to_fence(&view)
            .into_iter()
            .map(|(d, _)| d)
            .find(|d| d.main == f.main);
        let failure = (report.outcome != FenceOutcome::Success)
            .then(|| format!("{}: {}", report.outcome.as_str(), report.detail));
        let backoff = self.backoff_of(&f.main);
        let verdict = fencing.gate().ran(
            &f.main,
            failure.as_deref(),
            again.is_some(),
            backoff,
            self.mono_now(),
            at,
            self.inner.cfg.file.heartbeat_interval.as_millis() as Millis,
            fencing.config().retry_max.as_millis() as Millis,
        );
        if let Some(b) = verdict.backoff {
            self.backoffs().insert(f.main.clone(), b);
        }
        match (failure, again) {
            (None, Some(mut g)) if verdict.submit => {
                info!(member = %self.inner.name, main = %f.main, detail = %report.detail,
                    duration_ms = report.duration_ms, "fenced");
                g.reason = format!("{}; fenced in {} ms", g.reason, report.duration_ms);
                if self.submit_failover(g).await {
                    fencing.gate().failed_over(&f.main);
                }
            }
            (None, _) => {
                info!(member = %self.inner.name, main = %f.main,
                    "fenced, but the failover no longer holds (the Main answers again or is \
                     taken over): not submitted");
            }
            (Some(why), _) => {
                let retry = verdict
                    .backoff
                    .map(|b| b.not_before.saturating_sub(self.mono_now()))
                    .unwrap_or_default();
                error!(member = %self.inner.name, main = %f.main, %why, retry_in_ms = retry,
                    "the fence command failed; the failover waits and fences again");
                self.record_fence_failure(&f, &why).await;
            }
        }
        self.publish().await;
    }

    /// The history entry of a fence run that failed: a failover of `f.main` by the detector,
    /// failed, saying why. Persisted, then kept.
    async fn record_fence_failure(&self, f: &Failover, why: &str) {
        let cmd = Command {
            operation: Operation::Failover {
                backup: f.backup.clone(),
                main: f.main.clone(),
            },
            requested_by: Requester {
                interface: "detector".into(),
                identity: self.inner.name.clone(),
            },
            reason: Some(f.reason.clone()),
        };
        let at = now_ms();
        let mut ev = Event::of(
            &cmd,
            format!("{}-{at}-fence", self.inner.name),
            &self.inner.name,
            at,
        );
        ev.outcome = OutcomeKind::Failed;
        ev.message = format!(
            "fencing {} failed ({why}); the failover waits for a fence run that succeeds",
            f.main
        );
        let mut st = self.inner.state.lock().await;
        let mut next = st.clone();
        next.record_event(ev);
        let _ = self.commit(&mut st, next);
    }
}
