//! The DNS server's driver: a UDP socket and a TCP listener on one address, each query handed
//! to `answer` with the current table. The only place here with sockets and timers.
//!
//! TCP (RFC 7766): messages with a 2-byte length, several per connection, at most
//! `MAX_TCP_CONNECTIONS` at once (more are closed at once), each closed after `TCP_IDLE`
//! without a complete message, so idle or slow clients cannot pile up.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dockroute_api::DnsCounters;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::answer::{answer, Outcome, Transport, MAX_UDP};
use super::table::NameTable;

pub const MAX_TCP_CONNECTIONS: usize = 64;
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// The table every query reads; replaced whole by `set_names`.
type Shared = Arc<RwLock<Arc<NameTable>>>;

#[derive(Default)]
struct Counters {
    queries: AtomicU64,
    answered: AtomicU64,
    nxdomain: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
}

impl Counters {
    fn count(&self, outcome: Outcome) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let c = match outcome {
            Outcome::Answered => &self.answered,
            Outcome::NxDomain => &self.nxdomain,
            Outcome::Refused => &self.refused,
            Outcome::Malformed => &self.malformed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DnsCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DnsCounters {
            queries: get(&self.queries),
            answered: get(&self.answered),
            nxdomain: get(&self.nxdomain),
            refused: get(&self.refused),
            malformed: get(&self.malformed),
        }
    }
}

pub struct DnsServer {
    pub listen: SocketAddr,
    table: Shared,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Listens on `listen` (UDP and TCP) and answers from `table` until `stop`.
    pub async fn start(listen: SocketAddr, table: NameTable) -> io::Result<DnsServer> {
        DnsServer::start_with(listen, table, TCP_IDLE).await
    }

    async fn start_with(listen: SocketAddr, table: NameTable, tcp_idle: Duration) -> io::Result<DnsServer> {
        let udp = UdpSocket::bind(listen).await?;
        // The same port for TCP (port 0 in a test: the one UDP got).
        let listen = udp.local_addr()?;
        let tcp = TcpListener::bind(listen).await?;
        let table: Shared = Arc::new(RwLock::new(Arc::new(table)));
        let counters = Arc::new(Counters::default());
        let tasks = vec![
            tokio::spawn(serve_udp(udp, table.clone(), counters.clone())),
            tokio::spawn(serve_tcp(tcp, table.clone(), counters.clone(), tcp_idle)),
        ];
        Ok(DnsServer { listen, table, counters, tasks })
    }

    /// Answers from `table` from the next query on.
    pub fn set_table(&self, table: NameTable) {
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }

    pub fn counters(&self) -> DnsCounters {
        self.counters.snapshot()
    }

