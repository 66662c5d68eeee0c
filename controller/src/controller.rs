//! The control loop: follow Docker's networks, keep the guest container right, tell the helper
//! what to route, and repair the tunnel when the tunnel itself says it is dead.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use dockroute_helper::api::{Event, Op, Redacted, Status};
use dockroute_helper::client::Client;
use futures_util::StreamExt;
use ipnet::IpNet;

use crate::discovery::{self, BridgeNetwork};
use crate::endpoint::{self, Endpoint, Env};
use crate::guest::{self, GuestSpec};

#[derive(Debug, Clone)]
pub struct Options {
    pub helper_socket: PathBuf,
    /// The helper's UDP port (what the guest connects to).
    pub port: u16,
    /// Pin `host.docker.internal` in the guest to this address.
    pub host_address: Option<IpAddr>,
    pub guest_image: String,
    /// Loaded when the image is missing.
    pub guest_tarball: Option<PathBuf>,
    /// Seed-style `A+B` pairs of subnets that may reach each other.
    pub pairs: Vec<String>,
}

/// With no live session for this long (and the guest given time to start), the tunnel is
/// repaired: Resource Saver, a VM restart or a dead guest all look like this.
const DEAD_TUNNEL: Duration = Duration::from_secs(8);
/// Full re-list, in case an event was missed.
const RESYNC: Duration = Duration::from_secs(30);
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

pub struct Controller {
    opts: Options,
    /// None after the helper went away (restart, upgrade): reconnected before the next call.
    helper: Option<Client>,
    helper_events: Option<tokio::sync::broadcast::Receiver<Event>>,
    docker: Docker,
    endpoint: Endpoint,
    secret: Vec<u8>,
    spec: GuestSpec,
    networks: Vec<BridgeNetwork>,
    routes_sent: Option<Vec<IpNet>>,
    rules_sent: Option<String>,
    /// Last moment the helper reported a live session (or we (re)started the guest).
    last_alive: Instant,
    /// Grows while repairs do not help (a crash-looping guest must not be recreated every 8 s).
    repair_backoff: Duration,
    next_repair: Instant,
}

/// Longest wait between two repairs that did not bring the tunnel back.
const MAX_REPAIR_BACKOFF: Duration = Duration::from_secs(300);

/// Checks `A+B` pairs (seed syntax: two IPv4 network addresses) before anything starts, so a
/// typo is an error here and not a rules file the guest refuses.
pub fn validate_pairs(pairs: &[String]) -> anyhow::Result<()> {
    for p in pairs {
        let ok = p
            .split_once('+')
            .is_some_and(|(a, b)| a.parse::<std::net::Ipv4Addr>().is_ok() && b.parse::<std::net::Ipv4Addr>().is_ok());
        anyhow::ensure!(
            ok,
            "--iptables {p:?}: expected two IPv4 network addresses joined by +, e.g. 172.0.1.0+172.0.2.0"
        );
    }
    Ok(())
}

impl Controller {
    /// Connects to the helper and to Docker, and hands the helper a fresh secret.
    pub async fn connect(opts: Options) -> anyhow::Result<Controller> {
        validate_pairs(&opts.pairs)?;
        let endpoint = endpoint::resolve(&Env::from_process()).map_err(anyhow::Error::msg)?;
        let docker = connect_docker(&endpoint).await?;
        // A fresh secret per controller run: it only ever exists in memory here, in the
        // helper's memory and as a file inside the guest container.
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
        let secret: Vec<u8> = raw.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes();
        let spec = GuestSpec {
            image: opts.guest_image.clone(),
            port: opts.port,
            host_address: opts.host_address,
            secret_fingerprint: guest::fingerprint(&secret),
        };
        tracing::info!("docker engine: {} (from {})", endpoint.host, endpoint.source);
        let mut me = Controller {
            opts,
            helper: None,
            helper_events: None,
            docker,
            endpoint,
            secret,
            spec,
            networks: Vec::new(),
            routes_sent: None,
            rules_sent: None,
            last_alive: Instant::now(),
            repair_backoff: DEAD_TUNNEL,
            next_repair: Instant::now(),
        };
        me.helper().await?;
        Ok(me)
    }

