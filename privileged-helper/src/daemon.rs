//! The helper's state: the tunnel (TUN, UDP listener, engine task), the routes and what the
//! app asked for. One task owns it; API connections send it `Command`s.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockroute_engine::config::{self, Config};
use dockroute_engine::driver::{self, Control};
use dockroute_engine::platform::{self, table, Routes, SystemRoutes, TunSpec};
use dockroute_engine::proto::{self, Host, HostConfig, OsEntropy, Secret};
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot};

use dockroute_api::{
    Answer, ApiError, ErrorCode, Event, LinkInfo, Op, RouteSource, RouteState, RouteStatus, SecretSource, SessionInfo,
    StatsReport, Status, TunnelState,
};

/// A request from an API connection, with where to send the answer.
pub struct Command {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Answer, ApiError>>,
}

struct Tunnel {
    /// Held so the device lives exactly as long as this (the engine holds the other reference).
    _device: Arc<tun_rs::AsyncDevice>,
    ifname: String,
    control: mpsc::UnboundedSender<Control<Host>>,
    events: mpsc::UnboundedReceiver<proto::Event>,
    /// None once it has finished (a finished handle must not be polled again).
    engine: Option<tokio::task::JoinHandle<std::io::Result<Host>>>,
    routes: Routes<SystemRoutes>,
    link: LinkInfo,
    listen: SocketAddr,
}

pub struct Daemon {
    config_path: PathBuf,
    config: Config,
    last_config_text: Option<String>,
    /// A changed text seen once; applied when the next poll reads it unchanged, so a file
    /// caught half-written by an editor is never applied.
    config_candidate: Option<String>,
    secret: Secret,
    secret_source: SecretSource,
    tun_name: Option<String>,
    app_routes: BTreeSet<IpNet>,
    disabled: BTreeSet<IpNet>,
    want_connected: bool,
    tunnel: Option<Tunnel>,
    route_states: BTreeMap<IpNet, RouteState>,
    /// The last check left work undone (a failed route, an unreadable table).
    routes_retry_soon: bool,
    error: Option<String>,
    pub events: broadcast::Sender<Event>,
    last_stats: Option<StatsReport>,
}

/// What woke the daemon up.
enum Wake {
    Command(Option<Command>),
    Engine(Option<proto::Event>),
    EngineExited(String),
    ConfigTick,
    /// The config file was touched: read it after `CONFIG_POLL` (reading at once could catch
    /// a write half done, twice).
    ConfigEvent,
    StatsTick,
    RoutesTick,
    /// The OS routing table changed.
    RouteChange,
    Stop(&'static str),
}

/// How often the config file is checked without a file-system watch, and how soon a changed
/// file is read again (a change applies after two identical reads).
const CONFIG_POLL: Duration = Duration::from_millis(250);
/// With a watch, the file is still read this often, in case an event was lost.
const CONFIG_POLL_WATCHED: Duration = Duration::from_secs(30);
/// How often subscribers get counters while traffic flows.
const STATS_PUSH: Duration = Duration::from_secs(1);
/// Docker never has more networks than this; a larger set is a mistake or an attack.
pub const MAX_ROUTES: usize = 1024;

/// Why a subnet must not go through the tunnel: a prefix this short would swallow the
/// internet (or the LAN), and loopback, link-local and multicast are never container networks.
pub fn unroutable(net: &IpNet) -> Option<&'static str> {
    use std::net::IpAddr;
    let too_short = match net {
        IpNet::V4(n) => n.prefix_len() < 8,
        IpNet::V6(n) => n.prefix_len() < 16,
    };
    if too_short {
        return Some("prefix too short for a container network (at least /8, or /16 for IPv6)");
    }
    let special = match net.network() {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_loopback() || a.is_unicast_link_local() || a.is_multicast() || a.is_unspecified(),
    };
    special.then_some("loopback, link-local and multicast ranges are never routed")
}

