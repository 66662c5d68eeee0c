//! The control loop: follow Docker's networks, keep the guest container right, tell the helper
//! what to route, and repair the tunnel when the tunnel itself says it is dead.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::query_parameters::EventsOptionsBuilder;
use bollard::Docker;
use dockroute_api::client::Client;
use dockroute_api::{Event, Op, Redacted, Status};
use futures_util::StreamExt;
use ipnet::IpNet;
use tokio::sync::watch;

use crate::discovery::{self, BridgeNetwork};
use crate::endpoint::{self, Endpoint, Env};
use crate::guest::{self, GuestSpec};
use crate::view::{self, ContainerView, Problem, View};

#[derive(Clone)]
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
    /// The tunnel secret (the app keeps one in the keychain, so a restarted app finds its
    /// guest still valid). None: a fresh one for this run only.
    pub secret: Option<Vec<u8>>,
}

/// By hand, so the secret never reaches a log through `{:?}`.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("helper_socket", &self.helper_socket)
            .field("port", &self.port)
            .field("host_address", &self.host_address)
            .field("guest_image", &self.guest_image)
            .field("guest_tarball", &self.guest_tarball)
            .field("pairs", &self.pairs)
            .field("secret", &self.secret.as_ref().map(|s| format!("<{} bytes>", s.len())))
            .finish()
    }
}

/// How the controller talks to whoever shows its state: it publishes the `View` and follows
/// the user's per-network toggles.
pub struct Links {
    pub view: watch::Sender<View>,
    /// Names of the networks the user switched off.
    pub disabled: watch::Receiver<BTreeSet<String>>,
    /// The user's Retry: reconnect to Docker now rather than at the end of the backoff.
    pub retry: std::sync::Arc<tokio::sync::Notify>,
}

impl Links {
    /// For a controller nobody watches (`--headless`): every network on, the view unread.
    pub fn detached() -> Links {
        Links {
            view: watch::channel(View::default()).0,
            disabled: watch::channel(BTreeSet::new()).1,
            retry: Default::default(),
        }
    }
}

/// What to do with the guest and the routes when the controller stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Disconnect: remove the guest container, withdraw the routes, take the tunnel down.
    Teardown,
    /// Quit the app but keep the containers reachable: the next start adopts everything.
    Leave,
}

/// A failure the user can act on, carried through `anyhow` so the service can show it.
#[derive(Debug)]
pub struct ProblemError(pub Problem);

impl std::fmt::Display for ProblemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.title, self.0.detail)
    }
}

