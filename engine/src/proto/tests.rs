//! Host and guest talking to each other through an in-memory wire with a fake clock.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::wire::{self, DATA_HEADER_LEN};
use super::*;
use dockroute_api::Secret;

const HOST: &str = "198.18.0.1:2511";
const GUEST: &str = "198.18.0.2:40000";
const KEEPALIVE: Duration = Duration::from_secs(2);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secret(b: u8) -> Secret {
    Secret::new(vec![b; 32]).unwrap()
}

fn host_cfg(b: u8) -> HostConfig {
    HostConfig {
        secret: secret(b),
        mtu: 1400,
        keepalive: KEEPALIVE,
        host_v4: Ipv4Addr::new(198, 18, 100, 1),
        guest_v4: Ipv4Addr::new(198, 18, 100, 2),
        prefix_v4: 24,
        v6: Some(("2001:2:1::1".parse().unwrap(), "2001:2:1::2".parse().unwrap(), 64)),
    }
}

fn host(b: u8, seed: u64) -> Host {
    Host::new(host_cfg(b), Box::new(TestEntropy(seed)))
}

fn guest(b: u8, seed: u64, now: Instant) -> Guest {
    Guest::new(GuestConfig::new(secret(b)), Box::new(TestEntropy(seed)), addr(HOST), now)
}

/// Delivers every queued control datagram both ways until both are quiet; returns how many.
fn pump(h: &mut Host, g: &mut Guest, now: Instant) -> usize {
    let mut n = 0;
    for _ in 0..20 {
        let mut moved = false;
        while let Some(t) = g.poll_transmit() {
            assert_eq!(t.dst, addr(HOST));
            assert!(t.bytes.len() <= 1472);
            assert!(h.handle_datagram(now, addr(GUEST), &t.bytes).is_none());
            moved = true;
            n += 1;
        }
        while let Some(t) = h.poll_transmit() {
            assert_eq!(t.dst, addr(GUEST));
            assert!(g.handle_datagram(now, addr(HOST), &t.bytes).is_none());
            moved = true;
            n += 1;
        }
        if !moved {
            return n;
        }
    }
    panic!("handshake did not settle");
}

fn events_g(g: &mut Guest) -> Vec<Event> {
    std::iter::from_fn(|| g.poll_event()).collect()
}
fn events_h(h: &mut Host) -> Vec<Event> {
    std::iter::from_fn(|| h.poll_event()).collect()
}

fn connected(now: Instant) -> (Host, Guest) {
    let mut h = host(1, 10);
    let mut g = guest(1, 20, now);
    pump(&mut h, &mut g, now);
    assert!(g.session().is_some() && h.session().is_some());
    events_g(&mut g);
    events_h(&mut h);
    (h, g)
}

/// A minimal valid IPv4/UDP packet (checksum 0 is allowed for UDP over IPv4).
fn ipv4_udp(payload: &[u8]) -> Vec<u8> {
    let total = 28 + payload.len();
    let mut p = vec![0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&[198, 18, 100, 1, 198, 19, 0, 10]);
    p.extend_from_slice(&[0x30, 0x39, 0x23, 0x28, ((8 + payload.len()) >> 8) as u8, (8 + payload.len()) as u8, 0, 0]);
    p.extend_from_slice(payload);
    p
}

fn frame_from_host(h: &mut Host, now: Instant, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + packet.len()].copy_from_slice(packet);
    let (dst, n) = h.encapsulate(now, &mut buf, packet.len()).expect("host has a session");
    assert_eq!(dst, addr(GUEST));
    buf.truncate(n);
    buf
}

fn frame_from_guest(g: &mut Guest, now: Instant, packet: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    buf[DATA_HEADER_LEN..DATA_HEADER_LEN + packet.len()].copy_from_slice(packet);
    let (dst, n) = g.encapsulate(now, &mut buf, packet.len()).expect("guest has a session");
    assert_eq!(dst, addr(HOST));
    buf.truncate(n);
    buf
}

#[test]
fn handshake_establishes_the_same_session_on_both_ends() {
    let now = Instant::now();
    let mut h = host(1, 10);
    let mut g = guest(1, 20, now);
    assert_eq!(pump(&mut h, &mut g, now), 4, "hello, challenge, auth, welcome");
    let (hs, gs) = (h.session().unwrap(), g.session().unwrap());
    assert_eq!(hs.params, gs.params);
    assert_eq!(gs.params.guest_v4, Ipv4Addr::new(198, 18, 100, 2));
    assert_eq!(gs.params.keepalive_ms, 2000);
    assert!(matches!(events_g(&mut g).last(), Some(Event::SessionUp { handshake: Some(_), replaced: false, .. })));
    assert!(matches!(events_h(&mut h).as_slice(), [Event::SessionUp { replaced: false, .. }]));
    assert_eq!((h.stats().handshakes, g.stats().handshakes), (1, 1));
    assert_eq!(h.stats().total_drops() + g.stats().total_drops(), 0);
}

