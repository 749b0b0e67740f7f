//! A Backup's replication of its Mains' data: on an interval, on demand, recorded on the
//! member's own record. Does network and file I/O.

use super::*;
use crate::group::Precondition;

impl Agent {
    /// On-demand replication (API, CLI): `backup` copies every Main it covers (or `main`)
    /// now and reports each result; forwarded when that Backup is another agent.
    pub async fn replicate_on_demand(
        &self,
        backup: String,
        main: Option<String>,
    ) -> Result<ReplicateReply, CommandError> {
        let req = ReplicateRequest {
            protocol: PROTOCOL,
            group: self.inner.cfg.file.group.clone(),
            from: self.inner.name.clone(),
            backup,
            main,
        };
        let view = self.inner.state.lock().await.view.clone();
        let backup = view
            .member(&req.backup)
            .ok_or_else(|| CommandError::UnknownMember(req.backup.clone()))?;
        if backup.role != Role::Backup {
            return Err(CommandError::Invalid(format!(
                "{} is not a configured backup: only backups replicate",
                req.backup
            )));
        }
        if let Some(m) = &req.main {
            match view.member(m) {
                None => return Err(CommandError::UnknownMember(m.clone())),
                Some(r) if r.role != Role::Main => {
                    return Err(CommandError::Invalid(format!(
                        "{m} is not a configured main"
                    )))
                }
                Some(_) if taken_over(&view, &req.backup, m) => {
                    return Err(CommandError::Refused {
                        failed: vec![MAIN_TAKEN_OVER.to_string()],
                        message: format!(
                            "{m} is taken over: the replica {} acts from is not replaced \
                             (reverse the takeover first)",
                            req.backup
                        ),
                    })
                }
                Some(_) => {}
            }
        }
        if req.backup != self.inner.name {
            return self.inner.peers.replicate(&req.backup, &req).await;
        }
        let mains: Vec<String> = view
            .members
            .iter()
            .filter(|m| m.role == Role::Main)
            .filter(|m| match &req.main {
                Some(only) => &m.name == only,
                None => !taken_over(&view, &req.backup, &m.name),
            })
            .map(|m| m.name.clone())
            .collect();
        let mut results = Vec::new();
        for main in mains {
            let (at, res) = self.replicate_recorded(&main).await;
            let stats = res.as_ref().ok().copied().unwrap_or_default();
            results.push(ReplicateResult {
                main,
                result: if res.is_ok() {
                    ReplicationResult::Success
                } else {
                    ReplicationResult::Failed
                },
                error: res.err(),
                files: stats.files,
                fetched: stats.fetched,
                bytes_fetched: stats.bytes_fetched,
                at,
            });
        }
        self.inner.gossip_now.notify_one();
        Ok(ReplicateReply {
            backup: self.inner.name.clone(),
            results,
        })
    }

    pub(super) fn replica_root(&self) -> PathBuf {
        self.inner.cfg.file.state_dir.join("replicas")
    }

