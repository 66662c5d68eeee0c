//! The share's sans-IO core: datagrams from the expose socket and packets the guest sent to a
//! teammate's address go in, with `now`; datagrams for the socket and packets for the tunnel
//! come out (`poll_transmit`, `poll_packet`), each checked by `policy`.
//!
//! One boringtun `Tunn` per teammate does the WireGuard protocol. An initiation is matched to
//! its teammate by the static key inside it (`parse_handshake_anon`), every later message by
//! the session index, whose upper 24 bits are the teammate's `Tunn` index (never reused, so a
//! revoked or rotated key's sessions find nobody). Before any Diffie-Hellman work an
//! initiation must pass WireGuard's MAC1 check and, under load, the cookie (the library's
//! `RateLimiter` answers with a cookie reply), then our per-address budget.
//!
//! Time: our own decisions (budgets, handshake ages, when to tick) use `now`; boringtun reads
//! its own clock for WireGuard's timers, the rate limiter and TAI64N timestamps.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::PublicKey;

use super::budget::HandshakeBudget;
use super::flows::{Flows, Reply};
use super::policy::{self, Drop, Rules};
use super::state::KeyPair;

/// Handshake initiations per second (all teammates together) before WireGuard's cookie is
/// required.
pub const HANDSHAKES_BEFORE_COOKIES: u64 = 64;
/// WireGuard's timers are driven this often while a teammate is active.
const TICK: Duration = Duration::from_millis(250);
/// A teammate silent this long no longer keeps the timer running (their sessions have expired
/// by then: WireGuard rejects keys after 180 s).
const ACTIVE_FOR: Duration = Duration::from_secs(600);
/// Largest datagram or packet handled (WireGuard adds 32 bytes to a packet).
const BUF: usize = 65_536 + 64;
/// A handshake response's size (a cookie reply, the other answer to an initiation, is 64).
const RESPONSE_LEN: usize = 92;
/// WireGuard data message type (the first byte, little-endian u32).
const DATA_TYPE: u8 = 4;
/// WireGuard cookie reply type: what boringtun answers, under load, to any handshake message
/// with a valid MAC1, which anyone with our public key can make.
const COOKIE_REPLY_TYPE: u8 = 3;
const DATA_OVERHEAD: usize = 32;

/// A teammate as the core needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeammateSpec {
    pub name: String,
    pub address: Ipv4Addr,
    pub public_key: [u8; 32],
}

/// A datagram for the expose socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    drops: [u64; Drop::ALL.len()],
}

impl Counters {
    pub fn drop(&mut self, d: Drop) {
        self.drops[Drop::ALL.iter().position(|x| *x == d).unwrap_or(0)] += 1;
    }

    pub fn drops(&self, d: Drop) -> u64 {
        Drop::ALL.iter().position(|x| *x == d).map_or(0, |i| self.drops[i])
    }

    /// Every reason with its count, by name.
    pub fn drops_by_name(&self) -> BTreeMap<String, u64> {
        Drop::ALL.iter().map(|d| (d.name().to_string(), self.drops(*d))).collect()
    }
}

/// What the status shows of one teammate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeammateView {
    pub name: String,
    pub endpoint: Option<SocketAddr>,
    pub last_handshake: Option<Duration>,
    pub counters: Counters,
}

struct Mate {
    spec: TeammateSpec,
    tunn: Box<Tunn>,
    /// Where their last authenticated datagram came from (WireGuard's roaming).
    endpoint: Option<SocketAddr>,
    last_handshake: Option<Instant>,
    last_seen: Option<Instant>,
    counters: Counters,
    /// What they opened: the only flows replies may come back on.
    flows: Flows,
}

pub struct ShareCore {
    keys: KeyPair,
    limiter: Arc<RateLimiter>,
    /// By `Tunn` index.
    mates: BTreeMap<u32, Mate>,
    by_address: HashMap<Ipv4Addr, u32>,
    next_index: u32,
    rules: Rules,
    budget: HandshakeBudget,
    unattributed: Counters,
    transmits: VecDeque<Transmit>,
    packets: VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    tick_at: Option<Instant>,
}

impl ShareCore {
    pub fn new(keys: KeyPair, handshakes_before_cookies: u64) -> ShareCore {
        let limiter = Arc::new(RateLimiter::new(&keys.public, handshakes_before_cookies));
        ShareCore {
            keys,
            limiter,
            mates: BTreeMap::new(),
            by_address: HashMap::new(),
            next_index: 1,
            rules: Rules::default(),
            budget: HandshakeBudget::default(),
            unattributed: Counters::default(),
            transmits: VecDeque::new(),
            packets: VecDeque::new(),
            buf: vec![0; BUF],
            tick_at: None,
        }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.keys.public
    }

    pub fn set_rules(&mut self, rules: Rules) {
        for mate in self.mates.values_mut() {
            mate.flows.retain_destinations(|dst| rules.allows(dst));
        }
        self.rules = rules;
    }