#[test]
fn packets_flow_both_ways_and_replayed_frames_are_dropped() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    let packet = ipv4_udp(b"ping");
    let frame = frame_from_host(&mut h, now, &packet);
    assert_eq!(frame.len(), DATA_HEADER_LEN + packet.len());
    let r = g.handle_datagram(now, addr(HOST), &frame).expect("payload delivered");
    assert_eq!(&frame[r], &packet[..]);
    assert!(g.handle_datagram(now, addr(HOST), &frame).is_none());
    assert_eq!(g.stats().drops(DropReason::Replay), 1);

    let back = frame_from_guest(&mut g, now, &ipv4_udp(b"pong"));
    let r = h.handle_datagram(now, addr(GUEST), &back).expect("payload delivered");
    assert_eq!(&back[r], &ipv4_udp(b"pong")[..]);
    assert_eq!((h.stats().rx_packets, g.stats().rx_packets), (1, 1));
}

#[test]
fn wrong_secret_is_refused_and_never_disturbs_the_live_session() {
    let now = Instant::now();
    let (mut h, mut good) = connected(now);
    let live = h.session().unwrap().id();
    let mut bad = guest(2, 99, now);
    // Run the bad guest's handshake by hand: it gets a challenge, its Auth fails.
    let hello = bad.poll_transmit().unwrap();
    h.handle_datagram(now, addr("198.18.0.3:5000"), &hello.bytes);
    let challenge = h.poll_transmit().unwrap();
    bad.handle_datagram(now, addr(HOST), &challenge.bytes);
    let auth = bad.poll_transmit().unwrap();
    h.handle_datagram(now, addr("198.18.0.3:5000"), &auth.bytes);
    assert!(h.poll_transmit().is_none(), "no reply to a failed auth");
    assert_eq!(h.stats().drops(DropReason::AuthFailed), 1);
    assert_eq!(h.session().unwrap().id(), live);
    assert!(bad.session().is_none());
    // The good guest still gets through.
    let frame = frame_from_guest(&mut good, now, &ipv4_udp(b"x"));
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some());
}

#[test]
fn replayed_handshake_messages_change_nothing() {
    let now = Instant::now();
    let mut h = host(1, 10);
    let mut g = guest(1, 20, now);
    let hello = g.poll_transmit().unwrap();
    h.handle_datagram(now, addr(GUEST), &hello.bytes);
    let challenge = h.poll_transmit().unwrap();
    g.handle_datagram(now, addr(HOST), &challenge.bytes);
    let auth = g.poll_transmit().unwrap();
    h.handle_datagram(now, addr(GUEST), &auth.bytes);
    let welcome = h.poll_transmit().unwrap();
    g.handle_datagram(now, addr(HOST), &welcome.bytes);
    let id = h.session().unwrap().id();
    events_h(&mut h);

    // Replayed Auth: its challenge was consumed.
    h.handle_datagram(now, addr(GUEST), &auth.bytes);
    assert_eq!(h.stats().drops(DropReason::UnexpectedHandshake), 1);
    // Replayed Hello: answered with a fresh challenge (no larger than the Hello), nothing else.
    h.handle_datagram(now, addr(GUEST), &hello.bytes);
    let again = h.poll_transmit().unwrap();
    assert!(again.bytes.len() <= hello.bytes.len());
    assert_eq!(again.bytes, challenge.bytes, "stateless: the same cookie within an epoch");
    // ... whose Auth was used once already.
    h.handle_datagram(now, addr(GUEST), &auth.bytes);
    assert_eq!(h.stats().drops(DropReason::UnexpectedHandshake), 2);
    // Replayed Welcome and Challenge at the guest: no handshake is waiting for them.
    g.handle_datagram(now, addr(HOST), &welcome.bytes);
    g.handle_datagram(now, addr(HOST), &challenge.bytes);
    assert_eq!(g.stats().drops(DropReason::UnexpectedHandshake), 2);
    assert_eq!(h.session().unwrap().id(), id);
    assert_eq!(g.session().unwrap().id(), id);
    assert!(events_h(&mut h).is_empty());
}