    /// The helper connection, made again (secret, connect, subscribe) if it was lost: a
    /// restarted helper knows nothing of us.
    async fn helper(&mut self) -> anyhow::Result<&Client> {
        if self.helper.as_ref().is_some_and(Client::is_connected) {
            return Ok(self.helper.as_ref().expect("checked"));
        }
        self.helper = None;
        let client = Client::connect(&self.opts.helper_socket, "dockroute controller").await?;
        client.call(Op::SetSecret { secret: Redacted(String::from_utf8_lossy(&self.secret).into_owned()) }).await?;
        client.call(Op::Connect).await?;
        self.helper_events = Some(client.subscribe().await?);
        // It has none of our routes yet.
        self.routes_sent = None;
        self.last_alive = Instant::now();
        tracing::info!("connected to the helper at {}", self.opts.helper_socket.display());
        Ok(self.helper.insert(client))
    }

    /// Runs until `shutdown` resolves, then removes the guest and withdraws the routes.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(RESYNC);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        let mut backoff = Duration::from_millis(250);
        'outer: loop {
            // Subscribe from a moment before the listing: Docker replays what happened since,
            // so nothing falls between the two (sync is idempotent; repeats are harmless).
            let since = (std::time::SystemTime::now() - Duration::from_secs(2))
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().to_string())
                .unwrap_or_default();
            let filters = HashMap::from([("type", vec!["network", "container"])]);
            let options = EventsOptionsBuilder::default().since(&since).filters(&filters).build();
            let mut events = self.docker.events(Some(options)).boxed();
            let subscribed = Instant::now();
            let mut healthy = false;
            if let Err(e) = self.sync().await {
                tracing::warn!("cannot sync with docker ({}): {e:#}", self.endpoint.host);
            } else {
                loop {
                    let mut helper_events = self.helper_events.take();
                    let wake = tokio::select! {
                        ev = events.next() => Some(ev),
                        _ = resync.tick() => { if let Err(e) = self.sync().await { tracing::warn!("periodic sync failed: {e:#}"); } None }
                        ev = next_helper_event(&mut helper_events) => { if let Some(Event::Status(s)) = ev { self.note_status(&s); } None }
                        _ = liveness.tick() => { self.check_liveness().await; None }
                        _ = &mut shutdown => break 'outer,
                    };
                    if self.helper_events.is_none() {
                        self.helper_events = helper_events;
                    }
                    match wake {
                        None => {}
                        Some(Some(Ok(ev))) => {
                            healthy = true;
                            if relevant(&ev) {
                                if let Err(e) = self.sync().await {
                                    tracing::warn!("sync after a docker event failed: {e:#}");
                                }
                            }
                        }
                        Some(Some(Err(e))) => {
                            tracing::warn!("docker event stream: {e}");
                            break;
                        }
                        Some(None) => {
                            tracing::warn!("docker event stream ended (dockerd restarted?)");
                            break;
                        }
                    }
                }
            }
            // A stream that delivered events or stayed up a while was fine: start the backoff
            // over. One that failed at once must not make us hammer dockerd.
            if healthy || subscribed.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(250);
            }
            tracing::info!("reconnecting to docker in {backoff:?}");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut shutdown => break 'outer,
            }
            backoff = (backoff * 2).min(Duration::from_secs(8));
        }
        self.teardown().await
    }

    /// Lists networks, tells the helper the routes, makes sure the guest runs with current rules.
    async fn sync(&mut self) -> anyhow::Result<()> {
        let all = self.docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await?;
        self.networks = discovery::bridge_networks(&all);
        let routes = discovery::desired_routes(&self.networks);
        if self.routes_sent.as_ref() != Some(&routes) {
            self.helper().await?.call(Op::SetRoutes { routes: routes.clone() }).await?;
            let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
            tracing::info!("routes for docker networks: [{}]", shown.join(", "));
            self.routes_sent = Some(routes);
        }
        let rules = discovery::guest_rules(&self.networks, &self.opts.pairs);
        guest::ensure_image(&self.docker, &self.spec.image, self.opts.guest_tarball.as_deref()).await?;
        match guest::ensure(&self.docker, &self.spec, &self.secret, &rules).await? {
            guest::Ensured::AlreadyRunning => {
                if self.rules_sent.as_ref() != Some(&rules) {
                    guest::update_rules(&self.docker, &rules).await?;
                }
            }
            other => {
                tracing::info!("guest container: {other:?}");
                self.last_alive = Instant::now();
            }
        }
        self.rules_sent = Some(rules);
        Ok(())
    }

    fn note_status(&mut self, s: &Status) {
        if s.session.as_ref().is_some_and(|x| x.alive) {
            self.last_alive = Instant::now();
            self.repair_backoff = DEAD_TUNNEL;
        }
    }

    /// Liveness comes from the tunnel (the helper's session), not from Docker's events: a VM
    /// paused by Resource Saver or a dockerd restart sends no event we could rely on.
    async fn check_liveness(&mut self) {
        let status = match self.helper().await {
            Ok(h) => h.status().await,
            Err(e) => {
                tracing::warn!("helper unavailable: {e:#}");
                return;
            }
        };
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("helper status: {e}");
                return;
            }
        };
        self.note_status(&status);
        // A reconnected helper (it restarted) has none of our routes yet.
        if self.routes_sent.is_none() {
            if let Err(e) = self.sync().await {
                tracing::warn!("sync after reconnecting to the helper failed: {e:#}");
            }
        }
        // The helper's side is down (it could not bring the tunnel up): ask it again rather
        // than blame the guest.
        if status.interface.is_none() {
            if let Some(h) = &self.helper {
                if let Err(e) = h.call(Op::Connect).await {
                    tracing::warn!("helper cannot connect the tunnel: {e}");
                }
            }
            return;
        }
        if self.last_alive.elapsed() < DEAD_TUNNEL || Instant::now() < self.next_repair {
            return;
        }
        tracing::warn!(
            "no live tunnel session for {:?}: recreating the guest (next try at the earliest in {:?})",
            self.last_alive.elapsed(),
            self.repair_backoff
        );
        self.next_repair = Instant::now() + self.repair_backoff;
        self.repair_backoff = (self.repair_backoff * 2).min(MAX_REPAIR_BACKOFF);
        self.last_alive = Instant::now();
        let _ = guest::remove_all(&self.docker).await;
        self.rules_sent = None;
        if let Err(e) = self.sync().await {
            tracing::warn!("repair failed: {e:#}");
        }
    }

    /// Removes the guest container and withdraws everything from the helper. Idempotent.
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        let removed = guest::remove_all(&self.docker).await;
        let (routes, disconnected) = match self.helper().await {
            Ok(h) => (h.call(Op::SetRoutes { routes: Vec::new() }).await, h.call(Op::Disconnect).await),
            Err(e) => {
                tracing::warn!("helper unavailable at shutdown: {e:#}");
                (Ok(dockroute_helper::api::Answer::Done), Ok(dockroute_helper::api::Answer::Done))
            }
        };
        tracing::info!("stopped: guest container removed, routes withdrawn, tunnel disconnected");
        removed?;
        routes?;
        disconnected?;
        Ok(())
    }
}

