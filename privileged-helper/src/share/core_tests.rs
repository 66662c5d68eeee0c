//! The share core against a real WireGuard client (boringtun's `Tunn` playing the teammate),
//! in memory: handshakes, policy, revocation, rotation, floods, garbage.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519::PublicKey;

use super::*;

const MAC: [u8; 4] = [198, 18, 5, 1];
const GUEST: [u8; 4] = [198, 18, 5, 2];
const ALICE: [u8; 4] = [198, 18, 5, 3];
const BOB: [u8; 4] = [198, 18, 5, 4];
const CONTAINER: [u8; 4] = [198, 19, 1, 10];
const HIDDEN: [u8; 4] = [198, 19, 2, 10];

fn udp4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let len = 28 + payload.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[28..].copy_from_slice(payload);
    p
}

/// CONTAINER's network is exposed, HIDDEN's is not.
fn rules() -> Rules {
    Rules {
        containers: [CONTAINER.into()].into(),
        open: Vec::new(),
        gateways: [[198, 19, 1, 1].into(), [198, 19, 2, 1].into()].into(),
        link: Some("198.18.5.1/24".parse().unwrap()),
    }
}

/// A teammate's WireGuard client, as the official apps would run it.
struct Client {
    tunn: Tunn,
    keys: KeyPair,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl Client {
    fn new(server: &PublicKey, port: u16) -> Client {
        let keys = KeyPair::generate().unwrap();
        let tunn = Tunn::new(keys.private.clone(), *server, None, Some(25), 7, None);
        Client { tunn, keys, addr: SocketAddr::from(([198, 18, 9, 2], port)), buf: vec![0; 70_000] }
    }

    fn spec(&self, name: &str, ip: [u8; 4]) -> TeammateSpec {
        TeammateSpec { name: name.into(), address: ip.into(), public_key: *self.keys.public.as_bytes() }
    }

    fn initiation(&mut self) -> Vec<u8> {
        match self.tunn.format_handshake_initiation(&mut self.buf, true) {
            TunnResult::WriteToNetwork(b) => b.to_vec(),
            other => panic!("no initiation: {other:?}"),
        }
    }

    /// Feeds the client a datagram from the server; returns what it answers and any packet.
    fn receive(&mut self, bytes: &[u8]) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match self.tunn.decapsulate(Some([198, 18, 9, 1].into()), bytes, &mut self.buf) {
            TunnResult::WriteToNetwork(b) => (Some(b.to_vec()), None),
            TunnResult::WriteToTunnelV4(p, _) => (None, Some(p.to_vec())),
            TunnResult::Done => (None, None),
            other => panic!("client rejected a datagram: {other:?}"),
        }
    }

    fn seal(&mut self, packet: &[u8]) -> Vec<u8> {
        match self.tunn.encapsulate(packet, &mut self.buf) {
            TunnResult::WriteToNetwork(b) => b.to_vec(),
            other => panic!("no session to send on: {other:?}"),
        }
    }
}

fn transmits(core: &mut ShareCore) -> Vec<Transmit> {
    std::iter::from_fn(|| core.poll_transmit()).collect()
}

fn packets(core: &mut ShareCore) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| core.poll_packet()).collect()
}

/// A core with alice (and optionally more) as teammates, alice connected.
fn connected() -> (ShareCore, Client, Instant) {
    let mut core = ShareCore::new(KeyPair::generate().unwrap(), HANDSHAKES_BEFORE_COOKIES);
    core.set_rules(rules());
    let mut alice = Client::new(core.public_key(), 40_001);
    core.set_teammates(&[alice.spec("alice", ALICE)]);
    let now = Instant::now();
    handshake(&mut core, &mut alice, now);
    (core, alice, now)
}

fn handshake(core: &mut ShareCore, c: &mut Client, now: Instant) {
    let init = c.initiation();
    core.handle_datagram(now, c.addr, &init);
    let out = transmits(core);
    assert_eq!(out.len(), 1, "one handshake response");
    assert_eq!((out[0].dst, out[0].bytes.len()), (c.addr, 92));
    let (keepalive, _) = c.receive(&out[0].bytes);
    core.handle_datagram(now, c.addr, &keepalive.expect("the initiator confirms with a keepalive"));
    assert!(transmits(core).is_empty() && packets(core).is_empty());
}

fn drops(core: &ShareCore, name: &str, d: Drop) -> u64 {
    core.teammates(Instant::now()).iter().find(|t| t.name == name).map_or(0, |t| t.counters.drops(d))
}