#[test]
fn an_auth_for_someone_elses_challenge_from_another_address_fails() {
    let now = Instant::now();
    let mut h = host(1, 10);
    let mut g = guest(1, 20, now);
    let hello = g.poll_transmit().unwrap();
    h.handle_datagram(now, addr(GUEST), &hello.bytes);
    g.handle_datagram(now, addr(HOST), &h.poll_transmit().unwrap().bytes);
    let auth = g.poll_transmit().unwrap();
    h.handle_datagram(now, addr("198.18.0.9:1"), &auth.bytes);
    assert!(h.session().is_none());
    assert_eq!(h.stats().drops(DropReason::UnexpectedHandshake), 1);
}

fn hello_and_challenge(h: &mut Host, g: &mut Guest, now: Instant) -> Vec<u8> {
    h.handle_datagram(now, addr(GUEST), &g.poll_transmit().unwrap().bytes);
    g.handle_datagram(now, addr(HOST), &h.poll_transmit().unwrap().bytes);
    g.poll_transmit().unwrap().bytes
}

#[test]
fn challenges_are_answerable_for_their_lifetime_and_not_after() {
    let now = Instant::now();
    let (mut h, mut g) = (host(1, 10), guest(1, 20, now));
    let auth = hello_and_challenge(&mut h, &mut g, now);
    h.handle_datagram(now + host::CHALLENGE_LIFETIME, addr(GUEST), &auth);
    assert!(h.session().is_none());
    assert_eq!(h.stats().drops(DropReason::UnexpectedHandshake), 1);

    let (mut h, mut g) = (host(1, 10), guest(1, 20, now));
    let auth = hello_and_challenge(&mut h, &mut g, now);
    h.handle_datagram(now + host::CHALLENGE_LIFETIME - Duration::from_millis(1), addr(GUEST), &auth);
    assert!(h.session().is_some(), "still valid 1 ms before the end of its lifetime");
}

#[test]
fn a_hello_flood_cannot_crowd_out_the_real_guests_challenge() {
    let now = Instant::now();
    let (mut h, mut g) = (host(1, 10), guest(1, 20, now));
    let auth = hello_and_challenge(&mut h, &mut g, now);
    for i in 0..10_000u32 {
        let from = SocketAddr::from(([198, 18, 0, 9], (i % 60_000) as u16 + 1024));
        h.handle_datagram(now, from, &wire::encode_hello(&[(i % 251) as u8; 16]));
    }
    while h.poll_transmit().is_some() {}
    h.handle_datagram(now, addr(GUEST), &auth);
    assert!(h.session().is_some(), "the challenge survived 10 000 other Hellos");
}

#[test]
fn a_duplicated_challenge_gets_one_auth_only() {
    let now = Instant::now();
    let (mut h, mut g) = (host(1, 10), guest(1, 20, now));
    let hello = g.poll_transmit().unwrap();
    h.handle_datagram(now, addr(GUEST), &hello.bytes);
    h.handle_datagram(now + Duration::from_secs(3), addr(GUEST), &hello.bytes);
    let (c1, c2) = (h.poll_transmit().unwrap(), h.poll_transmit().unwrap());
    assert_ne!(c1.bytes, c2.bytes, "different epochs, different cookies");
    g.handle_datagram(now, addr(HOST), &c1.bytes);
    g.handle_datagram(now, addr(HOST), &c2.bytes);
    assert!(g.poll_transmit().is_some());
    assert!(g.poll_transmit().is_none(), "no second Auth");
    assert_eq!(g.stats().drops(DropReason::UnexpectedHandshake), 1);
}

#[test]
fn after_a_challenge_the_guest_waits_for_the_welcome_before_a_new_hello() {
    let now = Instant::now();
    let (mut h, mut g) = (host(1, 10), guest(1, 20, now));
    hello_and_challenge(&mut h, &mut g, now);
    assert!(g.poll_timeout().unwrap() >= now + Duration::from_secs(1), "not the 250 ms Hello retry");
}

#[test]
fn truncated_oversized_and_garbage_frames_are_counted_not_delivered() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    let frame = frame_from_guest(&mut g, now, &ipv4_udp(b"hello"));
    // Truncated inside the inner packet: the IP length no longer matches.
    assert!(h.handle_datagram(now, addr(GUEST), &frame[..frame.len() - 1]).is_none());
    assert_eq!(h.stats().drops(DropReason::BadInnerPacket), 1);
    // Truncated inside the header.
    assert!(h.handle_datagram(now, addr(GUEST), &frame[..DATA_HEADER_LEN - 1]).is_none());
    assert_eq!(h.stats().drops(DropReason::Malformed), 1);
    // Larger than the MTU.
    let mut big = vec![0u8; DATA_HEADER_LEN + 1401];
    wire::write_data_header(&mut big, h.session().unwrap().id(), 1000);
    assert!(h.handle_datagram(now, addr(GUEST), &big).is_none());
    assert_eq!(h.stats().drops(DropReason::Oversized), 1);
    // Oversized from the TUN.
    let mut buf = vec![0u8; 2048];
    assert!(g.encapsulate(now, &mut buf, 1401).is_none());
    assert_eq!(g.stats().drops(DropReason::Oversized), 1);
    // The session is intact: the original frame still goes through.
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some());
}

