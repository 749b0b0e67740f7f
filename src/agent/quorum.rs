//! The quorum source, as this agent uses it (`[coordination]`; see `crate::coordination`):
//! - a member takes an address only after acquiring its key (or, while the quorum source is
//!   unreachable, only in failsafe: every peer heard within `group::lease::failsafe_window`);
//! - it renews its lease only while the quorum source vouches for its key, and never past
//!   what the session's TTL covers (or, in failsafe, while it still hears every peer);
//! - it deletes the key of an address it gave up; the keys are reconciled with what this
//!   member holds after every change of the quorum source (a lost session, a release that
//!   could not reach it);
//! - a Backup fails a Main over only while the quorum source can be reached (the failover
//!   is suspended otherwise, an alarm says so);
//! - a coordinator holds the group's operation lock in the quorum source while its operation
//!   runs (when it can be reached; the peers' claims serialize operations in any case).
//!
//! Network I/O through the quorum source.

use std::net::IpAddr;

use super::*;
use crate::coordination::{Quorum, QuorumError};
use crate::group::lease;

impl Agent {
    pub(super) fn quorum(&self) -> Option<&Arc<dyn Quorum>> {
        self.inner.quorum.as_ref()
    }

    /// Monotonic ms (this agent's [`Mono`]) of an instant.
    fn mono_of(&self, at: Instant) -> Mono {
        at.saturating_duration_since(self.inner.started).as_millis() as Mono
    }

    /// Failsafe: the quorum source cannot be reached, but every peer that could take this
    /// member's address over was heard within the failsafe window: on a Main every Backup (a
    /// dead Main elsewhere in an N+1 group does not stop the others), on a Backup every peer.
    /// A peer heard within the window hears this member too, so it does not fail it over.
    pub(super) fn failsafe(&self) -> bool {
        let f = &self.inner.cfg.file;
        let window = lease::failsafe_window(
            f.failover_after.as_millis() as Millis,
            f.address.lease.as_millis() as Millis,
            f.heartbeat_interval.as_millis() as Millis,
        );
        let now = self.mono_now();
        let liveness = self.liveness();
        let i_am_backup = f
            .members
            .iter()
            .any(|m| m.name == self.inner.name && m.role == Role::Backup);
        f.members
            .iter()
            .filter(|m| m.name != self.inner.name && (i_am_backup || m.role == Role::Backup))
            .all(|m| liveness.heard_within(&m.name, now, window))
    }

    /// What the quorum source vouches for this member's hold on `address` (the argument of
    /// `group::lease::renewal`): `None` without one, or in failsafe (renew as without one);
    /// `Some(Some(t))` while its key is this member's and the session is valid until `t`;
    /// `Some(None)` otherwise (let the lease run out).
    pub(super) fn vouched(&self, address: IpAddr) -> Option<Option<Mono>> {
        let q = self.quorum()?;
        let status = q.status();
        if status.up {
            let mine = status.holders.get(&address) == Some(&self.inner.name);
            return Some(
                status
                    .session_until
                    .filter(|_| mine)
                    .map(|u| self.mono_of(u)),
            );
        }
        if self.failsafe() {
            None
        } else {
            Some(None)
        }
    }

    /// The member other than this one whose live session holds the key of `main`'s current
    /// address, as the quorum source was last read: the Main (or whoever holds its address)
    /// is alive as far as the quorum decides, so it is neither fenced nor failed over.
    pub(super) async fn quorum_keeps(&self, main: &str) -> Option<String> {
        let status = self.quorum()?.status();
        if !status.up {
            return None;
        }
        let address = {
            let st = self.inner.state.lock().await;
            st.view.member(main)?.current_address?
        };
        status
            .holders
            .get(&address)
            .filter(|h| **h != self.inner.name)
            .cloned()
    }

    /// Before taking `address`: its key, or failsafe. An error refuses the take.
    pub(super) async fn may_take(&self, address: IpAddr) -> Result<(), AddressError> {
        let Some(q) = self.quorum() else {
            return Ok(());
        };
        let status = q.status();
        if !status.up && self.failsafe() {
            warn!(member = %self.inner.name, %address,
                "the quorum source cannot be reached; taking the address in failsafe (every \
                 peer answers)");
            return Ok(());
        }
        let wait = self
            .inner
            .cfg
            .file
            .coordination
            .as_ref()
            .map_or(Duration::from_secs(2), |c| c.session_ttl);
        q.acquire(address, wait)
            .await
            .map_err(|e| AddressError::Failed {
                action: "take",
                address,
                message: format!("the quorum source does not give it to this member: {e}"),
            })
    }

    /// After giving up `address`: its key is deleted (or later, by [`Agent::reconcile_keys`]).
    pub(super) async fn gave_up(&self, address: IpAddr) {
        if let Some(q) = self.quorum() {
            if let Err(e) = q.release(address).await {
                warn!(member = %self.inner.name, %address, error = %e,
                    "cannot delete the address's key in the quorum source yet");
            }
        }
    }

