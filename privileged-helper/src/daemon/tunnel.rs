//! The running tunnel: TUN device, UDP listener (and the TCP one of the fallback path) and the
//! engine task around a `Host` core, its routes, and how the daemon asks the engine things
//! (session, counters, a new secret).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use dockroute_api::Secret;
use dockroute_api::{ApiError, ErrorCode, LinkInfo, SessionInfo, StatsReport, Transport};
use dockroute_engine::driver::{self, Control};
use dockroute_engine::platform::{self, Routes, SystemRoutes, TunSpec};
use dockroute_engine::proto::{self, Host, HostConfig, OsEntropy};
use dockroute_engine::transport::TcpListener;
use tokio::sync::mpsc;

use crate::share::runtime::SideEnds;

use super::ops::TunnelFacts;
use super::route_policy;

/// An engine that does not answer within this is stuck; the caller gets an error, not a hang.
const ENGINE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Tunnel {
    /// Held so the device lives exactly as long as this (the engine holds the other reference).
    _device: Arc<tun_rs::AsyncDevice>,
    pub ifname: String,
    control: mpsc::UnboundedSender<Control<Host>>,
    events: mpsc::UnboundedReceiver<proto::Event>,
    /// None once it has finished (a finished handle must not be polled again).
    engine: Option<tokio::task::JoinHandle<std::io::Result<Host>>>,
    pub routes: Routes<SystemRoutes>,
    pub link: LinkInfo,
    pub listen: SocketAddr,
    /// The engine's side port, for the share (teammates' packets in, theirs out).
    pub side: SideEnds,
    /// TCP on the same address and port, for guests whose UDP path is broken (`transport`).
    tcp: Option<Arc<TcpListener>>,
}

/// What the engine task said.
pub enum EngineNews {
    /// An event of the protocol core (None: its channel closed).
    Event(Option<proto::Event>),
    /// The task ended, and why.
    Exited(String),
}

impl Tunnel {
    /// Builds TUN, listener and engine; on failure nothing stays half-made (what was made is
    /// dropped, which deletes the device).
    pub async fn build(cfg: &Config, secret: &Secret, tun_name: Option<&str>) -> Result<Tunnel, String> {
        let os_routes = platform::route_table().map_err(|e| format!("cannot read the routing table: {e}"))?;
        let link = route_policy::pick_link(cfg.addr, cfg.addr_pinned, &os_routes)?;
        if link.host != cfg.addr {
            tracing::warn!("link subnet {} is taken; using {}", cfg.addr.trunc(), link.host);
        }
        let (host6, guest6) = (cfg.host_link_v6(), cfg.guest_link_v6());
        let spec = TunSpec {
            // An empty name lets the OS pick (macOS: the next free utunN).
            name: Some(tun_name.unwrap_or(platform::DEFAULT_TUN_NAME)).filter(|n| !n.is_empty()).map(str::to_string),
            mtu: cfg.mtu,
            v4: Some((link.host.addr(), link.host.prefix_len(), link.guest)),
            v6: host6.map(|n| (n.addr(), n.prefix_len())),
            offload: driver::wants_tun_offload(),
        };
        let listen = cfg.listen_addr();
        let udp =
            tokio::net::UdpSocket::bind(listen).await.map_err(|e| format!("cannot listen on udp {listen}: {e}"))?;
        let tcp = match cfg.transport.allows_tcp() {
            true => Some(Arc::new(
                TcpListener::start(listen, listen, Default::default())
                    .await
                    .map_err(|e| format!("cannot listen on tcp {listen}: {e}"))?,
            )),
            false => None,
        };
        let tun = Arc::new(platform::create_tun(&spec).map_err(|e| e.to_string())?);
        let ifname = tun.name().map_err(|e| format!("TUN device has no name: {e}"))?;
        let host = Host::new(
            HostConfig {
                secret: secret.clone(),
                mtu: cfg.mtu,
                keepalive: cfg.keepalive,
                host_v4: link.host.addr(),
                guest_v4: link.guest,
                prefix_v4: link.host.prefix_len(),
                v6: host6.zip(guest6).map(|(h, g)| (h.addr(), g, h.prefix_len())),
            },
            Box::new(OsEntropy),
        );
        let (control, control_rx) = mpsc::unbounded_channel::<Control<Host>>();
        let (event_tx, events) = mpsc::unbounded_channel();
        driver::log_stats_on_sigusr1(control.clone(), "host").map_err(|e| e.to_string())?;
        let (inject, inject_rx) = mpsc::channel(driver::SIDE_QUEUE);
        let (diverted_tx, diverted) = mpsc::channel(driver::SIDE_QUEUE);
        // Everything the guest sends into the link subnet, except to our own address, is for a
        // teammate: the share takes it (or drops it), the Mac's kernel never sees it.
        let divert = driver::Divert { net: link.host.trunc(), except: link.host.addr() };
        let side = driver::SidePort { inject: inject_rx, diverted: diverted_tx, divert };
        let engine = tokio::spawn(driver::run_with_side_port(
            host,
            driver::DriverConfig { mtu: cfg.mtu },
            tun.clone(),
            Arc::new(udp),
            control_rx,
            event_tx,
            side,
        ));
        Ok(Tunnel {
            routes: Routes::new(SystemRoutes, ifname.clone()),
            link: LinkInfo { host_v4: link.host, guest_v4: link.guest, host_v6: host6, guest_v6: guest6, mtu: cfg.mtu },
            _device: tun,
            ifname,
            control,
            events,
            engine: Some(engine),
            listen,
            side: SideEnds { inject, diverted: Arc::new(tokio::sync::Mutex::new(diverted)) },
            tcp,
        })
    }