#[test]
fn frames_with_the_wrong_session_id_are_dropped() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    let mut frame = frame_from_guest(&mut g, now, &ipv4_udp(b"x"));
    frame[4] ^= 0xff;
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_none());
    assert_eq!(h.stats().drops(DropReason::WrongSession), 1);
    frame[4] ^= 0xff;
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some(), "the replay window was not moved by the bad frame");
}

#[test]
fn keepalives_flow_when_idle_and_a_silent_peer_is_declared_dead_after_three_intervals() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    // Idle: each end sends a keepalive per interval; receiving them keeps the other alive.
    for i in 1..=5u32 {
        let now = t0 + KEEPALIVE * i;
        assert!(h.poll_timeout().unwrap() <= now && g.poll_timeout().unwrap() <= now);
        h.handle_timeout(now);
        g.handle_timeout(now);
        assert_eq!(pump(&mut h, &mut g, now), 2, "one keepalive each way");
    }
    assert!(events_g(&mut g).is_empty() && events_h(&mut h).is_empty());
    assert_eq!(h.stats().keepalives_sent, 5);

    // The guest goes silent: the host declares it dead at 3 intervals, not before.
    let last = t0 + KEEPALIVE * 5;
    h.handle_timeout(last + KEEPALIVE * 3 - Duration::from_millis(1));
    assert!(!events_h(&mut h).iter().any(|e| matches!(e, Event::PeerDead { .. })));
    h.handle_timeout(last + KEEPALIVE * 3);
    assert!(matches!(events_h(&mut h).as_slice(), [.., Event::PeerDead { .. }]));
    assert!(!h.session().unwrap().alive);
    // A dead peer gets no more keepalives, so the idle host sleeps.
    while h.poll_transmit().is_some() {}
    assert_eq!(h.poll_timeout(), None);
    // It speaks again: alive.
    let frame = frame_from_guest(&mut g, last + KEEPALIVE * 4, &ipv4_udp(b"x"));
    h.handle_datagram(last + KEEPALIVE * 4, addr(GUEST), &frame);
    assert!(matches!(events_h(&mut h).as_slice(), [Event::PeerAlive { .. }]));
}

#[test]
fn a_guest_whose_host_vanished_rehandshakes_with_backoff_starting_under_a_second() {
    let t0 = Instant::now();
    let (_h, mut g) = connected(t0);
    let dead_at = t0 + KEEPALIVE * 3;
    let mut now = t0;
    let mut hellos = Vec::new();
    for _ in 0..200 {
        let Some(next) = g.poll_timeout() else { break };
        if next > t0 + Duration::from_secs(30) {
            break;
        }
        now = next;
        g.handle_timeout(now);
        while let Some(t) = g.poll_transmit() {
            if t.bytes[0] == wire::MsgType::Hello as u8 {
                hellos.push(now);
            }
        }
    }
    assert!(now > dead_at);
    assert_eq!(hellos[0], dead_at, "first retry the moment the peer is declared dead");
    let gaps: Vec<Duration> = hellos.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[0], Duration::from_millis(250));
    assert_eq!(gaps[1], Duration::from_millis(500));
    assert!(gaps.iter().all(|g| *g <= Duration::from_secs(4)), "capped: {gaps:?}");
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "non-decreasing: {gaps:?}");
}

#[test]
fn a_restarted_guest_replaces_the_session_and_the_old_one_is_retired() {
    let now = Instant::now();
    let (mut h, mut old) = connected(now);
    let old_id = h.session().unwrap().id();
    let mut new = guest(1, 77, now);
    pump(&mut h, &mut new, now);
    assert_ne!(h.session().unwrap().id(), old_id);
    assert!(matches!(events_h(&mut h).as_slice(), [Event::SessionUp { replaced: true, .. }]));
    let stale = frame_from_guest(&mut old, now, &ipv4_udp(b"x"));
    assert!(h.handle_datagram(now, addr(GUEST), &stale).is_none());
    assert_eq!(h.stats().drops(DropReason::WrongSession), 1);
}

