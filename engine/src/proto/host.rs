//! The host (Mac) end: answers handshakes, assigns the session, carries packets.
//!
//! Handshake: Hello(gn) → Challenge(gn, hn) → Auth(gn, hn, tag) → Welcome(params, tag).
//! The host nonce is fresh per Hello and consumed by the first Auth that names it, so a
//! replayed Auth finds nothing to answer. A failed Auth never touches the live session.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use super::auth::{Secret, LABEL_AUTH, LABEL_STALE, LABEL_WELCOME};
use super::session::Session;
use super::wire::{self, Message, Nonce, SessionParams, NONCE_LEN};
use super::{DropReason, Entropy, Event, Stats, Transmit};

/// How long a Challenge stays answerable.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5);
/// Outstanding challenges kept at most; the oldest goes first under a Hello flood.
pub const MAX_PENDING: usize = 32;
/// Stale notices allowed per second, so a flood of bogus frames cannot make us a reflector.
pub const STALE_NOTICES_PER_SEC: u32 = 4;

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub secret: Secret,
    pub mtu: u16,
    pub keepalive: Duration,
    pub host_v4: Ipv4Addr,
    pub guest_v4: Ipv4Addr,
    pub prefix_v4: u8,
    pub v6: Option<(Ipv6Addr, Ipv6Addr, u8)>,
}

struct Pending {
    peer: SocketAddr,
    guest_nonce: Nonce,
    host_nonce: Nonce,
    expires: Instant,
}

pub struct Host {
    cfg: HostConfig,
    entropy: Box<dyn Entropy>,
    pending: VecDeque<Pending>,
    session: Option<Session>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    stale_window: (Option<Instant>, u32),
}

impl Host {
    pub fn new(cfg: HostConfig, entropy: Box<dyn Entropy>) -> Host {
        Host {
            cfg,
            entropy,
            pending: VecDeque::new(),
            session: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            stale_window: (None, 0),
        }
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A datagram from the UDP socket. Returns the range of `buf` holding an IP packet for the
    /// TUN, if it carried one.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) -> Option<Range<usize>> {
        match self.dispatch(now, from, buf) {
            Ok(payload) => payload,
            Err(reason) => {
                self.stats.drop(reason);
                None
            }
        }
    }

    fn dispatch(&mut self, now: Instant, from: SocketAddr, buf: &[u8]) -> Result<Option<Range<usize>>, DropReason> {
        match wire::decode(buf)? {
            Message::Hello { guest_nonce } => {
                self.on_hello(now, from, *guest_nonce);
                Ok(None)
            }
            Message::Auth { guest_nonce, host_nonce, mac } => {
                self.on_auth(now, from, guest_nonce, host_nonce, mac)?;
                Ok(None)
            }
            Message::Data { session_id, counter, payload } => {
                let range = buf.len() - payload.len()..buf.len();
                let session = match self.session.as_mut() {
                    Some(s) if s.id() == session_id => s,
                    other => {
                        let reason = if other.is_some() { DropReason::WrongSession } else { DropReason::NoSession };
                        self.maybe_send_stale(now, from, session_id);
                        return Err(reason);
                    }
                };
                let (payload, revived) = session.receive(now, counter, range, buf, &mut self.stats)?;
                if revived {
                    self.events.push_back(Event::PeerAlive { session_id });
                }
                Ok(payload)
            }
            Message::Challenge { .. } | Message::Welcome { .. } | Message::Stale { .. } => {
                Err(DropReason::UnexpectedHandshake)
            }
        }
    }

    fn on_hello(&mut self, now: Instant, from: SocketAddr, guest_nonce: Nonce) {
        self.pending.retain(|p| p.expires > now);
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        let mut host_nonce = [0u8; NONCE_LEN];
        self.entropy.fill(&mut host_nonce);
        self.transmits.push_back(Transmit { dst: from, bytes: wire::encode_challenge(&guest_nonce, &host_nonce) });
        self.pending.push_back(Pending { peer: from, guest_nonce, host_nonce, expires: now + CHALLENGE_LIFETIME });
    }

