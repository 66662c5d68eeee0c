//! Any datagram: the decoder and both protocol ends must neither panic nor lose their session.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use dockroute_engine::proto::{wire, Guest, GuestConfig, Host, HostConfig, OsEntropy, Secret};
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
            keepalive: std::time::Duration::from_secs(2),
            host_v4: "198.18.100.1".parse().unwrap(),
            guest_v4: "198.18.100.2".parse().unwrap(),
            prefix_v4: 24,
            v6: None,
        },
        Box::new(OsEntropy),
    );
    let mut guest = Guest::new(GuestConfig::new(secret), Box::new(OsEntropy), server, now);
    // Establish a session, then throw the input at both ends.
    for _ in 0..4 {
        while let Some(t) = guest.poll_transmit() {
            host.handle_datagram(now, peer, &t.bytes);
        }
        while let Some(t) = host.poll_transmit() {
            guest.handle_datagram(now, server, &t.bytes);
        }
    }
    let id = host.session().map(|s| s.id());
    assert!(id.is_some());
    if let Some(r) = host.handle_datagram(now, peer, data) {
        assert!(r.end <= data.len());
    }
    if let Some(r) = guest.handle_datagram(now, server, data) {
        assert!(r.end <= data.len());
    }
    assert_eq!(host.session().map(|s| s.id()), id);
    assert_eq!(guest.session().map(|s| s.id()), id);
});