    /// Is a failover suspended because the quorum source cannot be reached? (Why, if so.)
    pub(super) fn failover_suspended(&self) -> Option<String> {
        let status = self.quorum()?.status();
        (!status.up).then(|| {
            format!(
                "the quorum source ({}) cannot be reached: {}",
                status.backend,
                status.error.unwrap_or_else(|| "no session".into())
            )
        })
    }

    /// Keeps the quorum source's keys in line with what this member holds: acquires the key
    /// of the address its lease covers when it is free (a session lost and granted again),
    /// deletes the keys of addresses it no longer holds.
    pub(super) async fn reconcile_keys(&self) {
        let Some(q) = self.quorum() else {
            return;
        };
        let status = q.status();
        if !status.up {
            return;
        }
        let held = self.inner.lease.lock().await.held.map(|l| l.address);
        if let Some(a) = held {
            if !status.holders.contains_key(&a) {
                match q.acquire(a, Duration::ZERO).await {
                    Ok(()) => info!(member = %self.inner.name, address = %a,
                        "the address's key in the quorum source is this member's again"),
                    Err(e) => warn!(member = %self.inner.name, address = %a, error = %e,
                        "cannot acquire the key of the address held"),
                }
            }
        }
        for (address, holder) in &status.holders {
            if *holder == self.inner.name && Some(*address) != held {
                let record_names_it = {
                    let st = self.inner.state.lock().await;
                    st.view
                        .member(&self.inner.name)
                        .is_some_and(|r| r.current_address == Some(*address))
                };
                if !record_names_it {
                    self.gave_up(*address).await;
                }
            }
        }
    }

    /// Keeps the quorum source's session alive and the keys reconciled, until `stop`.
    pub(super) async fn quorum_loops(&self, stop: CancellationToken) {
        let Some(q) = self.quorum().cloned() else {
            return;
        };
        let session = {
            let s = stop.clone();
            tokio::spawn(async move { q.run(s).await })
        };
        let mut tick = tokio::time::interval(self.inner.cfg.file.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_up = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let up = self.quorum().is_some_and(|q| q.status().up);
            if was_up != Some(up) {
                match up {
                    true => info!(member = %self.inner.name, "the quorum source is reachable"),
                    false if was_up.is_some() => error!(member = %self.inner.name,
                        "the quorum source cannot be reached: failover is suspended"),
                    false => {}
                }
                was_up = Some(up);
                self.publish().await;
            }
            self.reconcile_keys().await;
        }
        let _ = session.await;
    }

    /// Waits (at most `limit`) for the quorum source's first session, so the first take of
    /// the address can acquire its key.
    pub(super) async fn await_quorum(&self, limit: Duration) {
        let Some(q) = self.quorum() else {
            return;
        };
        let until = Instant::now() + limit;
        while !q.status().up && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Takes the group's operation lock for `op` in the quorum source: `Err` when another
    /// operation holds it; `Ok` also when the quorum source cannot be reached (the peers'
    /// claims still serialize operations).
    pub(super) async fn lock_operation(&self, op: &str) -> Result<(), CommandError> {
        let Some(q) = self.quorum() else {
            return Ok(());
        };
        match q.lock_operation(op).await {
            Ok(()) => Ok(()),
            Err(QuorumError::Busy { holder, .. }) => Err(CommandError::Refused {
                failed: vec![crate::group::Precondition::OperationInProgress
                    .code()
                    .to_string()],
                message: format!(
                    "refused: operation_in_progress (operation {holder} holds the group's \
                     operation lock in the quorum source)"
                ),
            }),
            Err(e) => {
                warn!(member = %self.inner.name, %op, error = %e,
                    "cannot take the operation lock in the quorum source; the peers' claims \
                     serialize the operation");
                Ok(())
            }
        }
    }

    /// Releases the operation lock of `op` (if it holds it).
    pub(super) async fn unlock_operation(&self, op: &str) {
        if let Some(q) = self.quorum() {
            if let Err(e) = q.unlock_operation(op).await {
                warn!(member = %self.inner.name, %op, error = %e,
                    "cannot release the operation lock in the quorum source (it goes with \
                     this agent's session)");
            }
        }
    }

    /// The quorum source as the snapshot shows it, and its alarm while it cannot be reached.
    pub(super) fn coordination_view(
        &self,
    ) -> Option<(
        crate::snapshot::CoordinationView,
        Option<crate::group::Alarm>,
    )> {
        let q = self.quorum()?;
        let s = q.status();
        let wall = |at: Instant| -> Millis {
            let now = Instant::now();
            if at >= now {
                now_ms() + at.duration_since(now).as_millis() as Millis
            } else {
                now_ms().saturating_sub(now.duration_since(at).as_millis() as Millis)
            }
        };
        let since = wall(s.since);
        let alarm = (!s.up).then(|| {
            crate::group::coordination_lost(
                &self.inner.name,
                s.backend,
                s.error.as_deref().unwrap_or("no session"),
                since,
            )
        });
        Some((
            crate::snapshot::CoordinationView {
                backend: s.backend,
                up: s.up,
                since,
                error: s.error.clone(),
                session_until: s.session_until.map(wall),
                holders: s
                    .holders
                    .iter()
                    .map(|(a, m)| (a.to_string(), m.clone()))
                    .collect(),
            },
            alarm,
        ))
    }
}