    pub(super) async fn replication_loop(&self, stop: CancellationToken) {
        let interval = self.inner.cfg.file.replication.interval;
        let retry = interval.min(Duration::from_secs(5));
        let mut due: HashMap<String, Instant> = HashMap::new();
        loop {
            let view = self.inner.state.lock().await.view.clone();
            let standby_backup = view
                .member(&self.inner.name)
                .is_some_and(|me| me.role == Role::Backup && me.state == OperState::Standby);
            if standby_backup {
                for m in &view.members {
                    if m.role != Role::Main || taken_over(&view, &self.inner.name, &m.name) {
                        continue;
                    }
                    if due.get(&m.name).is_some_and(|t| Instant::now() < *t) {
                        continue;
                    }
                    if self.reachability(&m.name) != Reachability::Reachable
                        && self.inner.started.elapsed() < self.inner.cfg.file.failover_after
                    {
                        // Give the group a moment to meet before the first attempt.
                        continue;
                    }
                    // A copy in progress is dropped at shutdown: it only ever writes a new
                    // generation, switched to atomically when complete.
                    let ok = tokio::select! {
                        ok = self.replicate_one(&m.name) => ok,
                        _ = stop.cancelled() => return,
                    };
                    due.insert(
                        m.name.clone(),
                        Instant::now() + if ok { interval } else { retry },
                    );
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    /// Copies one Main's data now and records the result on this member's record.
    pub async fn replicate_one(&self, main: &str) -> bool {
        self.replicate_with_stats(main).await.is_ok()
    }

    /// As [`Agent::replicate_one`], with what was transferred (or why it failed). A Main that
    /// is taken over is refused (nothing recorded): the new generation is switched to only
    /// under the state lock, after checking again that nobody took the Main over meanwhile,
    /// so the replica a Backup acts from is never switched or deleted.
    pub async fn replicate_with_stats(&self, main: &str) -> Result<replication::Stats, String> {
        self.replicate_recorded(main).await.1
    }

    /// As [`Agent::replicate_with_stats`], with the time the result was recorded on this
    /// member's record (`None` when it was refused and nothing was recorded).
    async fn replicate_recorded(
        &self,
        main: &str,
    ) -> (Option<Millis>, Result<replication::Stats, String>) {
        let _one_at_a_time = self.inner.replicating.lock().await;
        let refused = || replication::ReplicationError::TakenOver(main.to_string()).to_string();
        if taken_over(&self.inner.state.lock().await.view, &self.inner.name, main) {
            return (None, Err(refused()));
        }
        let now = now_ms();
        let res =
            match replication::prepare(&self.inner.peers, main, &self.replica_root(), now).await {
                Ok(prepared) => {
                    let st = self.inner.state.lock().await;
                    if taken_over(&st.view, &self.inner.name, main) {
                        drop(st);
                        // Dropping the generation removes it; current is untouched.
                        drop(prepared);
                        return (None, Err(refused()));
                    }
                    let switched = prepared.switch();
                    drop(st);
                    switched.map(replication::Switched::remove_older)
                }
                Err(e) => Err(e),
            };
        let error = match &res {
            Ok(stats) => {
                info!(member = %self.inner.name, %main, files = stats.files,
                    fetched = stats.fetched, bytes = stats.bytes_fetched, "replicated");
                None
            }
            Err(e) => {
                *self
                    .inner
                    .replication_failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) += 1;
                warn!(member = %self.inner.name, %main, error = %e, "replication failed");
                Some(e.to_string())
            }
        };
        let mut st = self.inner.state.lock().await;
        let mut next = st.clone();
        next.view
            .record_replication(&self.inner.name, main, now, error);
        // Not persisted, not recorded: the next replication records its own result.
        let _ = self.commit(&mut st, next);
        drop(st);
        self.publish().await;
        (Some(now), res.map_err(|e| e.to_string()))
    }
}

impl Agent {
    /// Where a replace takeover stages its first copy of the Backup's data.
    fn restore_staging(&self) -> PathBuf {
        self.inner.cfg.file.state_dir.join("restore")
    }

    /// This member's `data_dir`, which a replace takeover fills: it must exist and be empty
    /// (a new server's). The refusal names the directory.
    pub(super) fn restore_target(&self) -> Result<PathBuf, CommandError> {
        let Some(dir) = self.inner.cfg.file.replication.data_dir.clone() else {
            return Err(CommandError::Invalid(format!(
                "{} has no [replication] data_dir to copy the Backup's data into",
                self.inner.name
            )));
        };
        let has_data = match std::fs::read_dir(&dir) {
            Ok(mut entries) => entries.next().is_some(),
            Err(e) => {
                return Err(CommandError::Unavailable(format!(
                    "{}'s data_dir {} cannot be read: {e}",
                    self.inner.name,
                    dir.display()
                )))
            }
        };
        if has_data {
            let code = Precondition::ReplacementHasData;
            return Err(CommandError::Refused {
                failed: vec![code.code().to_string()],
                message: format!(
                    "refused: {} ({}): {} holds files; on a new server move them away, or, on \
                     the Main's own server, use a reverse takeover",
                    code.code(),
                    code.describe(),
                    dir.display()
                ),
            });
        }
        Ok(dir)
    }

    /// A replace takeover's first copy, before any step: `backup`'s replica of `main` into a
    /// staging directory while the Backup still serves, so that the last copy (after the
    /// Backup stopped) fetches only what changed meanwhile. Best effort: a file the Backup's
    /// service rewrites during the copy fails its checksum, and the last copy fetches it.
    pub(super) async fn stage_restore(&self, backup: &str, main: &str) {
        let _one_at_a_time = self.inner.replicating.lock().await;
        let src = replication::Source::replica(backup, main);
        let staged = async {
            replication::prepare_in(&self.inner.peers, &src, &self.restore_staging(), now_ms())
                .await?
                .switch()
                .map(replication::Switched::remove_older)
        };
        match staged.await {
            Ok(stats) => info!(member = %self.inner.name, %backup, %main, files = stats.files,
                bytes = stats.bytes_fetched, "staged the backup's data for the replace takeover"),
            Err(e) => warn!(member = %self.inner.name, %backup, %main, error = %e,
                "could not stage the backup's data; the replace takeover copies it all after \
                 the backup stopped"),
        }
    }

    /// A replace takeover's last copy, once the Backup is in standby (its service stopped, so
    /// the data no longer changes): `backup`'s replica of `main` into this member's empty
    /// `data_dir`, fsynced, before this member takes the address and goes online. The staging
    /// directory is removed after it. A copy that fails leaves the `data_dir` empty.
    pub(super) async fn restore_data(
        &self,
        backup: &str,
        main: &str,
    ) -> Result<replication::Stats, String> {
        let target = self.restore_target().map_err(|e| e.to_string())?;
        let _one_at_a_time = self.inner.replicating.lock().await;
        let src = replication::Source::replica(backup, main);
        let staging = self.restore_staging();
        let res =
            replication::restore_into(&self.inner.peers, &src, &staging.join("current"), &target)
                .await
                .map_err(|e| {
                    format!(
                        "copying {backup}'s data of {main} into {}: {e}",
                        target.display()
                    )
                });
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(member = %self.inner.name, error = %e, path = %staging.display(),
                    "could not remove the replace takeover's staging directory");
            }
        }
        if let Ok(stats) = &res {
            info!(member = %self.inner.name, %backup, %main, files = stats.files,
                fetched = stats.fetched, bytes = stats.bytes_fetched,
                path = %target.display(), "restored the backup's data");
        }
        res
    }
}

/// The precondition code of an on-demand replication of a Main that is taken over.
pub const MAIN_TAKEN_OVER: &str = "main_taken_over";

/// Whether `main`'s replica on `backup` may be what a Backup acts from: `main` carries a
/// takeover mark, or `backup` acts for it.
fn taken_over(view: &GroupView, backup: &str, main: &str) -> bool {
    view.member(main).is_some_and(|m| m.takeover.is_some())
        || view
            .member(backup)
            .is_some_and(|b| b.acting_for.as_deref() == Some(main))
}
