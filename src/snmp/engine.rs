//! The local SNMP engine on the `async-snmp` crate: its engine ID (kept in the member's state
//! directory), its boots (the member's start count), its security and access control (the
//! communities, USM users and VACM rules of the configuration), and the conversions between the
//! MIB module's values and the crate's that the responder and the notifiers share. One of the
//! three files that use `async-snmp` (with [`crate::snmp::responder`] and
//! [`crate::snmp::notifier`]). Does I/O (the engine ID file).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use async_snmp as snmp;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use snmp::{SecurityLevel, SecurityModel};

use crate::snmp::config::{Access, AuthProtocol, SnmpConfig};
use crate::snmp::error::SnmpError;
use crate::snmp::mib::Value;

/// The file, in the state directory, that keeps the SNMP engine ID across restarts.
pub const ENGINE_ID_FILE: &str = "snmp-engine-id";

/// Reads the engine ID kept in `state_dir`, or makes one and keeps it: RFC 3411 format 5
/// (administratively assigned octets) under enterprise 32473, with 12 octets unique to this
/// member and installation.
pub fn load_or_create_engine_id(state_dir: &Path, member: &str) -> Result<Vec<u8>, SnmpError> {
    let path = state_dir.join(ENGINE_ID_FILE);
    let err = |message: String| SnmpError::EngineId {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = hex::decode(text.trim()).map_err(|e| {
                err(format!(
                    "not hexadecimal ({e}); remove the file to make a new engine ID \
                     (SNMPv3 managers then rediscover it)"
                ))
            })?;
            if !(5..=32).contains(&id.len()) {
                return Err(err(format!(
                    "{} octets, an engine ID has 5 to 32; remove the file to make a new one",
                    id.len()
                )));
            }
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut h = Sha256::new();
            h.update(member.as_bytes());
            h.update(state_dir.as_os_str().as_encoded_bytes());
            h.update(std::process::id().to_le_bytes());
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            h.update(nanos.to_le_bytes());
            let digest = h.finalize();
            let mut id = vec![0x80, 0x00, 0x7e, 0xd9, 0x05];
            id.extend_from_slice(&digest[..12]);
            std::fs::create_dir_all(state_dir).map_err(|e| err(e.to_string()))?;
            let tmp = state_dir.join(format!(".{ENGINE_ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{}\n", hex::encode(&id)))
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| err(e.to_string()))?;
            Ok(id)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

pub fn to_oid(arcs: &[u32]) -> snmp::Oid {
    snmp::Oid::from_slice(arcs)
}

pub fn to_value(v: &Value) -> snmp::Value {
    match v {
        Value::Integer(i) => snmp::Value::Integer(*i),
        Value::Octets(b) => snmp::Value::OctetString(b.clone()),
        Value::ObjectId(o) => snmp::Value::ObjectIdentifier(to_oid(o)),
        Value::Counter32(c) => snmp::Value::Counter32(*c),
        Value::Gauge32(g) => snmp::Value::Gauge32(*g),
        Value::TimeTicks(t) => snmp::Value::TimeTicks(*t),
    }
}

/// The SET value as the MIB module sees it; `None` for types no writable object takes.
pub fn from_value(v: &snmp::Value) -> Option<Value> {
    match v {
        snmp::Value::Integer(i) => Some(Value::Integer(*i)),
        snmp::Value::OctetString(b) => Some(Value::Octets(b.clone())),
        snmp::Value::Counter32(c) => Some(Value::Counter32(*c)),
        snmp::Value::Gauge32(g) => Some(Value::Gauge32(*g)),
        snmp::Value::TimeTicks(t) => Some(Value::TimeTicks(*t)),
        _ => None,
    }
}

pub fn auth_protocol(p: AuthProtocol) -> snmp::AuthProtocol {
    match p {
        AuthProtocol::Sha1 => snmp::AuthProtocol::Sha1,
        AuthProtocol::Sha256 => snmp::AuthProtocol::Sha256,
    }
}

/// The local authoritative SNMPv3 engine: a persisted engine ID and the agent's boot count.
#[derive(Debug, Clone)]
pub struct Engine(snmp::AuthoritativeEngine);

impl Engine {
    /// `boots` is the member's persisted start count ([`crate::snapshot::Snapshot::boots`]),
    /// already written for this start; it serves as `snmpEngineBoots`.
    pub fn start(engine_id: &[u8], boots: u32) -> Result<Engine, SnmpError> {
        let boots = boots.max(1);
        // The boot count is persisted by the agent's store; only the (68-year) engine-time
        // rollover would need another write, and then a restart is the remedy.
        let persist = move |p: &snmp::PersistedAuthoritativeEngine| -> Result<(), String> {
            if p.engine_boots() <= boots {
                Ok(())
            } else {
                Err("SNMP engine time rolled over: restart the agent to count a new boot".into())
            }
        };
        let id = Bytes::copy_from_slice(engine_id);
        let engine = if boots == 1 {
            snmp::AuthoritativeEngine::install(id, persist)
        } else {
            snmp::PersistedAuthoritativeEngine::new(id, boots - 1)
                .and_then(|prev| snmp::AuthoritativeEngine::restart(prev, persist))
        };
        engine
            .map(Engine)
            .map_err(|e| SnmpError::Engine(e.to_string()))
    }

    pub fn engine_id(&self) -> Bytes {
        Bytes::copy_from_slice(self.0.engine_id())
    }

    /// The engine as an async-snmp agent takes it (the responder's and every notifier's).
    pub fn authoritative(&self) -> snmp::AuthoritativeEngine {
        self.0.clone()
    }
}

/// Adds the configured communities, USM users and VACM rules to an agent being built: every
/// identity reads everything under `1.3`, a read-write one also writes there (only the control
/// columns take a SET), and a user must use the strongest security level its credentials allow.
pub fn with_access_control(
    mut b: snmp::AgentBuilder,
    cfg: &SnmpConfig,
) -> Result<snmp::AgentBuilder, SnmpError> {
    for c in &cfg.communities {
        b = b.community(c.secret.expose().as_bytes());
    }
    for u in &cfg.users {
        let auth = auth_protocol(u.auth);
        let pass = u.auth_password.expose().as_bytes().to_vec();
        let privacy = u
            .privacy
            .map(|_| u.privacy_password.expose().as_bytes().to_vec());
        b = b
            .usm_user(u.name.clone(), move |user| match privacy {
                Some(pp) => user.auth_priv(auth, &pass, snmp::PrivProtocol::Aes128, &pp),
                None => user.auth(auth, &pass),
            })
            .map_err(|e| SnmpError::Agent(format!("SNMPv3 user {:?}: {e}", u.name)))?;
    }
    const VIEW: &str = "all";
    const NOTHING: &str = "nothing";
    // Read-only identities write through an empty view: a SET is noAccess
    // (noSuchName in SNMPv1), as with net-snmp's rocommunity and rouser.
    let write_view = |access: Access| {
        if access == Access::ReadWrite {
            VIEW
        } else {
            NOTHING
        }
    };
    Ok(b.vacm(|mut v| {
        for c in &cfg.communities {
            let group = match c.access {
                Access::ReadWrite => "community-rw",
                _ => "community-ro",
            };
            let secret = Bytes::copy_from_slice(c.secret.expose().as_bytes());
            v = v.group(secret.clone(), SecurityModel::V1, group).group(
                secret,
                SecurityModel::V2c,
                group,
            );
        }
        for (group, access) in [
            ("community-ro", Access::ReadOnly),
            ("community-rw", Access::ReadWrite),
        ] {
            v = v.access(
                group,
                snmp::VacmSecurityModel::Any,
                SecurityLevel::NoAuthNoPriv,
                |a| a.read_view(VIEW).write_view(write_view(access)),
            );
        }
        for u in &cfg.users {
            if u.access == Access::None {
                continue;
            }
            let level = if u.privacy.is_some() {
                SecurityLevel::AuthPriv
            } else {
                SecurityLevel::AuthNoPriv
            };
            let group = format!("usm-{}", u.name);
            v = v.group(u.name.clone(), SecurityModel::Usm, group.clone());
            v = v.access(group, SecurityModel::Usm, level, |a| {
                a.read_view(VIEW).write_view(write_view(u.access))
            });
        }
        v.view(VIEW, |w| w.include(to_oid(&[1, 3])))
            .view(NOTHING, |w| w)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_engine_id(dir.path(), "main-1").expect("created");
        assert_eq!(a.len(), 17);
        assert_eq!(&a[..5], &[0x80, 0x00, 0x7e, 0xd9, 0x05]);
        let b = load_or_create_engine_id(dir.path(), "main-1").expect("read back");
        assert_eq!(a, b);
        std::fs::write(dir.path().join(ENGINE_ID_FILE), "zz").expect("write");
        let e = load_or_create_engine_id(dir.path(), "main-1").expect_err("corrupt");
        assert!(e.to_string().contains("remove the file"), "{e}");
    }
}