    /// The teammates from now on. One whose key and address are unchanged keeps its sessions
    /// and counters; anyone else's `Tunn` is dropped at once (revoked, or rotated: the old key
    /// no longer works).
    pub fn set_teammates(&mut self, specs: &[TeammateSpec]) {
        self.mates.retain(|_, m| specs.contains(&m.spec));
        let new: Vec<&TeammateSpec> = specs.iter().filter(|s| !self.mates.values().any(|m| m.spec == **s)).collect();
        for spec in new {
            let index = self.fresh_index();
            let peer = PublicKey::from(spec.public_key);
            let tunn = Tunn::new(self.keys.private.clone(), peer, None, None, index, None);
            let mate = Mate {
                spec: spec.clone(),
                tunn: Box::new(tunn),
                endpoint: None,
                last_handshake: None,
                last_seen: None,
                counters: Counters::default(),
                flows: Flows::default(),
            };
            self.mates.insert(index, mate);
        }
        self.by_address = self.mates.iter().map(|(i, m)| (m.spec.address, *i)).collect();
    }

    /// Tunn indexes are 24 bits and never reused while the process lives, so a message for a
    /// removed teammate's session never reaches a new one.
    fn fresh_index(&mut self) -> u32 {
        loop {
            let i = self.next_index;
            self.next_index = (self.next_index + 1) & 0x00ff_ffff;
            if !self.mates.contains_key(&i) {
                return i;
            }
        }
    }

