//! The agent's durable state: the group view, alarm bookkeeping, counters and the event
//! history, kept in one JSON file written atomically (temp file, fsync, rename, fsync of the
//! directory). Does file I/O.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::command::Event;
use crate::group::{Claims, GroupView, MemberRecord, Millis, OpKind, Plan};

/// Bump when the file's meaning changes; an agent refuses a file of another format.
pub const FORMAT: u32 = 1;
/// How many events the history keeps.
pub const EVENT_HISTORY: usize = 1000;
/// How many operation ids are remembered to count each operation once.
const SEEN_OPS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is corrupt ({message}); refusing to start with a fresh state. \
         Inspect it, restore it from a backup, or move it away to start this member from its \
         configuration"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error("state file {path} belongs to member {found:?} of group {group:?}, not this agent")]
    WrongMember {
        path: PathBuf,
        found: String,
        group: String,
    },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Everything an agent must not lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedState {
    pub format: u32,
    pub group: String,
    pub member: String,
    pub view: GroupView,
    /// When this agent first saw no Backup in standby (cleared when one is).
    pub no_standby_since: Option<Millis>,
    /// Operations counted, by kind (`understudy_takeovers_total`).
    pub takeovers: BTreeMap<OpKind, u64>,
    /// Ids of operations already counted, newest last.
    pub seen_ops: VecDeque<String>,
    /// Newest last.
    pub events: VecDeque<Event>,
    /// Incremented at every start (SNMP engine boots use it too).
    pub boots: u32,
    /// Operations this member has claimed members for, its own included (`group::claims`).
    #[serde(default, skip_serializing_if = "Claims::is_empty")]
    pub claims: Claims,
    /// The operation this member coordinates, written with its claim before the first step
    /// and cleared when the operation has ended: what a restart carries to an end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
}

/// An operation under way, as its coordinator persisted it before the first step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub plan: Plan,
    /// The records the plan was planned from, in the order of its updates (to roll back).
    pub before: Vec<MemberRecord>,
    /// The event recorded when the operation ends (who asked, why).
    pub event: Event,
}

impl PersistedState {
    pub fn new(view: GroupView, member: &str) -> Self {
        PersistedState {
            format: FORMAT,
            group: view.group.clone(),
            member: member.to_string(),
            view,
            no_standby_since: None,
            takeovers: BTreeMap::new(),
            seen_ops: VecDeque::new(),
            events: VecDeque::new(),
            boots: 0,
            claims: Claims::default(),
            intent: None,
        }
    }

    /// Counts operation `id` of `kind` once, however many records carry it.
    pub fn count_op(&mut self, id: &str, kind: OpKind) -> bool {
        if self.seen_ops.iter().any(|s| s == id) {
            return false;
        }
        self.seen_ops.push_back(id.to_string());
        while self.seen_ops.len() > SEEN_OPS {
            self.seen_ops.pop_front();
        }
        if OpKind::COUNTED.contains(&kind) {
            *self.takeovers.entry(kind).or_default() += 1;
        }
        true
    }

    /// Adds `event` to the history, once per id; a refusal or failure that repeats the newest
    /// entry is counted on it instead (a retry every heartbeat must not flush the history).
    pub fn record_event(&mut self, event: Event) {
        if self.events.iter().any(|e| e.id == event.id) {
            return;
        }
        if let Some(last) = self.events.back_mut() {
            if last.repeated_by(&event) {
                last.repeats = last.repeats.saturating_add(1);
                last.last_at = Some(event.at);
                return;
            }
        }
        self.events.push_back(event);
        while self.events.len() > EVENT_HISTORY {
            self.events.pop_front();
        }
    }
}

