//! Which flows a teammate opened: replies go to a teammate only on one of those, so a container
//! (or the VM) cannot call a teammate, and a teammate cannot be sent what they never asked for.
//! One table per teammate, bounded (`MAX_FLOWS`) and time-limited (idle flows expire), pure:
//! packets and `now` in, a verdict out.
//!
//! Why here as well as in the VM's conntrack: the guest's firewall is the second wall; this one
//! holds even when the VM's rules are missing (a dockerd that flushed them, a guest started with
//! `--no-firewall`). A flow is what conntrack would call one: protocol, the teammate's port,
//! the remote address and port (ICMP echo: its identifier). An ICMP error is let through when
//! the packet it quotes belongs to one of the teammate's flows.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Flows one teammate may have open at once: far more than a person's browser opens, far less
/// than would let a teammate make us scan a large table per packet.
pub const MAX_FLOWS: usize = 4096;
/// How long a flow lasts without a packet either way (conntrack keeps an established TCP
/// connection 5 days; a teammate's idle connection ends here sooner, and their next packet
/// opens it again).
const TCP_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
const UDP_IDLE: Duration = Duration::from_secs(180);
const OTHER_IDLE: Duration = Duration::from_secs(60);
/// A full table is swept for expired flows at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// A flow as the teammate sees it: protocol, their port, the remote address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    proto: u8,
    local_port: u16,
    remote: Ipv4Addr,
    remote_port: u16,
}

/// What an IPv4 packet says about its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// A packet with ports (or an ICMP echo's identifier as both).
    Flow { proto: u8, src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16 },
    /// A packet of a protocol without ports, or a non-first fragment.
    Bare { proto: u8, src: Ipv4Addr, dst: Ipv4Addr },
    /// An ICMP error quoting the head of a packet that went the other way.
    Error { quoted: Option<(u8, Ipv4Addr, Ipv4Addr, u16, u16)> },
}

/// Reads what the flow table needs from an IPv4 packet (already checked by `ip::inspect`).
fn read(p: &[u8]) -> Option<Seen> {
    let header = |p: &[u8]| -> Option<(usize, u8, Ipv4Addr, Ipv4Addr, bool)> {
        if p.len() < 20 || p[0] >> 4 != 4 {
            return None;
        }
        let hl = usize::from(p[0] & 0x0f) * 4;
        let later_fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
        let (src, dst) = (Ipv4Addr::new(p[12], p[13], p[14], p[15]), Ipv4Addr::new(p[16], p[17], p[18], p[19]));
        (hl >= 20 && p.len() >= hl).then_some((hl, p[9], src, dst, later_fragment))
    };
    let ports =
        |l4: &[u8]| (l4.len() >= 4).then(|| (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])));
    let (hl, proto, src, dst, later) = header(p)?;
    let l4 = &p[hl..];
    if later {
        return Some(Seen::Bare { proto, src, dst });
    }
    match proto {
        TCP | UDP => {
            let (sp, dp) = ports(l4)?;
            Some(Seen::Flow { proto, src, dst, src_port: sp, dst_port: dp })
        }
        ICMP if l4.len() >= 8 => match l4[0] {
            // Echo request / reply: the identifier stands for both ports.
            0 | 8 => {
                let id = u16::from_be_bytes([l4[4], l4[5]]);
                Some(Seen::Flow { proto, src, dst, src_port: id, dst_port: id })
            }
            // Unreachable, source quench, redirect, time exceeded, parameter problem.
            3 | 4 | 5 | 11 | 12 => {
                let quoted = header(&l4[8..]).and_then(|(qhl, qproto, qsrc, qdst, _)| {
                    let q = &l4[8 + qhl..];
                    match qproto {
                        TCP | UDP => ports(q).map(|(sp, dp)| (qproto, qsrc, qdst, sp, dp)),
                        ICMP if q.len() >= 8 && q[0] == 8 => {
                            let id = u16::from_be_bytes([q[4], q[5]]);
                            Some((qproto, qsrc, qdst, id, id))
                        }
                        _ => Some((qproto, qsrc, qdst, 0, 0)),
                    }
                });
                Some(Seen::Error { quoted })
            }
            _ => Some(Seen::Bare { proto, src, dst }),
        },
        _ => Some(Seen::Bare { proto, src, dst }),
    }
}

fn idle_for(proto: u8) -> Duration {
    match proto {
        TCP => TCP_IDLE,
        UDP => UDP_IDLE,
        _ => OTHER_IDLE,
    }
}

/// The verdict on a packet to a teammate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// On a flow they opened.
    Allowed,
    /// Nothing they opened.
    NotOpened,
}

