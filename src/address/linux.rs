//! The `linux` address backend: adds and removes the service address on one interface through
//! rtnetlink (`ip address add/del`, with `nodad` for IPv6 so the address is usable at once),
//! then announces it so neighbours update their caches: a gratuitous ARP request for IPv4, an
//! unsolicited neighbour advertisement (override flag) for IPv6, sent `garp_count` times,
//! `garp_interval` apart, as raw Ethernet frames through `pnet_datalink`. Needs
//! CAP_NET_ADMIN (address) and CAP_NET_RAW (announcements), e.g. root. Network I/O; the frame
//! builders are pure.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, CacheInfo};
use tracing::{info, warn};

use super::{AddressError, Transition};

/// Adds/removes addresses on `interface`.
#[derive(Debug, Clone)]
pub struct Linux {
    interface: String,
    prefix_len: Option<u8>,
    garp_count: u32,
    garp_interval: Duration,
    /// The addresses being announced, each with the take that started it: a release (or a
    /// newer take) stops the remaining announcements, so a member never announces an address
    /// it has just given up.
    announcing: Arc<Mutex<HashMap<IpAddr, u64>>>,
    takes: Arc<AtomicU64>,
}

fn failed(action: &'static str, address: IpAddr, message: impl ToString) -> AddressError {
    AddressError::Failed {
        action,
        address,
        message: message.to_string(),
    }
}

/// The prefix length used for `address`: the configured one, else /32 or /128 (a host route:
/// the address then needs an on-link route from another address of the interface).
pub fn prefix_for(address: IpAddr, configured: Option<u8>) -> u8 {
    configured.unwrap_or(match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    })
}

impl Linux {
    pub fn new(
        interface: String,
        prefix_len: Option<u8>,
        garp_count: u32,
        garp_interval: Duration,
    ) -> Linux {
        Linux {
            interface,
            prefix_len,
            garp_count,
            garp_interval,
            announcing: Arc::new(Mutex::new(HashMap::new())),
            takes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Checks at start that the interface exists (so a typo stops the agent, not a takeover).
    pub async fn check(&self) -> Result<(), AddressError> {
        self.connect()
            .await
            .map(|_| ())
            .map_err(AddressError::Setup)
    }

    async fn connect(&self) -> Result<(rtnetlink::Handle, u32), String> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("cannot open netlink: {e}"))?;
        tokio::spawn(conn);
        let link = handle
            .link()
            .get()
            .match_name(self.interface.clone())
            .execute()
            .try_next()
            .await
            .map_err(|e| format!("interface {}: {e}", self.interface))?
            .ok_or_else(|| format!("no interface {}", self.interface))?;
        Ok((handle, link.header.index))
    }

    /// Addresses currently on the interface.
    async fn addresses(
        &self,
        handle: &rtnetlink::Handle,
        index: u32,
    ) -> Result<Vec<IpAddr>, String> {
        let mut stream = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(msg) = stream.try_next().await.map_err(|e| e.to_string())? {
            for attr in &msg.attributes {
                if let AddressAttribute::Address(a) = attr {
                    out.push(*a);
                }
            }
        }
        Ok(out)
    }

    /// Adds `a`, or sets its lifetime when it is there already (`ip address replace ...
    /// valid_lft S preferred_lft S`): with `lifetime` the kernel removes it after that many
    /// seconds unless it is set again; without, it is permanent.
    async fn add(
        &self,
        handle: &rtnetlink::Handle,
        index: u32,
        a: IpAddr,
        lifetime: Option<u32>,
    ) -> Result<(), String> {
        let mut req = handle
            .address()
            .add(index, a, prefix_for(a, self.prefix_len))
            .replace();
        if a.is_ipv6() {
            req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        if let Some(seconds) = lifetime {
            let mut info = CacheInfo::default();
            info.ifa_valid = seconds;
            info.ifa_preferred = seconds;
            req.message_mut()
                .attributes
                .push(AddressAttribute::CacheInfo(info));
        }
        req.execute().await.map_err(|e| e.to_string())
    }

    /// Sets the lifetime of `a`, held now, to `seconds` from now. The kernel would add an
    /// address that is gone, so the agent calls this only while the lease has not ended
    /// (`group::lease::renewal`), and checks afterwards that the answer came in time.
    pub async fn renew(&self, a: IpAddr, seconds: u32) -> Result<(), AddressError> {
        let (handle, index) = self.connect().await.map_err(|e| failed("renew", a, e))?;
        self.add(&handle, index, a, Some(seconds))
            .await
            .map_err(|e| failed("renew", a, e))
    }

    /// Removes `a` if it is on the interface (a lease that ran out: the kernel has removed it
    /// already, or is about to).
    pub async fn remove(&self, a: IpAddr) -> Result<(), AddressError> {
        self.announcing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&a);
        let (handle, index) = self.connect().await.map_err(|e| failed("release", a, e))?;
        self.del(&handle, index, a)
            .await
            .map_err(|e| failed("release", a, e))
    }