    /// A datagram from the expose socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let index = match Tunn::parse_incoming_packet(bytes) {
            Ok(Packet::HandshakeInit(init)) => return self.on_initiation(now, from, bytes, &init),
            Ok(Packet::HandshakeResponse(p)) => p.receiver_idx,
            Ok(Packet::PacketCookieReply(p)) => p.receiver_idx,
            Ok(Packet::PacketData(p)) => p.receiver_idx,
            Err(_) => return self.unattributed.drop(Drop::Garbage),
        };
        let Some(mate) = self.mates.get_mut(&(index >> 8)) else {
            return self.unattributed.drop(Drop::UnknownIndex);
        };
        let is_data = bytes[0] == DATA_TYPE;
        // Only what proves the teammate's key moves their endpoint (WireGuard's roaming): a
        // decrypted data message or keepalive, or a handshake response that completed. A cookie
        // reply we send or receive proves nothing: MAC1 needs only our public key, which every
        // config (a revoked one too) holds.
        match mate.tunn.decapsulate(Some(from.ip()), bytes, &mut self.buf) {
            TunnResult::WriteToTunnelV4(packet, _) | TunnResult::WriteToTunnelV6(packet, _) => {
                seen(mate, now, from);
                match policy::inbound(mate.spec.address, packet, &self.rules) {
                    Ok(()) if !mate.flows.opened(now, packet) => mate.counters.drop(Drop::TooManyFlows),
                    Ok(()) => {
                        mate.counters.rx_packets += 1;
                        mate.counters.rx_bytes += packet.len() as u64;
                        self.packets.push_back(packet.to_vec());
                    }
                    Err(d) => mate.counters.drop(d),
                }
            }
            TunnResult::Done if is_data => seen(mate, now, from),
            TunnResult::Done => {}
            TunnResult::WriteToNetwork(out) if out[0] == COOKIE_REPLY_TYPE => {
                mate.counters.drop(Drop::RateLimited);
                self.transmits.push_back(Transmit { dst: from, bytes: out.to_vec() });
            }
            TunnResult::WriteToNetwork(out) => {
                seen(mate, now, from);
                self.transmits.push_back(Transmit { dst: from, bytes: out.to_vec() });
                flush_queued(mate, from, &mut self.buf, &mut self.transmits);
            }
            TunnResult::Err(_) => mate.counters.drop(if is_data { Drop::BadData } else { Drop::BadHandshake }),
        }
        self.tick_at.get_or_insert(now + TICK);
    }

    fn on_initiation(&mut self, now: Instant, from: SocketAddr, bytes: &[u8], init: &boringtun::noise::HandshakeInit) {
        let mut cookie = [0u8; 64];
        self.limiter.reset_count();
        match self.limiter.verify_packet(Some(from.ip()), bytes, &mut cookie) {
            Ok(_) => {}
            // Under load: the sender must prove its address with the cookie first.
            Err(TunnResult::WriteToNetwork(reply)) => {
                self.unattributed.drop(Drop::RateLimited);
                return self.transmits.push_back(Transmit { dst: from, bytes: reply.to_vec() });
            }
            // MAC1 is made with our public key: whoever fails it does not know us.
            Err(_) => return self.unattributed.drop(Drop::Garbage),
        }
        if !self.budget.allow(now, from.ip()) {
            return self.unattributed.drop(Drop::RateLimited);
        }
        let Ok(half) = parse_handshake_anon(&self.keys.private, &self.keys.public, init) else {
            return self.unattributed.drop(Drop::UnknownKey);
        };
        let Some(mate) = self.mates.values_mut().find(|m| m.spec.public_key == half.peer_static_public) else {
            return self.unattributed.drop(Drop::UnknownKey);
        };
        match mate.tunn.decapsulate(Some(from.ip()), bytes, &mut self.buf) {
            TunnResult::WriteToNetwork(out) => {
                if out.len() == RESPONSE_LEN {
                    mate.last_handshake = Some(now);
                    seen(mate, now, from);
                } else {
                    mate.counters.drop(Drop::RateLimited);
                }
                self.transmits.push_back(Transmit { dst: from, bytes: out.to_vec() });
            }
            TunnResult::Err(_) => mate.counters.drop(Drop::BadHandshake),
            _ => {}
        }
        self.tick_at.get_or_insert(now + TICK);
    }

    /// A packet the guest sent to an address in the link subnet (the tunnel's side port).
    pub fn handle_diverted(&mut self, now: Instant, packet: &[u8]) {
        let by_address = &self.by_address;
        let index = match policy::outbound(packet, &self.rules, |a| by_address.get(&a).copied()) {
            Ok(i) => i,
            Err((d, Some(i))) => return self.mates.get_mut(&i).map_or((), |m| m.counters.drop(d)),
            Err((d, None)) => return self.unattributed.drop(d),
        };
        let Some(mate) = self.mates.get_mut(&index) else { return };
        if mate.flows.reply(now, packet) == Reply::NotOpened {
            return mate.counters.drop(Drop::NotOpenedByTeammate);
        }
        let Some(endpoint) = mate.endpoint else { return mate.counters.drop(Drop::NoSession) };
        if packet.len() + DATA_OVERHEAD + 16 > self.buf.len() {
            return mate.counters.drop(Drop::BadPacket);
        }
        match mate.tunn.encapsulate(packet, &mut self.buf) {
            TunnResult::WriteToNetwork(out) => {
                if out[0] == DATA_TYPE {
                    mate.counters.tx_packets += 1;
                    mate.counters.tx_bytes += packet.len() as u64;
                }
                // Otherwise a handshake initiation: the packet waits in the `Tunn` for it.
                self.transmits.push_back(Transmit { dst: endpoint, bytes: out.to_vec() });
            }
            TunnResult::Err(_) => mate.counters.drop(Drop::NoSession),
            _ => {}
        }
        self.tick_at.get_or_insert(now + TICK);
    }

    /// Drives WireGuard's timers (keepalives, rekeying, expiry) of the active teammates.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.tick_at.is_none_or(|t| now < t) {
            return;
        }
        self.limiter.reset_count();
        let mut active = false;
        for mate in self.mates.values_mut() {
            if mate.last_seen.is_none_or(|t| now.saturating_duration_since(t) >= ACTIVE_FOR) {
                continue;
            }
            active = true;
            if let TunnResult::WriteToNetwork(out) = mate.tunn.update_timers(&mut self.buf) {
                if let Some(dst) = mate.endpoint {
                    self.transmits.push_back(Transmit { dst, bytes: out.to_vec() });
                }
            }
        }
        self.tick_at = active.then_some(now + TICK);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tick_at
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next packet for the tunnel (to the guest, as if from the TUN).
    pub fn poll_packet(&mut self) -> Option<Vec<u8>> {
        self.packets.pop_front()
    }

    /// A packet `poll_packet` gave could not be queued to the tunnel.
    pub fn count_unattributed(&mut self, d: Drop) {
        self.unattributed.drop(d);
    }

    pub fn teammates(&self, now: Instant) -> Vec<TeammateView> {
        let mut out: Vec<TeammateView> = self
            .mates
            .values()
            .map(|m| TeammateView {
                name: m.spec.name.clone(),
                endpoint: m.endpoint,
                last_handshake: m.last_handshake.map(|t| now.saturating_duration_since(t)),
                counters: m.counters.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn unattributed(&self) -> &Counters {
        &self.unattributed
    }
}

fn seen(mate: &mut Mate, now: Instant, from: SocketAddr) {
    mate.endpoint = Some(from);
    mate.last_seen = Some(now);
}

/// After a handshake, packets the `Tunn` queued while it had no session go out.
fn flush_queued(mate: &mut Mate, to: SocketAddr, buf: &mut [u8], transmits: &mut VecDeque<Transmit>) {
    while let TunnResult::WriteToNetwork(out) = mate.tunn.decapsulate(None, &[], buf) {
        if out[0] == DATA_TYPE {
            mate.counters.tx_packets += 1;
            mate.counters.tx_bytes += out.len().saturating_sub(DATA_OVERHEAD) as u64;
        }
        transmits.push_back(Transmit { dst: to, bytes: out.to_vec() });
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
