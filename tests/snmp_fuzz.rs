//! Fuzzing the SNMP request path with proptest: arbitrary bytes, and valid v1/v2c/v3 requests
//! mutated (bytes flipped, cut, spliced), go (1) to the pure first look at a datagram
//! (`snmp::wire`) and (2) over UDP to a real in-process demo group's SNMP agent (gate,
//! async-snmp decoding, USM, the MIB handler, SET through the command path). Nothing may
//! panic, and the agent must keep answering a valid GET within a second after every case
//! (no hang).
//!
//! `PROPTEST_CASES` sets the number of cases (default 1500 for the agent, 20000 for the
//! pure parser).

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use clap::Parser;
use proptest::prelude::*;
use support::ber::*;
use understudy::cli::{Cli, CliCommand};
use understudy::snmp::wire;

const SYS_DESCR: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
const ROOT: &[u32] = &[1, 3, 6, 1, 4, 1, 32473, 36];

/// Valid requests of every kind the agent takes, to mutate.
fn seeds() -> Vec<Vec<u8>> {
    let null = NULL.to_vec();
    let auto_failover_1: Vec<u32> = [ROOT, &[1, 2, 1, 8, 1]].concat();
    let manual_takeover_2: Vec<u32> = [ROOT, &[1, 2, 1, 12, 2]].concat();
    vec![
        community_msg(
            1,
            b"public",
            pdu(0xa0, 1, 0, 0, &[(SYS_DESCR.to_vec(), null.clone())]),
        ),
        community_msg(
            0,
            b"public",
            pdu(0xa1, 2, 0, 0, &[(ROOT.to_vec(), null.clone())]),
        ),
        community_msg(
            1,
            b"public",
            pdu(0xa5, 3, 0, 50, &[(vec![1, 3], null.clone())]),
        ),
        community_msg(
            1,
            b"public",
            pdu(
                0xa5,
                4,
                2,
                10,
                &[(vec![1, 3], null.clone()), (ROOT.to_vec(), null.clone())],
            ),
        ),
        community_msg(
            1,
            b"private",
            pdu(0xa3, 5, 0, 0, &[(auto_failover_1, int(1))]),
        ),
        community_msg(
            1,
            b"private",
            pdu(0xa3, 6, 0, 0, &[(manual_takeover_2, int(0))]),
        ),
        // SNMPv3 engine discovery (noAuthNoPriv, reportable, empty engine ID and user).
        v3_discovery(77, 8),
        // SNMPv3 authPriv-flagged with garbage keys for user noc.
        seq(&[
            int(3),
            seq(&[int(78), int(1500), octets(&[0x07]), int(3)]),
            octets(&seq(&[
                octets(&[0x80, 0, 0x7e, 0xd9, 5, 1, 2, 3, 4]),
                int(1),
                int(5),
                octets(b"noc"),
                octets(&[0u8; 24]),
                octets(&[0u8; 8]),
            ])),
            octets(&[0x55; 48]),
        ]),
    ]
}

// ------------------------------------------------------------------ the agent under test

struct Target {
    snmp: SocketAddr,
    _rt: tokio::runtime::Runtime,
}

static PANICS: AtomicUsize = AtomicUsize::new(0);
static FIRST_PANIC: Mutex<String> = Mutex::new(String::new());

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if PANICS.fetch_add(1, Ordering::SeqCst) == 0 {
                if let Ok(mut m) = FIRST_PANIC.lock() {
                    *m = info.to_string();
                }
            }
            default(info);
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let cli = Cli::parse_from(["understudy", "demo", "--http-port", "0", "--snmp-port", "0"]);
        let CliCommand::Demo(args) = cli.command else {
            panic!("not the demo command")
        };
        let demo = rt
            .block_on(understudy::demo::Demo::start(&args))
            .expect("demo starts");
        let snmp = demo.snmp[0];
        // The demo runs for the rest of the process.
        std::mem::forget(demo);
        let t = Target { snmp, _rt: rt };
        assert!(alive(&t), "the agent does not answer before fuzzing");
        t
    })
}

fn alive(t: &Target) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
    let get = community_msg(
        1,
        b"public",
        pdu(0xa0, 4242, 0, 0, &[(SYS_DESCR.to_vec(), NULL.to_vec())]),
    );
    let mut buf = [0u8; 2048];
    for _ in 0..3 {
        if sock.send_to(&get, t.snmp).is_err() {
            continue;
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n > 2 && buf[0] == 0x30 {
                return true;
            }
        }
    }
    false
}

fn send(t: &Target, data: &[u8]) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    let _ = sock.send_to(data, t.snmp);
}

fn no_panic_yet() -> Result<(), TestCaseError> {
    if PANICS.load(Ordering::SeqCst) > 0 {
        let m = FIRST_PANIC.lock().map(|m| m.clone()).unwrap_or_default();
        return Err(TestCaseError::fail(format!("a panic: {m}")));
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Cut(usize),
    Splice(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Cut),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Splice(i, b)),
    ]
}

fn mutate(mut data: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if data.is_empty() {
            break;
        }
        let at = |i: usize| i % data.len();
        match m {
            Mutation::Flip(i, b) => {
                let i = at(*i);
                data[i] ^= b;
            }
            Mutation::Set(i, b) => {
                let i = at(*i);
                data[i] = *b;
            }
            Mutation::Cut(i) => {
                let i = at(*i);
                data.truncate(i);
            }
            Mutation::Splice(i, b) => {
                let i = at(*i);
                data.splice(i..i, b.iter().copied());
            }
        }
    }
    data
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn communities() -> Vec<wire::GateCommunity> {
    vec![
        wire::GateCommunity {
            secret: b"public".to_vec(),
            may_write: false,
        },
        wire::GateCommunity {
            secret: b"private".to_vec(),
            may_write: true,
        },
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(20_000)))]

    #[test]
    fn the_first_look_at_a_datagram_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        seed in 0usize..8,
        mutations in prop::collection::vec(mutation(), 0..6),
    ) {
        let c = communities();
        let _ = wire::verdict(&bytes, &c);
        let seeds = seeds();
        let mutated = mutate(seeds[seed % seeds.len()].clone(), &mutations);
        let v = wire::verdict(&mutated, &c);
        if mutations.is_empty() {
            prop_assert!(matches!(v, wire::Verdict::Forward | wire::Verdict::ForwardBadUse));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1500)))]

    #[test]
    fn the_agent_survives_arbitrary_and_mutated_requests(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        seed in 0usize..8,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let t = target();
        send(t, &bytes);
        let seeds = seeds();
        send(t, &mutate(seeds[seed % seeds.len()].clone(), &mutations));
        no_panic_yet()?;
        prop_assert!(alive(t), "the agent stopped answering");
        no_panic_yet()?;
    }
}

#[test]
fn every_seed_is_answered() {
    // The seeds reach the agent proper: each gets a response or a report.
    let t = target();
    for (i, s) in seeds().iter().enumerate() {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let _ = sock.set_read_timeout(Some(Duration::from_secs(3)));
        sock.send_to(s, t.snmp).expect("send");
        let mut buf = [0u8; 4096];
        let answered = sock
            .recv_from(&mut buf)
            .map(|(n, _)| n > 0 && buf[0] == 0x30);
        assert!(matches!(answered, Ok(true)), "seed {i} was not answered");
    }
}