/// How often the routing table is compared with what we installed: routes others removed are
/// put back, conflicts that went away (VPN disconnected) are installed, failures retried.
const ROUTES_CHECK: Duration = Duration::from_secs(5);
/// With route-change notifications the table is read when it changes, and otherwise only this
/// often, as a safety net (an idle helper then spawns no `ip` every few seconds).
const ROUTES_CHECK_NOTIFIED: Duration = Duration::from_secs(60);
/// Route-change notifications trigger at most one check per this: another program that keeps
/// deleting our route (some VPN clients) must not make us spin.
const ROUTE_CHANGE_GAP: Duration = Duration::from_secs(1);
/// An engine that does not answer within this is stuck; the caller gets an error, not a hang.
const ENGINE_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

impl Daemon {
    pub fn new(config_path: &Path, config: Config, secret: Secret, tun_name: Option<String>) -> Daemon {
        Daemon {
            config_path: config_path.to_path_buf(),
            last_config_text: std::fs::read_to_string(config_path).ok(),
            config_candidate: None,
            config,
            secret,
            secret_source: SecretSource::File,
            tun_name,
            app_routes: BTreeSet::new(),
            disabled: BTreeSet::new(),
            want_connected: false,
            tunnel: None,
            route_states: BTreeMap::new(),
            routes_retry_soon: false,
            error: None,
            events: broadcast::channel(64).0,
            last_stats: None,
        }
    }

    pub fn policy(&self) -> crate::authz::Policy {
        crate::authz::Policy {
            groups: self.config.allow_groups.clone(),
            require_signature: self.config.require_signature.clone(),
        }
    }