impl std::error::Error for ProblemError {}

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
    links: Links,
    containers: Vec<ContainerView>,
    last_status: Option<Status>,
    docker_problem: Option<Problem>,
    helper_problem: Option<Problem>,
    /// The last sync failed for another reason (the guest image, the helper refusing a route).
    sync_problem: Option<Problem>,
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
    pub async fn connect(opts: Options, links: Links) -> anyhow::Result<Controller> {
        validate_pairs(&opts.pairs)?;
        let secret = match &opts.secret {
            Some(s) => s.clone(),
            // A fresh secret per run: it only ever exists in memory here, in the helper's
            // memory and as a file inside the guest container.
            None => crate::new_secret()?,
        };
        // The helper first: without it nothing works, and installing it is the user's job,
        // while Docker Desktop usually just needs a moment.
        let socket = &opts.helper_socket;
        let (client, helper_events) = open_helper(socket, &secret)
            .await
            .map_err(|e| ProblemError(view::helper_problem(socket, &e, socket.exists())))?;
        tracing::info!("connected to the helper at {}", socket.display());
        let endpoint = endpoint::resolve(&Env::from_process())
            .map_err(|e| ProblemError(view::docker_problem("the configured endpoint", &e)))?;
        let docker = connect_docker(&endpoint)
            .await
            .map_err(|e| ProblemError(view::docker_problem(&endpoint.host, &format!("{e:#}"))))?;
        let spec = GuestSpec {
            image: opts.guest_image.clone(),
            port: opts.port,
            host_address: opts.host_address,
            secret_fingerprint: guest::fingerprint(&secret),
        };
        tracing::info!("docker engine: {} (from {})", endpoint.host, endpoint.source);
        let me = Controller {
            opts,
            helper: Some(client),
            helper_events: Some(helper_events),
            docker,
            endpoint,
            secret,
            spec,
            networks: Vec::new(),
            routes_sent: None,
            rules_sent: None,
            links,
            containers: Vec::new(),
            last_status: None,
            docker_problem: None,
            helper_problem: None,
            sync_problem: None,
            last_alive: Instant::now(),
            repair_backoff: DEAD_TUNNEL,
            next_repair: Instant::now(),
        };
        me.publish();
        Ok(me)
    }

    /// The helper connection, made again (secret, connect, subscribe) if it was lost: a
    /// restarted helper knows nothing of us.
    async fn helper(&mut self) -> anyhow::Result<&Client> {
        if self.helper.as_ref().is_some_and(Client::is_connected) {
            return Ok(self.helper.as_ref().expect("checked"));
        }
        self.helper = None;
        let client = match open_helper(&self.opts.helper_socket, &self.secret).await {
            Ok((c, events)) => {
                self.helper_events = Some(events);
                c
            }
            Err(e) => {
                let socket = &self.opts.helper_socket;
                let problem = view::helper_problem(socket, &e, socket.exists());
                if self.helper_problem.as_ref() != Some(&problem) {
                    self.helper_problem = Some(problem.clone());
                    self.publish();
                }
                return Err(ProblemError(problem).into());
            }
        };
        if self.helper_problem.take().is_some() {
            self.publish();
        }
        // It has none of our routes yet.
        self.routes_sent = None;
        self.last_alive = Instant::now();
        tracing::info!("connected to the helper at {}", self.opts.helper_socket.display());
        Ok(self.helper.insert(client))
    }

    /// Publishes what the controller knows to the view (the dashboard and the tray).
    fn publish(&self) {
        let disabled = self.links.disabled.borrow().clone();
        let routes = self.last_status.as_ref().map(|s| s.routes.as_slice()).unwrap_or_default();
        self.links.view.send_modify(|v| {
            v.engine = Some(self.endpoint.host.clone());
            v.tunnel = self.last_status.as_ref().map(view::tunnel_view);
            v.networks = view::network_views(&self.networks, &disabled, routes, &self.containers);
            v.containers = self.containers.clone();
            v.problem = (self.helper_problem.clone())
                .or_else(|| self.docker_problem.clone())
                .or_else(|| self.sync_problem.clone());
            if v.problem.is_none() {
                v.problem = v.conflict_warning();
            }
        });
    }

    fn set_docker_problem(&mut self, problem: Option<Problem>) {
        if self.docker_problem != problem {
            self.docker_problem = problem;
            self.publish();
        }
    }

    /// Runs until `shutdown` resolves, then tears down or leaves everything as `Exit` says.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = Exit>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(RESYNC);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        let mut backoff = Duration::from_millis(250);
        let mut disabled = self.links.disabled.clone();
        let exit = 'outer: loop {
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
                        ev = next_helper_event(&mut helper_events) => { self.on_helper_event(ev); None }
                        _ = liveness.tick() => { self.check_liveness().await; None }
                        Ok(()) = disabled.changed() => { if let Err(e) = self.sync().await { tracing::warn!("applying a network toggle failed: {e:#}"); } None }
                        exit = &mut shutdown => break 'outer exit,
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
                            } else if changes_containers(&ev) {
                                self.refresh_containers().await;
                            }
                        }
                        Some(Some(Err(e))) => {
                            tracing::warn!("docker event stream: {e}");
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &e)));
                            break;
                        }
                        Some(None) => {
                            tracing::warn!("docker event stream ended (dockerd restarted?)");
                            let why = "the event stream ended (dockerd restarted?)";
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &why)));
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
            let retry = self.links.retry.clone();
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = retry.notified() => backoff = Duration::from_millis(250),
                exit = &mut shutdown => break 'outer exit,
            }
            backoff = (backoff * 2).min(Duration::from_secs(8));
        };
        match exit {
            Exit::Teardown => self.teardown().await,
            Exit::Leave => {
                tracing::info!("leaving the guest and the routes in place for the next start");
                Ok(())
            }
        }
    }

    fn on_helper_event(&mut self, ev: Option<Event>) {
        match ev {
            Some(Event::Status(s)) => {
                self.note_status(&s);
                if self.last_status.as_ref() != Some(&s) {
                    self.last_status = Some(s);
                    self.publish();
                }
            }
            Some(Event::Stats(stats)) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default();
                self.links.view.send_modify(|v| v.push_stats(stats, now_ms));
            }
            None => {}
        }
    }

    /// The container list for the dashboard; a failure keeps the last one (the next sync or
    /// event stream error reports Docker's state).
    async fn refresh_containers(&mut self) {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default().all(false).build();
        match self.docker.list_containers(Some(options)).await {
            Ok(list) => {
                let views = view::container_views(&list, &self.networks);
                if views != self.containers {
                    self.containers = views;
                    self.publish();
                }
            }
            Err(e) => tracing::warn!("cannot list containers: {e}"),
        }
    }

    /// `sync_once`, with a failure the user can see (and a success clearing it).
    async fn sync(&mut self) -> anyhow::Result<()> {
        let result = self.sync_once().await;
        // Unreachable helper or Docker already have their own problem; anything else is shown
        // as what it is (a guest image that cannot be loaded, a route the helper refuses).
        let problem = match &result {
            Ok(()) => None,
            Err(e) if e.downcast_ref::<ProblemError>().is_some() || self.docker_problem.is_some() => {
                self.sync_problem.clone()
            }
            Err(e) => Some(Problem {
                kind: view::ProblemKind::Other,
                title: "Cannot set up the tunnel".into(),
                detail: format!("{e:#}"),
                action: Some(view::Action::Retry),
            }),
        };
        if problem != self.sync_problem {
            self.sync_problem = problem;
            self.publish();
        }
        result
    }

    /// Lists networks, tells the helper the routes, makes sure the guest runs with current rules.
    async fn sync_once(&mut self) -> anyhow::Result<()> {
        let listed = self.docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await;
        let all = match listed {
            Ok(all) => all,
            Err(e) => {
                self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &e)));
                return Err(e.into());
            }
        };
        self.docker_problem = None;
        self.networks = discovery::bridge_networks(&all);
        self.refresh_containers().await;
        self.publish();
        let routes = discovery::desired_routes(&self.networks, &self.links.disabled.borrow());
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
        // Events come only on change (and a lagging receiver misses some): the second-by-second
        // status keeps the dashboard's handshake age and session state current.
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status.clone());
            self.publish();
        }
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
                (Ok(dockroute_api::Answer::Done), Ok(dockroute_api::Answer::Done))
            }
        };
        tracing::info!("stopped: guest container removed, routes withdrawn, tunnel disconnected");
        removed?;
        routes?;
        disconnected?;
        Ok(())
    }
}