#[test]
fn a_restarted_host_tells_the_guest_which_rejoins_within_one_keepalive() {
    let t0 = Instant::now();
    let (_old_host, mut g) = connected(t0);
    let mut h = host(1, 555);
    // The guest's next keepalive reaches the new host, which answers with a tagged Stale.
    let now = t0 + KEEPALIVE;
    g.handle_timeout(now);
    let keepalive = g.poll_transmit().unwrap();
    assert!(h.handle_datagram(now, addr(GUEST), &keepalive.bytes).is_none());
    assert_eq!(h.stats().drops(DropReason::NoSession), 1);
    let stale = h.poll_transmit().expect("stale notice");
    g.handle_datagram(now, addr(HOST), &stale.bytes);
    assert!(events_g(&mut g).iter().any(|e| matches!(e, Event::StaleSession { .. })));
    assert!(g.is_handshaking());
    pump(&mut h, &mut g, now);
    assert_eq!(g.session().unwrap().id(), h.session().unwrap().id());
}

#[test]
fn stale_notices_are_rate_limited_per_sender_and_forged_ones_are_ignored() {
    let now = Instant::now();
    let (_h, mut g) = connected(now);
    let mut other = host(9, 1); // a host with another secret
    let frame = frame_from_guest(&mut g, now, &ipv4_udp(b"x"));
    for _ in 0..20 {
        other.handle_datagram(now, addr(GUEST), &frame);
    }
    let notices: Vec<Transmit> = std::iter::from_fn(|| other.poll_transmit()).collect();
    assert_eq!(notices.len(), host::STALE_NOTICES_PER_SEC as usize);
    g.handle_datagram(now, addr(HOST), &notices[0].bytes);
    assert_eq!(g.stats().drops(DropReason::AuthFailed), 1);
    assert!(!g.is_handshaking());
    // Another sender has a budget of its own: a flood from one address does not starve it.
    other.handle_datagram(now, addr("198.18.0.77:1"), &frame);
    assert_eq!(other.poll_transmit().map(|t| t.dst), Some(addr("198.18.0.77:1")));
    // The next second allows more.
    other.handle_datagram(now + Duration::from_secs(1), addr(GUEST), &frame);
    assert!(other.poll_transmit().is_some());
}

#[test]
fn no_stale_notice_while_a_live_session_exists() {
    let now = Instant::now();
    let (mut h, _g) = connected(now);
    let mut second = guest(1, 31, now);
    // A second guest that holds the secret but lost its session must not be invited back
    // (it would take the session over from the first one, again and again).
    let mut frame = vec![0u8; DATA_HEADER_LEN];
    wire::write_data_header(&mut frame, 0x1234, 0);
    h.handle_datagram(now, addr("198.18.0.5:7"), &frame);
    assert!(h.poll_transmit().is_none());
    assert_eq!(h.stats().stale_notices, 0);
    second.poll_transmit();
}

#[test]
fn syn_mss_is_clamped_on_the_way_into_the_tunnel() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    // IPv4 TCP SYN 198.18.100.1 -> 198.19.0.10 with MSS 1460.
    let mut syn = vec![0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 6, 0, 0, 198, 18, 100, 1, 198, 19, 0, 10];
    syn.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    syn.extend_from_slice(&[2, 4, 0x05, 0xb4]);
    let frame = frame_from_host(&mut h, now, &syn);
    let r = g.handle_datagram(now, addr(HOST), &frame).unwrap();
    let mss = u16::from_be_bytes([frame[r.start + 42], frame[r.start + 43]]);
    assert_eq!(mss, 1360);
}

#[test]
fn outer_datagrams_fit_1472_bytes_at_the_default_mtu() {
    let now = Instant::now();
    let (mut h, _g) = connected(now);
    let mut packet = ipv4_udp(&[0u8; 1400 - 28]);
    assert_eq!(packet.len(), 1400);
    let frame = frame_from_host(&mut h, now, &packet);
    assert!(frame.len() <= 1472, "{}", frame.len());
    packet.push(0);
    let mut buf = vec![0u8; 2048];
    assert!(h.encapsulate(now, &mut buf, packet.len()).is_none());
}

