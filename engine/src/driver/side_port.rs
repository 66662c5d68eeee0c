//! The side port: a second source and sink of inner packets next to the TUN, for the helper's
//! share (teammates over WireGuard). Packets sent into `inject` leave through the tunnel as if
//! read from the TUN; packets from the peer whose destination `Divert` matches go to
//! `diverted` instead of the TUN. A driver without a side port pays nothing for it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use tokio::sync::mpsc;

/// Packets queued each way before more are dropped (the share's WireGuard end is slower than
/// the tunnel; a full queue drops like a full device queue would).
pub const SIDE_QUEUE: usize = 1024;

pub struct SidePort {
    /// IP packets to send into the tunnel, as if read from the TUN.
    pub inject: mpsc::Receiver<Vec<u8>>,
    /// IP packets from the tunnel for the diverted destinations.
    pub diverted: mpsc::Sender<Vec<u8>>,
    pub divert: Divert,
}

/// Which packets from the peer leave through the side port: IPv4 destinations in `net` other
/// than `except` (the host's own link address, which the TUN owns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Divert {
    pub net: Ipv4Net,
    pub except: Ipv4Addr,
}

impl Divert {
    pub fn matches(&self, packet: &[u8]) -> bool {
        // The core hands over only validated packets; a short one is simply not ours.
        if packet.len() < 20 || packet[0] >> 4 != 4 {
            return false;
        }
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        dst != self.except && self.net.contains(&dst)
    }
}

impl SidePort {
    /// Hands a packet from the peer to the side port if it is for a diverted destination.
    /// Returns false when the packet belongs to the TUN. A full queue drops the packet.
    pub fn offer(&self, packet: &[u8]) -> bool {
        if !self.divert.matches(packet) {
            return false;
        }
        let _ = self.diverted.try_send(packet.to_vec());
        true
    }
}

/// The next injected packet; never resolves without a side port (or once it closed).
pub(super) async fn next_injected(side: &mut Option<SidePort>) -> Vec<u8> {
    match side {
        Some(s) => match s.inject.recv().await {
            Some(p) => p,
            None => {
                // The sender is gone (sharing stopped): stop polling it.
                s.inject.close();
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&dst);
        p
    }

    #[test]
    fn only_ipv4_destinations_in_the_link_other_than_the_hosts_are_diverted() {
        let d = Divert { net: "198.18.5.0/24".parse().unwrap(), except: "198.18.5.1".parse().unwrap() };
        assert!(d.matches(&v4([198, 18, 5, 3])));
        assert!(d.matches(&v4([198, 18, 5, 2])), "the guest never sends to itself through the tunnel");
        assert!(!d.matches(&v4([198, 18, 5, 1])), "the host's own address belongs to the TUN");
        assert!(!d.matches(&v4([198, 18, 6, 3])));
        let mut v6 = vec![0u8; 40];
        v6[0] = 0x60;
        assert!(!d.matches(&v6));
        assert!(!d.matches(&v4([198, 18, 5, 3])[..19]));
        assert!(!d.matches(&[]));
    }

    #[tokio::test]
    async fn offered_packets_for_the_side_go_there_and_a_full_queue_drops() {
        let (_inject_tx, inject) = mpsc::channel(1);
        let (diverted, mut rx) = mpsc::channel(1);
        let divert = Divert { net: "198.18.5.0/24".parse().unwrap(), except: "198.18.5.1".parse().unwrap() };
        let side = SidePort { inject, diverted, divert };
        assert!(!side.offer(&v4([198, 18, 6, 3])));
        assert!(side.offer(&v4([198, 18, 5, 3])));
        assert!(side.offer(&v4([198, 18, 5, 4])), "still the side's, dropped: the queue holds one");
        assert_eq!(rx.recv().await.unwrap()[19], 3);
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn without_a_side_port_or_after_it_closed_nothing_is_injected() {
        let mut none = None;
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), next_injected(&mut none)).await;
        assert!(waited.is_err());
        let (tx, inject) = mpsc::channel(1);
        let divert = Divert { net: "198.18.5.0/24".parse().unwrap(), except: "198.18.5.1".parse().unwrap() };
        let mut side = Some(SidePort { inject, diverted: mpsc::channel(1).0, divert });
        tx.send(vec![1]).await.unwrap();
        drop(tx);
        assert_eq!(next_injected(&mut side).await, vec![1]);
        let waited = tokio::time::timeout(std::time::Duration::from_millis(20), next_injected(&mut side)).await;
        assert!(waited.is_err(), "a closed side port is not polled in a loop");
    }
}
