//! The protocol core alone, no I/O: how many data frames one core frames (host) and checks
//! and unframes (guest) per second, and what a handshake costs. `cargo bench -p
//! dockroute-engine --bench proto`; the numbers are the "thrpt" lines (frames/s).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dockroute_api::Secret;
use dockroute_engine::proto::wire::DATA_HEADER_LEN;
use dockroute_engine::proto::{Guest, GuestConfig, Host, HostConfig, OsEntropy};

const HOST: &str = "198.18.0.1:2511";
const GUEST: &str = "198.18.0.2:40000";
/// Inner packets of the tunnel's MTU, the size bulk traffic has.
const PACKET: usize = 1400;

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn secret() -> Secret {
    Secret::new(vec![7; 32]).expect("secret")
}

fn pair(now: Instant) -> (Host, Guest) {
    let cfg = HostConfig {
        secret: secret(),
        mtu: PACKET as u16,
        keepalive: Duration::from_secs(2),
        host_v4: Ipv4Addr::new(198, 18, 100, 1),
        guest_v4: Ipv4Addr::new(198, 18, 100, 2),
        prefix_v4: 24,
        v6: None,
    };
    let mut h = Host::new(cfg, Box::new(OsEntropy));
    let mut g = Guest::new(GuestConfig::new(secret()), Box::new(OsEntropy), addr(HOST), now);
    handshake(&mut h, &mut g, now);
    assert!(h.session().is_some() && g.session().is_some(), "no session");
    (h, g)
}

fn handshake(h: &mut Host, g: &mut Guest, now: Instant) {
    for _ in 0..10 {
        let mut moved = false;
        while let Some(t) = g.poll_transmit() {
            h.handle_datagram(now, addr(GUEST), &t.bytes);
            moved = true;
        }
        while let Some(t) = h.poll_transmit() {
            g.handle_datagram(now, addr(HOST), &t.bytes);
            moved = true;
        }
        if !moved {
            return;
        }
    }
}

/// An IPv4/UDP packet of `PACKET` bytes (UDP checksum 0 is allowed over IPv4).
fn packet() -> Vec<u8> {
    let payload = PACKET - 28;
    let mut p = vec![0x45, 0, (PACKET >> 8) as u8, PACKET as u8, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&[198, 18, 100, 1, 198, 19, 0, 10]);
    p.extend_from_slice(&[0x30, 0x39, 0x14, 0x51, ((8 + payload) >> 8) as u8, (8 + payload) as u8, 0, 0]);
    p.resize(PACKET, 0xab);
    p
}

fn frames(c: &mut Criterion) {
    let now = Instant::now();
    let inner = packet();
    let mut group = c.benchmark_group("data frames, 1400-byte packets");
    group.throughput(Throughput::Elements(1));

    // Framing is in place (the header goes in front, the packet stays), so one buffer serves
    // every iteration and the time is the core's, not a copy's.
    let (mut h, _) = pair(now);
    let mut buf = vec![0u8; DATA_HEADER_LEN + PACKET];
    buf[DATA_HEADER_LEN..].copy_from_slice(&inner);
    group.bench_function("host encapsulate", |b| b.iter(|| h.encapsulate(now, &mut buf, PACKET).expect("framed")));

    // Each frame may be accepted once (replay window): fresh frames per batch, made untimed.
    const BATCH: usize = 256;
    group.throughput(Throughput::Elements(BATCH as u64));
    let (mut h, mut g) = pair(now);
    group.bench_function("guest check + decapsulate", |b| {
        b.iter_batched_ref(
            || {
                (0..BATCH)
                    .map(|_| {
                        let mut f = vec![0u8; DATA_HEADER_LEN + PACKET];
                        f[DATA_HEADER_LEN..].copy_from_slice(&inner);
                        let (_, n) = h.encapsulate(now, &mut f, PACKET).expect("framed");
                        f.truncate(n);
                        f
                    })
                    .collect::<Vec<_>>()
            },
            |batch| {
                for f in batch.iter() {
                    assert!(g.handle_datagram(now, addr(HOST), f).is_some(), "frame refused");
                }
            },
            // One batch at a time: no pile of inputs built ahead (memory), and the frames are as
            // warm as a fresh receive batch would be.
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn handshakes(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("both ends created, hello to welcome", |b| b.iter(|| pair(Instant::now())));
    group.finish();
}

criterion_group!(benches, frames, handshakes);
criterion_main!(benches);
