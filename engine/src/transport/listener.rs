//! The helper's end of the TCP path: listens on the same address and port as the UDP socket,
//! and relays each connection through a UDP socket of its own to the host core, which sees
//! one more peer address. Connections are bounded (in all and per source, `admission`) and
//! must carry a verified handshake (the core's Welcome) within `Limits::handshake_deadline`;
//! authentication stays the core's: nothing is answered that the UDP path would not answer.
//!
//! A connection's state (pending, authenticated, evicted) is one atomic its task and the
//! accept loop share: a Welcome and an eviction racing for the same connection cannot both
//! win, so an authenticated connection is never evicted and an evicted one never carries a
//! Welcome.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
    /// Connections one source (an IPv4 address, an IPv6 /64) may hold.
    pub per_source: usize,
    /// A connection that has not carried a Welcome by then is closed.
    pub handshake_deadline: Duration,
    /// An authenticated connection silent this long is closed (keepalives come every ≤ 10 s).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 16,
            per_source: 4,
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

/// A connection's state, shared by its task and the accept loop (see the module comment).
const PENDING: u8 = 0;
const AUTHENTICATED: u8 = 1;
const EVICTED: u8 = 2;

/// What the accept loop keeps of a running connection.
struct Slot {
    task: tokio::task::AbortHandle,
    state: Arc<AtomicU8>,
    source: IpAddr,
    since: Instant,
    /// Whether `admission` was told it authenticated.
    reported: bool,
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    core: SocketAddr,
    limits: Limits,
    relays: Arc<Mutex<HashSet<SocketAddr>>>,
    stats: Arc<ListenerStats>,
) {
    let mut admission = Admission::new(limits.max_connections, limits.handshake_deadline).per_source(limits.per_source);
    // Dropped with this task: every connection goes with the listener.
    let mut conns: JoinSet<()> = JoinSet::new();
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
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
                // Every Welcome that has passed so far, before anyone is chosen to make room.
                for (id, slot) in slots.iter_mut().filter(|(_, s)| !s.reported) {
                    if slot.state.load(Ordering::Acquire) == AUTHENTICATED {
                        admission.authenticated(*id);
                        slot.reported = true;
                    }
                }
                let now = Instant::now();
                let id = match admission.admit(now, from.ip()) {
                    Admit::Accept { id } => id,
                    Admit::AcceptEvicting { id, evict } => {
                        let lost = slots.get(&evict).filter(|s| {
                            s.state.compare_exchange(PENDING, EVICTED, Ordering::AcqRel, Ordering::Acquire).is_err()
                        });
                        if let Some(kept) = lost {
                            // Its Welcome passed just now: it stays, the newcomer goes.
                            admission.keep_instead(evict, kept.source, kept.since, id);
                            stats.refused.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        stats.evicted.fetch_add(1, Ordering::Relaxed);
                        if let Some(s) = slots.remove(&evict) {
                            s.task.abort();
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
                let deadline = admission.deadline_of(id).unwrap_or(now);
                let state = Arc::new(AtomicU8::new(PENDING));
                let conn = Conn {
                    id,
                    stream,
                    core,
                    idle_timeout: limits.idle_timeout,
                    relays: relays.clone(),
                    stats: stats.clone(),
                    state: state.clone(),
                    closed: closed_tx.clone(),
                };
                let task = conns.spawn(conn.serve(deadline));
                slots.insert(id, Slot { task, state, source: from.ip(), since: now, reported: false });
            }
            Some(id) = closed.recv() => {
                admission.closed(id);
                slots.remove(&id);
            }
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
    state: Arc<AtomicU8>,
    closed: tokio::sync::mpsc::UnboundedSender<u64>,
}

impl Conn {
    async fn serve(self, deadline: Instant) {
        let id = self.id;
        let closed = self.closed.clone();
        let why = self.relay(deadline).await;
        tracing::debug!(id, "tcp connection closed: {why}");
        let _ = closed.send(id);
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
        let authenticated = || self.state.load(Ordering::Acquire) == AUTHENTICATED;

        let to_core = relay::frames_to_udp(rd, &udp, "guest", |oversized| {
            if oversized > 0 {
                self.stats.oversized.fetch_add(oversized, Ordering::Relaxed);
            }
            if let Ok(mut t) = last_rx.lock() {
                *t = Instant::now();
            }
        });
        let to_guest = relay::udp_to_frames(wr, &udp, "guest", |msg| {
            if msg.first() == Some(&(MsgType::Welcome as u8)) && !authenticated() {
                // Either this Welcome wins the connection, or the eviction did and it never
                // goes out.
                let won = self.state.compare_exchange(PENDING, AUTHENTICATED, Ordering::AcqRel, Ordering::Acquire);
                if won.is_err() {
                    return Err("evicted to make room".to_string());
                }
            }
            Ok(())
        });
        let watchdog = async {
            tokio::time::sleep_until(deadline.into()).await;
            if !authenticated() {
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
