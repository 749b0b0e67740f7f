//! The first look at an SNMP datagram, before the agent proper sees it: the message version,
//! the community of a v1/v2c message and the PDU type, read from the BER envelope without
//! decoding the rest; and the gate's verdict (forward, or drop and count why). This is what
//! keeps the SNMPv2-MIB `snmp` counters (`snmpInBadVersions`, `snmpInBadCommunityNames`, ...).
//! Pure; parses untrusted bytes, so it never panics and never allocates (fuzzed by
//! `tests/snmp_fuzz.rs`).

use subtle::ConstantTimeEq;

/// What the envelope of a datagram says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// msgVersion: 0 = SNMPv1, 1 = SNMPv2c, 3 = SNMPv3.
    pub version: i64,
    /// The community of a v1/v2c message.
    pub community: Option<&'a [u8]>,
    /// The PDU tag of a v1/v2c message (0xa0 GetRequest ... 0xa3 SetRequest ...).
    pub pdu: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    Truncated,
    /// Not the tag SNMP puts there.
    UnexpectedTag {
        expected: u8,
        found: u8,
    },
    BadLength,
    BadInteger,
}

/// PDU tags.
pub const GET_REQUEST: u8 = 0xa0;
pub const SET_REQUEST: u8 = 0xa3;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;

/// Reads one tag-length header at `at`; returns (tag, content start, content length).
fn header(data: &[u8], at: usize) -> Result<(u8, usize, usize), WireError> {
    let tag = *data.get(at).ok_or(WireError::Truncated)?;
    let first = *data.get(at + 1).ok_or(WireError::Truncated)?;
    let (len, start) = if first < 0x80 {
        (usize::from(first), at + 2)
    } else {
        let n = usize::from(first & 0x7f);
        // Indefinite lengths (0x80) are not allowed in SNMP; 4 octets are plenty for UDP.
        if n == 0 || n > 4 {
            return Err(WireError::BadLength);
        }
        let bytes = data.get(at + 2..at + 2 + n).ok_or(WireError::Truncated)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, at + 2 + n)
    };
    if start.checked_add(len).is_none_or(|end| end > data.len()) {
        return Err(WireError::Truncated);
    }
    Ok((tag, start, len))
}

fn expect(data: &[u8], at: usize, tag: u8) -> Result<(usize, usize), WireError> {
    let (found, start, len) = header(data, at)?;
    if found != tag {
        return Err(WireError::UnexpectedTag {
            expected: tag,
            found,
        });
    }
    Ok((start, len))
}

/// Reads the envelope of a datagram.
pub fn envelope(data: &[u8]) -> Result<Envelope<'_>, WireError> {
    let (msg, msg_len) = expect(data, 0, SEQUENCE)?;
    let body = &data[..msg + msg_len];
    let (v, v_len) = expect(body, msg, INTEGER)?;
    if v_len == 0 || v_len > 8 {
        return Err(WireError::BadInteger);
    }
    let digits = &body[v..v + v_len];
    let negative = digits[0] & 0x80 != 0;
    let version = digits
        .iter()
        .fold(if negative { -1i64 } else { 0 }, |acc, b| {
            (acc << 8) | i64::from(*b)
        });
    let next = v + v_len;
    if version != 0 && version != 1 {
        return Ok(Envelope {
            version,
            community: None,
            pdu: None,
        });
    }
    let (c, c_len) = expect(body, next, OCTET_STRING)?;
    let community = &body[c..c + c_len];
    let (pdu, _, _) = header(body, c + c_len)?;
    Ok(Envelope {
        version,
        community: Some(community),
        pdu: Some(pdu),
    })
}

/// A configured community as the gate knows it.
#[derive(Debug, Clone)]
pub struct GateCommunity {
    pub secret: Vec<u8>,
    pub may_write: bool,
}

/// What the gate does with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Hand it to the agent.
    Forward,
    /// Hand it to the agent, which refuses it (a SET with a read-only community):
    /// count `snmpInBadCommunityUses`.
    ForwardBadUse,
    /// Drop: `snmpInASNParseErrs`.
    ParseError,
    /// Drop: `snmpInBadVersions`.
    BadVersion,
    /// Drop silently: `snmpInBadCommunityNames`.
    BadCommunity,
}

/// What goes with the community `given` among `communities` (each a community string and
/// what goes with it): compared with every one, in constant time per community, without
/// stopping at the first match; the first match wins.
pub fn find_community<'a, T>(
    given: &[u8],
    communities: impl IntoIterator<Item = (&'a [u8], T)>,
) -> Option<T> {
    let mut found = None;
    for (secret, t) in communities {
        let same = secret.len() == given.len() && bool::from(secret.ct_eq(given));
        if same && found.is_none() {
            found = Some(t);
        }
    }
    found
}