#[test]
fn a_teammate_reaches_an_exposed_container_and_the_reply_comes_back_to_them() {
    let (mut core, mut alice, now) = connected();
    let request = udp4(ALICE, CONTAINER, b"GET /");
    let sealed = alice.seal(&request);
    core.handle_datagram(now, alice.addr, &sealed);
    assert_eq!(packets(&mut core), std::slice::from_ref(&request), "into the tunnel, unchanged");
    let reply = udp4(CONTAINER, ALICE, b"200 OK");
    core.handle_diverted(now, &reply);
    let out = transmits(&mut core);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].dst, alice.addr, "to where alice's datagrams come from");
    assert_eq!(alice.receive(&out[0].bytes).1, Some(reply.clone()));
    let t = &core.teammates(now)[0];
    assert_eq!((t.counters.rx_packets, t.counters.rx_bytes), (1, request.len() as u64));
    assert_eq!((t.counters.tx_packets, t.counters.tx_bytes), (1, reply.len() as u64));
    assert_eq!(t.last_handshake, Some(std::time::Duration::ZERO));
    assert_eq!(t.endpoint, Some(alice.addr));
}

#[test]
fn a_spoofed_source_is_dropped_and_counted_against_the_teammate() {
    let (mut core, mut alice, now) = connected();
    for src in [BOB, MAC, CONTAINER] {
        let sealed = alice.seal(&udp4(src, CONTAINER, b"x"));
        core.handle_datagram(now, alice.addr, &sealed);
    }
    assert!(packets(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::SpoofedSource), 3);
}

#[test]
fn the_mac_the_guest_other_teammates_and_unexposed_routes_stay_unreachable() {
    let (mut core, mut alice, now) = connected();
    for dst in [MAC, GUEST, BOB, HIDDEN, [192, 168, 1, 1], [127, 0, 0, 1]] {
        let sealed = alice.seal(&udp4(ALICE, dst, b"x"));
        core.handle_datagram(now, alice.addr, &sealed);
    }
    assert!(packets(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::NotAllowedDestination), 6);
}

#[test]
fn replies_from_unexposed_sources_or_for_unknown_addresses_go_nowhere() {
    let (mut core, mut alice, now) = connected();
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"opens a flow"));
    core.handle_datagram(now, alice.addr, &sealed);
    core.handle_diverted(now, &udp4(HIDDEN, ALICE, b"x"));
    core.handle_diverted(now, &udp4(MAC, ALICE, b"x"));
    core.handle_diverted(now, &udp4(CONTAINER, BOB, b"x"));
    assert!(transmits(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::NotAllowedSource), 2);
    assert_eq!(core.unattributed().drops(Drop::NoSession), 1);
}

#[test]
fn two_teammates_get_their_own_replies() {
    let mut core = ShareCore::new(KeyPair::generate().unwrap(), HANDSHAKES_BEFORE_COOKIES);
    core.set_rules(rules());
    let (mut alice, mut bob) = (Client::new(core.public_key(), 40_001), Client::new(core.public_key(), 40_002));
    core.set_teammates(&[alice.spec("alice", ALICE), bob.spec("bob", BOB)]);
    let now = Instant::now();
    handshake(&mut core, &mut alice, now);
    handshake(&mut core, &mut bob, now);
    let sealed = bob.seal(&udp4(BOB, CONTAINER, b"bob asks"));
    core.handle_datagram(now, bob.addr, &sealed);
    assert_eq!(packets(&mut core).len(), 1);
    core.handle_diverted(now, &udp4(CONTAINER, BOB, b"for bob"));
    let out = transmits(&mut core);
    assert_eq!(out[0].dst, bob.addr);
    assert_eq!(bob.receive(&out[0].bytes).1, Some(udp4(CONTAINER, BOB, b"for bob")));
    // Alice cannot use her session to speak as bob.
    let sealed = alice.seal(&udp4(BOB, CONTAINER, b"x"));
    core.handle_datagram(now, alice.addr, &sealed);
    assert!(packets(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::SpoofedSource), 1);
}

#[test]
fn a_revoked_teammate_is_cut_off_at_once() {
    let (mut core, mut alice, now) = connected();
    core.set_teammates(&[]);
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"x"));
    core.handle_datagram(now, alice.addr, &sealed);
    let init = alice.initiation();
    core.handle_datagram(now, alice.addr, &init);
    assert!(packets(&mut core).is_empty() && transmits(&mut core).is_empty());
    assert_eq!(core.unattributed().drops(Drop::UnknownIndex), 1);
    assert_eq!(core.unattributed().drops(Drop::UnknownKey), 1);
    core.handle_diverted(now, &udp4(CONTAINER, ALICE, b"x"));
    assert!(transmits(&mut core).is_empty(), "no reply reaches her either");
}

