//! The address backend is checked before the agent starts: a `linux` backend on an interface
//! that does not exist stops `understudy run` with exit 64 and says which interface.

mod support;

use support::*;

#[test]
fn a_linux_backend_on_a_missing_interface_stops_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let group = write_group(dir.path(), 1, 1);
    let path = &group[0].config;
    let text = std::fs::read_to_string(path).expect("read");
    // failover_after 2 s: long enough for the linux backend's 1 s address lease.
    let text = text
        .replace("failover_after = \"1500ms\"", "failover_after = \"2s\"")
        .replacen(
            "[replication]",
            "[address]\nbackend = \"linux\"\ninterface = \"nosuchif0\"\n\n[replication]",
            1,
        );
    std::fs::write(path, text).expect("write");
    let out = understudy_on(&["run", "--config"], path);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchif0"), "{err}");

    // check-config explains a linux backend without an interface.
    let text = std::fs::read_to_string(path).expect("read");
    std::fs::write(path, text.replace("interface = \"nosuchif0\"\n", "")).expect("write");
    let out = understudy_on(&["check-config"], path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("address.interface"), "{err}");

    // The lease must end before the earliest failover: failover_after 1.5 s is too short for
    // a 1 s lease with heartbeats every 200 ms, and check-config says what to change.
    let text = std::fs::read_to_string(path).expect("read");
    let text = text
        .replace("failover_after = \"2s\"", "failover_after = \"1500ms\"")
        .replace(
            "backend = \"linux\"\n",
            "backend = \"linux\"\ninterface = \"eth0\"\n",
        );
    std::fs::write(path, text).expect("write");
    let out = understudy_on(&["check-config"], path);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("failover_after") && err.contains("address.lease"),
        "{err}"
    );
}
