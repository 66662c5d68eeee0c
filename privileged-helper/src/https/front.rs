//! The HTTPS front (the tokio driver): TLS on port 443 of the link address; the SNI name picks
//! the leaf (`leaf`, signed by `ca` on demand) and the container (`route`); then the TLS
//! stream is spliced to the container's TCP socket byte for byte (HTTP/1.1, and WebSocket with
//! it: the upgrade is just more bytes). A name without a container, or a container that does
//! not answer, gets a short HTTP error page over TLS and the connection closes.
//!
//! Anything that reaches the link address can connect: each source holds a bounded number of
//! connections (`limits`), a handshake has `HANDSHAKE_TIME`, names outside our zones get no
//! certificate at all (the handshake fails: the CA could not sign them anyway), and leaves for
//! names no container has are signed at a bounded rate.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::ca::Ca;
use super::leaf::{LeafCache, Need, LEAF_LIFETIME, MAX_LEAVES};
use super::limits::{Budget, Connections};
use super::route::{Routes, Target};

pub const PORT: u16 = 443;
/// From accept to a finished handshake: a client that stalls loses its place.
pub const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Connecting to the container: it is one hop away through the tunnel.
pub const CONNECT_TIME: Duration = Duration::from_secs(5);
/// Reading the request before an error page is sent.
const ERROR_READ_TIME: Duration = Duration::from_secs(5);
/// Connections per source and in all (a browser opens six per name; a page with a few names
/// and WebSockets stays well below).
pub const PER_SOURCE: usize = 256;
pub const TOTAL: usize = 2048;
/// Leaves for names no container has: 8 at once, then 2 a second.
const UNKNOWN_BURST: u32 = 8;
const UNKNOWN_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub handshake_failed: AtomicU64,
    pub spliced: AtomicU64,
    pub error_pages: AtomicU64,
    pub leaves_issued: AtomicU64,
}

/// Leaves on demand, for rustls (called during each handshake, with the client's SNI).
struct Leaves {
    ca: Arc<Ca>,
    cache: Mutex<LeafCache<Arc<CertifiedKey>>>,
    unknown_budget: Mutex<Budget>,
    routes: Arc<RwLock<Arc<Routes>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leaves(CA {})", self.ca.id)
    }
}

impl Leaves {
    fn leaf(&self, sni: &str, now: SystemTime) -> Option<Arc<CertifiedKey>> {
        let name = super::ca::issuable(sni, self.ca.suffix()).ok()?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Need::Serve(leaf) = cache.need(&name, now) {
            return Some(leaf.clone());
        }
        let known = matches!(current(&self.routes).target(&name), Target::Container(_));
        if !known && !self.unknown_budget.lock().unwrap_or_else(|e| e.into_inner()).take(Instant::now()) {
            tracing::debug!("https: no leaf for {name} now (names without a container: rate-limited)");
            return None;
        }
        let (cert, key) = match self.ca.issue(&name, now, LEAF_LIFETIME) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("https: {e}");
                return None;
            }
        };
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
        let signer = rustls::crypto::ring::sign::any_supported_type(&key).ok()?;
        let chain = vec![cert.into(), self.ca.cert_der.clone().into()];
        let leaf = Arc::new(CertifiedKey::new(chain, signer));
        cache.insert(&name, leaf.clone(), now, (now + LEAF_LIFETIME).min(self.ca.not_after));
        self.counters.leaves_issued.fetch_add(1, Ordering::Relaxed);
        Some(leaf)
    }
}

impl ResolvesServerCert for Leaves {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (an IP address typed in): no name to serve, so no certificate.
        self.leaf(hello.server_name()?, SystemTime::now())
    }
}

fn current(routes: &RwLock<Arc<Routes>>) -> Arc<Routes> {
    routes.read().unwrap_or_else(|e| e.into_inner()).clone()
}