#[test]
fn a_rotated_key_replaces_the_old_one() {
    let (mut core, mut old, now) = connected();
    let mut new = Client::new(core.public_key(), 40_003);
    core.set_teammates(&[new.spec("alice", ALICE)]);
    let sealed = old.seal(&udp4(ALICE, CONTAINER, b"x"));
    core.handle_datagram(now, old.addr, &sealed);
    assert!(packets(&mut core).is_empty(), "the old key's session is gone");
    handshake(&mut core, &mut new, now);
    let sealed = new.seal(&udp4(ALICE, CONTAINER, b"y"));
    core.handle_datagram(now, new.addr, &sealed);
    assert_eq!(packets(&mut core).len(), 1);
}

#[test]
fn an_unchanged_teammate_keeps_their_session_when_the_list_is_set_again() {
    let (mut core, mut alice, now) = connected();
    let bob = Client::new(core.public_key(), 40_002);
    core.set_teammates(&[bob.spec("bob", BOB), alice.spec("alice", ALICE)]);
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"x"));
    core.handle_datagram(now, alice.addr, &sealed);
    assert_eq!(packets(&mut core).len(), 1);
}

#[test]
fn garbage_and_a_wrong_key_get_no_answer_and_change_nothing() {
    let (mut core, mut alice, now) = connected();
    let stranger_addr = SocketAddr::from(([198, 18, 9, 66], 5000));
    for junk in [&b""[..], b"\x01", &[0u8; 148], &[1u8; 148], &[4u8; 64], b"GET / HTTP/1.1\r\n\r\n"] {
        core.handle_datagram(now, stranger_addr, junk);
    }
    // A client with a key the helper never issued, but who knows the helper's public key.
    let mut stranger = Client::new(core.public_key(), 5001);
    let init = stranger.initiation();
    core.handle_datagram(now, stranger.addr, &init);
    // A client for another server (its MAC1 is made with another key).
    let mut lost = Client::new(&KeyPair::generate().unwrap().public, 5002);
    let init = lost.initiation();
    core.handle_datagram(now, lost.addr, &init);
    assert!(transmits(&mut core).is_empty() && packets(&mut core).is_empty(), "nothing is answered");
    assert_eq!(core.unattributed().drops(Drop::UnknownKey), 1);
    assert!(core.unattributed().drops(Drop::Garbage) >= 5, "{:?}", core.unattributed());
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"still works"));
    core.handle_datagram(now, alice.addr, &sealed);
    assert_eq!(packets(&mut core).len(), 1);
}

#[test]
fn a_handshake_flood_gets_cookie_replies_then_the_per_address_budget() {
    let mut core = ShareCore::new(KeyPair::generate().unwrap(), 2);
    core.set_rules(rules());
    let mut alice = Client::new(core.public_key(), 40_001);
    core.set_teammates(&[alice.spec("alice", ALICE)]);
    let now = Instant::now();
    let mut sizes = Vec::new();
    for _ in 0..4 {
        let init = alice.initiation();
        core.handle_datagram(now, alice.addr, &init);
        sizes.extend(transmits(&mut core).iter().map(|t| t.bytes.len()));
    }
    assert_eq!(sizes, [92, 92, 64, 64], "past the limit, a cookie reply instead of a response");
    assert_eq!(core.unattributed().drops(Drop::RateLimited), 2);
    // A client that took the cookie proves its address; then our own budget bounds the work.
    let mut budget = ShareCore::new(KeyPair::generate().unwrap(), u64::MAX);
    let mut bob = Client::new(budget.public_key(), 40_002);
    budget.set_teammates(&[bob.spec("bob", BOB)]);
    let answered = (0..20)
        .filter(|_| {
            let init = bob.initiation();
            budget.handle_datagram(now, bob.addr, &init);
            !transmits(&mut budget).is_empty()
        })
        .count();
    assert_eq!(answered, super::super::budget::PER_SOURCE_PER_SEC as usize);
}

#[test]
fn timers_run_only_while_someone_is_active() {
    let mut core = ShareCore::new(KeyPair::generate().unwrap(), HANDSHAKES_BEFORE_COOKIES);
    assert_eq!(core.poll_timeout(), None, "an idle share sleeps");
    let (mut core2, _alice, now) = connected();
    let at = core2.poll_timeout().expect("a tick while alice is active");
    core2.handle_timeout(at);
    assert!(core2.poll_timeout().is_some());
    core2.handle_timeout(now + ACTIVE_FOR + Duration::from_secs(1));
    assert_eq!(core2.poll_timeout(), None, "silent for long: no more ticks");
    core.handle_timeout(Instant::now());
    assert_eq!(core.poll_timeout(), None);
}

