//! The helper's end of the TCP path: listens on the same address and port as the UDP socket,
//! and relays each connection through a UDP socket of its own to the host core, which sees
//! one more peer address. Connections are bounded and must carry a verified handshake (the
//! core's Welcome) within `Limits::handshake_deadline`; authentication stays the core's: nothing is
//! answered that the UDP path would not answer.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::admission::{Admission, Admit};
use super::relay;
use crate::proto::wire::MsgType;

/// How many connections, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (one guest needs one; the rest is slack for reconnects).
    pub max_connections: usize,
    /// A connection that has not carried a Welcome by then is closed.
    pub handshake_deadline: Duration,
    /// An authenticated connection silent this long is closed (keepalives come every ≤ 10 s).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16,
            handshake_deadline: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Counters for logs and tests.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub evicted: AtomicU64,
    pub expired: AtomicU64,
    pub oversized: AtomicU64,
}

/// The running listener; dropping it closes the listener and every connection.
pub struct TcpListener {
    /// The relays' UDP addresses: a session whose peer is one of them runs over TCP.
    relays: Arc<Mutex<HashSet<SocketAddr>>>,
    stats: Arc<ListenerStats>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpListener {
    /// Listens on `listen` (TCP) and relays to the core's UDP socket at `core`.
    pub async fn start(listen: SocketAddr, core: SocketAddr, limits: Limits) -> io::Result<TcpListener> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let relays = Arc::new(Mutex::new(HashSet::new()));
        let stats = Arc::new(ListenerStats::default());
        let task = tokio::spawn(accept_loop(listener, super::reachable(core), limits, relays.clone(), stats.clone()));
        Ok(TcpListener { relays, stats, task })
    }

    /// How many connections are being relayed now.
    pub fn relays(&self) -> usize {
        self.relays.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether `peer` (an address the core saw) is one of our TCP relays.
    pub fn is_tcp(&self, peer: SocketAddr) -> bool {
        self.relays.lock().is_ok_and(|r| r.contains(&peer))
    }

    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a connection task reports back to the accept loop.
enum ConnNews {
    Authenticated(u64),
    Closed(u64),
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    core: SocketAddr,
    limits: Limits,
    relays: Arc<Mutex<HashSet<SocketAddr>>>,
    stats: Arc<ListenerStats>,
) {
    let mut admission = Admission::new(limits.max_connections, limits.handshake_deadline);
    // Dropped with this task: every connection goes with the listener.
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut handles: std::collections::HashMap<u64, tokio::task::AbortHandle> = std::collections::HashMap::new();
    let (news_tx, mut news) = tokio::sync::mpsc::unbounded_channel();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, from) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, mostly: wait instead of spinning.
                        tracing::debug!("tcp accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let id = match admission.admit(Instant::now()) {
                    Admit::Accept { id } => id,
                    Admit::AcceptEvicting { id, evict } => {
                        stats.evicted.fetch_add(1, Ordering::Relaxed);
                        if let Some(h) = handles.remove(&evict) {
                            h.abort();
                        }
                        id
                    }
                    Admit::Refuse => {
                        stats.refused.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%from, id, "tcp connection");
                let deadline = admission.deadline_of(id).unwrap_or_else(Instant::now);
                let conn = Conn {
                    id,
                    stream,
                    core,
                    idle_timeout: limits.idle_timeout,
                    relays: relays.clone(),
                    stats: stats.clone(),
                    news: news_tx.clone(),
                };
                handles.insert(id, conns.spawn(conn.serve(deadline)));
            }
            Some(n) = news.recv() => match n {
                ConnNews::Authenticated(id) => admission.authenticated(id),
                ConnNews::Closed(id) => {
                    admission.closed(id);
                    handles.remove(&id);
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

struct Conn {
    id: u64,
    stream: TcpStream,
    core: SocketAddr,
    idle_timeout: Duration,
    relays: Arc<Mutex<HashSet<SocketAddr>>>,
    stats: Arc<ListenerStats>,
    news: tokio::sync::mpsc::UnboundedSender<ConnNews>,
}

impl Conn {
    async fn serve(self, deadline: Instant) {
        let id = self.id;
        let news = self.news.clone();
        let why = self.relay(deadline).await;
        tracing::debug!(id, "tcp connection closed: {why}");
        let _ = news.send(ConnNews::Closed(id));
    }

    async fn relay(self, deadline: Instant) -> String {
        let bind = SocketAddr::new(self.core.ip(), 0);
        let udp = match UdpSocket::bind(bind).await {
            Ok(u) => u,
            Err(e) => return format!("cannot open a relay socket on {bind}: {e}"),
        };
        // Connected: only the core's datagrams come in.
        if let Err(e) = udp.connect(self.core).await {
            return format!("cannot reach the core at {}: {e}", self.core);
        }
        let Ok(local) = udp.local_addr() else { return "relay socket has no address".into() };
        // Also when the task is aborted (evicted, or the listener dropped).
        let _registered = Registered::new(self.relays.clone(), local);
        let _ = self.stream.set_nodelay(true);
        let (rd, wr) = self.stream.into_split();
        let last_rx = Arc::new(Mutex::new(Instant::now()));
        let authenticated = std::sync::atomic::AtomicBool::new(false);

        let to_core = relay::frames_to_udp(rd, &udp, "guest", |oversized| {
            if oversized > 0 {
                self.stats.oversized.fetch_add(oversized, Ordering::Relaxed);
            }
            if let Ok(mut t) = last_rx.lock() {
                *t = Instant::now();
            }
        });
        let to_guest = relay::udp_to_frames(wr, &udp, "guest", |msg| {
            if !authenticated.load(Ordering::Relaxed) && msg.first() == Some(&(MsgType::Welcome as u8)) {
                authenticated.store(true, Ordering::Relaxed);
                let _ = self.news.send(ConnNews::Authenticated(self.id));
            }
        });
        let watchdog = async {
            tokio::time::sleep_until(deadline.into()).await;
            if !authenticated.load(Ordering::Relaxed) {
                self.stats.expired.fetch_add(1, Ordering::Relaxed);
                return "no verified handshake before the deadline".to_string();
            }
            loop {
                tokio::time::sleep(self.idle_timeout / 4).await;
                let silent = last_rx.lock().map(|t| t.elapsed()).unwrap_or_default();
                if silent >= self.idle_timeout {
                    return format!("silent for {silent:?}");
                }
            }
        };
        tokio::select! {
            why = to_core => why,
            why = to_guest => why,
            why = watchdog => why,
        }
    }
}

/// A relay address in the shared set for as long as this lives.
struct Registered {
    relays: Arc<Mutex<HashSet<SocketAddr>>>,
    addr: SocketAddr,
}

impl Registered {
    fn new(relays: Arc<Mutex<HashSet<SocketAddr>>>, addr: SocketAddr) -> Registered {
        if let Ok(mut r) = relays.lock() {
            r.insert(addr);
        }
        Registered { relays, addr }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut r) = self.relays.lock() {
            r.remove(&self.addr);
        }
    }
}
