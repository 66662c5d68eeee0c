//! The tunnel protocol as a sans-IO state machine: datagrams, packets and `now` go in;
//! datagrams, packets, deadlines and events come out. No sockets, no clocks, no threads here,
//! so every handshake, timeout and malformed input is a plain unit test.
//!
//! `Host` is the Mac end (answers handshakes, owns the session parameters), `Guest` the VM end
//! (initiates, re-handshakes when the host goes silent). Both share `Session` for the data path.

pub mod auth;
pub mod guest;
pub mod host;
pub mod ip;
pub mod replay;
pub mod session;
pub mod wire;

pub use guest::{Guest, GuestConfig};
pub use host::{Host, HostConfig};
pub use session::{Fingerprint, Session};
pub use wire::SessionParams;

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

/// Randomness for nonces and session ids; injected so tests are deterministic.
pub trait Entropy: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // The OS generator failing is not recoverable and not caused by input.
        getrandom::fill(buf).expect("the OS random number generator failed");
    }
}

/// What the driver needs from either end; both `Host` and `Guest` implement it by delegating
/// to their inherent methods of the same names.
pub trait Endpoint: Send + 'static {
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) -> Option<Range<usize>>;
    fn encapsulate(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Option<(SocketAddr, usize)>;
    fn handle_timeout(&mut self, now: Instant);
    fn poll_timeout(&self) -> Option<Instant>;
    fn poll_transmit(&mut self) -> Option<Transmit>;
    fn poll_event(&mut self) -> Option<Event>;
    fn stats(&self) -> &Stats;
}

macro_rules! impl_endpoint {
    ($t:ty) => {
        impl Endpoint for $t {
            fn handle_datagram(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) -> Option<Range<usize>> {
                <$t>::handle_datagram(self, now, from, buf)
            }
            fn encapsulate(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Option<(SocketAddr, usize)> {
                <$t>::encapsulate(self, now, buf, len)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                <$t>::poll_transmit(self)
            }
            fn poll_event(&mut self) -> Option<Event> {
                <$t>::poll_event(self)
            }
            fn stats(&self) -> &Stats {
                <$t>::stats(self)
            }
        }
    };
}
impl_endpoint!(Host);
impl_endpoint!(Guest);

/// A control datagram to send (data frames go through `encapsulate`, without allocation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What happened, for status and logs. Its `Debug` shows session ids as fingerprints.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// A session was established. `handshake` is the guest's measured round trip
    /// from its last Hello to the Welcome; `replaced` says an older session was retired.
    SessionUp { params: SessionParams, peer: SocketAddr, handshake: Option<Duration>, replaced: bool },
    /// Nothing heard from the peer for three keepalive intervals.
    PeerDead { session_id: u64, silent_for: Duration },
    /// A peer declared dead spoke again.
    PeerAlive { session_id: u64 },
    /// The guest sent a Hello (attempt counts from 1 in each round of tries).
    HandshakeAttempt { attempt: u32 },
    /// The host told the guest (authenticated) that it no longer knows the session.
    StaleSession { session_id: u64 },
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::SessionUp { params, peer, handshake, replaced } => f
                .debug_struct("SessionUp")
                .field("params", params)
                .field("peer", peer)
                .field("handshake", handshake)
                .field("replaced", replaced)
                .finish(),
            Event::PeerDead { session_id, silent_for } => f
                .debug_struct("PeerDead")
                .field("session", &Fingerprint(*session_id))
                .field("silent_for", silent_for)
                .finish(),
            Event::PeerAlive { session_id } => {
                f.debug_struct("PeerAlive").field("session", &Fingerprint(*session_id)).finish()
            }
            Event::HandshakeAttempt { attempt } => {
                f.debug_struct("HandshakeAttempt").field("attempt", attempt).finish()
            }
            Event::StaleSession { session_id } => {
                f.debug_struct("StaleSession").field("session", &Fingerprint(*session_id)).finish()
            }
        }
    }
}

/// Why a datagram or packet was dropped. Every drop is counted, none is answered
/// (except a rate-limited, authenticated Stale notice; see `host`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Too short, wrong length, bad reserved field or unknown type.
    Malformed,
    BadVersion,
    /// A data frame for a session that is not the live one.
    WrongSession,
    /// A data frame with the live session's id from another address than the session's peer.
    WrongPeer,
    Replay,
    /// A counter further ahead of the peer's than a real peer ever jumps (`replay::MAX_AHEAD`).
    CounterJump,
    /// A handshake tag that did not verify (wrong secret or forged).
    AuthFailed,
    /// A handshake message nobody asked for (replayed, late, or the wrong direction).
    UnexpectedHandshake,
    /// A packet from the TUN while no session exists.
    NoSession,
    /// The frame's payload is not a well-formed IP packet.
    BadInnerPacket,
    /// A packet larger than the tunnel MTU.
    Oversized,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::Malformed,
        DropReason::BadVersion,
        DropReason::WrongSession,
        DropReason::WrongPeer,
        DropReason::Replay,
        DropReason::CounterJump,
        DropReason::AuthFailed,
        DropReason::UnexpectedHandshake,
        DropReason::NoSession,
        DropReason::BadInnerPacket,
        DropReason::Oversized,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::BadVersion => "bad_version",
            DropReason::WrongSession => "wrong_session",
            DropReason::WrongPeer => "wrong_peer",
            DropReason::Replay => "replay",
            DropReason::CounterJump => "counter_jump",
            DropReason::AuthFailed => "auth_failed",
            DropReason::UnexpectedHandshake => "unexpected_handshake",
            DropReason::NoSession => "no_session",
            DropReason::BadInnerPacket => "bad_inner_packet",
            DropReason::Oversized => "oversized",
        }
    }
}

/// Counters for status; plain integers because the core is single-threaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets and payload bytes from the TUN sent into the tunnel.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets and payload bytes received from the tunnel for the TUN.
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub keepalives_sent: u64,
    pub handshakes: u64,
    pub stale_notices: u64,
    drops: [u64; DropReason::ALL.len()],
}

impl Stats {
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    #[cfg(test)]
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}

impl std::fmt::Display for Stats {
    /// One line of `key=value` pairs for logs, scripts and support requests.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tx_packets={} tx_bytes={} rx_packets={} rx_bytes={} keepalives_sent={} handshakes={} stale_notices={} drops:",
            self.tx_packets, self.tx_bytes, self.rx_packets, self.rx_bytes, self.keepalives_sent, self.handshakes, self.stale_notices
        )?;
        for r in DropReason::ALL {
            write!(f, " {}={}", r.name(), self.drops(r))?;
        }
        Ok(())
    }
}

impl From<wire::DecodeError> for DropReason {
    fn from(e: wire::DecodeError) -> Self {
        match e {
            wire::DecodeError::BadVersion => DropReason::BadVersion,
            _ => DropReason::Malformed,
        }
    }
}

/// Deterministic "entropy" for tests and fuzzing, so every run is reproducible. Never use it
/// for a real endpoint: its output is predictable.
pub struct TestEntropy(pub u64);

impl Entropy for TestEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 33) as u8;
        }
    }
}

#[cfg(test)]
mod tests;