proptest::proptest! {
    #[test]
    fn after_handle_timeout_the_next_deadline_is_in_the_future(steps in proptest::collection::vec(0u64..7000, 1..60)) {
        let t0 = Instant::now();
        let (mut h, mut g) = connected(t0);
        let mut now = t0;
        for ms in steps {
            now += Duration::from_millis(ms);
            h.handle_timeout(now);
            g.handle_timeout(now);
            proptest::prop_assert!(h.poll_timeout().is_none_or(|d| d > now));
            proptest::prop_assert!(g.poll_timeout().is_none_or(|d| d > now));
            while h.poll_transmit().is_some() {}
            while g.poll_transmit().is_some() {}
        }
    }

    /// Random payloads behind the live session's real header reach the data path.
    #[test]
    fn random_frames_of_the_live_session_never_panic(
        payloads in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1500), 1..30)
    ) {
        let now = Instant::now();
        let (mut h, mut g) = connected(now);
        let id = h.session().unwrap().id();
        for (i, p) in payloads.iter().enumerate() {
            let mut frame = vec![0u8; DATA_HEADER_LEN];
            wire::write_data_header(&mut frame, id, i as u64 + 100);
            frame.extend_from_slice(p);
            if let Some(r) = h.handle_datagram(now, addr(GUEST), &frame) {
                proptest::prop_assert!(ip::inspect(&frame[r]).is_ok());
            }
            // And the same bytes as a packet from the TUN.
            let mut buf = vec![0u8; DATA_HEADER_LEN + p.len()];
            buf[DATA_HEADER_LEN..].copy_from_slice(p);
            let _ = g.encapsulate(now, &mut buf, p.len());
        }
        proptest::prop_assert_eq!(h.session().unwrap().id(), id);
    }

    #[test]
    fn random_datagrams_never_panic_or_disturb_a_session(
        datagrams in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1600), 0..40)
    ) {
        let now = Instant::now();
        let (mut h, mut g) = connected(now);
        let id = h.session().unwrap().id();
        for d in &datagrams {
            h.handle_datagram(now, addr(GUEST), d);
            g.handle_datagram(now, addr(HOST), d);
        }
        proptest::prop_assert_eq!(h.session().unwrap().id(), id);
        proptest::prop_assert_eq!(g.session().unwrap().id(), id);
        let frame = frame_from_guest(&mut g, now, &ipv4_udp(b"still here"));
        proptest::prop_assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some());
    }
}

#[test]
fn a_new_secret_applies_to_new_handshakes_and_keeps_the_live_session() {
    let now = Instant::now();
    let (mut h, mut old) = connected(now);
    let id = h.session().unwrap().id();
    h.set_secret(secret(3));
    let frame = frame_from_guest(&mut old, now, &ipv4_udp(b"x"));
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some(), "live session unaffected");
    let mut stale_secret = guest(1, 5, now);
    pump(&mut h, &mut stale_secret, now);
    assert!(stale_secret.session().is_none());
    assert_eq!(h.session().unwrap().id(), id);
    let mut fresh = guest(3, 6, now);
    pump(&mut h, &mut fresh, now);
    assert_eq!(fresh.session().unwrap().id(), h.session().unwrap().id());
    assert_ne!(h.session().unwrap().id(), id);
}

/// The guest moves to another path (UDP ⇄ the TCP relay): a new handshake there at once, from
/// the new address; the host's session follows the verified Auth; late messages of the old
/// path's handshake are dropped.
#[test]
fn switching_path_handshakes_on_the_new_path_and_the_session_follows() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    let old = h.session().unwrap().id();
    let relay = addr("127.0.0.1:45000");
    let t1 = t0 + Duration::from_millis(10);
    g.switch_path(t1, relay);
    assert!(g.is_handshaking());
    let hello = g.poll_transmit().unwrap();
    assert_eq!(hello.dst, relay, "the Hello goes to the new path at once");
    assert_eq!(g.poll_transmit(), None);
    // The host sees the relay's address as the sender, and answers it.
    let from_relay = addr("198.18.0.1:45001");
    assert!(h.handle_datagram(t1, from_relay, &hello.bytes).is_none());
    let challenge = h.poll_transmit().unwrap();
    assert_eq!(challenge.dst, from_relay);
    assert!(g.handle_datagram(t1, relay, &challenge.bytes).is_none());
    let auth = g.poll_transmit().unwrap();
    assert_eq!(auth.dst, relay);
    assert!(h.handle_datagram(t1, from_relay, &auth.bytes).is_none());
    let welcome = h.poll_transmit().unwrap();
    assert!(g.handle_datagram(t1, relay, &welcome.bytes).is_none());
    let (hs, gs) = (h.session().unwrap(), g.session().unwrap());
    assert_ne!(hs.id(), old);
    assert_eq!((hs.id(), hs.peer, gs.peer), (gs.id(), from_relay, relay));
    assert!(!g.is_handshaking());
    // A second Welcome (a late duplicate on the old path) is dropped.
    let before = g.stats().drops(DropReason::UnexpectedHandshake);
    assert!(g.handle_datagram(t1, addr(HOST), &welcome.bytes).is_none());
    assert_eq!(g.stats().drops(DropReason::UnexpectedHandshake), before + 1);
    assert_eq!(g.session().unwrap().id(), hs.id());
}

