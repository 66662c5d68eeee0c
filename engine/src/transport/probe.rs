//! The guest's UDP probe while it runs over TCP: a Hello from a socket of its own; the host's
//! Challenge for our nonce says the UDP path works both ways. Costs the host what any Hello
//! costs (a keyed hash, no state) and proves nothing about the secret: the move back to UDP is
//! a full handshake.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::proto::wire::{self, Message, NONCE_LEN};

/// Whether the host at `server` answers a Hello over UDP within `wait`.
pub async fn udp_answers(server: SocketAddr, wait: Duration) -> bool {
    let bind: SocketAddr =
        if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
    let Ok(udp) = UdpSocket::bind(bind).await else { return false };
    if udp.connect(server).await.is_err() {
        return false;
    }
    let mut nonce = [0u8; NONCE_LEN];
    if getrandom::fill(&mut nonce).is_err() || udp.send(&wire::encode_hello(&nonce)).await.is_err() {
        return false;
    }
    let answered = async {
        let mut buf = [0u8; 128];
        loop {
            // ICMP "port unreachable" surfaces as an error on a connected socket: no answer.
            let Ok(n) = udp.recv(&mut buf).await else { return false };
            if matches!(wire::decode(&buf[..n]), Ok(Message::Challenge { guest_nonce, .. }) if *guest_nonce == nonce) {
                return true;
            }
        }
    };
    tokio::time::timeout(wait, answered).await.unwrap_or(false)
}
