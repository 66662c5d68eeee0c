//! The guest's UDP probe: a Hello from a socket of its own; the host's Challenge for our nonce
//! says the UDP path works both ways. Costs the host what any Hello costs (a keyed hash, no
//! state) and proves nothing about the secret: the move back to UDP is a full handshake.
//!
//! One socket for the guest's life (a NAT in the VM sees one flow, not one per probe); answers
//! are matched to the last few nonces sent, each good for `wait` after it went out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::proto::wire::{self, Message, Nonce, NONCE_LEN};

/// Nonces still waiting for their Challenge; older ones are forgotten.
const OUTSTANDING: usize = 8;

/// The running prober; dropping it stops it.
pub struct Prober {
    asks: mpsc::UnboundedSender<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Prober {
    /// Each answered probe sends `()` on `answers`.
    pub async fn start(v6: bool, wait: Duration, answers: mpsc::UnboundedSender<()>) -> std::io::Result<Prober> {
        let bind: SocketAddr = if v6 { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() } else { ([0, 0, 0, 0], 0).into() };
        let udp = UdpSocket::bind(bind).await?;
        let (asks, asks_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(udp, wait, asks_rx, answers));
        Ok(Prober { asks, task })
    }

    /// Sends one Hello to `server`; its answer, if it comes within the wait, is reported.
    pub fn probe(&self, server: SocketAddr) {
        let _ = self.asks.send(server);
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    udp: UdpSocket,
    wait: Duration,
    mut asks: mpsc::UnboundedReceiver<SocketAddr>,
    answers: mpsc::UnboundedSender<()>,
) {
    let mut sent: VecDeque<(Nonce, SocketAddr, Instant)> = VecDeque::with_capacity(OUTSTANDING);
    let mut buf = [0u8; 128];
    loop {
        tokio::select! {
            ask = asks.recv() => {
                let Some(server) = ask else { return };
                let mut nonce = [0u8; NONCE_LEN];
                if getrandom::fill(&mut nonce).is_err() {
                    continue;
                }
                // A failed send is a probe without answer: the policy's clock decides.
                if udp.send_to(&wire::encode_hello(&nonce), server).await.is_ok() {
                    if sent.len() == OUTSTANDING {
                        sent.pop_front();
                    }
                    sent.push_back((nonce, server, Instant::now()));
                }
            }
            r = udp.recv_from(&mut buf) => {
                // Errors (an ICMP unreachable on some systems) are an unanswered probe.
                let Ok((n, from)) = r else { continue };
                let Ok(Message::Challenge { guest_nonce, .. }) = wire::decode(&buf[..n]) else { continue };
                let now = Instant::now();
                let hit = sent.iter().position(|(nonce, to, at)| nonce == guest_nonce && *to == from && now <= *at + wait);
                if let Some(i) = hit {
                    sent.remove(i);
                    if answers.send(()).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