/// The state file of one agent.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub const FILE: &'static str = "state.json";

    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(Self::FILE)
    }

    /// Reads the state, `None` when this member has never run. A file that exists but cannot
    /// be read or understood is an error: starting fresh would forget a takeover.
    pub fn load(&self, group: &str, member: &str) -> Result<Option<PersistedState>, StoreError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        let state: PersistedState =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if state.format != FORMAT {
            return Err(StoreError::Corrupt {
                path,
                message: format!("format {} (this agent reads {FORMAT})", state.format),
            });
        }
        if state.member != member || state.group != group {
            return Err(StoreError::WrongMember {
                path,
                found: state.member,
                group: state.group,
            });
        }
        Ok(Some(state))
    }

    /// Writes the state durably: after this returns, a crash leaves either the old or the new
    /// file, never a mix.
    pub fn save(&self, state: &PersistedState) -> Result<(), StoreError> {
        let path = self.path();
        let tmp = self.dir.join(format!("{}.tmp", Self::FILE));
        let err = |source| StoreError::Write {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| err(std::io::Error::other(e)))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(err)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{MemberRecord, Role, DEFAULT_EXTRA_ADDRESS};

    fn state() -> PersistedState {
        let view = GroupView {
            group: "g".into(),
            members: vec![MemberRecord::initial(
                "main-1",
                Role::Main,
                "192.0.2.1".parse().expect("ip"),
                DEFAULT_EXTRA_ADDRESS,
                true,
            )],
            maintenance: Default::default(),
        };
        PersistedState::new(view, "main-1")
    }

    #[test]
    fn round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        assert!(store.load("g", "main-1").expect("load").is_none());
        let mut s = state();
        s.count_op("op-1", OpKind::Manual);
        store.save(&s).expect("save");
        assert_eq!(store.load("g", "main-1").expect("load"), Some(s));
    }

    /// The maintenance setting is persisted with the view; a state file written before it
    /// existed loads with maintenance mode off.
    #[test]
    fn maintenance_is_persisted_and_old_files_load_without_it() {
        use crate::group::Requester;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let mut s = state();
        let by = Requester {
            interface: "http".into(),
            identity: "token@127.0.0.1".into(),
        };
        s.view.maintenance = s
            .view
            .maintenance
            .set(true, &by, Some("window"), 42, "main-1");
        store.save(&s).expect("save");
        let back = store.load("g", "main-1").expect("load").expect("saved");
        assert!(back.view.maintenance.enabled);
        assert_eq!(back.view.maintenance.since, Some(42));
        assert_eq!(back, s);

        let mut old = serde_json::to_value(state()).expect("json");
        old["view"]
            .as_object_mut()
            .expect("view is an object")
            .remove("maintenance");
        fs::write(store.path(), old.to_string()).expect("write");
        let back = store
            .load("g", "main-1")
            .expect("old file loads")
            .expect("saved");
        assert_eq!(back.view.maintenance, crate::group::Maintenance::default());
        assert!(!back.view.maintenance.enabled);
    }

    #[test]
    fn corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        fs::write(store.path(), b"{\"format\": 1, \"gro").expect("write");
        let e = store.load("g", "main-1").expect_err("corrupt");
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("refusing to start"));
    }

    #[test]
    fn other_members_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store.save(&state()).expect("save");
        let e = store.load("g", "backup-1").expect_err("wrong member");
        assert!(matches!(e, StoreError::WrongMember { .. }));
    }

    #[test]
    fn counts_each_operation_once() {
        let mut s = state();
        assert!(s.count_op("a", OpKind::Manual));
        assert!(!s.count_op("a", OpKind::Manual));
        s.count_op("b", OpKind::AutoFailover);
        assert_eq!(s.takeovers.get(&OpKind::Manual), Some(&1));
        assert_eq!(s.takeovers.get(&OpKind::AutoFailover), None);
    }

    /// A failover refused or failed on every heartbeat folds into one entry; anything else
    /// (another outcome, message or operation, a done one) is an entry of its own.
    #[test]
    fn a_repeated_refusal_is_counted_on_one_entry() {
        use crate::command::{Command, Event, OutcomeKind};
        use crate::group::{Operation, Requester};
        let cmd = Command {
            operation: Operation::Failover {
                backup: "backup-1".into(),
                main: "main-1".into(),
            },
            requested_by: Requester {
                interface: "detector".into(),
                identity: "backup-1".into(),
            },
            reason: None,
        };
        let failed = |at: u64, message: &str| {
            let mut e = Event::of(&cmd, format!("e{at}"), "backup-1", at);
            e.outcome = OutcomeKind::Failed;
            e.message = message.into();
            e
        };
        let mut s = state();
        for at in 0..(EVENT_HISTORY as u64 * 3) {
            s.record_event(failed(at, "backup-1 cannot persist its new record"));
        }
        assert_eq!(s.events.len(), 1, "one entry for every identical failure");
        let e = &s.events[0];
        assert_eq!((e.id.as_str(), e.at), ("e0", 0));
        assert_eq!(e.repeats, EVENT_HISTORY as u32 * 3 - 1);
        assert_eq!(e.last_at, Some(EVENT_HISTORY as u64 * 3 - 1));

        s.record_event(failed(5000, "main-1 did not apply its part"));
        let mut done = Event::of(&cmd, "d1".into(), "backup-1", 6000);
        done.message = "backup-1 failed over main-1".into();
        s.record_event(done.clone());
        let mut again = done;
        again.id = "d2".into();
        s.record_event(again);
        assert_eq!(s.events.len(), 4, "{:?}", s.events);
        assert!(s.events.iter().skip(1).all(|e| e.repeats == 0));
    }
}
