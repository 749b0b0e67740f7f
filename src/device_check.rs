//! Device checks: probes of the external devices a server depends on (a TCP connect to the
//! device, or a command's exit status), each with a timeout. Does network and process I/O.

use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::timeout;

use crate::config::DeviceCheckConfig;

/// Runs one check once. `Err` says why it failed.
pub async fn run(check: &DeviceCheckConfig) -> Result<(), String> {
    if let Some(addr) = check.tcp {
        return match timeout(check.timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("tcp connect to {addr}: {e}")),
            Err(_) => Err(format!(
                "tcp connect to {addr}: no answer within {}",
                humantime::format_duration(check.timeout)
            )),
        };
    }
    let Some((program, args)) = check.command.as_ref().and_then(|c| c.split_first()) else {
        return Err("no probe configured".into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args).kill_on_drop(true);
    match timeout(check.timeout, cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "{program} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(Err(e)) => Err(format!("cannot run {program}: {e}")),
        Err(_) => Err(format!(
            "{program} did not finish within {}",
            humantime::format_duration(check.timeout)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn check(tcp: Option<std::net::SocketAddr>, command: Option<Vec<&str>>) -> DeviceCheckConfig {
        DeviceCheckConfig {
            name: "c".into(),
            tcp,
            command: command.map(|c| c.into_iter().map(String::from).collect()),
            timeout: Duration::from_millis(500),
            interval: Duration::from_secs(1),
            fail_after: 1,
        }
    }

    #[tokio::test]
    async fn tcp_check_follows_the_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        assert!(run(&check(Some(addr), None)).await.is_ok());
        // A port bound but not listening refuses connections, and stays ours: a port closed
        // by dropping the listener could be taken by another test in between.
        let bound = tokio::net::TcpSocket::new_v4().expect("socket");
        bound
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let closed = bound.local_addr().expect("addr");
        let e = run(&check(Some(closed), None))
            .await
            .expect_err("closed port");
        assert!(e.contains("tcp connect"), "{e}");
        drop(listener);
    }

    #[tokio::test]
    async fn command_check_uses_exit_status_and_timeout() {
        assert!(run(&check(None, Some(vec!["true"]))).await.is_ok());
        assert!(run(&check(None, Some(vec!["false"]))).await.is_err());
        let e = run(&check(None, Some(vec!["sleep", "5"])))
            .await
            .expect_err("timeout");
        assert!(e.contains("did not finish"), "{e}");
    }
}
