//! One established session: the data path both ends share.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use super::replay::{CounterGuard, Refused};
use super::wire::{self, SessionParams, DATA_HEADER_LEN};
use super::{ip, DropReason, Stats};

/// A peer silent for this many keepalive intervals is declared dead.
pub const DEAD_AFTER_INTERVALS: u32 = 3;
const LABEL_FINGERPRINT: &[u8] = b"dockroute/1 session fingerprint";

/// What logs, the status and the dashboard show of a session id: 8 hex digits of a hash of it,
/// enough to tell sessions apart and nothing to forge frames with (the id is never shown).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub u64);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new().chain_update(LABEL_FINGERPRINT).chain_update(self.0.to_be_bytes()).finalize();
        f.write_str(&dockroute_stdx::hex::encode(&digest[..4]))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "session {self}")
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub params: SessionParams,
    pub peer: SocketAddr,
    pub established_at: Instant,
    pub last_rx: Instant,
    pub last_tx: Instant,
    pub alive: bool,
    tx_counter: u64,
    rx_counters: CounterGuard,
}

impl Session {
    pub fn new(params: SessionParams, peer: SocketAddr, now: Instant) -> Session {
        Session {
            params,
            peer,
            established_at: now,
            last_rx: now,
            last_tx: now,
            alive: true,
            tx_counter: 0,
            rx_counters: CounterGuard::new(now),
        }
    }

    pub fn id(&self) -> u64 {
        self.params.session_id
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(self.params.session_id)
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_millis(u64::from(self.params.keepalive_ms))
    }

    pub fn dead_after(&self) -> Duration {
        self.keepalive() * DEAD_AFTER_INTERVALS
    }

    /// Frames the packet in `buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len]` in place, clamping
    /// TCP MSS on SYNs so the peer never sends segments that would not fit the tunnel.
    pub fn encapsulate(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        len: usize,
        stats: &mut Stats,
    ) -> Result<usize, DropReason> {
        if len > usize::from(self.params.mtu) || DATA_HEADER_LEN + len > buf.len() {
            return Err(DropReason::Oversized);
        }
        ip::clamp_mss(&mut buf[DATA_HEADER_LEN..DATA_HEADER_LEN + len], self.params.mtu);
        self.write_frame(now, buf);
        stats.tx_packets += 1;
        stats.tx_bytes += len as u64;
        Ok(DATA_HEADER_LEN + len)
    }

    /// A keepalive is a data frame with no payload: it shares the counter and replay window.
    pub fn keepalive_frame(&mut self, now: Instant, stats: &mut Stats) -> Vec<u8> {
        let mut buf = vec![0u8; DATA_HEADER_LEN];
        self.write_frame(now, &mut buf);
        stats.keepalives_sent += 1;
        buf
    }

    fn write_frame(&mut self, now: Instant, buf: &mut [u8]) {
        wire::write_data_header(buf, self.params.session_id, self.tx_counter);
        self.tx_counter += 1;
        self.last_tx = now;
    }

    /// Accepts a data frame of this session from `from`. Returns the payload's range within the
    /// datagram (None for a keepalive) and whether a dead peer came back.
    ///
    /// The session id alone proves nothing (frames carry no MAC, and an id can leak): a frame
    /// counts only from the address the verified handshake came from. The peer moves to
    /// another address only by handshaking again from there (a new session).
    pub fn receive(
        &mut self,
        now: Instant,
        from: SocketAddr,
        counter: u64,
        payload: Range<usize>,
        datagram: &[u8],
        stats: &mut Stats,
    ) -> Result<(Option<Range<usize>>, bool), DropReason> {
        if from != self.peer {
            return Err(DropReason::WrongPeer);
        }
        let packet = &datagram[payload.clone()];
        if packet.len() > usize::from(self.params.mtu) {
            return Err(DropReason::Oversized);
        }
        if !packet.is_empty() && ip::inspect(packet).is_err() {
            return Err(DropReason::BadInnerPacket);
        }
        // Only a frame that passes every check may move the replay window. A live peer is
        // never silent for two keepalive intervals, so its counters are never given up.
        match self.rx_counters.accept(counter, now, self.keepalive() * 2) {
            Ok(()) => {}
            Err(Refused::Replay) => return Err(DropReason::Replay),
            Err(Refused::TooFarAhead) => return Err(DropReason::CounterJump),
        }
        self.last_rx = now;
        let revived = !self.alive;
        self.alive = true;
        if packet.is_empty() {
            return Ok((None, revived));
        }
        stats.rx_packets += 1;
        stats.rx_bytes += packet.len() as u64;
        Ok((Some(payload), revived))
    }

    /// The next moment this session needs attention (keepalive or dead-peer check). A dead
    /// peer gets no keepalives, so an idle end with a dead peer sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.alive.then(|| (self.last_tx + self.keepalive()).min(self.last_rx + self.dead_after()))
    }

    pub fn keepalive_due(&self, now: Instant) -> bool {
        self.alive && now >= self.last_tx + self.keepalive()
    }

    /// Marks the peer dead once it has been silent too long; returns how long it was silent.
    pub fn check_dead(&mut self, now: Instant) -> Option<Duration> {
        let silent = now.saturating_duration_since(self.last_rx);
        if self.alive && silent >= self.dead_after() {
            self.alive = false;
            return Some(silent);
        }
        None
    }
}

/// Frames a TUN packet with the live session, or counts why it cannot go: both ends share this.
pub(super) fn encapsulate(
    session: Option<&mut Session>,
    stats: &mut Stats,
    now: Instant,
    buf: &mut [u8],
    len: usize,
) -> Option<(SocketAddr, usize)> {
    let Some(session) = session else {
        stats.drop(DropReason::NoSession);
        return None;
    };
    match session.encapsulate(now, buf, len, stats) {
        Ok(n) => Some((session.peer, n)),
        Err(reason) => {
            stats.drop(reason);
            None
        }
    }
}