    /// Runs until SIGTERM/SIGINT, then tears down what it added.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        policy: tokio::sync::watch::Sender<crate::authz::Policy>,
    ) {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let mut config_watch = crate::config_watch::ConfigWatch::new(&self.config_path);
        let config_every = if config_watch.is_watching() { CONFIG_POLL_WATCHED } else { CONFIG_POLL };
        let mut config_tick = tokio::time::interval(config_every);
        let mut stats_tick = tokio::time::interval(STATS_PUSH);
        let mut route_changes = match platform::RouteChanges::open() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("no route-change notifications ({e}); checking routes every {ROUTES_CHECK:?}");
                None
            }
        };
        let every = if route_changes.is_some() { ROUTES_CHECK_NOTIFIED } else { ROUTES_CHECK };
        let mut routes_tick = tokio::time::interval(every);
        let mut last_route_check = tokio::time::Instant::now();
        loop {
            let wake = tokio::select! {
                c = commands.recv() => Wake::Command(c),
                e = next_engine_event(&mut self.tunnel) => e,
                _ = config_tick.tick() => Wake::ConfigTick,
                () = config_watch.changed() => Wake::ConfigEvent,
                _ = stats_tick.tick() => Wake::StatsTick,
                _ = routes_tick.tick() => Wake::RoutesTick,
                r = next_route_change(&mut route_changes) => {
                    if let Err(e) = r {
                        tracing::warn!("route-change notifications failed ({e}); checking routes every {ROUTES_CHECK:?}");
                        route_changes = None;
                        routes_tick = tokio::time::interval(ROUTES_CHECK);
                    }
                    Wake::RouteChange
                }
                _ = term.recv() => Wake::Stop("SIGTERM"),
                _ = int.recv() => Wake::Stop("SIGINT"),
            };
            match wake {
                Wake::Command(Some(c)) => {
                    let answer = self.handle(c.op).await;
                    let _ = c.reply.send(answer);
                }
                Wake::Command(None) => {}
                Wake::Engine(Some(ev)) => {
                    driver::log_event("host", &ev);
                    self.publish_status().await;
                }
                Wake::Engine(None) => {}
                Wake::EngineExited(why) => {
                    tracing::error!("tunnel stopped: {why}");
                    self.teardown_tunnel().await;
                    self.error = Some(why);
                    self.publish_status().await;
                }
                Wake::ConfigTick => {
                    if self.reload_if_changed() {
                        let _ = policy.send(self.policy());
                        self.publish_status().await;
                    }
                    // A change seen once is read again soon, to be applied when it holds still.
                    if self.config_candidate.is_some() {
                        config_tick.reset_after(CONFIG_POLL);
                    }
                }
                Wake::ConfigEvent => config_tick.reset_after(CONFIG_POLL),
                Wake::StatsTick => self.publish_stats().await,
                Wake::RouteChange if last_route_check.elapsed() < ROUTE_CHANGE_GAP => {
                    routes_tick.reset_after(ROUTE_CHANGE_GAP - last_route_check.elapsed());
                }
                Wake::RoutesTick | Wake::RouteChange => {
                    last_route_check = tokio::time::Instant::now();
                    if self.tunnel.is_some() {
                        let before = self.route_states.clone();
                        self.reconcile_routes();
                        if before != self.route_states {
                            self.publish_status().await;
                        }
                        // Something to retry (a failed add, an unreadable table): not only at
                        // the next notification or in a minute.
                        if self.routes_retry_soon {
                            routes_tick.reset_after(ROUTES_CHECK);
                        }
                    }
                }
                Wake::Stop(sig) => {
                    tracing::info!("{sig}: shutting down");
                    break;
                }
            }
        }
        self.teardown_tunnel().await;
    }

    pub async fn handle(&mut self, op: Op) -> Result<Answer, ApiError> {
        let answer = match op {
            Op::Status => Answer::Status(self.status().await),
            Op::Stats => Answer::Stats(self.stats().await?),
            Op::Connect => {
                self.want_connected = true;
                self.connect().await.map_err(|e| ApiError::new(ErrorCode::Failed, e))?;
                Answer::Done
            }
            Op::Disconnect => {
                self.want_connected = false;
                self.error = None;
                self.teardown_tunnel().await;
                Answer::Done
            }
            Op::SetSecret { secret } => {
                let secret = Secret::new(secret.0.into_bytes())
                    .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.to_string()))?;
                if let Some(t) = &self.tunnel {
                    let s = secret.clone();
                    let _ = t.control.send(Box::new(move |h: &mut Host, _| h.set_secret(s)));
                }
                self.secret = secret;
                self.secret_source = SecretSource::Api;
                tracing::info!("shared secret replaced through the API");
                Answer::Done
            }
            Op::SetRoutes { routes } => {
                if routes.len() > MAX_ROUTES {
                    let msg = format!("{} routes; at most {MAX_ROUTES}", routes.len());
                    return Err(ApiError::new(ErrorCode::InvalidArgument, msg));
                }
                if let Some((net, why)) = routes.iter().find_map(|n| unroutable(n).map(|why| (n, why))) {
                    return Err(ApiError::new(ErrorCode::InvalidArgument, format!("route {net}: {why}")));
                }
                self.app_routes = routes.iter().map(IpNet::trunc).collect();
                self.reconcile_routes();
                Answer::Done
            }
            Op::SetRouteEnabled { route, enabled } => {
                let route = route.trunc();
                if !self.all_routes().contains_key(&route) {
                    return Err(ApiError::new(ErrorCode::InvalidArgument, format!("no route {route} is configured")));
                }
                if enabled {
                    self.disabled.remove(&route);
                } else {
                    self.disabled.insert(route);
                }
                self.reconcile_routes();
                Answer::Done
            }
            // Handled by the connection itself.
            Op::Hello { .. } | Op::Subscribe => Answer::Done,
        };
        if !matches!(answer, Answer::Status(_) | Answer::Stats(_)) {
            self.publish_status().await;
        }
        Ok(answer)
    }

    /// Brings the tunnel up (idempotent). On failure nothing stays half-made.
    pub async fn connect(&mut self) -> Result<(), String> {
        if self.tunnel.is_some() {
            return Ok(());
        }
        self.want_connected = true;
        match self.build_tunnel().await {
            Ok(t) => {
                tracing::info!("listening on udp {}, tunnel device {} {}", t.listen, t.ifname, t.link.host_v4);
                self.tunnel = Some(t);
                self.error = None;
                self.reconcile_routes();
                if let Some(t) = &self.tunnel {
                    log_installed(&t.routes);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!("cannot connect: {e}");
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn build_tunnel(&self) -> Result<Tunnel, String> {
        let cfg = &self.config;
        let os_routes = platform::route_table().map_err(|e| format!("cannot read the routing table: {e}"))?;
        let link4 = table::choose_link_subnet(cfg.addr, cfg.addr_pinned, &os_routes, "")?;
        if link4 != cfg.addr {
            tracing::warn!("link subnet {} is taken; using {link4}", cfg.addr.trunc());
        }
        let guest4 = nth_host(link4, 1);
        let (host6, guest6) = (cfg.host_link_v6(), cfg.guest_link_v6());
        let spec = TunSpec {
            name: self
                .tun_name
                .clone()
                .or_else(|| Some(platform::DEFAULT_TUN_NAME.to_string()))
                .filter(|n| !n.is_empty()),
            mtu: cfg.mtu,
            v4: Some((link4.addr(), link4.prefix_len(), guest4)),
            v6: host6.map(|n| (n.addr(), n.prefix_len())),
            offload: driver::wants_tun_offload(),
        };
        let listen = cfg.listen_addr();
        let udp =
            tokio::net::UdpSocket::bind(listen).await.map_err(|e| format!("cannot listen on udp {listen}: {e}"))?;
        let tun = Arc::new(platform::create_tun(&spec).map_err(|e| e.to_string())?);
        let ifname = tun.name().map_err(|e| format!("TUN device has no name: {e}"))?;
        let host = Host::new(
            HostConfig {
                secret: self.secret.clone(),
                mtu: cfg.mtu,
                keepalive: cfg.keepalive,
                host_v4: link4.addr(),
                guest_v4: guest4,
                prefix_v4: link4.prefix_len(),
                v6: host6.zip(guest6).map(|(h, g)| (h.addr(), g, h.prefix_len())),
            },
            Box::new(OsEntropy),
        );
        let (control, control_rx) = mpsc::unbounded_channel::<Control<Host>>();
        let (event_tx, events) = mpsc::unbounded_channel();
        driver::log_stats_on_sigusr1(control.clone(), "host").map_err(|e| e.to_string())?;
        let engine = tokio::spawn(driver::run(
            host,
            driver::DriverConfig { mtu: cfg.mtu },
            tun.clone(),
            Arc::new(udp),
            control_rx,
            event_tx,
        ));
        Ok(Tunnel {
            routes: Routes::new(SystemRoutes, ifname.clone()),
            link: LinkInfo { host_v4: link4, guest_v4: guest4, host_v6: host6, guest_v6: guest6, mtu: cfg.mtu },
            _device: tun,
            ifname,
            control,
            events,
            engine: Some(engine),
            listen,
        })
    }

    /// Removes our routes, stops the engine, then drops the device (which deletes it), so that
    /// when this returns nothing of the tunnel is left. Idempotent.
    pub async fn teardown_tunnel(&mut self) {
        let Some(mut t) = self.tunnel.take() else { return };
        for (net, e) in t.routes.clear() {
            tracing::warn!("could not remove route {net}: {e}");
        }
        let ifname = t.ifname.clone();
        if let Some(engine) = t.engine.take() {
            engine.abort();
            let _ = engine.await;
        }
        drop(t);
        self.reconcile_routes();
        tracing::info!("tunnel down; removed our routes and {ifname}");
    }

    /// Config `route` lines and the app's set, each with where it came from.
    fn all_routes(&self) -> BTreeMap<IpNet, RouteSource> {
        let mut all: BTreeMap<IpNet, RouteSource> = self.app_routes.iter().map(|n| (*n, RouteSource::App)).collect();
        for n in self.config.route_nets() {
            all.insert(n, RouteSource::Config);
        }
        all
    }

    /// Makes the installed routes match what is wanted, skipping conflicts with routes others own.
    /// It runs `ip`/`route` commands: on a thread of their own, so the runtime's others go on.
    fn reconcile_routes(&mut self) {
        tokio::task::block_in_place(|| self.reconcile_routes_blocking());
    }

    fn reconcile_routes_blocking(&mut self) {
        let all = self.all_routes();
        let mut states = BTreeMap::new();
        let Some(t) = self.tunnel.as_mut() else {
            for net in all.keys() {
                let state = if self.disabled.contains(net) { RouteState::Disabled } else { RouteState::Pending };
                states.insert(*net, state);
            }
            self.route_states = states;
            return;
        };
        // Without the table we cannot tell a LAN or VPN route from a free one: change nothing
        // this round (fail closed) and try again at the next check.
        let os_routes = match platform::route_table() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("cannot read the routing table ({e}); routes unchanged until the next check");
                self.routes_retry_soon = true;
                return;
            }
        };
        // Ours, but gone from the table: someone removed it; forget it so it is added again.
        let gone: Vec<IpNet> = t
            .routes
            .installed()
            .filter(|n| !os_routes.iter().any(|e| e.dest == **n && e.interface == t.ifname))
            .copied()
            .collect();
        if !os_routes.is_empty() {
            for net in gone {
                tracing::warn!("route {net} via {} was removed by someone else; adding it again", t.ifname);
                t.routes.forget(&net);
            }
        }
        let mut install = Vec::new();
        for net in all.keys() {
            let state = if self.disabled.contains(net) {
                RouteState::Disabled
            } else if let Some(why) = unroutable(net) {
                RouteState::Failed { message: why.to_string() }
            } else if let Some(c) = table::find_conflict(*net, &os_routes, &t.ifname) {
                tracing::warn!("route {net} not installed: overlaps {} on {}", c.dest, c.interface);
                RouteState::Conflict { interface: c.interface.clone(), route: c.dest }
            } else {
                install.push(*net);
                RouteState::Installed
            };
            states.insert(*net, state);
        }
        let failures = t.routes.reconcile(&install);
        self.routes_retry_soon = !failures.is_empty();
        for (net, e) in failures {
            tracing::error!("route {net}: {e}");
            states.insert(net, RouteState::Failed { message: e.to_string() });
        }
        if states != self.route_states {
            log_installed(&t.routes);
        }
        self.route_states = states;
    }

    /// Re-reads the config file if it changed; returns whether anything was applied.
    fn reload_if_changed(&mut self) -> bool {
        let text = match std::fs::read_to_string(&self.config_path) {
            Ok(t) => t,
            Err(e) => {
                if self.last_config_text.take().is_some() {
                    tracing::error!("cannot read {}: {e} (keeping the last good config)", self.config_path.display());
                }
                return false;
            }
        };
        if self.last_config_text.as_deref() == Some(text.as_str()) {
            self.config_candidate = None;
            return false;
        }
        if self.config_candidate.as_deref() != Some(text.as_str()) {
            self.config_candidate = Some(text);
            return false;
        }
        self.config_candidate = None;
        self.last_config_text = Some(text.clone());
        if text.trim().is_empty() {
            tracing::error!("{} is empty; not applied (keeping the last good config)", self.config_path.display());
            return false;
        }
        let base = self.config_path.parent().unwrap_or(Path::new("."));
        let new = match Config::parse(&text, base) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{}: {e} (keeping the last good config)", self.config_path.display());
                return false;
            }
        };
        for w in &new.warnings {
            tracing::warn!("{}: {w}", self.config_path.display());
        }
        let diff = config::diff(&self.config, &new);
        if !diff.restart_needed.is_empty() {
            tracing::warn!("changed {:?}: takes effect after a restart of the helper", diff.restart_needed);
        }
        tracing::info!("config reloaded: routes added {:?}, removed {:?}", diff.routes_added, diff.routes_removed);
        self.config = new;
        self.reconcile_routes();
        true
    }

    pub async fn status(&self) -> Status {
        let session = match &self.tunnel {
            Some(t) => query(t, |h: &mut Host, now| h.session().map(|s| session_info(s, now))).await.ok().flatten(),
            None => None,
        };
        let all = self.all_routes();
        Status {
            helper_version: env!("CARGO_PKG_VERSION").to_string(),
            tunnel: if self.want_connected { TunnelState::Connected } else { TunnelState::Disconnected },
            error: self.error.clone(),
            listen: self.tunnel.as_ref().map(|t| t.listen),
            interface: self.tunnel.as_ref().map(|t| t.ifname.clone()),
            link: self.tunnel.as_ref().map(|t| t.link.clone()),
            session,
            routes: all
                .iter()
                .map(|(net, source)| RouteStatus {
                    net: *net,
                    source: *source,
                    enabled: !self.disabled.contains(net),
                    state: self.route_states.get(net).cloned().unwrap_or(RouteState::Pending),
                })
                .collect(),
            secret_source: self.secret_source,
        }
    }

    async fn stats(&self) -> Result<StatsReport, ApiError> {
        match &self.tunnel {
            Some(t) => query(t, |h: &mut Host, _| stats_report(h.stats())).await,
            None => Ok(StatsReport::default()),
        }
    }

    async fn publish_status(&mut self) {
        if self.events.receiver_count() > 0 {
            let status = self.status().await;
            let _ = self.events.send(Event::Status(status));
        }
    }

    /// Pushes counters to subscribers when they changed since the last push.
    async fn publish_stats(&mut self) {
        if self.events.receiver_count() == 0 || self.tunnel.is_none() {
            return;
        }
        let Ok(stats) = self.stats().await else { return };
        if self.last_stats.as_ref() != Some(&stats) {
            self.last_stats = Some(stats.clone());
            let _ = self.events.send(Event::Stats(stats));
        }
    }
}