/// The gate's verdict on a datagram.
pub fn verdict(data: &[u8], communities: &[GateCommunity]) -> Verdict {
    let env = match envelope(data) {
        Ok(e) => e,
        Err(_) => return Verdict::ParseError,
    };
    match env.version {
        3 => Verdict::Forward,
        0 | 1 => {
            let given = env.community.unwrap_or_default();
            let found = find_community(
                given,
                communities
                    .iter()
                    .map(|c| (c.secret.as_slice(), c.may_write)),
            );
            match (found, env.pdu) {
                (None, _) => Verdict::BadCommunity,
                (Some(false), Some(SET_REQUEST)) => Verdict::ForwardBadUse,
                (Some(_), _) => Verdict::Forward,
            }
        }
        _ => Verdict::BadVersion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// snmpget -v2c -c public 127.0.0.1 sysDescr.0 (request-id 0x1234)
    const V2C_GET: &[u8] = &[
        0x30, 0x29, 0x02, 0x01, 0x01, 0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', 0xa0, 0x1c,
        0x02, 0x02, 0x12, 0x34, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x30, 0x10, 0x30, 0x0e, 0x06,
        0x0a, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x05, 0x00,
    ];

    fn with(version: u8, community: &[u8], pdu: u8) -> Vec<u8> {
        let mut inner = vec![0x02, 0x01, version, 0x04, community.len() as u8];
        inner.extend_from_slice(community);
        inner.extend_from_slice(&[pdu, 0x00]);
        let mut out = vec![0x30, inner.len() as u8];
        out.extend(inner);
        out
    }

    fn communities() -> Vec<GateCommunity> {
        vec![
            GateCommunity {
                secret: b"public".to_vec(),
                may_write: false,
            },
            GateCommunity {
                secret: b"private".to_vec(),
                may_write: true,
            },
        ]
    }

    #[test]
    fn envelopes() {
        let table: Vec<(&[u8], Result<Envelope<'_>, WireError>)> = vec![
            (
                V2C_GET,
                Ok(Envelope {
                    version: 1,
                    community: Some(b"public"),
                    pdu: Some(GET_REQUEST),
                }),
            ),
            // SNMPv3: only the version is read
            (
                &[0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00],
                Ok(Envelope {
                    version: 3,
                    community: None,
                    pdu: None,
                }),
            ),
            // long-form lengths
            (
                &[0x30, 0x81, 0x03, 0x02, 0x01, 0x02],
                Ok(Envelope {
                    version: 2,
                    community: None,
                    pdu: None,
                }),
            ),
            // a negative version
            (
                &[0x30, 0x03, 0x02, 0x01, 0xff],
                Ok(Envelope {
                    version: -1,
                    community: None,
                    pdu: None,
                }),
            ),
            (&[], Err(WireError::Truncated)),
            (&[0x30], Err(WireError::Truncated)),
            (&[0x30, 0x05, 0x02], Err(WireError::Truncated)),
            (
                &[0x30, 0x80, 0x02, 0x01, 0x01, 0, 0],
                Err(WireError::BadLength),
            ),
            (&[0x30, 0x85, 1, 1, 1, 1, 1], Err(WireError::BadLength)),
            (
                &[0x31, 0x03, 0x02, 0x01, 0x01],
                Err(WireError::UnexpectedTag {
                    expected: 0x30,
                    found: 0x31,
                }),
            ),
            (&[0x30, 0x02, 0x02, 0x00], Err(WireError::BadInteger)),
            // a length that runs past the datagram
            (
                &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
                Err(WireError::Truncated),
            ),
            // v2c without a PDU
            (
                &[0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00],
                Err(WireError::Truncated),
            ),
        ];
        for (bytes, want) in table {
            assert_eq!(envelope(bytes), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn verdicts() {
        let c = communities();
        assert_eq!(verdict(V2C_GET, &c), Verdict::Forward);
        assert_eq!(
            verdict(&with(0, b"public", GET_REQUEST), &c),
            Verdict::Forward
        );
        assert_eq!(
            verdict(&with(1, b"private", SET_REQUEST), &c),
            Verdict::Forward
        );
        assert_eq!(
            verdict(&with(1, b"public", SET_REQUEST), &c),
            Verdict::ForwardBadUse
        );
        assert_eq!(
            verdict(&with(0, b"public", SET_REQUEST), &c),
            Verdict::ForwardBadUse
        );
        assert_eq!(
            verdict(&with(1, b"publi", GET_REQUEST), &c),
            Verdict::BadCommunity
        );
        assert_eq!(
            verdict(&with(1, b"", GET_REQUEST), &c),
            Verdict::BadCommunity
        );
        assert_eq!(
            verdict(&with(2, b"public", GET_REQUEST), &c),
            Verdict::BadVersion
        );
        assert_eq!(
            verdict(&[0x30, 0x05, 0x02, 0x01, 0x03, 0x30, 0x00], &c),
            Verdict::Forward
        );
        assert_eq!(verdict(b"GET / HTTP/1.0\r\n", &c), Verdict::ParseError);
    }
}
