//! One definition of the group: what every member's configuration must list alike (the
//! members in order, with their configured roles and addresses; not secrets, URLs or
//! timings), its digest (carried by every heartbeat), how two definitions differ, and which
//! peers list another group than this agent ([`Agreement`]). A member whose definition
//! differs takes part in no operation (`group_definition_mismatch`) and is an alarm reason.
//! Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Alarm, AlarmKind, Millis, Role};

/// The group as one member's configuration lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// In configuration order (`rgMemberIndex`).
    pub members: Vec<DefinedMember>,
}

/// One member as a configuration lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinedMember {
    pub name: String,
    pub role: Role,
    pub address: IpAddr,
    /// The extra address in effect (the default when none is configured).
    pub extra_address: IpAddr,
}

impl Definition {
    /// SHA-256 (hex) of a canonical text of the definition: equal exactly when the members,
    /// their order, roles and addresses are.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"understudy group definition 1\n");
        for m in &self.members {
            h.update(
                format!("{} {} {} {}\n", m.name, m.role, m.address, m.extra_address).as_bytes(),
            );
        }
        hex::encode(h.finalize())
    }

    fn member(&self, name: &str) -> Option<&DefinedMember> {
        self.members.iter().find(|m| m.name == name)
    }

    /// How `there` differs from this definition ("here"), one phrase per difference: members
    /// listed on one side only, another order, another role or address.
    pub fn differences(&self, there: &Definition) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.members {
            if there.member(&m.name).is_none() {
                out.push(format!("{} is listed here only", m.name));
            }
        }
        for m in &there.members {
            if self.member(&m.name).is_none() {
                out.push(format!("{} is listed there only", m.name));
            }
        }
        let common = |a: &Definition, b: &Definition| -> Vec<String> {
            a.members
                .iter()
                .filter(|m| b.member(&m.name).is_some())
                .map(|m| m.name.clone())
                .collect()
        };
        let (order_here, order_there) = (common(self, there), common(there, self));
        if order_here != order_there {
            out.push(format!(
                "members in the order {} here, {} there",
                order_here.join(", "),
                order_there.join(", ")
            ));
        }
        for h in &self.members {
            let Some(t) = there.member(&h.name) else {
                continue;
            };
            if h.role != t.role {
                out.push(format!("{} role {} here, {} there", h.name, h.role, t.role));
            }
            if h.address != t.address {
                out.push(format!(
                    "{} address {} here, {} there",
                    h.name, h.address, t.address
                ));
            }
            if h.extra_address != t.extra_address {
                out.push(format!(
                    "{} extra address {} here, {} there",
                    h.name, h.extra_address, t.extra_address
                ));
            }
        }
        out
    }
}

/// A peer whose group definition differs from this agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// When this agent first saw it (since it last agreed).
    pub since: Millis,
    /// How it differs; empty until the peer has sent its definition.
    pub differences: Vec<String>,
}

/// What an observation changed, for the agent to log once (not at every heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Noted {
    /// A new mismatch, or a known one that now differs otherwise.
    Differs(Vec<String>),
    /// A peer that differed lists the same group again.
    Agrees,
}

/// This agent's definition and the peers whose definitions differ from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// This agent's member.
    local: String,
    here: Definition,
    digest: String,
    differ: BTreeMap<String, Mismatch>,
}

impl Default for Agreement {
    fn default() -> Self {
        Agreement::new("", Definition::default())
    }
}

impl Agreement {
    /// The agreement of the agent of `local`, whose configuration lists `here`.
    pub fn new(local: &str, here: Definition) -> Agreement {
        Agreement {
            local: local.to_string(),
            digest: here.digest(),
            here,
            differ: BTreeMap::new(),
        }
    }

    /// This agent's definition.
    pub fn definition(&self) -> &Definition {
        &self.here
    }

    /// Its digest, as heartbeats carry it.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// What `peer` told about its definition at `now`: its digest (`None` from an agent that
    /// sends none: nothing is learnt) and, when it sent it, the definition itself.
    pub fn observe(
        &mut self,
        peer: &str,
        digest: Option<&str>,
        theirs: Option<&Definition>,
        now: Millis,
    ) -> Option<Noted> {
        let digest = digest?;
        if digest == self.digest {
            return self.differ.remove(peer).map(|_| Noted::Agrees);
        }
        let differences = match theirs {
            Some(t) => {
                let d = self.here.differences(t);
                if d.is_empty() {
                    vec![format!(
                        "the definitions hash differently ({} here, {} there)",
                        short(&self.digest),
                        short(digest)
                    )]
                } else {
                    d
                }
            }
            None => match self.differ.get(peer) {
                Some(known) => known.differences.clone(),
                None => Vec::new(),
            },
        };
        match self.differ.get_mut(peer) {
            Some(known) if known.differences == differences => None,
            Some(known) => {
                known.differences = differences.clone();
                Some(Noted::Differs(differences))
            }
            None => {
                self.differ.insert(
                    peer.to_string(),
                    Mismatch {
                        since: now,
                        differences: differences.clone(),
                    },
                );
                Some(Noted::Differs(differences))
            }
        }
    }

    /// Does `peer`'s definition differ (as last heard)?
    pub fn differs(&self, peer: &str) -> bool {
        self.differ.contains_key(peer)
    }

    /// The peers whose definitions differ.
    pub fn mismatched(&self) -> BTreeSet<String> {
        self.differ.keys().cloned().collect()
    }

    pub fn mismatches(&self) -> &BTreeMap<String, Mismatch> {
        &self.differ
    }

