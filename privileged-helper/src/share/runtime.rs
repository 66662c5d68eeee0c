//! The share's tokio task: the only place where its core meets a clock, the expose socket and
//! the tunnel's side port. It owns the core while it runs and hands it back when stopped, so
//! teammates' sessions and counters outlive a change of the `expose` address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Mutex};

use super::core::ShareCore;
use super::policy::Drop;

/// A request to the task: run this on the core, between datagrams.
type Control = dockroute_stdx::control::Control<ShareCore>;

/// The tunnel's ends of its side port: where packets for the guest go, where packets for
/// teammates come from (one share task at a time holds the lock).
#[derive(Clone)]
pub struct SideEnds {
    pub inject: mpsc::Sender<Vec<u8>>,
    pub diverted: Arc<Mutex<mpsc::Receiver<Vec<u8>>>>,
}

/// Datagrams read per wake before the other inputs get a turn.
const RECV_BURST: usize = 64;
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Running {
    pub listen: SocketAddr,
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<ShareCore>,
}

/// Binds the expose socket and starts the task. On failure the core comes back with the reason.
pub async fn start(core: ShareCore, expose: SocketAddr, side: SideEnds) -> Result<Running, (Box<ShareCore>, String)> {
    let socket = match UdpSocket::bind(expose).await {
        Ok(s) => s,
        Err(e) => return Err((Box::new(core), format!("cannot listen on udp {expose} (expose): {e}"))),
    };
    let listen = socket.local_addr().unwrap_or(expose);
    let (control, control_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(core, socket, side, control_rx));
    Ok(Running { listen, control, task })
}

impl Running {
    /// Stops the task and returns its core (None if the task failed).
    pub async fn stop(self) -> Option<ShareCore> {
        drop(self.control);
        self.task.await.ok()
    }

    /// Runs `f` on the core now (within `QUERY_TIMEOUT`).
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ShareCore, Instant) -> T + Send + 'static,
    ) -> Option<T> {
        dockroute_stdx::control::ask(&self.control, QUERY_TIMEOUT, f).await
    }
}

async fn run(
    mut core: ShareCore,
    socket: UdpSocket,
    side: SideEnds,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> ShareCore {
    let mut diverted = side.diverted.lock().await;
    let mut buf = vec![0u8; 65_536];
    loop {
        while let Some(t) = core.poll_transmit() {
            if let Err(e) = socket.send_to(&t.bytes, t.dst).await {
                tracing::debug!("share: send to {} failed: {e}", t.dst);
            }
        }
        while let Some(p) = core.poll_packet() {
            if side.inject.try_send(p).is_err() {
                core.count_unattributed(Drop::QueueFull);
            }
        }
        let deadline = core.poll_timeout();
        let sleep = dockroute_stdx::time::sleep_until(deadline);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                match r {
                    Ok((n, from)) => core.handle_datagram(Instant::now(), from, &buf[..n]),
                    // ICMP errors surface here on some systems; they are not fatal.
                    Err(e) => tracing::debug!("share: receive: {e}"),
                }
                for _ in 0..RECV_BURST {
                    match socket.try_recv_from(&mut buf) {
                        Ok((n, from)) => core.handle_datagram(Instant::now(), from, &buf[..n]),
                        Err(_) => break,
                    }
                }
            }
            p = diverted.recv() => match p {
                Some(p) => {
                    core.handle_diverted(Instant::now(), &p);
                    for _ in 0..RECV_BURST {
                        let Ok(p) = diverted.try_recv() else { break };
                        core.handle_diverted(Instant::now(), &p);
                    }
                }
                // The tunnel is gone; the daemon stops us with it.
                None => return core,
            },
            () = sleep => core.handle_timeout(Instant::now()),
            c = control.recv() => match c {
                Some(f) => f(&mut core, Instant::now()),
                None => return core,
            },
        }
    }
}
