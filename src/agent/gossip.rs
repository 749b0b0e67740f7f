//! Heartbeats and state exchange with the peers on every path (stamps out, newer records
//! back), merging what peers send, comparing the peers' group definitions with this agent's,
//! and the failover detector. Does network I/O.

use super::*;
use crate::group::{own_record_rewritten, Backoff, Definition, Failover, Noted, Sight};

/// How often the failover detector looks (at most; the heartbeat interval if shorter).
pub(super) const DETECTOR_TICK: Duration = Duration::from_millis(100);

/// The longest wait between two heartbeats to a peer that refuses them (a wrong secret, a
/// clock outside the replay window): each refusal is a warning in both agents' logs.
const HEARTBEAT_BACKOFF_CAP: Millis = 30_000;

/// The longest wait between two failover attempts that were not carried out.
const FAILOVER_BACKOFF_CAP: Millis = 60_000;

impl Agent {
    /// Merges records a peer sent (heartbeat or reply). If this member's own record changed
    /// (another agent wrote it while this one was away), the change is persisted and acted on.
    pub async fn absorb(&self, records: &[MemberRecord]) {
        if records.is_empty() {
            return; // a quiet group's heartbeats carry digests only
        }
        let mut st = self.inner.state.lock().await;
        // Merge into a copy of the view first: the whole state (events included) is copied
        // only when something changed, to be saved before it replaces the state.
        let mut view = st.view.clone();
        let absorbed = view.absorb(records);
        if !absorbed.changed {
            return;
        }
        let old_own = st.view.member(&self.inner.name).cloned();
        let mut next = st.clone();
        next.view = view;
        for op in &absorbed.ops {
            next.count_op(&op.id, op.kind);
        }
        if self.commit(&mut st, next).is_err() {
            return;
        }
        let new_own = st.view.member(&self.inner.name).cloned();
        drop(st);
        if let (Some(old), Some(new)) = (old_own, new_own) {
            if own_record_rewritten(&old, &new) {
                warn!(member = %self.inner.name, writer = %new.writer, to = %new.state,
                    address = ?new.current_address,
                    "this member's record was changed by a peer; adopting it");
                if let Err(e) = self.move_address(&old, &new).await {
                    // Tried again after the next heartbeat round (`retake_after_lapse`), as
                    // the record names it then (e.g. once the quorum source gives the key).
                    error!(member = %self.inner.name, error = %e,
                        "cannot move address; trying again after the next heartbeat round");
                    self.inner.lease.lock().await.lost_at = Some(self.mono_now());
                }
            }
        }
        self.publish().await;
    }

    /// Answers a peer's heartbeat: merge its records, compare its group definition, reply
    /// with ours (and our definition when the two differ).
    pub async fn handle_heartbeat(&self, hb: Heartbeat) -> Result<HeartbeatReply, CommandError> {
        self.mark_seen(&hb.from, &hb.path);
        if hb.sent_at != 0 {
            self.note_peer_lease(&hb.from, hb.lease.as_ref());
        }
        self.absorb(&hb.records).await;
        self.absorb_maintenance(hb.maintenance.as_ref()).await;
        self.forget_ended_claims(&hb).await;
        let (definition_digest, definition) = {
            let ours = self.agreement().digest().to_string();
            let differs = hb.definition_digest.as_ref().is_some_and(|d| *d != ours);
            self.compare_definition(
                &hb.from,
                hb.definition_digest.as_deref(),
                hb.definition.as_ref(),
            );
            let definition = differs.then(|| self.agreement().definition().clone());
            (Some(ours), definition)
        };
        let maintenance = self.maintenance_wire().await;
        let st = self.inner.state.lock().await;
        Ok(HeartbeatReply {
            protocol: PROTOCOL,
            from: self.inner.name.clone(),
            records: st.view.newer_than(&hb.digest),
            want: st.view.wanted(&hb.digest),
            definition_digest,
            definition,
            lease: self.lease_wire(),
            maintenance,
        })
    }