    fn on_auth(
        &mut self,
        now: Instant,
        from: SocketAddr,
        gn: &Nonce,
        hn: &Nonce,
        tag: &wire::Mac,
    ) -> Result<(), DropReason> {
        let idx = self
            .pending
            .iter()
            .position(|p| p.peer == from && &p.guest_nonce == gn && &p.host_nonce == hn && p.expires > now)
            .ok_or(DropReason::UnexpectedHandshake)?;
        // Consumed even when the tag is wrong: one guess per challenge.
        let pending = self.pending.remove(idx).ok_or(DropReason::UnexpectedHandshake)?;
        let signed = wire::encode_auth_unsigned(gn, hn);
        if !self.cfg.secret.verify(LABEL_AUTH, &[&signed], tag) {
            return Err(DropReason::AuthFailed);
        }
        let params = SessionParams {
            session_id: self.new_session_id(),
            mtu: self.cfg.mtu,
            keepalive_ms: u32::try_from(self.cfg.keepalive.as_millis()).unwrap_or(u32::MAX).max(1),
            host_v4: self.cfg.host_v4,
            guest_v4: self.cfg.guest_v4,
            prefix_v4: self.cfg.prefix_v4,
            v6: self.cfg.v6,
        };
        let mut welcome = wire::encode_welcome_unsigned(gn, &params);
        let tag = self.cfg.secret.tag(LABEL_WELCOME, &[&pending.host_nonce, &welcome]);
        welcome.extend_from_slice(&tag);
        self.transmits.push_back(Transmit { dst: from, bytes: welcome });
        let replaced = self.session.replace(Session::new(params, from, now)).is_some();
        self.stats.handshakes += 1;
        self.events.push_back(Event::SessionUp { params, peer: from, handshake: None, replaced });
        Ok(())
    }

    fn new_session_id(&mut self) -> u64 {
        loop {
            let mut b = [0u8; 8];
            self.entropy.fill(&mut b);
            let id = u64::from_be_bytes(b);
            if id != 0 && self.session.as_ref().is_none_or(|s| s.id() != id) {
                return id;
            }
        }
    }

    /// A guest still using a session we do not have (we restarted) learns so at once instead of
    /// after its dead-peer timeout. The notice is tagged with the secret, so nobody can forge it,
    /// and rate-limited, so it cannot be used to reflect traffic.
    fn maybe_send_stale(&mut self, now: Instant, to: SocketAddr, session_id: u64) {
        let (start, count) = &mut self.stale_window;
        if start.is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1)) {
            *start = Some(now);
            *count = 0;
        }
        if *count >= STALE_NOTICES_PER_SEC {
            return;
        }
        *count += 1;
        let mut notice = wire::encode_stale_unsigned(session_id);
        let tag = self.cfg.secret.tag(LABEL_STALE, &[&notice]);
        notice.extend_from_slice(&tag);
        self.stats.stale_notices += 1;
        self.transmits.push_back(Transmit { dst: to, bytes: notice });
    }

    /// Frames a packet read from the TUN into `buf[DATA_HEADER_LEN..][..len]`. Returns where to
    /// send it and the datagram length, or None when it was dropped (and counted).
    pub fn encapsulate(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Option<(SocketAddr, usize)> {
        let Some(session) = self.session.as_mut() else {
            self.stats.drop(DropReason::NoSession);
            return None;
        };
        match session.encapsulate(now, buf, len, &mut self.stats) {
            Ok(n) => Some((session.peer, n)),
            Err(reason) => {
                self.stats.drop(reason);
                None
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.pending.retain(|p| p.expires > now);
        let Some(session) = self.session.as_mut() else { return };
        if let Some(silent_for) = session.check_dead(now) {
            self.events.push_back(Event::PeerDead { session_id: session.id(), silent_for });
        }
        if session.keepalive_due(now) {
            let bytes = session.keepalive_frame(now, &mut self.stats);
            self.transmits.push_back(Transmit { dst: session.peer, bytes });
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.iter().map(|p| p.expires).min();
        let session = self.session.as_ref().and_then(Session::next_deadline);
        match (pending, session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
