//! The guest's path to the helper, carried out: the engine's `PathPolicy` decides when to move
//! between UDP and TCP; this opens and closes the TCP relay, sends UDP probes (`Prober`: while
//! on TCP, whether UDP works again; on a live UDP session, whether it still does), and points
//! the core at the path in use (`Guest::switch_path`, a new handshake there).

use std::net::SocketAddr;
use std::time::Instant;

use dockroute_api::{Transport, TransportMode};
use dockroute_engine::driver::Control;
use dockroute_engine::proto::{Event, Guest};
use dockroute_engine::transport::policy::PROBE_WAIT;
use dockroute_engine::transport::probe::Prober;
use dockroute_engine::transport::{Action, Connector, PathPolicy};
use tokio::sync::mpsc;

/// How long a traffic count may take the core to answer.
const COUNT_DEADLINE: std::time::Duration = std::time::Duration::from_millis(200);

pub struct Paths {
    policy: PathPolicy,
    /// The helper's address as last resolved.
    server: SocketAddr,
    /// The core's UDP socket, which the TCP relay sends to.
    core: SocketAddr,
    connector: Option<Connector>,
    /// Only in `auto`; None also when its socket could not be opened: then no probe goes out
    /// and no traffic is counted (no news, rather than a probe counted as unanswered).
    prober: Option<Prober>,
    answers_tx: mpsc::UnboundedSender<()>,
    /// The tunnel device, whose packet counts tell a busy session from an idle one.
    tun_name: String,
}

impl Paths {
    /// Starts on the path `mode` begins with (TCP: the relay is opened now). Each answered
    /// probe comes back on the returned channel; hand it to `probe_answered`.
    pub async fn new(
        mode: TransportMode,
        server: SocketAddr,
        core: SocketAddr,
        tun_name: &str,
        now: Instant,
    ) -> anyhow::Result<(Paths, mpsc::UnboundedReceiver<()>)> {
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        let prober = match mode {
            TransportMode::Auto => start_prober(server, &answers_tx).await,
            _ => None,
        };
        let policy = PathPolicy::new(mode, now);
        let mut me =
            Paths { policy, server, core, connector: None, prober, answers_tx, tun_name: tun_name.to_string() };
        if me.policy.path() == Transport::Tcp {
            me.connector = Some(Connector::start(server, core).await?);
        }
        tracing::info!("transport {mode}: starting on {}", me.policy.path());
        Ok((me, answers_rx))
    }

    /// Where the core sends now: the helper itself (UDP) or the relay (TCP).
    pub fn target(&self) -> SocketAddr {
        self.connector.as_ref().map_or(self.server, Connector::local_addr)
    }

    pub fn path(&self) -> Transport {
        self.policy.path()
    }

    /// What the core reported.
    pub fn on_event(&mut self, ev: &Event, now: Instant) {
        match ev {
            Event::SessionUp { .. } => {
                tracing::info!("session over {}", self.policy.path());
                self.policy.handle_session_up(now);
            }
            Event::PeerDead { .. } | Event::StaleSession { .. } => self.policy.handle_session_lost(now),
            _ => {}
        }
    }

    /// The helper's name resolved to `server` (again).
    pub async fn set_server(&mut self, server: SocketAddr, control: &mpsc::UnboundedSender<Control<Guest>>) {
        if self.prober.is_some() && server.is_ipv6() != self.server.is_ipv6() {
            // The old family's socket cannot reach the new address: never keep it.
            self.prober = start_prober(server, &self.answers_tx).await;
        }
        self.server = server;
        match &self.connector {
            Some(c) => c.set_server(server),
            None => {
                let _ = control.send(Box::new(move |g: &mut Guest, _| g.set_server(server)));
            }
        }
    }

    pub fn probe_answered(&mut self, now: Instant) {
        if self.policy.path() == Transport::Tcp {
            tracing::info!("udp answers again");
        }
        self.policy.handle_probe_answered(now);
    }

    /// When `handle_timeout` is due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.policy.poll_timeout()
    }

    /// Runs the policy's timers and carries out what it decides.
    pub async fn handle_timeout(&mut self, now: Instant, control: &mpsc::UnboundedSender<Control<Guest>>) {
        self.policy.handle_timeout(now);
        self.act(control).await;
    }

    /// Carries out the policy's decisions (after a probe answer too).
    pub async fn act(&mut self, control: &mpsc::UnboundedSender<Control<Guest>>) {
        while let Some(action) = self.policy.poll_action() {
            match action {
                Action::UsePath(Transport::Tcp) => {
                    tracing::warn!("no answer over udp from {}: moving to tcp", self.server);
                    match Connector::start(self.server, self.core).await {
                        Ok(c) => {
                            let to = c.local_addr();
                            self.connector = Some(c);
                            let _ = control.send(Box::new(move |g: &mut Guest, now| g.switch_path(now, to)));
                        }
                        Err(e) => tracing::error!("cannot open the tcp relay: {e}"),
                    }
                }
                Action::UsePath(Transport::Udp) => {
                    tracing::info!("moving to udp ({})", self.server);
                    let to = self.server;
                    let _ = control.send(Box::new(move |g: &mut Guest, now| g.switch_path(now, to)));
                    // After the core moved: what it still sends to the relay is lost either way.
                    self.connector = None;
                }
                Action::ProbeUdp => {
                    if let Some(prober) = &self.prober {
                        prober.probe(self.server);
                    }
                }
                Action::CountTraffic if self.prober.is_none() => {}
                Action::CountTraffic => {
                    // The kernel's count for the tunnel device, so an idle check does not wake
                    // the engine's task; without it, the core's own count within a deadline (a
                    // stalled core cannot hold the agent's loop; no answer, no news).
                    let packets = match crate::netdev::read_packets(&self.tun_name) {
                        Some(p) => Some(p),
                        None => {
                            let count = |g: &mut Guest, _| g.stats().tx_packets.wrapping_add(g.stats().rx_packets);
                            dockroute_stdx::control::ask(control, COUNT_DEADLINE, count).await
                        }
                    };
                    if let Some(packets) = packets {
                        self.policy.handle_traffic(packets, Instant::now());
                    }
                }
            }
        }
    }
}

/// The prober for `server`'s address family, or None (said in the log) when its socket cannot
/// be opened.
async fn start_prober(server: SocketAddr, answers: &mpsc::UnboundedSender<()>) -> Option<Prober> {
    match Prober::start(server.is_ipv6(), PROBE_WAIT, answers.clone()).await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("cannot open a UDP probe socket for {server}: {e}; the path is not checked");
            None
        }
    }
}