    /// Stops answering and closes the sockets (TCP connections included) before it returns.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn current(table: &Shared) -> Arc<NameTable> {
    table.read().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn serve_udp(socket: UdpSocket, table: Shared, counters: Arc<Counters>) {
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let (len, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("dns: udp receive: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let reply = answer(&buf[..len], &current(&table), Transport::Udp);
        counters.count(reply.outcome);
        if let Some(bytes) = reply.bytes {
            if let Err(e) = socket.send_to(&bytes, from).await {
                tracing::debug!("dns: udp reply to {from}: {e}");
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, table: Shared, counters: Arc<Counters>, idle: Duration) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    // Connections are tasks of their own, ended with the server (aborting a JoinSet's owner
    // drops the set, which aborts them).
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("dns: tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("dns: {MAX_TCP_CONNECTIONS} tcp connections open; closing the one from {from}");
            continue;
        };
        let (table, counters) = (table.clone(), counters.clone());
        connections.spawn(async move {
            serve_connection(stream, &table, &counters, idle).await;
            drop(slot);
        });
    }
}

/// Answers length-prefixed messages until the client closes, stays silent for `idle`, or
/// sends something not worth an answer.
async fn serve_connection(mut stream: TcpStream, table: &Shared, counters: &Counters, idle: Duration) {
    loop {
        let mut len = [0u8; 2];
        if !matches!(tokio::time::timeout(idle, stream.read_exact(&mut len)).await, Ok(Ok(_))) {
            return;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !matches!(tokio::time::timeout(idle, stream.read_exact(&mut message)).await, Ok(Ok(_))) {
            return;
        }
        let reply = answer(&message, &current(table), Transport::Tcp);
        counters.count(reply.outcome);
        let Some(bytes) = reply.bytes else { return };
        let Ok(len) = u16::try_from(bytes.len()) else { return };
        let mut out = Vec::with_capacity(2 + bytes.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&bytes);
        if !matches!(tokio::time::timeout(idle, stream.write_all(&out)).await, Ok(Ok(()))) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::dns::names::validate;

    fn table(ip: &str) -> NameTable {
        let names = BTreeMap::from([("web".to_string(), vec![ip.parse().unwrap()])]);
        NameTable::new("docker", &validate(&names, &BTreeMap::new(), "docker").unwrap(), 1)
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new(9, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    async fn udp_ask(server: SocketAddr, q: &[u8]) -> Message {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(q, server).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf)).await.unwrap().unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    async fn tcp_ask(c: &mut TcpStream, q: &[u8]) -> Message {
        c.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
        c.write_all(q).await.unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).await.unwrap();
        let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
        c.read_exact(&mut m).await.unwrap();
        Message::from_vec(&m).unwrap()
    }

    fn a(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[tokio::test]
    async fn udp_and_tcp_answer_from_the_current_table_and_count() {
        let server = DnsServer::start("127.0.0.1:0".parse().unwrap(), table("172.18.0.2")).await.unwrap();
        let tcp_port = server.listen.port();
        assert_eq!(a(&udp_ask(server.listen, &query("web.docker.")).await), ["172.18.0.2"]);
        server.set_table(table("172.18.0.9"));
        assert_eq!(a(&udp_ask(server.listen, &query("web.docker.")).await), ["172.18.0.9"], "the new table");
        let refused = udp_ask(server.listen, &query("example.com.")).await;
        assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
        let mut c = TcpStream::connect(("127.0.0.1", tcp_port)).await.unwrap();
        assert_eq!(a(&tcp_ask(&mut c, &query("web.docker.")).await), ["172.18.0.9"]);
        let nx = tcp_ask(&mut c, &query("gone.docker.")).await;
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain, "several messages on one connection");
        // Garbage that has no header: dropped, and over TCP the connection with it.
        c.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
        let counts = server.counters();
        assert_eq!(counts, DnsCounters { queries: 6, answered: 3, nxdomain: 1, refused: 1, malformed: 1 });
        server.stop().await;
        let gone = TcpStream::connect(("127.0.0.1", tcp_port)).await;
        assert!(gone.is_err(), "stopped: nothing listens any more");
    }

    #[tokio::test]
    async fn tcp_connections_are_bounded_and_idle_ones_closed() {
        let idle = Duration::from_millis(300);
        let server = DnsServer::start_with("127.0.0.1:0".parse().unwrap(), table("172.18.0.2"), idle).await.unwrap();
        let port = server.listen.port();
        let mut open = Vec::new();
        for _ in 0..MAX_TCP_CONNECTIONS {
            open.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut buf = [0u8; 1];
        let refused = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut buf)).await;
        assert!(matches!(refused, Ok(Ok(0))), "one too many is closed at once: {refused:?}");
        tokio::time::sleep(idle + Duration::from_millis(200)).await;
        let closed = tokio::time::timeout(Duration::from_secs(1), open[0].read(&mut buf)).await;
        assert!(matches!(closed, Ok(Ok(0))), "closed after {idle:?} idle: {closed:?}");
        let mut again = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert_eq!(a(&tcp_ask(&mut again, &query("web.docker.")).await), ["172.18.0.2"], "slots freed");
        server.stop().await;
    }
}