    /// The alarm while any peer's definition differs: raised when the oldest mismatch still
    /// standing was first seen, naming each peer and how it differs from this agent's.
    pub fn alarm(&self) -> Option<Alarm> {
        let local = &self.local;
        let since = self.differ.values().map(|m| m.since).min()?;
        let each = self
            .differ
            .iter()
            .map(|(peer, m)| {
                if m.differences.is_empty() {
                    format!(
                        "{peer}'s group definition differs from {local}'s (how shows once it \
                         has sent it)"
                    )
                } else {
                    format!(
                        "{peer}'s group definition differs from {local}'s: {}",
                        m.differences.join("; ")
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" / ");
        let peers = self.differ.keys().cloned().collect::<Vec<_>>().join(", ");
        Some(Alarm {
            kind: AlarmKind::GroupDefinitionMismatch,
            raised_at: since,
            reason: format!(
                "{each}. No operation involving {peers} is carried out until every member's \
                 configuration lists the same members, in the same order, with the same roles \
                 and addresses"
            ),
            main: None,
            backup: None,
        })
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(members: &[(&str, Role, &str)]) -> Definition {
        Definition {
            members: members
                .iter()
                .enumerate()
                .map(|(i, (name, role, address))| DefinedMember {
                    name: name.to_string(),
                    role: *role,
                    address: address.parse().expect("address"),
                    extra_address: IpAddr::from([10, 0, 3, 6 + i as u8]),
                })
                .collect(),
        }
    }

    const M: Role = Role::Main;
    const B: Role = Role::Backup;

    fn here() -> Definition {
        def(&[("main-1", M, "192.0.2.10"), ("backup-1", B, "192.0.2.20")])
    }

    #[test]
    fn differences_name_each_member_and_what_differs() {
        let mut swapped_extras = here();
        swapped_extras.members[1].extra_address = "10.0.3.9".parse().expect("address");
        // (there, differences from here)
        let rows: Vec<(Definition, Vec<&str>)> = vec![
            (here(), vec![]),
            (
                def(&[("main-1", M, "192.0.2.11"), ("backup-1", B, "192.0.2.20")]),
                vec!["main-1 address 192.0.2.10 here, 192.0.2.11 there"],
            ),
            (
                Definition {
                    members: vec![here().members[1].clone(), here().members[0].clone()],
                },
                vec!["members in the order main-1, backup-1 here, backup-1, main-1 there"],
            ),
            (
                def(&[("main-1", B, "192.0.2.10"), ("backup-1", M, "192.0.2.20")]),
                vec![
                    "main-1 role main here, backup there",
                    "backup-1 role backup here, main there",
                ],
            ),
            (
                def(&[
                    ("main-1", M, "192.0.2.10"),
                    ("backup-1", B, "192.0.2.20"),
                    ("backup-2", B, "192.0.2.21"),
                ]),
                vec!["backup-2 is listed there only"],
            ),
            (
                def(&[("main-1", M, "192.0.2.10")]),
                vec!["backup-1 is listed here only"],
            ),
            (
                swapped_extras,
                vec!["backup-1 extra address 10.0.3.7 here, 10.0.3.9 there"],
            ),
        ];
        for (there, want) in rows {
            assert_eq!(here().differences(&there), want, "{there:?}");
            assert_eq!(
                here().digest() == there.digest(),
                want.is_empty(),
                "the digests are equal exactly when nothing differs: {there:?}"
            );
        }
    }

    #[test]
    fn a_mismatch_is_noted_once_described_when_known_and_cleared_when_it_agrees() {
        let mut a = Agreement::new("main-1", here());
        let other = def(&[("main-1", M, "192.0.2.11"), ("backup-1", B, "192.0.2.20")]);
        let theirs = other.digest();
        let same = here().digest();
        // An agent that sends no digest teaches nothing.
        assert_eq!(a.observe("backup-1", None, None, 1), None);
        assert!(a.alarm().is_none());
        // A digest alone: a mismatch whose difference is not known yet.
        assert_eq!(
            a.observe("backup-1", Some(&theirs), None, 2),
            Some(Noted::Differs(vec![]))
        );
        assert!(a.differs("backup-1"));
        assert!(a.alarm().is_some_and(|al| al
            .reason
            .contains("backup-1's group definition differs from main-1's (how shows")));
        // Its definition: the difference, noted once.
        let address = vec!["main-1 address 192.0.2.10 here, 192.0.2.11 there".to_string()];
        assert_eq!(
            a.observe("backup-1", Some(&theirs), Some(&other), 3),
            Some(Noted::Differs(address.clone()))
        );
        assert_eq!(a.observe("backup-1", Some(&theirs), Some(&other), 4), None);
        assert_eq!(a.observe("backup-1", Some(&theirs), None, 5), None);
        let alarm = a.alarm().expect("raised");
        assert_eq!(alarm.kind, AlarmKind::GroupDefinitionMismatch);
        assert_eq!(alarm.raised_at, 2, "raised when first seen");
        assert!(
            alarm.reason.starts_with(
                "backup-1's group definition differs from main-1's: main-1 address \
                 192.0.2.10 here, 192.0.2.11 there. No operation involving backup-1"
            ),
            "{}",
            alarm.reason
        );
        assert_eq!(a.mismatched(), BTreeSet::from(["backup-1".to_string()]));
        // The same definition again: cleared, noted once.
        assert_eq!(
            a.observe("backup-1", Some(&same), None, 6),
            Some(Noted::Agrees)
        );
        assert_eq!(a.observe("backup-1", Some(&same), None, 7), None);
        assert!(a.alarm().is_none() && a.mismatched().is_empty());
    }
}
