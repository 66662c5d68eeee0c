//! Any datagram, at both protocol ends, with and without the live session's header spliced in
//! (so the data path is reached, not just the decoder), and as a packet from the TUN. Nothing
//! may panic and the session must survive. Entropy is fixed so crashes reproduce.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use dockroute_engine::proto::wire::{self, DATA_HEADER_LEN};
use dockroute_api::Secret;
use dockroute_engine::proto::{Guest, GuestConfig, Host, HostConfig, TestEntropy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode(data);
    let now = Instant::now();
    let secret = Secret::new(vec![7; 32]).unwrap();
    let peer: SocketAddr = "198.18.0.2:4000".parse().unwrap();
    let server: SocketAddr = "198.18.0.1:2511".parse().unwrap();
    let mut host = Host::new(
        HostConfig {
            secret: secret.clone(),
            mtu: 1400,
            keepalive: Duration::from_secs(2),
            host_v4: "198.18.100.1".parse().unwrap(),
            guest_v4: "198.18.100.2".parse().unwrap(),
            prefix_v4: 24,
            v6: Some(("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap(), 64)),
        },
        Box::new(TestEntropy(1)),
    );
    let mut guest = Guest::new(GuestConfig::new(secret), Box::new(TestEntropy(2)), server, now);
    for _ in 0..4 {
        while let Some(t) = guest.poll_transmit() {
            host.handle_datagram(now, peer, &t.bytes);
        }
        while let Some(t) = host.poll_transmit() {
            guest.handle_datagram(now, server, &t.bytes);
        }
    }
    let id = host.session().map(|s| s.id()).expect("handshake completes");

    let mut framed = vec![0u8; DATA_HEADER_LEN];
    wire::write_data_header(&mut framed, id, u64::from(data.first().copied().unwrap_or(0)));
    framed.extend_from_slice(data);
    for d in [data, &framed[..]] {
        if let Some(r) = host.handle_datagram(now, peer, d) {
            assert!(r.end <= d.len());
        }
        if let Some(r) = guest.handle_datagram(now, server, d) {
            assert!(r.end <= d.len());
        }
    }
    // The same bytes as an IP packet read from the TUN (the MSS clamp parses it).
    let mut buf = vec![0u8; DATA_HEADER_LEN + data.len()];
    buf[DATA_HEADER_LEN..].copy_from_slice(data);
    let _ = host.encapsulate(now, &mut buf, data.len());
    let _ = guest.encapsulate(now, &mut buf, data.len());
    assert_eq!(host.session().map(|s| s.id()), Some(id));
    assert_eq!(guest.session().map(|s| s.id()), Some(id));
});
