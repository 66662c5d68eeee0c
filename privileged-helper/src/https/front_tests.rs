//! The front on loopback with a real TLS client (rustls) that trusts only the test's CA, and a
//! real TCP backend: the end-to-end test does the same through a real dockerd.

use std::collections::BTreeMap;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::dns::names::{validate, with_ports};

/// A backend that echoes every byte back (what a WebSocket echo does after its upgrade).
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn routes(backend: SocketAddr, closed: SocketAddr) -> Routes {
    let names = BTreeMap::from([("web".to_string(), vec![backend.ip()]), ("down".to_string(), vec![closed.ip()])]);
    let spec = validate(&names, &BTreeMap::new(), "docker").unwrap();
    let ports = BTreeMap::from([("web".to_string(), backend.port()), ("down".to_string(), closed.port())]);
    Routes::new("docker", &with_ports(spec, &ports, &BTreeMap::new(), "docker").unwrap())
}

async fn client(ca: &Ca, front: SocketAddr, name: &str) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der.clone().into()).unwrap();
    let provider = crate::https::crypto();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(front).await?;
    connector.connect(ServerName::try_from(name.to_string()).unwrap(), tcp).await
}

async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A new CA and the front on loopback: `web.docker` → an echo backend, `down.docker` → a
/// closed port.
async fn start() -> (Arc<Ca>, HttpsFront) {
    let ca = Arc::new(Ca::make("docker", SystemTime::now()).unwrap());
    let routes = routes(echo_backend().await, closed_port().await);
    let front = HttpsFront::start("127.0.0.1:0".parse().unwrap(), ca.clone(), routes).await.unwrap();
    (ca, front)
}

async fn read_all(s: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn tls_is_spliced_to_the_container_byte_for_byte() {
    let (ca, front) = start().await;
    let mut s = client(&ca, front.listen, "web.docker").await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), None, "no ALPN asked, none agreed");
    for msg in [&b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..], &[0u8, 1, 2, 255][..]] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
    assert_eq!(front.counters.spliced.load(Ordering::Relaxed), 1);
    front.stop().await;
}

#[tokio::test]
async fn a_name_without_a_container_gets_a_404_page_and_a_dead_port_a_502() {
    let (ca, front) = start().await;
    let mut s = client(&ca, front.listen, "gone.docker").await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: gone.docker\r\n\r\n").await.unwrap();
    let page = read_all(&mut s).await;
    assert!(page.starts_with("HTTP/1.1 404 Not Found\r\n"), "{page}");
    assert!(page.ends_with("no running container is named gone.docker.\n"), "{page}");
    let mut s = client(&ca, front.listen, "down.docker").await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: down.docker\r\n\r\n").await.unwrap();
    let page = read_all(&mut s).await;
    assert!(page.starts_with("HTTP/1.1 502 Bad Gateway\r\n") && page.contains("dev.dockroute.https-port"), "{page}");
    front.stop().await;
}

#[tokio::test]
async fn a_client_asking_for_github_com_gets_no_certificate_at_all() {
    let (ca, front) = start().await;
    let Err(e) = client(&ca, front.listen, "github.com").await else { panic!("the handshake succeeded") };
    assert!(e.to_string().contains("alert") || e.to_string().contains("Alert"), "{e}");
    assert_eq!(front.counters.leaves_issued.load(Ordering::Relaxed), 0);
    front.stop().await;
}

#[tokio::test]
async fn a_flood_of_made_up_names_signs_a_few_leaves_then_refuses() {
    let (ca, front) = start().await;
    let mut refused = 0;
    for i in 0..40 {
        if client(&ca, front.listen, &format!("made-up-{i}.docker")).await.is_err() {
            refused += 1;
        }
    }
    let issued = front.counters.leaves_issued.load(Ordering::Relaxed);
    assert!(issued < 20, "{issued} leaves for 40 made-up names");
    assert!(refused >= 20, "{refused}");
    // A real container's name still gets its leaf.
    assert!(client(&ca, front.listen, "web.docker").await.is_ok());
    front.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_holds_a_place_only_until_its_source_limit() {
    let (ca, front) = start().await;
    // Silent connections from one source, past its limit: the surplus is closed at once.
    let mut silent = Vec::new();
    for _ in 0..PER_SOURCE + 4 {
        silent.push(TcpStream::connect(front.listen).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while front.counters.refused.load(Ordering::Relaxed) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(front.counters.refused.load(Ordering::Relaxed), 4);
    drop(silent);
    // The places come back when they close.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ok = false;
    while !ok && Instant::now() < deadline {
        ok = client(&ca, front.listen, "web.docker").await.is_ok();
    }
    assert!(ok, "served again once the silent ones left");
    front.stop().await;
}
