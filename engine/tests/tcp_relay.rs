//! The TCP path's two relays on loopback, with plain UDP sockets standing in for the cores (no
//! TUN, no namespaces, no root): datagrams cross both ways unchanged, the helper knows the
//! relay's address as a TCP peer, and a connection that carries no Welcome is closed at its
//! deadline while one that does stays.

use std::net::SocketAddr;
use std::time::Duration;

use dockroute_engine::proto::wire::MsgType;
use dockroute_engine::transport::listener::Limits;
use dockroute_engine::transport::{Connector, TcpListener};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

async fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 65535];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await.unwrap().unwrap();
    (buf[..n].to_vec(), from)
}

/// A free TCP+UDP port on loopback (the listener binds TCP on the core's UDP address).
async fn core_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").await.unwrap()
}

#[tokio::test]
async fn datagrams_cross_both_relays_unchanged_and_the_helper_knows_the_tcp_peer() {
    let host_core = core_socket().await;
    let server = host_core.local_addr().unwrap();
    let limits = Limits { handshake_deadline: Duration::from_secs(5), ..Limits::default() };
    let listener = TcpListener::start(server, server, limits).await.unwrap();
    let guest_core = core_socket().await;
    let connector = Connector::start(server, guest_core.local_addr().unwrap()).await.unwrap();
    let relay = connector.local_addr();

    // Guest → host: what the guest core sends to the relay arrives at the host core.
    let hello = [vec![MsgType::Hello as u8, 1, 0, 0], vec![7; 60]].concat();
    guest_core.send_to(&hello, relay).await.unwrap();
    let (got, host_peer) = recv(&host_core).await;
    assert_eq!(got, hello);
    assert!(listener.is_tcp(host_peer), "the host core sees the listener's relay address");
    assert!(!listener.is_tcp(guest_core.local_addr().unwrap()));

    // Host → guest, a burst of different sizes (a batch in one TCP write), in order.
    let sizes = [36, 108, 1420, 20, 9020];
    for (i, n) in sizes.iter().enumerate() {
        host_core.send_to(&vec![i as u8; *n], host_peer).await.unwrap();
    }
    for (i, n) in sizes.iter().enumerate() {
        let (got, from) = recv(&guest_core).await;
        assert_eq!((got.len(), got[0], from), (*n, i as u8, relay), "datagram {i}");
    }
    assert_eq!(listener.relays(), 1);
    drop(connector);
    tokio::time::timeout(Duration::from_secs(5), async {
        while listener.relays() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the relay goes when the guest closes its connection");
}

#[tokio::test]
async fn a_connection_without_a_welcome_is_closed_at_its_deadline_one_with_stays() {
    let host_core = core_socket().await;
    let server = host_core.local_addr().unwrap();
    let limits = Limits { handshake_deadline: Duration::from_millis(300), ..Limits::default() };
    let listener = TcpListener::start(server, server, limits).await.unwrap();

    // Garbage frames only: never authenticated.
    let mut idle = tokio::net::TcpStream::connect(server).await.unwrap();
    idle.write_all(&[0, 3, 9, 9, 9]).await.unwrap();
    let (_, idle_peer) = recv(&host_core).await;
    assert!(listener.is_tcp(idle_peer));

    // A guest that the host core answers with a Welcome.
    let (_guest_core, guest_peer, _connector) = welcomed_guest(&host_core).await;

    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!listener.is_tcp(idle_peer), "closed at the deadline");
    assert!(listener.is_tcp(guest_peer), "the authenticated connection stays");
    assert_eq!(listener.stats().expired.load(std::sync::atomic::Ordering::Relaxed), 1);
    // The closed one's stream ends.
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read(&mut idle, &mut buf)).await;
    assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
}

/// Opens `n` TCP connections to `server` from `source` (port 0) that never say anything, and
/// keeps them open.
async fn flood(server: SocketAddr, source: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut open = Vec::new();
    for _ in 0..n {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        open.push(sock.connect(server).await.unwrap());
    }
    open
}

