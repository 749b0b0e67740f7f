//! The SNMP agent's public UDP socket. Every datagram is counted and judged by
//! [`crate::snmp::wire::verdict`] (the SNMPv2-MIB `snmp` counters live here, which the
//! underlying agent does not keep); what passes is relayed to the command responder on a
//! loopback port through one relay socket per manager address, and the answers are sent back
//! from the public socket. Does I/O.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use crate::snmp::wire::{self, GateCommunity, Verdict};

/// The SNMPv2-MIB `snmp` group counters the gate keeps.
#[derive(Debug, Default)]
pub struct GateCounters {
    pub in_pkts: AtomicU32,
    pub bad_versions: AtomicU32,
    pub bad_community_names: AtomicU32,
    pub bad_community_uses: AtomicU32,
    pub asn_parse_errs: AtomicU32,
}

/// A manager address is forgotten after this long without traffic.
const IDLE: Duration = Duration::from_secs(60);
/// At most this many manager addresses have a relay socket at once (the least recently used
/// one is closed to make room): well below the usual limit of 1024 open files, so that a
/// burst of datagrams from many source ports (SNMPv3 ones pass the gate unauthenticated)
/// cannot take the files the agent needs to save its state and accept connections.
pub const MAX_ROUTES: usize = 256;
/// Large enough for any UDP datagram.
const BUF: usize = 65_536;

/// `d` in whole milliseconds (what the routes' last-use times count).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug)]
struct Route {
    upstream: Arc<UdpSocket>,
    last: Arc<AtomicU64>,
    relay: AbortHandle,
}

#[derive(Debug)]
pub struct Gate {
    front: Arc<UdpSocket>,
    inner: SocketAddr,
    communities: Arc<[GateCommunity]>,
    counters: Arc<GateCounters>,
    routes: Arc<Mutex<HashMap<SocketAddr, Route>>>,
    epoch: Instant,
}

impl Gate {
    pub fn new(
        front: UdpSocket,
        inner: SocketAddr,
        communities: Vec<GateCommunity>,
        counters: Arc<GateCounters>,
    ) -> Gate {
        Gate {
            front: Arc::new(front),
            inner,
            communities: communities.into(),
            counters,
            routes: Arc::new(Mutex::new(HashMap::new())),
            epoch: Instant::now(),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.front.local_addr()
    }

    fn now(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Relays until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; BUF];
        loop {
            let received = tokio::select! {
                r = self.front.recv_from(&mut buf) => r,
                _ = &mut shutdown => break,
            };
            let (n, client) = match received {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems: not fatal.
                    debug!(error = %e, "SNMP socket receive error");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            };
            let data = &buf[..n];
            let c = &self.counters;
            c.in_pkts.fetch_add(1, Ordering::Relaxed);
            match wire::verdict(data, &self.communities) {
                Verdict::Forward => {}
                Verdict::ForwardBadUse => {
                    c.bad_community_uses.fetch_add(1, Ordering::Relaxed);
                }
                Verdict::ParseError => {
                    c.asn_parse_errs.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::BadVersion => {
                    c.bad_versions.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::BadCommunity => {
                    c.bad_community_names.fetch_add(1, Ordering::Relaxed);
                    debug!(%client, "SNMP request with an unknown community dropped");
                    continue;
                }
            }
            let upstream = match self.route(client).await {
                Ok(u) => u,
                Err(e) => {
                    warn!(%client, error = %e, "cannot relay an SNMP request");
                    continue;
                }
            };
            if let Err(e) = upstream.send(data).await {
                debug!(%client, error = %e, "cannot relay an SNMP request");
            }
        }
        let routes = std::mem::take(&mut *self.routes.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, r) in routes {
            r.relay.abort();
        }
    }

    /// The relay socket of `client`, created on first use.
    async fn route(&self, client: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
        let now = self.now();
        {
            let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(r) = routes.get(&client) {
                r.last.store(now, Ordering::Relaxed);
                return Ok(r.upstream.clone());
            }
        }
        let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        upstream.connect(self.inner).await?;
        let upstream = Arc::new(upstream);
        let last = Arc::new(AtomicU64::new(now));
        let relay = tokio::spawn(relay(
            upstream.clone(),
            self.front.clone(),
            client,
            last.clone(),
            self.routes.clone(),
            self.epoch,
        ))
        .abort_handle();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if routes.len() >= MAX_ROUTES {
            let oldest = routes
                .iter()
                .min_by_key(|(_, r)| r.last.load(Ordering::Relaxed))
                .map(|(a, _)| *a);
            if let Some(old) = oldest.and_then(|a| routes.remove(&a)) {
                old.relay.abort();
            }
        }
        routes.insert(
            client,
            Route {
                upstream: upstream.clone(),
                last,
                relay,
            },
        );
        Ok(upstream)
    }
}

/// Sends the responder's answers for `client` back from the public socket; ends after
/// [`IDLE`] without traffic.
async fn relay(
    upstream: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<AtomicU64>,
    routes: Arc<Mutex<HashMap<SocketAddr, Route>>>,
    epoch: Instant,
) {
    let mut buf = vec![0u8; BUF];
    let idle_ms = millis(IDLE);
    loop {
        match tokio::time::timeout(IDLE, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                last.store(millis(epoch.elapsed()), Ordering::Relaxed);
                if let Err(e) = front.send_to(&buf[..n], client).await {
                    debug!(%client, error = %e, "cannot send an SNMP response");
                }
            }
            Ok(Err(e)) => {
                debug!(%client, error = %e, "SNMP relay receive error");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(_) => {
                let now = millis(epoch.elapsed());
                if now.saturating_sub(last.load(Ordering::Relaxed)) >= idle_ms {
                    let mut r = routes.lock().unwrap_or_else(|p| p.into_inner());
                    if r.get(&client)
                        .is_some_and(|x| Arc::ptr_eq(&x.upstream, &upstream))
                    {
                        r.remove(&client);
                    }
                    return;
                }
            }
        }
    }
}
