//! Bounded resources: a burst of SNMPv3 datagrams (which pass the gate unauthenticated: USM
//! is checked by the engine behind it) from 1000 different source ports opens at most
//! `MAX_ROUTES` relay sockets, and the agent goes on saving its state and accepting
//! connections. Before, the gate kept up to 4096 relay sockets for a minute — above the usual
//! limit of 1024 open files. Linux only (counts /proc/PID/fd).

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::ber::v3_discovery;
use support::*;
use understudy::snmp::gate::MAX_ROUTES;

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or_else(|e| panic!("cannot list the agent's open files: {e}"))
}

#[tokio::test]
async fn a_burst_from_many_source_ports_opens_a_bounded_number_of_sockets() {
    let demo = Demo::start(&[]);
    let pid = demo.proc.id();
    let target = demo.member("main-1").snmp.clone();
    let url = demo.url("main-1");
    wait_replicated(&url, "backup-1").await;
    let before = open_files(pid);

    let managers: Vec<UdpSocket> = (0..1000)
        .map(|i| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind a manager port");
            s.send_to(&v3_discovery(i, i), &target).expect("send");
            // Each manager waits for its report (or a moment), as a real one would: the
            // burst is not lost to a full receive buffer before the gate sees it.
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            let _ = s.recv(&mut [0u8; 1500]);
            s
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = open_files(pid);
    eprintln!("open files: before {before}, during {during}");
    // Well below the usual soft limit of 1024 open files, whatever the agent had open before.
    assert!(
        during < before + 512,
        "{during} open files during the burst ({before} before; the gate keeps at most \
         {MAX_ROUTES} relay sockets)"
    );

    // The agent still accepts connections and saves its state: a takeover is carried out.
    post_ok(
        &format!("{url}/api/v1/takeover"),
        TOKEN,
        r#"{"backup":"backup-1","main":"main-1"}"#,
    )
    .await;
    drop(managers);
}