/// One teammate's open flows.
#[derive(Debug, Default)]
pub struct Flows {
    /// Each flow with when it was last used.
    open: HashMap<Key, Instant>,
    swept: Option<Instant>,
}

impl Flows {
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// A packet the teammate sent (already allowed by the policy): opens or refreshes its flow.
    /// False when it would open one more flow than `MAX_FLOWS` (the packet is dropped).
    pub fn opened(&mut self, now: Instant, packet: &[u8]) -> bool {
        let key = match read(packet) {
            Some(Seen::Flow { proto, dst, src_port, dst_port, .. }) => {
                Key { proto, local_port: src_port, remote: dst, remote_port: dst_port }
            }
            Some(Seen::Bare { proto, dst, .. }) => Key { proto, local_port: 0, remote: dst, remote_port: 0 },
            // An ICMP error from a teammate opens nothing (it answers something of ours).
            Some(Seen::Error { .. }) | None => return true,
        };
        if let Some(at) = self.open.get_mut(&key) {
            *at = now;
            return true;
        }
        if self.open.len() >= MAX_FLOWS {
            self.sweep(now);
            if self.open.len() >= MAX_FLOWS {
                return false;
            }
        }
        self.open.insert(key, now);
        true
    }

    /// A packet for the teammate: allowed only on a flow they opened that has not expired.
    pub fn reply(&mut self, now: Instant, packet: &[u8]) -> Reply {
        let live = |at: &Instant, proto: u8| now.saturating_duration_since(*at) < idle_for(proto);
        let found = match read(packet) {
            Some(Seen::Flow { proto, src, src_port, dst_port, .. }) => {
                let key = Key { proto, local_port: dst_port, remote: src, remote_port: src_port };
                match self.open.get_mut(&key) {
                    Some(at) if live(at, proto) => {
                        *at = now;
                        true
                    }
                    _ => false,
                }
            }
            // A later fragment carries no ports: any live flow of theirs to that address and
            // protocol vouches for it.
            Some(Seen::Bare { proto, src, .. }) => {
                self.open.iter().any(|(k, at)| k.proto == proto && k.remote == src && live(at, proto))
            }
            // The quoted packet went from the teammate to the remote: it must be their flow.
            Some(Seen::Error { quoted: Some((proto, _teammate, remote, sp, dp)) }) => {
                let (local_port, remote_port) = if matches!(proto, TCP | UDP | ICMP) { (sp, dp) } else { (0, 0) };
                let key = Key { proto, local_port, remote, remote_port };
                self.open.get(&key).is_some_and(|at| live(at, proto))
            }
            Some(Seen::Error { quoted: None }) | None => false,
        };
        if found {
            Reply::Allowed
        } else {
            Reply::NotOpened
        }
    }

    /// Forgets the flows whose destination the teammate may no longer reach.
    pub fn retain_destinations(&mut self, allowed: impl Fn(IpAddr) -> bool) {
        self.open.retain(|k, _| allowed(IpAddr::V4(k.remote)));
    }

    fn sweep(&mut self, now: Instant) {
        if self.swept.is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY) {
            return;
        }
        self.swept = Some(now);
        self.open.retain(|k, at| now.saturating_duration_since(*at) < idle_for(k.proto));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: [u8; 4] = [198, 18, 5, 3];
    const CTR: [u8; 4] = [198, 19, 1, 10];

    fn v4(proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    fn udp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16) -> Vec<u8> {
        let mut l4 = vec![0u8; 8];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        v4(UDP, src, dst, &l4)
    }

    fn tcp(src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16) -> Vec<u8> {
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        v4(TCP, src, dst, &l4)
    }

    fn echo(kind: u8, src: [u8; 4], dst: [u8; 4], id: u16) -> Vec<u8> {
        let mut l4 = vec![kind, 0, 0, 0, 0, 0, 0, 1];
        l4[4..6].copy_from_slice(&id.to_be_bytes());
        v4(ICMP, src, dst, &l4)
    }

    /// An ICMP error from `src` quoting the head of `original`.
    fn icmp_error(src: [u8; 4], dst: [u8; 4], original: &[u8]) -> Vec<u8> {
        let mut l4 = vec![3, 3, 0, 0, 0, 0, 0, 0];
        l4.extend_from_slice(&original[..original.len().min(28)]);
        v4(ICMP, src, dst, &l4)
    }