pub struct HttpsFront {
    pub listen: SocketAddr,
    routes: Arc<RwLock<Arc<Routes>>>,
    pub counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl HttpsFront {
    pub async fn start(listen: SocketAddr, ca: Arc<Ca>, routes: Routes) -> io::Result<HttpsFront> {
        let listener = TcpListener::bind(listen).await?;
        let listen = listener.local_addr()?;
        let routes = Arc::new(RwLock::new(Arc::new(routes)));
        let counters = Arc::new(Counters::default());
        let leaves = Arc::new(Leaves {
            ca,
            cache: Mutex::new(LeafCache::new(MAX_LEAVES)),
            unknown_budget: Mutex::new(Budget::new(UNKNOWN_BURST, UNKNOWN_EVERY, Instant::now())),
            routes: routes.clone(),
            counters: counters.clone(),
        });
        let provider = crate::https::crypto();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(leaves);
        // The bytes are spliced to an HTTP/1.1 server: never agree to h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(accept_loop(listener, acceptor, routes.clone(), counters.clone()));
        Ok(HttpsFront { listen, routes, counters, task })
    }

    /// Serves `routes` from the next connection on.
    pub fn set_routes(&self, routes: Routes) {
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(routes);
    }

    /// Closes the listener and every connection before it returns.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    routes: Arc<RwLock<Arc<Routes>>>,
    counters: Arc<Counters>,
) {
    let conns = Arc::new(Mutex::new(Connections::new(PER_SOURCE, TOTAL)));
    // Aborting this task drops the set, which aborts every connection.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("https: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if !conns.lock().unwrap_or_else(|e| e.into_inner()).admit(peer.ip()) {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let release = Release { conns: conns.clone(), peer: peer.ip() };
        let (acceptor, routes, counters) = (acceptor.clone(), routes.clone(), counters.clone());
        connections.spawn(async move {
            serve(stream, acceptor, &routes, &counters).await;
            drop(release);
        });
    }
}

/// Gives the source's place back however the connection ends (aborted too).
struct Release {
    conns: Arc<Mutex<Connections>>,
    peer: IpAddr,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).release(self.peer);
    }
}

async fn serve(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    routes: &RwLock<Arc<Routes>>,
    counters: &Counters,
) {
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("https: handshake: {e}");
            counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(_) => {
            counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let Some(name) = tls.get_ref().1.server_name().map(dockroute_api::dns_name::normalise) else { return };
    let page = match current(routes).target(&name) {
        Target::Container(addr) => match tokio::time::timeout(CONNECT_TIME, TcpStream::connect(addr)).await {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                counters.spliced.fetch_add(1, Ordering::Relaxed);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                return;
            }
            Ok(Err(e)) => ErrorPage::unreachable(&name, addr, &e.to_string()),
            Err(_) => ErrorPage::unreachable(&name, addr, "no answer within 5 s"),
        },
        Target::NoContainer | Target::NotOurs => ErrorPage::no_container(&name),
    };
    counters.error_pages.fetch_add(1, Ordering::Relaxed);
    // Read the request head first, so the client is not cut off mid-send (it would then see a
    // reset instead of the page).
    let mut head = Vec::new();
    let _ = tokio::time::timeout(ERROR_READ_TIME, async {
        let mut buf = [0u8; 2048];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(ERROR_READ_TIME, async {
        tls.write_all(&page.render()).await?;
        tls.shutdown().await
    })
    .await;
}

/// The page a name without a reachable container gets (plain text: it is read in a browser,
/// by curl, in a log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPage {
    pub status: u16,
    pub reason: &'static str,
    pub text: String,
}

impl ErrorPage {
    pub fn no_container(name: &str) -> ErrorPage {
        ErrorPage {
            status: 404,
            reason: "Not Found",
            text: format!("Dockroute: no running container is named {name}.\n"),
        }
    }

    pub fn unreachable(name: &str, addr: SocketAddr, why: &str) -> ErrorPage {
        ErrorPage {
            status: 502,
            reason: "Bad Gateway",
            text: format!(
                "Dockroute: {name} is container {addr}, which did not accept the connection ({why}).\n\
                 Is the web server listening on port {}? Set the label dev.dockroute.https-port to its port.\n",
                addr.port()
            ),
        }
    }

    pub fn render(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
            self.status,
            self.reason,
            self.text.len(),
            self.text
        )
        .into_bytes()
    }
}

#[cfg(test)]
#[path = "front_tests.rs"]
mod tests;