    /// Notes what `peer` said about its group definition; a new mismatch, a changed one and
    /// the return to agreement are logged once each (the core decides: [`Agreement::observe`]).
    fn compare_definition(&self, peer: &str, digest: Option<&str>, theirs: Option<&Definition>) {
        let noted = self.agreement().observe(peer, digest, theirs, now_ms());
        match noted {
            Some(Noted::Differs(how)) if how.is_empty() => {
                warn!(member = %self.inner.name, %peer,
                    "the peer's group definition differs from this agent's; no operation \
                     involving it is carried out")
            }
            Some(Noted::Differs(how)) => {
                warn!(member = %self.inner.name, %peer, differences = %how.join("; "),
                    "the peer's group definition differs from this agent's; no operation \
                     involving it is carried out")
            }
            Some(Noted::Agrees) => {
                info!(member = %self.inner.name, %peer,
                    "the peer's group definition is this agent's again")
            }
            None => {}
        }
    }

    /// Heartbeat rounds, each followed by what depends on having heard the peers. Under a
    /// service manager with a watchdog this loop pings it between rounds: a loop stuck in a
    /// round stops the pings and the service manager restarts the agent.
    pub(super) async fn heartbeat_loop(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.inner.cfg.file.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut watchdog = self.watchdog_every().map(|every| {
            let mut w = tokio::time::interval(every);
            w.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            w
        });
        loop {
            // In this order: a ping that is due goes out before the next round starts.
            tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                _ = next_tick(watchdog.as_mut()) => {
                    self.watchdog_ping();
                    continue;
                }
                _ = tick.tick() => {}
                _ = self.inner.gossip_now.notified() => {}
            }
            let started = self.mono_now();
            let answered = self.gossip_round().await;
            self.liveness().round_ended(started);
            self.retake_after_lapse(started).await;
            self.retry_save().await;
            self.expire_claims().await;
            self.resolve_intent(Some(&answered)).await;
            self.publish().await;
        }
    }

    /// Ticks every 100 ms so the agent can tell it was paused (SIGSTOP, a stalled VM): after a
    /// longer gap, what it heard before the pause is not taken for silence of its peers (no
    /// failover, no release skipped) until a heartbeat round started after the pause ends
    /// (`group::Liveness::tick`). A task of its own: no operation delays it.
    pub(super) async fn pause_watch(&self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(DETECTOR_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            let now = self.mono_now();
            let paused = self.liveness().tick(now);
            if paused {
                warn!(member = %self.inner.name,
                    "this agent did not run for over a second (paused or starved); peers' \
                     silence is not judged until its next heartbeat round");
            }
        }
    }

    /// The failover detector, on a tick of its own: a heartbeat round lasts as long as its
    /// slowest peer (a lost host costs the whole request time-out), and the detector must not
    /// wait for it. A Main is failed over within [`DETECTOR_TICK`] of being silent for
    /// `failover_after` on every path.
    pub(super) async fn failover_loop(&self, stop: CancellationToken) {
        let period = self.inner.cfg.file.heartbeat_interval.min(DETECTOR_TICK);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            self.detect_failover().await;
        }
    }

    /// Drops the claims of a peer's operations that its heartbeat shows ended.
    async fn forget_ended_claims(&self, hb: &Heartbeat) {
        if hb.sent_at == 0 {
            return; // a push of records, not a round's heartbeat
        }
        let mut st = self.inner.state.lock().await;
        let mut claims = st.claims.clone();
        if claims.forget_ended(&hb.from, &hb.operations, hb.sent_at) {
            let mut next = st.clone();
            next.claims = claims;
            let _ = self.commit(&mut st, next);
        }
    }

    /// Drops the claims that lapsed (their operation's coordinator is gone or done).
    async fn expire_claims(&self) {
        let now = now_ms();
        let mut st = self.inner.state.lock().await;
        if st.claims.0.iter().any(|c| c.until <= now) {
            let mut next = st.clone();
            next.claims.expire(now);
            let _ = self.commit(&mut st, next);
        }
    }

    /// One state exchange with every peer on every path, concurrently: stamps out, newer
    /// records back, and the records a peer asked for pushed right after. The peers that
    /// answered (their records are current in this view now).
    pub async fn gossip_round(&self) -> BTreeSet<String> {
        // Read under the lock that claims are made under, with the time: a claim made after
        // this read has a later `since`, so a peer does not take its absence for an end.
        let (digest, operations, sent_at) = {
            let st = self.inner.state.lock().await;
            let at = now_ms();
            (
                st.view.digest(),
                st.claims.coordinated_by(&self.inner.name),
                at,
            )
        };
        let definition_digest = Some(self.agreement().digest().to_string());
        let lease = self.lease_wire();
        let maintenance = self.maintenance_wire().await;
        let mut set = JoinSet::new();
        for m in &self.inner.cfg.file.members {
            if m.name == self.inner.name {
                continue;
            }
            // A peer known to list another group gets our definition, so it can say how.
            let definition = {
                let a = self.agreement();
                a.differs(&m.name).then(|| a.definition().clone())
            };
            for (path, url) in &m.peer_urls {
                let key = (m.name.clone(), path.clone());
                if !self.heartbeat_backoff(&key).allows(self.mono_now()) {
                    continue; // this peer refused our last heartbeats on this path
                }
                let hb = Heartbeat {
                    protocol: PROTOCOL,
                    group: self.inner.cfg.file.group.clone(),
                    from: self.inner.name.clone(),
                    path: path.clone(),
                    records: Vec::new(),
                    digest: digest.clone(),
                    operations: operations.clone(),
                    sent_at,
                    definition_digest: definition_digest.clone(),
                    definition: definition.clone(),
                    lease: lease.clone(),
                    maintenance: maintenance.clone(),
                };
                let peers = self.inner.peers.clone();
                let (member, path, url) = (m.name.clone(), path.clone(), url.clone());
                set.spawn(async move {
                    let res = peers.heartbeat(&member, &url, &hb).await;
                    (member, path, url, res)
                });
            }
        }
        let mut pushed = BTreeSet::new();
        let mut answered = BTreeSet::new();
        while let Some(joined) = set.join_next().await {
            let Ok((member, path, url, res)) = joined else {
                continue;
            };
            let key = (member.clone(), path.clone());
            match &res {
                Err(PeerError::Rejected { .. }) => {
                    let base = self.inner.cfg.file.heartbeat_interval.as_millis() as Millis;
                    let mut b = self.heartbeat_backoffs();
                    let next = b.get(&key).copied().unwrap_or_default().failed(
                        self.mono_now(),
                        base,
                        HEARTBEAT_BACKOFF_CAP,
                    );
                    b.insert(key, next);
                }
                _ => {
                    self.heartbeat_backoffs().remove(&key);
                }
            }
            match res {
                Ok(reply) if reply.from == member => {
                    let returned = self.reachability(&member) == Reachability::Unreachable
                        && self.inner.started.elapsed() > self.inner.cfg.file.failover_after;
                    self.mark_seen(&member, &path);
                    self.note_peer_lease(&member, reply.lease.as_ref());
                    self.compare_definition(
                        &member,
                        reply.definition_digest.as_deref(),
                        reply.definition.as_ref(),
                    );
                    self.absorb(&reply.records).await;
                    self.absorb_maintenance(reply.maintenance.as_ref()).await;
                    answered.insert(member.clone());
                    if !reply.want.is_empty() && pushed.insert(member.clone()) {
                        self.push(&member, &path, &url, &reply.want).await;
                    }
                    // After the records merged: a Main that was taken over while cut off has
                    // released its address by now and announces nothing.
                    if returned {
                        self.reannounce_after_return(&member).await;
                    }
                }
                Ok(reply) => {
                    warn!(member = %self.inner.name, expected = %member, answered = %reply.from,
                        %path, "a different agent answers at this peer URL");
                }
                Err(e) => debug!(member = %self.inner.name, peer = %member, %path, error = %e,
                    "heartbeat failed"),
            }
        }
        answered
    }

    /// A peer answers again after being unreachable (a healed partition, a restarted server):
    /// if this member serves an address, announce it again, so neighbours on the peer's side
    /// that still point at another holder follow this one.
    async fn reannounce_after_return(&self, member: &str) {
        let own = {
            let st = self.inner.state.lock().await;
            st.view.member(&self.inner.name).cloned()
        };
        let Some(own) = own else { return };
        if own.state != OperState::Online {
            return;
        }
        if let Some(a) = own.current_address {
            info!(member = %self.inner.name, peer = %member, address = %a,
                "peer reachable again; announcing the address again");
            self.inner.address.reannounce(a).await;
        }
    }

    /// Sends `member` the records it asked for.
    async fn push(&self, member: &str, path: &str, url: &str, names: &[String]) {
        let records: Vec<MemberRecord> = {
            let st = self.inner.state.lock().await;
            names
                .iter()
                .filter_map(|n| st.view.member(n).cloned())
                .collect()
        };
        let hb = Heartbeat {
            protocol: PROTOCOL,
            group: self.inner.cfg.file.group.clone(),
            from: self.inner.name.clone(),
            path: path.to_string(),
            records,
            digest: Vec::new(),
            operations: Vec::new(),
            sent_at: 0,
            definition_digest: Some(self.agreement().digest().to_string()),
            definition: None,
            lease: None,
            maintenance: None,
        };
        match self.inner.peers.heartbeat(member, url, &hb).await {
            Ok(reply) => self.absorb(&reply.records).await,
            Err(e) => debug!(member = %self.inner.name, peer = %member, error = %e,
                "push of records failed"),
        }
    }

    /// On a standby Backup: take over a Main with auto-failover on that has been silent on
    /// every path for `failover_after`, or that reports its device checks failing (the core
    /// decides: [`crate::group::Sight::failover_for_local`]). With `[fencing]`, the fence gate
    /// stands between the decision and the command (`agent::fencing`).
    async fn detect_failover(&self) {
        // With a quorum source that cannot be reached, failover is suspended (the alarm
        // coordination_lost says so); decided again every tick.
        if self.failover_suspended().is_some() {
            return;
        }
        let view = self.inner.state.lock().await.view.clone();
        if let Some(fencing) = &self.inner.fencing {
            return self.detect_failover_fenced(fencing, &view).await;
        }
        let decided = {
            let liveness = self.liveness();
            Sight {
                view: &view,
                local: &self.inner.name,
                liveness: &liveness,
                now: self.mono_now(),
                started: 0,
                after: self.inner.cfg.file.failover_after.as_millis() as Millis,
            }
            .failover_for_local()
        };
        let Some(failover) = decided else {
            return;
        };
        if self.backoff_of(&failover.main).allows(self.mono_now()) {
            let _ = self.submit_failover(failover).await;
        }
    }

    /// Submits the failover the detector decided; a refusal backs off (per Main). Whether it
    /// was carried out.
    pub(super) async fn submit_failover(&self, failover: Failover) -> bool {
        let Failover {
            main,
            backup,
            reason,
        } = failover;
        if let Some(holder) = self.quorum_keeps(&main).await {
            debug!(member = %self.inner.name, %main, %holder,
                "no failover: the quorum source says the Main's address is held");
            return false;
        }
        let backoff = self.backoff_of(&main);
        warn!(member = %self.inner.name, %main, %reason, "auto-failover");
        let cmd = Command {
            operation: Operation::Failover {
                backup,
                main: main.clone(),
            },
            requested_by: Requester {
                interface: "detector".into(),
                identity: self.inner.name.clone(),
            },
            reason: Some(reason),
        };
        let mut backoffs = match self.submit(cmd).await {
            Ok(_) => {
                let mut b = self.backoffs();
                b.remove(&main);
                return true;
            }
            Err(e) => {
                warn!(member = %self.inner.name, %main, error = %e, "auto-failover refused");
                self.backoffs()
            }
        };
        let base = self.inner.cfg.file.heartbeat_interval.as_millis() as Millis;
        let next = backoff.failed(self.mono_now(), base, FAILOVER_BACKOFF_CAP);
        debug!(member = %self.inner.name, %main, failures = next.failures,
            retry_in_ms = next.not_before.saturating_sub(self.mono_now()),
            "auto-failover backs off");
        backoffs.insert(main, next);
        false
    }

    fn heartbeat_backoffs(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Backoff>> {
        self.inner
            .heartbeat_backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn heartbeat_backoff(&self, key: &(String, String)) -> Backoff {
        self.heartbeat_backoffs()
            .get(key)
            .copied()
            .unwrap_or_default()
    }

    pub(super) fn backoffs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Backoff>> {
        self.inner
            .failover_backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn backoff_of(&self, main: &str) -> Backoff {
        self.backoffs().get(main).copied().unwrap_or_default()
    }
}

/// The next tick of `interval`; never, without one.
async fn next_tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