/// A path broken one way (the VM's packets stop reaching the host, the host's still reach the
/// VM): the guest keeps hearing the host, so only the host can tell. When it declares the guest
/// dead it sends one tagged Stale, and the guest handshakes again (and its path policy gets to
/// try the other path).
#[test]
fn a_host_that_stops_hearing_its_guest_tells_it_once() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    let id = h.session().unwrap().id();
    // The guest's frames are lost from now on; the host's keepalives still arrive.
    let dead_at = t0 + KEEPALIVE * 3;
    h.handle_timeout(dead_at);
    assert!(matches!(events_h(&mut h).as_slice(), [Event::PeerDead { .. }]));
    let notice = h.poll_transmit().expect("a stale notice to the silent guest");
    assert_eq!((notice.dst, notice.bytes.len()), (addr(GUEST), wire::STALE_LEN));
    assert_eq!(h.poll_transmit(), None, "once");
    assert_eq!(h.stats().stale_notices, 1);
    h.handle_timeout(dead_at + KEEPALIVE * 10);
    assert_eq!(h.poll_transmit(), None, "not again while it stays silent");
    assert!(g.handle_datagram(dead_at, addr(HOST), &notice.bytes).is_none());
    assert!(events_g(&mut g).contains(&Event::StaleSession { session_id: id }));
    assert!(g.is_handshaking(), "the guest starts over");
}

/// A frame of the live session with counter `counter` and `packet` as payload, as anyone who
/// learnt the session id can write it (data frames carry no MAC).
fn forged_frame(id: u64, counter: u64, packet: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; DATA_HEADER_LEN];
    wire::write_data_header(&mut frame, id, counter);
    frame.extend_from_slice(packet);
    frame
}

#[test]
fn a_local_process_that_knows_the_session_id_cannot_inject_from_another_port() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    let id = h.session().unwrap().id();
    // Same host as the guest's path, another port; and another host altogether.
    for from in [addr("198.18.0.2:40001"), addr("127.0.0.1:40000"), addr("198.18.0.66:5")] {
        let forged = forged_frame(id, 100, &ipv4_udp(b"injected"));
        assert!(h.handle_datagram(now, from, &forged).is_none(), "from {from}");
        assert_eq!(h.poll_transmit(), None, "a rejected frame is not answered");
    }
    assert_eq!(h.stats().drops(DropReason::WrongPeer), 3);
    assert_eq!(h.stats().rx_packets, 0);
    // The forged frames moved nothing: the real guest's frames (counters 0, 1, …) flow.
    let frame = frame_from_guest(&mut g, now, &ipv4_udp(b"real"));
    assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some());
    // The same forged bytes from the peer's own address would be taken: the address is what
    // tells them apart (the e2e test sends from that address too, with a raw socket).
    assert!(h.handle_datagram(now, addr(GUEST), &forged_frame(id, 100, &ipv4_udp(b"x"))).is_some());
}

#[test]
fn the_guest_takes_frames_of_its_session_only_from_where_the_welcome_came() {
    let now = Instant::now();
    let (mut h, mut g) = connected(now);
    let id = g.session().unwrap().id();
    let forged = forged_frame(id, 7, &ipv4_udp(b"injected into the vm"));
    assert!(g.handle_datagram(now, addr("198.18.0.1:2512"), &forged).is_none());
    assert!(g.handle_datagram(now, addr("198.18.0.9:2511"), &forged).is_none());
    assert_eq!(g.stats().drops(DropReason::WrongPeer), 2);
    let frame = frame_from_host(&mut h, now, &ipv4_udp(b"real"));
    assert!(g.handle_datagram(now, addr(HOST), &frame).is_some());
}

#[test]
fn a_forged_counter_of_u64_max_from_the_peers_address_never_stalls_the_guests_frames() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    let id = h.session().unwrap().id();
    let first = frame_from_guest(&mut g, t0, &ipv4_udp(b"before"));
    assert!(h.handle_datagram(t0, addr(GUEST), &first).is_some());
    // The attack of the issue: one frame with counter u64::MAX (and a keepalive, no payload).
    for forged in [forged_frame(id, u64::MAX, &ipv4_udp(b"x")), forged_frame(id, u64::MAX, &[])] {
        assert!(h.handle_datagram(t0, addr(GUEST), &forged).is_none());
    }
    assert_eq!(h.stats().drops(DropReason::CounterJump), 2);
    // Every later real frame, for a minute of keepalive-paced traffic, is delivered.
    for i in 1..=30u32 {
        let now = t0 + KEEPALIVE * i;
        let frame = frame_from_guest(&mut g, now, &ipv4_udp(b"after"));
        assert!(h.handle_datagram(now, addr(GUEST), &frame).is_some(), "frame {i}");
        h.handle_timeout(now);
    }
    assert_eq!(h.stats().rx_packets, 31);
    assert_eq!(h.stats().drops(DropReason::Replay), 0);
    assert!(h.session().unwrap().alive && events_h(&mut h).is_empty(), "never declared dead, no new session");
}