    /// Removes our routes, stops the engine, then drops the device (which deletes it), so that
    /// when this returns nothing of the tunnel is left.
    pub async fn teardown(mut self) {
        for (net, e) in self.routes.clear() {
            tracing::warn!("could not remove route {net}: {e}");
        }
        if let Some(engine) = self.engine.take() {
            engine.abort();
            let _ = engine.await;
        }
    }

    /// The next event of the engine, or its end; never resolves once it has ended.
    pub async fn next_news(&mut self) -> EngineNews {
        let Some(engine) = self.engine.as_mut() else { return std::future::pending().await };
        let finished = tokio::select! {
            e = self.events.recv() => return EngineNews::Event(e),
            r = engine => r,
        };
        self.engine = None;
        EngineNews::Exited(match finished {
            Ok(Ok(_)) => "engine stopped".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => format!("engine task failed: {e}"),
        })
    }

    /// Handshakes from now on use `secret`.
    pub fn set_secret(&self, secret: Secret) {
        let _ = self.control.send(Box::new(move |h: &mut Host, _| h.set_secret(secret)));
    }

    /// What the status reports of the running tunnel (the session, from the engine).
    pub async fn facts(&self) -> TunnelFacts {
        let tcp = self.tcp.clone();
        let session = self
            .query(move |h: &mut Host, now| {
                h.session().map(|s| session_info(s, now, tcp.as_ref().is_some_and(|t| t.is_tcp(s.peer))))
            })
            .await
            .ok()
            .flatten();
        TunnelFacts { listen: self.listen, interface: self.ifname.clone(), link: self.link.clone(), session }
    }

    pub async fn stats(&self) -> Result<StatsReport, ApiError> {
        self.query(|h: &mut Host, _| stats_report(h.stats())).await
    }

    /// Runs `f` on the engine's core and returns its result.
    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Host, Instant) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let answer = dockroute_stdx::control::ask(&self.control, ENGINE_QUERY_TIMEOUT, f).await;
        answer.ok_or_else(|| ApiError::new(ErrorCode::Failed, "the tunnel engine is not responding"))
    }
}

fn session_info(s: &proto::Session, now: Instant, over_tcp: bool) -> SessionInfo {
    SessionInfo {
        transport: if over_tcp { Transport::Tcp } else { Transport::Udp },
        fingerprint: s.fingerprint().to_string(),
        guest: s.peer,
        alive: s.alive,
        handshake_age_ms: now.saturating_duration_since(s.established_at).as_millis() as u64,
        last_seen_ms: now.saturating_duration_since(s.last_rx).as_millis() as u64,
    }
}

/// The engine's counters as the API reports them (drops by the names `DropReason` gives them).
pub fn stats_report(s: &proto::Stats) -> StatsReport {
    use proto::DropReason;
    StatsReport {
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        keepalives_sent: s.keepalives_sent,
        handshakes: s.handshakes,
        stale_notices: s.stale_notices,
        drops: DropReason::ALL.iter().map(|r| (r.name().to_string(), s.drops(*r))).collect(),
        // The daemon adds the DNS server's counters.
        dns: None,
        // The share's, added by the daemon.
        teammates: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_report_copies_the_counters_and_names_every_drop_reason() {
        let mut s = proto::Stats::default();
        (s.tx_packets, s.tx_bytes, s.rx_packets, s.rx_bytes) = (3, 300, 2, 200);
        (s.keepalives_sent, s.handshakes, s.stale_notices) = (4, 1, 5);
        s.drop(proto::DropReason::AuthFailed);
        s.drop(proto::DropReason::AuthFailed);
        let r = stats_report(&s);
        assert_eq!((r.tx_packets, r.tx_bytes, r.rx_packets, r.rx_bytes), (3, 300, 2, 200));
        assert_eq!((r.keepalives_sent, r.handshakes, r.stale_notices), (4, 1, 5));
        assert_eq!(r.drops.len(), proto::DropReason::ALL.len(), "every reason, zero or not: {:?}", r.drops);
        assert_eq!(r.drops.get("auth_failed"), Some(&2));
        assert_eq!(r.drops.values().sum::<u64>(), 2);
    }
}