    #[test]
    fn a_reply_on_a_flow_the_teammate_opened_goes_through_each_protocol() {
        let (mut f, now) = (Flows::default(), Instant::now());
        assert!(f.opened(now, &tcp(ALICE, 40000, CTR, 80)));
        assert!(f.opened(now, &udp(ALICE, 40001, CTR, 53)));
        assert!(f.opened(now, &echo(8, ALICE, CTR, 77)));
        assert_eq!(f.reply(now, &tcp(CTR, 80, ALICE, 40000)), Reply::Allowed);
        assert_eq!(f.reply(now, &udp(CTR, 53, ALICE, 40001)), Reply::Allowed);
        assert_eq!(f.reply(now, &echo(0, CTR, ALICE, 77)), Reply::Allowed);
        assert_eq!(f.reply(now, &icmp_error(CTR, ALICE, &udp(ALICE, 40001, CTR, 53))), Reply::Allowed);
        assert_eq!(f.len(), 3);
    }

    #[test]
    fn an_attack_by_a_container_calling_the_teammate_first_is_not_a_reply() {
        let (mut f, now) = (Flows::default(), Instant::now());
        assert!(f.opened(now, &tcp(ALICE, 40000, CTR, 80)));
        for p in [
            tcp(CTR, 80, ALICE, 22),                 // the right service, another port of hers
            tcp(CTR, 4444, ALICE, 40000),            // another port of the container
            tcp([198, 19, 1, 11], 80, ALICE, 40000), // another container
            udp(CTR, 80, ALICE, 40000),              // another protocol
            echo(8, CTR, ALICE, 1),                  // a ping of its own
            echo(0, CTR, ALICE, 1),                  // an echo reply she never asked for
            icmp_error(CTR, ALICE, &udp(ALICE, 1, CTR, 2)),
            v4(47, CTR, ALICE, &[0; 8]), // GRE: no ports, nothing opened to it
        ] {
            assert_eq!(f.reply(now, &p), Reply::NotOpened, "{p:?}");
        }
    }

    #[test]
    fn an_attack_that_waits_for_a_flow_to_go_idle_finds_it_closed() {
        let (mut f, now) = (Flows::default(), Instant::now());
        f.opened(now, &udp(ALICE, 40001, CTR, 53));
        f.opened(now, &tcp(ALICE, 40000, CTR, 80));
        let later = now + UDP_IDLE + Duration::from_secs(1);
        assert_eq!(f.reply(later, &udp(CTR, 53, ALICE, 40001)), Reply::NotOpened);
        assert_eq!(f.reply(later, &tcp(CTR, 80, ALICE, 40000)), Reply::Allowed, "TCP lasts longer");
        // Traffic either way keeps a flow alive.
        let much_later = later + TCP_IDLE - Duration::from_secs(1);
        assert_eq!(f.reply(much_later, &tcp(CTR, 80, ALICE, 40000)), Reply::Allowed);
    }

    #[test]
    fn an_attack_by_a_teammate_opening_endless_flows_is_bounded_and_old_flows_make_room() {
        let (mut f, now) = (Flows::default(), Instant::now());
        let opened = (0..MAX_FLOWS + 100).filter(|i| f.opened(now, &udp(ALICE, *i as u16, CTR, 53))).count();
        assert_eq!((opened, f.len()), (MAX_FLOWS, MAX_FLOWS));
        assert!(f.opened(now, &udp(ALICE, 0, CTR, 53)), "an open flow still works when the table is full");
        let later = now + UDP_IDLE + Duration::from_secs(1);
        assert!(f.opened(later, &udp(ALICE, 60000, CTR, 53)), "expired flows make room");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn later_fragments_ride_on_a_flow_to_that_address_and_errors_need_a_quote() {
        let (mut f, now) = (Flows::default(), Instant::now());
        let mut frag = udp(CTR, 53, ALICE, 40001);
        frag[6..8].copy_from_slice(&100u16.to_be_bytes());
        assert_eq!(f.reply(now, &frag), Reply::NotOpened);
        f.opened(now, &udp(ALICE, 40001, CTR, 53));
        assert_eq!(f.reply(now, &frag), Reply::Allowed);
        assert_eq!(f.reply(now, &v4(ICMP, CTR, ALICE, &[3, 3, 0, 0, 0, 0, 0, 0])), Reply::NotOpened);
        assert_eq!(f.reply(now, &[0x45]), Reply::NotOpened);
    }

    #[test]
    fn flows_to_destinations_no_longer_allowed_are_forgotten() {
        let (mut f, now) = (Flows::default(), Instant::now());
        f.opened(now, &tcp(ALICE, 40000, CTR, 80));
        f.retain_destinations(|_| false);
        assert_eq!(f.reply(now, &tcp(CTR, 80, ALICE, 40000)), Reply::NotOpened);
    }
}