#[test]
fn a_forged_jump_within_reach_is_kept_apart_and_an_idle_guests_keepalives_keep_flowing() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    let id = h.session().unwrap().id();
    // A forger jumps as far as one frame may, then keeps its counters going every second.
    let forged_base = replay::MAX_AHEAD - 1;
    for s in 0..40u64 {
        let now = t0 + Duration::from_secs(s);
        h.handle_datagram(now, addr(GUEST), &forged_frame(id, forged_base + s, &[]));
        // The real guest only sends its keepalives.
        g.handle_timeout(now);
        while let Some(t) = g.poll_transmit() {
            let before = h.stats().drops(DropReason::Replay);
            h.handle_datagram(now, addr(GUEST), &t.bytes);
            assert_eq!(h.stats().drops(DropReason::Replay), before, "the real keepalive at {s} s was taken");
        }
        h.handle_timeout(now);
        while let Some(t) = h.poll_transmit() {
            g.handle_datagram(now, addr(HOST), &t.bytes);
        }
    }
    assert!(h.session().unwrap().alive, "the real guest was never silent to the host");
    let frame = frame_from_guest(&mut g, t0 + Duration::from_secs(40), &ipv4_udp(b"still here"));
    assert!(h.handle_datagram(t0 + Duration::from_secs(40), addr(GUEST), &frame).is_some());
}

/// A legitimate address change (Docker's forwarder picks a new source port, the guest moves to
/// the TCP relay): frames from the new address are dropped until the guest, hearing nothing,
/// handshakes again from there; the verified Auth moves the session.
#[test]
fn a_guest_whose_address_changes_is_followed_only_after_a_verified_handshake_from_there() {
    let t0 = Instant::now();
    let (mut h, mut g) = connected(t0);
    let moved = addr("198.18.0.2:40999");
    let frame = frame_from_guest(&mut g, t0, &ipv4_udp(b"x"));
    assert!(h.handle_datagram(t0, moved, &frame).is_none());
    assert_eq!(h.stats().drops(DropReason::WrongPeer), 1);
    // The host's frames go to the old address and are lost; the guest declares it dead.
    let dead_at = t0 + KEEPALIVE * 3;
    g.handle_timeout(dead_at);
    assert!(g.is_handshaking());
    let hello = g.poll_transmit().into_iter().find(|t| t.bytes[0] == wire::MsgType::Hello as u8).unwrap();
    h.handle_datagram(dead_at, moved, &hello.bytes);
    let challenge = h.poll_transmit().unwrap();
    assert_eq!(challenge.dst, moved);
    g.handle_datagram(dead_at, addr(HOST), &challenge.bytes);
    let auth = g.poll_transmit().unwrap();
    h.handle_datagram(dead_at, moved, &auth.bytes);
    let welcome = h.poll_transmit().unwrap();
    g.handle_datagram(dead_at, addr(HOST), &welcome.bytes);
    assert_eq!(h.session().unwrap().peer, moved);
    let frame = frame_from_guest(&mut g, dead_at, &ipv4_udp(b"from the new port"));
    assert!(h.handle_datagram(dead_at, moved, &frame).is_some());
    assert!(h.handle_datagram(dead_at, addr(GUEST), &forged_frame(h.session().unwrap().id(), 9, &[])).is_none());
    assert_eq!(h.stats().drops(DropReason::WrongPeer), 2, "the old address is now the stranger");
}

#[test]
fn the_session_id_is_shown_only_as_a_fingerprint_in_events_and_their_debug_output() {
    let now = Instant::now();
    let mut h = host(1, 10);
    let mut g = guest(1, 20, now);
    pump(&mut h, &mut g, now);
    let id = h.session().unwrap().id();
    let fp = h.session().unwrap().fingerprint().to_string();
    assert_eq!(fp.len(), 8);
    assert!(fp.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(fp, Fingerprint(id ^ 1).to_string(), "sessions tell apart");
    let mut shown: Vec<String> = events_h(&mut h).iter().chain(&events_g(&mut g)).map(|e| format!("{e:?}")).collect();
    shown.push(format!("{:?}", h.session().unwrap()));
    shown.push(format!("{:?}", Event::PeerDead { session_id: id, silent_for: KEEPALIVE }));
    for text in &shown {
        for form in [format!("{id:016x}"), format!("{id:x}"), format!("{id:X}"), id.to_string()] {
            assert!(!text.contains(&form), "{form} in {text}");
        }
    }
    assert!(shown[0].contains(&fp), "{}", shown[0]);
}