    async fn del(&self, handle: &rtnetlink::Handle, index: u32, a: IpAddr) -> Result<(), String> {
        let mut stream = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(a)
            .execute();
        while let Some(msg) = stream.try_next().await.map_err(|e| e.to_string())? {
            handle
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Releases the old address, takes the new one and announces it. At agent start, also
    /// removes any other address of the group found on the interface.
    pub async fn apply(&self, t: &Transition) -> Result<(), AddressError> {
        let any = t
            .address
            .or(t.previous_address)
            .unwrap_or(t.configured_address);
        let (handle, index) = self
            .connect()
            .await
            .map_err(|e| failed("configure", any, e))?;
        let mut release: Vec<IpAddr> = t.release().into_iter().collect();
        if t.previous_state.is_none() {
            let held = self
                .addresses(&handle, index)
                .await
                .map_err(|e| failed("list addresses for", any, e))?;
            for a in held {
                if t.managed.contains(&a) && Some(a) != t.address && !release.contains(&a) {
                    warn!(member = %t.member, address = %a, interface = %self.interface,
                        "found a group address this member must not hold (left by a crash?); \
                         removing it");
                    release.push(a);
                }
            }
        }
        for a in release {
            self.announcing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&a);
            self.del(&handle, index, a)
                .await
                .map_err(|e| failed("release", a, e))?;
            info!(member = %t.member, address = %a, interface = %self.interface,
                backend = "linux", "address released");
        }
        if let Some(a) = t.address {
            self.add(&handle, index, a, t.lifetime)
                .await
                .map_err(|e| failed("take", a, e))?;
            info!(member = %t.member, address = %a, interface = %self.interface,
                backend = "linux", "address taken");
            self.announce(a).await;
        }
        Ok(())
    }

    /// Sends the announcements: the first at once, the others in the background.
    pub async fn announce(&self, address: IpAddr) {
        if self.garp_count == 0 {
            return;
        }
        let take = self.takes.fetch_add(1, Ordering::Relaxed) + 1;
        self.announcing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(address, take);
        let me = self.clone();
        let first = tokio::task::spawn_blocking(move || me.send_announcement(address)).await;
        match first {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!(%address, interface = %self.interface, error = %e,
                    "cannot announce the address");
                return;
            }
            Err(e) => {
                warn!(%address, error = %e, "announcement task failed");
                return;
            }
        }
        let me = self.clone();
        tokio::spawn(async move {
            for _ in 1..me.garp_count {
                tokio::time::sleep(me.garp_interval).await;
                let current = me
                    .announcing
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&address)
                    .copied();
                if current != Some(take) {
                    return;
                }
                let m = me.clone();
                let _ = tokio::task::spawn_blocking(move || m.send_announcement(address)).await;
            }
        });
    }

    fn send_announcement(&self, address: IpAddr) -> Result<(), String> {
        let iface = pnet_datalink::interfaces()
            .into_iter()
            .find(|i| i.name == self.interface)
            .ok_or_else(|| format!("no interface {}", self.interface))?;
        let mac = iface
            .mac
            .ok_or_else(|| format!("{} has no MAC address", self.interface))?
            .octets();
        let frames: Vec<Vec<u8>> = match address {
            IpAddr::V4(a) => vec![
                gratuitous_arp(mac, a, ArpOp::Request).to_vec(),
                gratuitous_arp(mac, a, ArpOp::Reply).to_vec(),
            ],
            IpAddr::V6(a) => vec![unsolicited_na(mac, a).to_vec()],
        };
        let cfg = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(1)),
            ..pnet_datalink::Config::default()
        };
        let (mut tx, _rx) = match pnet_datalink::channel(&iface, cfg) {
            Ok(pnet_datalink::Channel::Ethernet(tx, rx)) => (tx, rx),
            Ok(_) => return Err("not an Ethernet channel".into()),
            Err(e) => return Err(format!("raw socket on {}: {e}", self.interface)),
        };
        for frame in frames {
            match tx.send_to(&frame, None) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("frame not sent".into()),
            }
        }
        Ok(())
    }
}