#[test]
fn a_reply_before_any_handshake_has_nowhere_to_go() {
    let mut core = ShareCore::new(KeyPair::generate().unwrap(), HANDSHAKES_BEFORE_COOKIES);
    core.set_rules(rules());
    let alice = Client::new(core.public_key(), 40_001);
    core.set_teammates(&[alice.spec("alice", ALICE)]);
    core.handle_diverted(Instant::now(), &udp4(CONTAINER, ALICE, b"x"));
    assert!(transmits(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::NotOpenedByTeammate), 1, "she opened nothing");
    let _ = Ipv4Addr::from(ALICE);
}

/// A handshake response as anyone holding a teammate's config can make one: random body, the
/// receiver index of a teammate's session (the upper 24 bits are the teammate's small index),
/// and a valid MAC1 (keyed with our public key, which every config holds).
fn forged_response(server: &PublicKey, receiver_idx: u32) -> Vec<u8> {
    use blake2::digest::{Digest, FixedOutput, KeyInit, Update};
    let mut msg = vec![0u8; 92];
    msg[0] = 2;
    msg[4..8].copy_from_slice(&0x0bad_f00du32.to_le_bytes());
    msg[8..12].copy_from_slice(&receiver_idx.to_le_bytes());
    getrandom::fill(&mut msg[12..60]).unwrap();
    let key: [u8; 32] =
        blake2::Blake2s256::new().chain_update(b"mac1----").chain_update(server.as_bytes()).finalize().into();
    let mut mac = <blake2::Blake2sMac<blake2::digest::consts::U16> as KeyInit>::new_from_slice(&key).unwrap();
    Update::update(&mut mac, &msg[..60]);
    let mac1: [u8; 16] = mac.finalize_fixed().into();
    msg[60..76].copy_from_slice(&mac1);
    msg
}

#[test]
fn a_forged_handshake_response_with_a_valid_mac1_never_moves_the_teammates_endpoint() {
    let (mut core, mut alice, now) = connected();
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"ask"));
    core.handle_datagram(now, alice.addr, &sealed);
    packets(&mut core);
    let attacker = SocketAddr::from(([198, 18, 9, 66], 6666));
    let server = *core.public_key();
    // Enough to put alice's own rate limiter under load: then boringtun answers with cookies.
    let mut answers = Vec::new();
    for _ in 0..40 {
        core.handle_datagram(now, attacker, &forged_response(&server, 1 << 8));
        answers.extend(transmits(&mut core));
    }
    assert!(!answers.is_empty(), "under load the forged responses draw cookie replies");
    assert!(answers.iter().all(|t| t.dst == attacker && t.bytes[0] == 3), "cookie replies only, to the sender");
    let t = &core.teammates(now)[0];
    assert_ne!(t.endpoint, Some(attacker), "a cookie reply is no proof of life");
    assert!(t.counters.drops(Drop::RateLimited) >= 1 && t.counters.drops(Drop::BadHandshake) >= 1, "{t:?}");
    // Replies still go to alice, not to the attacker.
    core.handle_diverted(now, &udp4(CONTAINER, ALICE, b"for alice"));
    let out = transmits(&mut core);
    assert_eq!(out.iter().map(|t| t.dst).collect::<Vec<_>>(), [SocketAddr::from(([198, 18, 9, 2], 40_001))]);
}

#[test]
fn an_attack_by_a_container_calling_a_teammate_who_opened_nothing_reaches_nobody() {
    let (mut core, mut alice, now) = connected();
    core.handle_diverted(now, &udp4(CONTAINER, ALICE, b"unsolicited"));
    assert!(transmits(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::NotOpenedByTeammate), 1);
    // Once she asks, the answer comes back; another port of hers still gets nothing.
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"ask"));
    core.handle_datagram(now, alice.addr, &sealed);
    core.handle_diverted(now, &udp4(CONTAINER, ALICE, b"answer"));
    assert_eq!(transmits(&mut core).len(), 1);
    let mut other_port = udp4(CONTAINER, ALICE, b"x");
    other_port[22..24].copy_from_slice(&9u16.to_be_bytes());
    core.handle_diverted(now, &other_port);
    assert!(transmits(&mut core).is_empty());
    assert_eq!(drops(&core, "alice", Drop::NotOpenedByTeammate), 2);
}

#[test]
fn an_exposure_taken_back_closes_the_teammates_flows_to_it() {
    let (mut core, mut alice, now) = connected();
    let sealed = alice.seal(&udp4(ALICE, CONTAINER, b"ask"));
    core.handle_datagram(now, alice.addr, &sealed);
    core.set_rules(Rules { containers: Default::default(), ..rules() });
    core.set_rules(rules());
    core.handle_diverted(now, &udp4(CONTAINER, ALICE, b"late answer"));
    assert!(transmits(&mut core).is_empty(), "the flow went with the exposure");
}