/// A guest connecting to the listener in front of `host_core`, which answers its Hello with a
/// Welcome: (guest core, the host's view of the guest, the connector).
async fn welcomed_guest(host_core: &UdpSocket) -> (UdpSocket, SocketAddr, Connector) {
    let server = host_core.local_addr().unwrap();
    let guest_core = core_socket().await;
    let connector = Connector::start(server, guest_core.local_addr().unwrap()).await.unwrap();
    guest_core.send_to(&[1, 1, 0, 0], connector.local_addr()).await.unwrap();
    let (_, guest_peer) = recv(host_core).await;
    let welcome = [vec![MsgType::Welcome as u8, 1, 0, 0], vec![0; 104]].concat();
    host_core.send_to(&welcome, guest_peer).await.unwrap();
    assert_eq!(recv(&guest_core).await.0, welcome);
    (guest_core, guest_peer, connector)
}

/// An authenticated guest over a real listener: (host core, guest core, the host's view of the
/// guest, the listener, the connector).
async fn authenticated_guest(limits: Limits) -> (UdpSocket, UdpSocket, SocketAddr, TcpListener, Connector) {
    let host_core = core_socket().await;
    let server = host_core.local_addr().unwrap();
    let listener = TcpListener::start(server, server, limits).await.unwrap();
    let (guest_core, guest_peer, connector) = welcomed_guest(&host_core).await;
    (host_core, guest_core, guest_peer, listener, connector)
}

#[tokio::test]
async fn a_flood_of_unauthenticated_connections_from_the_guests_own_address_never_evicts_its_session() {
    let (host_core, guest_core, guest_peer, listener, connector) = authenticated_guest(Limits::default()).await;
    let server = host_core.local_addr().unwrap();
    // Docker Desktop's guest and a local process both connect from 127.0.0.1.
    let _open = flood(server, "127.0.0.1", 300).await;
    let evicted = || listener.stats().evicted.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(5), async {
        while evicted() < 290 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the flood made room among itself: {} evicted", evicted()));
    assert!(listener.is_tcp(guest_peer), "the authenticated connection is still relayed");
    assert!(listener.relays() <= Limits::default().per_source, "one source: {} relays", listener.relays());
    // Both directions still cross.
    host_core.send_to(&[5, 1, 0, 0, 42], guest_peer).await.unwrap();
    assert_eq!(recv(&guest_core).await.0, [5, 1, 0, 0, 42]);
    guest_core.send_to(&[5, 1, 0, 0, 43], connector.local_addr()).await.unwrap();
    assert_eq!(recv(&host_core).await, (vec![5, 1, 0, 0, 43], guest_peer));
}

#[tokio::test]
async fn a_guest_connecting_during_a_flood_from_another_address_gets_in_at_once() {
    let host_core = core_socket().await;
    let server = host_core.local_addr().unwrap();
    let listener = TcpListener::start(server, server, Limits::default()).await.unwrap();
    let _open = flood(server, "127.0.0.2", 200).await;
    // The flood holds its 4 places and no more; the guest from 127.0.0.1 takes a free one.
    let guest_core = core_socket().await;
    let connector = Connector::start(server, guest_core.local_addr().unwrap()).await.unwrap();
    let hello = [vec![MsgType::Hello as u8, 1, 0, 0], vec![7; 60]].concat();
    guest_core.send_to(&hello, connector.local_addr()).await.unwrap();
    let (got, guest_peer) = recv(&host_core).await;
    assert_eq!(got, hello);
    assert!(listener.is_tcp(guest_peer));
    let more = flood(server, "127.0.0.2", 200).await;
    host_core.send_to(&[2, 1, 0, 0], guest_peer).await.unwrap();
    assert_eq!(recv(&guest_core).await.0, [2, 1, 0, 0], "unauthenticated still, yet never the one evicted");
    assert!(listener.relays() <= Limits::default().per_source + 1, "{} relays", listener.relays());
    drop(more);
}