/// Takes down what an earlier run (or a connect that never finished) may have left, without a
/// running controller: the helper's routes and tunnel, and the guest container if Docker
/// answers. Best effort and idempotent: what cannot be reached is left as it is.
pub async fn teardown_detached(opts: &Options) {
    let bounded = Duration::from_secs(5);
    let helper = async {
        let client = Client::connect(&opts.helper_socket, "dockroute controller").await.ok()?;
        client.call(Op::SetRoutes { routes: Vec::new() }).await.ok()?;
        client.call(Op::Disconnect).await.ok()
    };
    if tokio::time::timeout(bounded, helper).await.ok().flatten().is_some() {
        tracing::info!("helper: routes withdrawn, tunnel disconnected");
    }
    let guest = async {
        let endpoint = endpoint::resolve(&Env::from_process()).ok()?;
        let docker = connect_docker(&endpoint).await.ok()?;
        guest::remove_all(&docker).await.ok()
    };
    if let Ok(Some(n)) = tokio::time::timeout(bounded, guest).await {
        tracing::info!("guest containers removed: {n}");
    }
}

/// Connects to the helper, hands it the secret, asks for the tunnel and subscribes to its events.
async fn open_helper(
    socket: &std::path::Path,
    secret: &[u8],
) -> Result<(Client, tokio::sync::broadcast::Receiver<Event>), dockroute_api::client::ClientError> {
    let client = Client::connect(socket, "dockroute controller").await?;
    client.call(Op::SetSecret { secret: Redacted(String::from_utf8_lossy(secret).into_owned()) }).await?;
    client.call(Op::Connect).await?;
    let events = client.subscribe().await?;
    Ok((client, events))
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

/// Container events that change the dashboard's list (not the routes).
fn changes_containers(ev: &bollard::models::EventMessage) -> bool {
    ev.typ == Some(bollard::models::EventMessageTypeEnum::CONTAINER)
        && matches!(ev.action.as_deref().unwrap_or_default(), "start" | "die" | "destroy" | "rename")
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
