//! The host (Mac) end: answers handshakes, assigns the session, carries packets.
//!
//! Handshake: Hello(gn) → Challenge(gn, hn) → Auth(gn, hn, tag) → Welcome(params, tag).
//! The host nonce is a cookie: a keyed hash of the sender's address, its nonce and the time
//! epoch, so answering a Hello stores nothing and no Hello flood can crowd out the real
//! guest's challenge. A verified Auth's cookie is remembered until it expires, so a replayed
//! Auth finds nothing to answer. A failed Auth never touches the live session.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::time::{Duration, Instant};

use super::auth::{LABEL_AUTH, LABEL_STALE, LABEL_WELCOME};
use super::session::{self, Session};
use super::wire::{self, Message, Nonce, SessionParams, NONCE_LEN};
use super::{DropReason, Entropy, Event, Stats, Transmit};
use dockroute_api::Secret;

/// A Challenge stays answerable for at least half of this and at most all of it: cookies are
/// valid in the epoch they were made in and the next, each half this long.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(5);
const EPOCH: Duration = Duration::from_millis(2500);
/// Stale notices allowed per second to one address, so bogus frames cannot make us a
/// reflector, and one sender cannot use up the real guest's notices.
pub const STALE_NOTICES_PER_SEC: u32 = 4;
/// Addresses we keep a Stale budget for; beyond this, expired ones are forgotten first and
/// new senders get nothing until there is room.
const STALE_SOURCES: usize = 256;
const LABEL_COOKIE: &[u8] = b"dockroute/1 cookie";

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

pub struct Host {
    cfg: HostConfig,
    entropy: Box<dyn Entropy>,
    /// Keys the cookies; never leaves this process.
    cookie_key: Secret,
    /// The first `now` we saw: epochs count from here.
    origin: Option<Instant>,
    /// Cookies of verified Auths, until they expire: each answers one Auth only.
    used_cookies: VecDeque<(Nonce, Instant)>,
    session: Option<Session>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
    stale_budget: HashMap<SocketAddr, (Instant, u32)>,
}

impl Host {
    pub fn new(cfg: HostConfig, mut entropy: Box<dyn Entropy>) -> Host {
        let mut key = vec![0u8; 32];
        entropy.fill(&mut key);
        Host {
            cfg,
            entropy,
            cookie_key: Secret::new(key).expect("32 bytes is a valid key"),
            origin: None,
            used_cookies: VecDeque::new(),
            session: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            stale_budget: HashMap::new(),
        }
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A new secret applies to handshakes from now on; the live session keeps running (its
    /// guest proved the old secret), so the app can rotate without cutting traffic.
    pub fn set_secret(&mut self, secret: Secret) {
        self.cfg.secret = secret;
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
                let (payload, revived) = session.receive(now, from, counter, range, buf, &mut self.stats)?;
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

    fn epoch(&mut self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_insert(now);
        (now.saturating_duration_since(origin).as_millis() / EPOCH.as_millis()) as u64
    }

    fn cookie(&self, peer: SocketAddr, guest_nonce: &Nonce, epoch: u64) -> Nonce {
        let addr = match peer.ip() {
            std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(a) => a.octets(),
        };
        let tag =
            self.cookie_key.tag(LABEL_COOKIE, &[&addr, &peer.port().to_be_bytes(), guest_nonce, &epoch.to_be_bytes()]);
        let mut cookie = [0u8; NONCE_LEN];
        cookie.copy_from_slice(&tag[..NONCE_LEN]);
        cookie
    }

    fn on_hello(&mut self, now: Instant, from: SocketAddr, guest_nonce: Nonce) {
        let epoch = self.epoch(now);
        let host_nonce = self.cookie(from, &guest_nonce, epoch);
        self.transmits.push_back(Transmit { dst: from, bytes: wire::encode_challenge(&guest_nonce, &host_nonce) });
    }

    fn on_auth(
        &mut self,
        now: Instant,
        from: SocketAddr,
        gn: &Nonce,
        hn: &Nonce,
        tag: &wire::Mac,
    ) -> Result<(), DropReason> {
        let epoch = self.epoch(now);
        let ours = [epoch, epoch.saturating_sub(1)].iter().any(|e| {
            let c = self.cookie(from, gn, *e);
            // Constant time, like every other comparison with secret-derived bytes.
            c.iter().zip(hn).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        });
        self.used_cookies.retain(|(_, expires)| *expires > now);
        if !ours || self.used_cookies.iter().any(|(c, _)| c == hn) {
            return Err(DropReason::UnexpectedHandshake);
        }
        let signed = wire::encode_auth_unsigned(gn, hn);
        if !self.cfg.secret.verify(LABEL_AUTH, &[&signed], tag) {
            return Err(DropReason::AuthFailed);
        }
        // Only verified cookies are remembered, so nobody without the secret can grow this.
        self.used_cookies.push_back((*hn, now + CHALLENGE_LIFETIME));
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
        let tag = self.cfg.secret.tag(LABEL_WELCOME, &[hn, &welcome]);
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

    /// A guest still using a session we do not have (we restarted), or one we stopped hearing,
    /// learns so at once instead of after its dead-peer timeout. The notice is tagged with the secret, so nobody can forge it,
    /// and rate-limited per address, so it cannot be used to reflect traffic. It is sent only
    /// while we have no live session: with a live one, a second guest holding the secret must
    /// not be told to re-handshake and take the session over every keepalive.
    fn maybe_send_stale(&mut self, now: Instant, to: SocketAddr, session_id: u64) {
        if self.session.as_ref().is_some_and(|s| s.alive) {
            return;
        }
        let second_ago = |start: Instant| now.saturating_duration_since(start) >= Duration::from_secs(1);
        if self.stale_budget.len() >= STALE_SOURCES && !self.stale_budget.contains_key(&to) {
            self.stale_budget.retain(|_, (start, _)| !second_ago(*start));
            if self.stale_budget.len() >= STALE_SOURCES {
                return;
            }
        }
        let (start, count) = self.stale_budget.entry(to).or_insert((now, 0));
        if second_ago(*start) {
            *start = now;
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
        session::encapsulate(self.session.as_mut(), &mut self.stats, now, buf, len)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(session) = self.session.as_mut() else { return };
        if let Some(silent_for) = session.check_dead(now) {
            let (id, peer) = (session.id(), session.peer);
            self.events.push_back(Event::PeerDead { session_id: id, silent_for });
            // We no longer hear the guest, but it may still hear us (a path broken one way, a
            // firewall dropping only what the VM sends): say so, tagged, so it handshakes again
            // (and tries its other path) instead of trusting a session only we know is dead.
            self.maybe_send_stale(now, peer, id);
            return;
        }
        if session.keepalive_due(now) {
            let bytes = session.keepalive_frame(now, &mut self.stats);
            self.transmits.push_back(Transmit { dst: session.peer, bytes });
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.as_ref().and_then(Session::next_deadline)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
