//! The guest (Docker VM) end: initiates the handshake, re-handshakes when the host goes silent
//! or says it lost the session, carries packets.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

use dockroute_stdx::Backoff;

use super::auth::{LABEL_AUTH, LABEL_STALE, LABEL_WELCOME};
use super::session::{self, Session};
use super::wire::{self, Message, Nonce, NONCE_LEN};
use super::{DropReason, Entropy, Event, Stats, Transmit};
use dockroute_api::Secret;

/// After a Challenge, how long we wait for the Welcome before retrying from Hello.
const WELCOME_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct GuestConfig {
    pub secret: Secret,
    /// How long a Hello waits for its answer before the next one, by attempt number.
    pub retry: Backoff,
}

impl GuestConfig {
    pub fn new(secret: Secret) -> GuestConfig {
        GuestConfig { secret, retry: Backoff::new(Duration::from_millis(250), Duration::from_secs(4)) }
    }
}

struct Handshake {
    guest_nonce: Nonce,
    host_nonce: Option<Nonce>,
    /// Attempt number within this round (1 = first Hello).
    attempt: u32,
    hello_sent: Instant,
    next_retry: Instant,
}

pub struct Guest {
    cfg: GuestConfig,
    entropy: Box<dyn Entropy>,
    server: SocketAddr,
    handshake: Option<Handshake>,
    session: Option<Session>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Guest {
    /// Starts the first handshake at once.
    pub fn new(cfg: GuestConfig, entropy: Box<dyn Entropy>, server: SocketAddr, now: Instant) -> Guest {
        let mut g = Guest {
            cfg,
            entropy,
            server,
            handshake: None,
            session: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        };
        g.start_handshake(now);
        g
    }

    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    #[cfg(test)]
    pub fn is_handshaking(&self) -> bool {
        self.handshake.is_some()
    }

    /// Where the next Hello goes (the driver re-resolves the host name between attempts).
    pub fn set_server(&mut self, server: SocketAddr) {
        self.server = server;
    }

    /// Moves to another path to the host (UDP, or the TCP relay's address): a new handshake
    /// round starts there at once. The old session keeps carrying traffic until the new one
    /// replaces it; a late answer on the old path matches no nonce and is dropped.
    pub fn switch_path(&mut self, now: Instant, server: SocketAddr) {
        self.server = server;
        self.start_handshake(now);
    }

    /// Starts a new handshake round now unless one is running; the old session keeps carrying
    /// traffic until the new one replaces it.
    pub fn reconnect(&mut self, now: Instant) {
        if self.handshake.is_none() {
            self.start_handshake(now);
        }
    }

    fn start_handshake(&mut self, now: Instant) {
        self.handshake = None;
        self.send_hello(now, 1);
    }

    fn send_hello(&mut self, now: Instant, attempt: u32) {
        let mut guest_nonce = [0u8; NONCE_LEN];
        self.entropy.fill(&mut guest_nonce);
        let backoff = self.cfg.retry.delay_for(attempt);
        self.handshake =
            Some(Handshake { guest_nonce, host_nonce: None, attempt, hello_sent: now, next_retry: now + backoff });
        self.transmits.push_back(Transmit { dst: self.server, bytes: wire::encode_hello(&guest_nonce) });
        self.events.push_back(Event::HandshakeAttempt { attempt });
    }

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
            Message::Challenge { guest_nonce, host_nonce } => {
                // Only the first Challenge for our nonce counts: answering a duplicate would
                // make the host set up a second session.
                let hs = self.handshake.as_mut().filter(|h| &h.guest_nonce == guest_nonce && h.host_nonce.is_none());
                let hs = hs.ok_or(DropReason::UnexpectedHandshake)?;
                hs.host_nonce = Some(*host_nonce);
                // The host answered: give the Welcome time before starting over with a new Hello.
                hs.next_retry = hs.next_retry.max(now + WELCOME_WAIT);
                let mut auth = wire::encode_auth_unsigned(guest_nonce, host_nonce);
                let tag = self.cfg.secret.tag(LABEL_AUTH, &[&auth]);
                auth.extend_from_slice(&tag);
                self.transmits.push_back(Transmit { dst: from, bytes: auth });
                Ok(None)
            }
            Message::Welcome { guest_nonce, params, signed, mac } => {
                let hs = self.handshake.as_ref().filter(|h| &h.guest_nonce == guest_nonce);
                let (hs, host_nonce) =
                    hs.and_then(|h| h.host_nonce.map(|n| (h, n))).ok_or(DropReason::UnexpectedHandshake)?;
                if !self.cfg.secret.verify(LABEL_WELCOME, &[&host_nonce, signed], mac) {
                    return Err(DropReason::AuthFailed);
                }
                let handshake = now.saturating_duration_since(hs.hello_sent);
                self.handshake = None;
                let replaced = self.session.replace(Session::new(params, from, now)).is_some();
                self.stats.handshakes += 1;
                self.events.push_back(Event::SessionUp { params, peer: from, handshake: Some(handshake), replaced });
                Ok(None)
            }
            Message::Data { session_id, counter, payload } => {
                let range = buf.len() - payload.len()..buf.len();
                let session = self.session.as_mut().ok_or(DropReason::NoSession)?;
                if session.id() != session_id {
                    return Err(DropReason::WrongSession);
                }
                let (payload, revived) = session.receive(now, from, counter, range, buf, &mut self.stats)?;
                if revived {
                    self.events.push_back(Event::PeerAlive { session_id });
                }
                Ok(payload)
            }
            Message::Stale { session_id, mac } => {
                let ours = self.session.as_ref().is_some_and(|s| s.id() == session_id);
                if !ours {
                    return Err(DropReason::UnexpectedHandshake);
                }
                let signed = wire::encode_stale_unsigned(session_id);
                if !self.cfg.secret.verify(LABEL_STALE, &[&signed], mac) {
                    return Err(DropReason::AuthFailed);
                }
                self.events.push_back(Event::StaleSession { session_id });
                self.reconnect(now);
                Ok(None)
            }
            Message::Hello { .. } | Message::Auth { .. } => Err(DropReason::UnexpectedHandshake),
        }
    }

    /// Frames a packet read from the TUN; see `Host::encapsulate`.
    pub fn encapsulate(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Option<(SocketAddr, usize)> {
        session::encapsulate(self.session.as_mut(), &mut self.stats, now, buf, len)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(hs) = &self.handshake {
            if now >= hs.next_retry {
                let attempt = hs.attempt.saturating_add(1);
                self.send_hello(now, attempt);
            }
        }
        let Some(session) = self.session.as_mut() else { return };
        if let Some(silent_for) = session.check_dead(now) {
            self.events.push_back(Event::PeerDead { session_id: session.id(), silent_for });
            self.reconnect(now);
            return;
        }
        if session.keepalive_due(now) {
            let bytes = session.keepalive_frame(now, &mut self.stats);
            self.transmits.push_back(Transmit { dst: session.peer, bytes });
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let hs = self.handshake.as_ref().map(|h| h.next_retry);
        let session = self.session.as_ref().and_then(Session::next_deadline);
        dockroute_stdx::time::earliest(hs, session)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