async fn next_helper_event(rx: &mut Option<tokio::sync::broadcast::Receiver<Event>>) -> Option<Event> {
    let Some(r) = rx.as_mut() else { return std::future::pending().await };
    match r.recv().await {
        Ok(e) => Some(e),
        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
        // The helper connection ended: drop the receiver; liveness reconnects.
        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
            *rx = None;
            None
        }
    }
}

fn relevant(ev: &bollard::models::EventMessage) -> bool {
    use bollard::models::EventMessageTypeEnum as T;
    let action = ev.action.as_deref().unwrap_or_default();
    match ev.typ {
        Some(T::NETWORK) => matches!(action, "create" | "destroy" | "remove" | "connect" | "disconnect"),
        // Only our guest's container matters here; others' come and go freely.
        Some(T::CONTAINER) => {
            let ours = ev
                .actor
                .as_ref()
                .and_then(|a| a.attributes.as_ref())
                .is_some_and(|a| a.contains_key(guest::LABEL_OURS));
            ours && matches!(action, "die" | "destroy" | "stop" | "kill")
        }
        _ => false,
    }
}

async fn connect_docker(endpoint: &Endpoint) -> anyhow::Result<Docker> {
    let docker = if let Some(path) = endpoint.host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 60, bollard::API_DEFAULT_VERSION)?
    } else {
        Docker::connect_with_host(&endpoint.host)?
    };
    // The engine may be older than our default API version (docker-mac-net-connect #62).
    Ok(docker.negotiate_version().await?)
}