async fn next_route_change(changes: &mut Option<platform::RouteChanges>) -> std::io::Result<()> {
    match changes {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

fn log_installed(routes: &Routes<SystemRoutes>) {
    let now: Vec<String> = routes.installed().map(ToString::to_string).collect();
    tracing::info!("routes via tunnel: [{}]", now.join(", "));
}

async fn next_engine_event(tunnel: &mut Option<Tunnel>) -> Wake {
    let Some(t) = tunnel.as_mut() else { return std::future::pending().await };
    let Some(engine) = t.engine.as_mut() else { return std::future::pending().await };
    let finished = tokio::select! {
        e = t.events.recv() => return Wake::Engine(e),
        r = engine => r,
    };
    t.engine = None;
    Wake::EngineExited(match finished {
        Ok(Ok(_)) => "engine stopped".to_string(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => format!("engine task failed: {e}"),
    })
}

/// Runs `f` on the engine's core and returns its result.
async fn query<T: Send + 'static>(
    t: &Tunnel,
    f: impl FnOnce(&mut Host, Instant) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    let sent = t.control.send(Box::new(move |h: &mut Host, now| {
        let _ = tx.send(f(h, now));
    }));
    let failed = || ApiError::new(ErrorCode::Failed, "the tunnel engine is not responding");
    sent.map_err(|_| failed())?;
    tokio::time::timeout(ENGINE_QUERY_TIMEOUT, rx).await.map_err(|_| failed())?.map_err(|_| failed())
}

fn session_info(s: &proto::Session, now: Instant) -> SessionInfo {
    SessionInfo {
        id: format!("{:016x}", s.id()),
        guest: s.peer,
        alive: s.alive,
        handshake_age_ms: now.saturating_duration_since(s.established_at).as_millis() as u64,
        last_seen_ms: now.saturating_duration_since(s.last_rx).as_millis() as u64,
    }
}

/// The n-th address after the network address (wrapping inside the subnet, skipping the
/// host's own), as `Config::guest_link_v4` does for the configured subnet.
fn nth_host(net: ipnet::Ipv4Net, n: u32) -> std::net::Ipv4Addr {
    let base = u32::from(net.network());
    let size = 1u32 << (32 - u32::from(net.prefix_len())).min(31);
    let mut candidate = base + (n % size.max(2));
    if candidate == u32::from(net.addr()) {
        candidate = base + ((n + 1) % size.max(2));
    }
    candidate.into()
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
    }
}
