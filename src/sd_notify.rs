//! The service manager's notification protocol (systemd's `sd_notify(3)`), for
//! `understudy run` under a `Type=notify` unit: `READY=1` once the agent has done its first
//! heartbeat round and set up its address, `WATCHDOG=1` from the heartbeat loop (at half of
//! `WATCHDOG_USEC`), `STOPPING=1` when shutdown starts, `STATUS=` lines beside them.
//!
//! The protocol is one datagram per message on the unix socket `NOTIFY_SOCKET` names: a path,
//! or an abstract socket name written with a leading `@`. Written here on std's
//! `UnixDatagram` rather than with a crate: it is a few lines, it needs no unsafe code (the
//! abstract name goes through `SocketAddrExt`), and its parsing is tested below. A service
//! manager that is not there (no `NOTIFY_SOCKET`) means no notifier; a message that cannot be
//! sent is logged and dropped — the agent never waits for its service manager.
//!
//! The children the agent starts (hooks, fence and check commands) inherit `NOTIFY_SOCKET`;
//! systemd accepts messages from the main process only (`NotifyAccess=main`, the default).
//! Does I/O (one socket).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::time::Duration;

use tracing::{debug, warn};

/// What is wrong with the service manager's environment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET={0:?}: not a socket this agent can use (an absolute path or @name)")]
    Socket(String),
    #[error("WATCHDOG_USEC={0:?}: not a positive number of microseconds")]
    WatchdogUsec(String),
    #[error("WATCHDOG_PID={0:?}: not a process id")]
    WatchdogPid(String),
}

/// Where `NOTIFY_SOCKET` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(PathBuf),
    /// An abstract socket name (the bytes after the `@`).
    Abstract(Vec<u8>),
}

/// Reads `NOTIFY_SOCKET`'s value. Pure.
pub fn parse_socket(value: &OsStr) -> Result<Target, NotifyError> {
    let bytes = value.as_bytes();
    match bytes.first() {
        Some(b'/') => Ok(Target::Path(PathBuf::from(value))),
        Some(b'@') if bytes.len() > 1 => Ok(Target::Abstract(bytes[1..].to_vec())),
        _ => Err(NotifyError::Socket(value.to_string_lossy().into_owned())),
    }
}

/// The watchdog interval the service manager asks for: `WATCHDOG_USEC`, unless
/// `WATCHDOG_PID` names another process (the variables were inherited, not meant for this
/// one). Pure.
pub fn parse_watchdog(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, NotifyError> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    if let Some(pid) = pid {
        let p: u32 = pid
            .trim()
            .parse()
            .map_err(|_| NotifyError::WatchdogPid(pid.to_string()))?;
        if p != own_pid {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_micros(n))),
        _ => Err(NotifyError::WatchdogUsec(usec.to_string())),
    }
}

/// A connection to the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier the environment describes: `None` when no service manager listens
    /// (`NOTIFY_SOCKET` unset or empty). A variable that cannot be used is an error (the
    /// caller logs it and runs without notifying).
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        let socket = match std::env::var_os("NOTIFY_SOCKET") {
            Some(s) if !s.is_empty() => parse_socket(&s)?,
            _ => return Ok(None),
        };
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = parse_watchdog(usec.as_deref(), pid.as_deref(), std::process::id())?;
        Notifier::new(&socket, watchdog).map(Some)
    }

    /// A notifier sending to `target`, with the service manager's watchdog interval.
    pub fn new(target: &Target, watchdog: Option<Duration>) -> Result<Notifier, NotifyError> {
        let unusable = || NotifyError::Socket(format!("{target:?}"));
        let addr = match target {
            Target::Path(p) => SocketAddr::from_pathname(p).map_err(|_| unusable())?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name).map_err(|_| unusable())?
            }
        };
        let socket = UnixDatagram::unbound().map_err(|_| unusable())?;
        // A full queue drops the message rather than stalling the loop that sends it.
        socket.set_nonblocking(true).map_err(|_| unusable())?;
        Ok(Notifier {
            socket,
            addr,
            watchdog,
        })
    }

    /// Sends `message` (`KEY=value` lines).
    pub fn try_send(&self, message: &str) -> std::io::Result<()> {
        self.socket
            .send_to_addr(message.as_bytes(), &self.addr)
            .map(|_| ())
    }

    /// Sends `message`; a failure is logged and dropped.
    pub fn send(&self, message: &str) {
        match self.try_send(message) {
            Ok(()) => debug!(message, "sent to the service manager"),
            Err(e) => warn!(error = %e, message, "cannot notify the service manager"),
        }
    }

    /// Start-up is complete.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// Shutdown has started.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// The watched loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// How often to send `WATCHDOG=1`: half the service manager's interval, as `sd_notify(3)`
    /// advises (None: no watchdog asked for).
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// The service manager's watchdog interval (`WATCHDOG_USEC`).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }
}

/// A `STATUS=` value is one line.
fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn socket_values() {
        assert_eq!(
            parse_socket(OsStr::new("/run/systemd/notify")),
            Ok(Target::Path(PathBuf::from("/run/systemd/notify")))
        );
        assert_eq!(
            parse_socket(OsStr::new("@/org/freedesktop/systemd1/notify/42")),
            Ok(Target::Abstract(
                b"/org/freedesktop/systemd1/notify/42".to_vec()
            ))
        );
        for bad in ["relative/path", "@", "vsock:2:1234", ""] {
            assert_eq!(
                parse_socket(OsStr::new(bad)),
                Err(NotifyError::Socket(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn watchdog_values() {
        assert_eq!(parse_watchdog(None, None, 7), Ok(None));
        assert_eq!(
            parse_watchdog(Some("30000000"), None, 7),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse_watchdog(Some("30000000"), Some("7"), 7),
            Ok(Some(Duration::from_secs(30)))
        );
        // Meant for another process: no watchdog here.
        assert_eq!(parse_watchdog(Some("30000000"), Some("8"), 7), Ok(None));
        assert_eq!(
            parse_watchdog(Some("0"), None, 7),
            Err(NotifyError::WatchdogUsec("0".into()))
        );
        assert_eq!(
            parse_watchdog(Some("soon"), None, 7),
            Err(NotifyError::WatchdogUsec("soon".into()))
        );
        assert_eq!(
            parse_watchdog(Some("1"), Some("x"), 7),
            Err(NotifyError::WatchdogPid("x".into()))
        );
    }

    fn received(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&Target::Path(path), Some(Duration::from_secs(10))).unwrap();
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(5)));
        n.ready("main-1: online\non 192.0.2.10");
        assert_eq!(
            received(&listener),
            "READY=1\nSTATUS=main-1: online on 192.0.2.10"
        );
        n.watchdog();
        assert_eq!(received(&listener), "WATCHDOG=1");
        n.stopping("shutting down");
        assert_eq!(received(&listener), "STOPPING=1\nSTATUS=shutting down");
    }

    #[test]
    fn messages_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("understudy-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let target = parse_socket(OsStr::new(&format!("@{name}"))).unwrap();
        let n = Notifier::new(&target, None).unwrap();
        assert_eq!(n.watchdog_every(), None);
        n.watchdog();
        assert_eq!(received(&listener), "WATCHDOG=1");
    }

    #[test]
    fn a_missing_listener_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(&Target::Path(dir.path().join("nobody")), None).unwrap();
        assert!(n.try_send("READY=1").is_err());
        n.ready("nobody listens"); // logged and dropped
    }
}
