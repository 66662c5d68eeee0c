//! The guest's end of the TCP path: a loopback UDP socket the guest core sends to as if it
//! were the helper, relayed over a TCP connection to the helper's port. The connection is made
//! again (250 ms doubling to 2 s) whenever it drops; while there is none, the core's datagrams
//! are dropped and its handshake retries do the rest.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use dockroute_stdx::Backoff;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;

use super::relay;

/// Bound for one connection attempt.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The running relay; dropping it closes the connection.
pub struct Connector {
    local: SocketAddr,
    target: watch::Sender<SocketAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Connector {
    /// Relays between the guest core's UDP socket (bound at `core`) and the helper at `server`.
    pub async fn start(server: SocketAddr, core: SocketAddr) -> io::Result<Connector> {
        let core = super::reachable(core);
        let loopback = match core.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let udp = UdpSocket::bind(SocketAddr::new(loopback, 0)).await?;
        // Connected: only the core's datagrams come in.
        udp.connect(core).await?;
        let local = udp.local_addr()?;
        let (target, target_rx) = watch::channel(server);
        let task = tokio::spawn(run(udp, target_rx));
        Ok(Connector { local, target, task })
    }

    /// Where the guest core sends to reach the helper over TCP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The helper moved (its name resolved to another address): the next connection goes there.
    pub fn set_server(&self, server: SocketAddr) {
        self.target.send_if_modified(|t| std::mem::replace(t, server) != server);
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(udp: UdpSocket, mut target: watch::Receiver<SocketAddr>) {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(2));
    let mut dgram = vec![0u8; 65535];
    loop {
        let server = *target.borrow_and_update();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server)).await;
        match connected {
            Ok(Ok(stream)) => {
                tracing::info!("tcp path: connected to {server}");
                let why = relay(&udp, stream, &mut target).await;
                tracing::info!("tcp path to {server} closed: {why}");
                backoff.reset();
                // A connection that dropped at once must not make us spin.
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Ok(Err(e)) => {
                let wait = backoff.next_delay();
                tracing::debug!("tcp path: cannot connect to {server}: {e}; again in {wait:?}");
                sleep_draining(&udp, &mut dgram, wait).await;
            }
            Err(_) => {
                let wait = backoff.next_delay();
                tracing::debug!("tcp path: connecting to {server} timed out; again in {wait:?}");
                sleep_draining(&udp, &mut dgram, wait).await;
            }
        }
    }
}

/// Waits, dropping what the core sends meanwhile (there is nowhere to send it).
async fn sleep_draining(udp: &UdpSocket, buf: &mut [u8], wait: Duration) {
    let until = tokio::time::Instant::now() + wait;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return,
            r = udp.recv(buf) => { let _ = r; }
        }
    }
}

async fn relay(udp: &UdpSocket, stream: TcpStream, target: &mut watch::Receiver<SocketAddr>) -> String {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    tokio::select! {
        why = relay::frames_to_udp(rd, udp, "helper", |_| {}) => why,
        why = relay::udp_to_frames(wr, udp, "helper", |_| Ok(())) => why,
        _ = target.changed() => "the helper's address changed".to_string(),
    }
}
