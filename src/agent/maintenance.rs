//! The group's maintenance mode at run time: setting it (the one command path ends here for
//! [`Operation::SetMaintenance`]: persist, then memory, then push to every peer that answers)
//! and adopting a newer setting a peer sends with its heartbeat. The decision it changes is
//! the core's ([`crate::group::Sight::failovers_due`]). Does I/O.

use super::*;
use crate::group::{Maintenance, OpKind};

impl Agent {
    /// Sets the group's maintenance mode as `cmd` asks. Persisted before it changes memory (a
    /// failed save changes nothing and answers 503), then sent to every peer at once; a peer
    /// that does not answer now gets it with the next heartbeats.
    pub(super) async fn set_maintenance(&self, cmd: Command, enabled: bool) -> CommandResult {
        let now = now_ms();
        let mut st = self.inner.state.lock().await;
        let setting = st.view.maintenance.set(
            enabled,
            &cmd.requested_by,
            cmd.reason.as_deref(),
            now,
            &self.inner.name,
        );
        let event = maintenance_event(&setting);
        let mut next = st.clone();
        next.view.maintenance = setting;
        next.record_event(event.clone());
        if let Err(e) = self.commit(&mut st, next) {
            return Err(CommandError::Unavailable(format!(
                "{} cannot persist the maintenance setting ({e}); nothing changed",
                self.inner.name
            )));
        }
        drop(st);
        warn!(member = %self.inner.name, enabled, by = %cmd.requested_by,
            reason = cmd.reason.as_deref().unwrap_or(""), "{}", event.message);
        // Every peer that answers has it when the command returns.
        self.gossip_round().await;
        self.publish().await;
        Ok(event)
    }

    /// The maintenance setting this agent sends with a heartbeat or a reply (none until the
    /// group's setting was first changed).
    pub(super) async fn maintenance_wire(&self) -> Option<Maintenance> {
        let st = self.inner.state.lock().await;
        (st.view.maintenance.version > 0).then(|| st.view.maintenance.clone())
    }

    /// Adopts a peer's maintenance setting if its stamp is higher than this agent's: persisted
    /// (with its event, the same entry on every agent), then in memory.
    pub(super) async fn absorb_maintenance(&self, incoming: Option<&Maintenance>) {
        let Some(incoming) = incoming else { return };
        let mut st = self.inner.state.lock().await;
        let mut setting = st.view.maintenance.clone();
        if !setting.merge(incoming) {
            return;
        }
        let mut next = st.clone();
        next.view.maintenance = setting;
        next.record_event(maintenance_event(incoming));
        if self.commit(&mut st, next).is_err() {
            return; // asked again with the next heartbeat
        }
        drop(st);
        warn!(member = %self.inner.name, enabled = incoming.enabled, writer = %incoming.writer,
            by = %incoming.changed_by.as_ref().map(|r| r.to_string()).unwrap_or_default(),
            reason = incoming.reason.as_deref().unwrap_or(""),
            "maintenance mode changed by a peer: {}", incoming.describe());
        self.publish().await;
    }
}

/// The event history's entry for a change of the setting: who, why, when, through which agent.
fn maintenance_event(m: &Maintenance) -> Event {
    let cmd = Command {
        operation: Operation::SetMaintenance { enabled: m.enabled },
        requested_by: m.changed_by.clone().unwrap_or_else(|| Requester {
            interface: "peer".into(),
            identity: m.writer.clone(),
        }),
        reason: m.reason.clone(),
    };
    let mut ev = Event::of(&cmd, m.event_id(), &m.writer, m.changed_at.unwrap_or(0));
    debug_assert_eq!(ev.kind, OpKind::Maintenance);
    ev.message = m.describe();
    ev
}
