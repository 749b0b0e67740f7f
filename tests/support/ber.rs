//! A tiny BER encoder for hand-made SNMP messages (the fuzz test's seeds, the SNMP
//! benchmark's requests). Pure.

/// ASN.1 NULL, the value of a varbind in a request.
pub const NULL: [u8; 2] = [0x05, 0x00];

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

pub fn int(v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut i = 0;
    while i < 7
        && ((bytes[i] == 0 && bytes[i + 1] & 0x80 == 0)
            || (bytes[i] == 0xff && bytes[i + 1] & 0x80 != 0))
    {
        i += 1;
    }
    tlv(0x02, &bytes[i..])
}

pub fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

pub fn oid(arcs: &[u32]) -> Vec<u8> {
    let mut c = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(((v & 0x7f) as u8) | 0x80);
            v >>= 7;
        }
        chunk.reverse();
        c.extend(chunk);
    }
    tlv(0x06, &c)
}

pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

pub fn pdu(tag: u8, id: i64, a: i64, b: i64, varbinds: &[(Vec<u32>, Vec<u8>)]) -> Vec<u8> {
    let vbs: Vec<Vec<u8>> = varbinds
        .iter()
        .map(|(o, v)| seq(&[oid(o), v.clone()]))
        .collect();
    tlv(tag, &[int(id), int(a), int(b), seq(&vbs)].concat())
}

pub fn community_msg(version: i64, community: &[u8], pdu: Vec<u8>) -> Vec<u8> {
    seq(&[int(version), octets(community), pdu])
}

/// An SNMPv3 engine discovery request (noAuthNoPriv, reportable, empty engine ID and user),
/// message id `msg_id`, request id `request_id`.
pub fn v3_discovery(msg_id: i64, request_id: i64) -> Vec<u8> {
    seq(&[
        int(3),
        seq(&[int(msg_id), int(65507), octets(&[0x04]), int(3)]),
        octets(&seq(&[
            octets(b""),
            int(0),
            int(0),
            octets(b""),
            octets(b""),
            octets(b""),
        ])),
        seq(&[octets(b""), octets(b""), pdu(0xa0, request_id, 0, 0, &[])]),
    ])
}