/// The two forms of gratuitous ARP; each announcement sends both, since neighbours differ in
/// which one they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    /// `arping -U`: target hardware address zero.
    Request,
    /// `arping -A`: target hardware address = sender's.
    Reply,
}

/// A gratuitous ARP for `ip` from `mac`: broadcast, sender and target protocol address both
/// `ip`. Pure.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr, op: ArpOp) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    let code: u16 = match op {
        ArpOp::Request => 1,
        ArpOp::Reply => 2,
    };
    f[20..22].copy_from_slice(&code.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    if op == ArpOp::Reply {
        f[32..38].copy_from_slice(&mac);
    }
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement for `ip` from `mac` to all nodes (ff02::1), with the
/// override flag and the target link-layer address option (RFC 4861 §7.2.6). Pure.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> [u8; 86] {
    let mut f = [0u8; 86];
    let all_nodes: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    f[0..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    // IPv6 header
    f[14] = 0x60;
    f[18..20].copy_from_slice(&32u16.to_be_bytes()); // payload length
    f[20] = 58; // ICMPv6
    f[21] = 255; // hop limit
    f[22..38].copy_from_slice(&ip.octets());
    f[38..54].copy_from_slice(&all_nodes.octets());
    // ICMPv6 neighbour advertisement
    let icmp = 54;
    f[icmp] = 136;
    f[icmp + 4] = 0x20; // override
    f[icmp + 8..icmp + 24].copy_from_slice(&ip.octets());
    f[icmp + 24] = 2; // target link-layer address
    f[icmp + 25] = 1; // 8 bytes
    f[icmp + 26..icmp + 32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(ip, all_nodes, &f[icmp..]);
    f[icmp + 2..icmp + 4].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The ICMPv6 checksum over the pseudo-header and `msg` (whose checksum field is zero).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn gratuitous_arp_bytes() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 10), ArpOp::Request);
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 192, 0,
            2, 10, 0, 0, 0, 0, 0, 0, 192, 0, 2, 10,
        ];
        assert_eq!(f, want);
        let r = gratuitous_arp(MAC, Ipv4Addr::new(192, 0, 2, 10), ArpOp::Reply);
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[32..38], &MAC);
        assert_eq!(&r[..20], &want[..20]);
    }

    #[test]
    fn unsolicited_na_bytes_and_checksum() {
        let ip: Ipv6Addr = "2001:db8::10".parse().expect("ip");
        let f = unsolicited_na(MAC, ip);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[20], 58);
        assert_eq!(f[21], 255);
        assert_eq!(f[54], 136);
        assert_eq!(f[58], 0x20, "override, not solicited, not router");
        assert_eq!(&f[62..78], &ip.octets());
        assert_eq!(&f[78..80], &[2, 1]);
        assert_eq!(&f[80..86], &MAC);
        // A message with a correct checksum sums to zero (all ones before the complement).
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(icmpv6_checksum(ip, all_nodes, &f[54..]), 0);
    }

    #[test]
    fn prefix_defaults_to_a_host_address() {
        assert_eq!(prefix_for("192.0.2.1".parse().expect("ip"), None), 32);
        assert_eq!(prefix_for("2001:db8::1".parse().expect("ip"), None), 128);
        assert_eq!(prefix_for("192.0.2.1".parse().expect("ip"), Some(24)), 24);
    }
}
