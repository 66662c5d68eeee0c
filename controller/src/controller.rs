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
    helper: Client,
    docker: Docker,
    endpoint: Endpoint,
    secret: Vec<u8>,
    spec: GuestSpec,
    networks: Vec<BridgeNetwork>,
    routes_sent: Option<Vec<IpNet>>,
    rules_sent: Option<String>,
    /// Last moment the helper reported a live session (or we (re)started the guest).
    last_alive: Instant,
}

impl Controller {
    /// Connects to the helper and to Docker, and hands the helper a fresh secret.
    pub async fn connect(opts: Options) -> anyhow::Result<Controller> {
        let helper = Client::connect(&opts.helper_socket, "dockroute controller").await?;
        let endpoint = endpoint::resolve(&Env::from_process()).map_err(anyhow::Error::msg)?;
        let docker = connect_docker(&endpoint).await?;
        // A fresh secret per controller run: it only ever exists in memory here, in the
        // helper's memory and as a file inside the guest container.
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| anyhow::anyhow!("OS random generator: {e}"))?;
        let secret: Vec<u8> = raw.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes();
        helper.call(Op::SetSecret { secret: Redacted(String::from_utf8_lossy(&secret).into_owned()) }).await?;
        helper.call(Op::Connect).await?;
        let spec = GuestSpec {
            image: opts.guest_image.clone(),
            port: opts.port,
            host_address: opts.host_address,
            secret_fingerprint: guest::fingerprint(&secret),
        };
        tracing::info!("docker engine: {} (from {})", endpoint.host, endpoint.source);
        Ok(Controller {
            opts,
            helper,
            docker,
            endpoint,
            secret,
            spec,
            networks: Vec::new(),
            routes_sent: None,
            rules_sent: None,
            last_alive: Instant::now(),
        })
    }

    /// Runs until `shutdown` resolves, then removes the guest and withdraws the routes.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut helper_events = self.helper.subscribe().await?;
        let mut resync = tokio::time::interval(RESYNC);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        let mut backoff = Duration::from_millis(250);
        'outer: loop {
            // (Re)subscribe to Docker events first, then list: nothing is missed in between.
            let filters = HashMap::from([("type", vec!["network", "container"])]);
            let mut events =
                self.docker.events(Some(EventsOptionsBuilder::default().filters(&filters).build())).boxed();
            if let Err(e) = self.sync().await {
                tracing::warn!("cannot sync with docker ({}): {e:#}; retrying in {backoff:?}", self.endpoint.host);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = &mut shutdown => break 'outer,
                }
                backoff = (backoff * 2).min(Duration::from_secs(8));
                continue;
            }
            backoff = Duration::from_millis(250);
            loop {
                tokio::select! {
                    ev = events.next() => match ev {
                        Some(Ok(ev)) => {
                            if relevant(&ev) {
                                if let Err(e) = self.sync().await {
                                    tracing::warn!("sync after a docker event failed: {e:#}");
                                }
                            }
                        }
                        Some(Err(e)) => {
                            tracing::warn!("docker event stream: {e}; reconnecting");
                            continue 'outer;
                        }
                        None => {
                            tracing::warn!("docker event stream ended (dockerd restarted?); reconnecting");
                            continue 'outer;
                        }
                    },
                    _ = resync.tick() => {
                        if let Err(e) = self.sync().await {
                            tracing::warn!("periodic sync failed: {e:#}");
                            continue 'outer;
                        }
                    }
                    ev = helper_events.recv() => {
                        if let Ok(Event::Status(s)) = ev {
                            self.note_status(&s);
                        }
                    }
                    _ = liveness.tick() => self.check_liveness().await,
                    _ = &mut shutdown => break 'outer,
                }
            }
        }
        self.teardown().await
    }

    /// Lists networks, tells the helper the routes, makes sure the guest runs with current rules.
    async fn sync(&mut self) -> anyhow::Result<()> {
        let all = self.docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await?;
        self.networks = discovery::bridge_networks(&all);
        let routes = discovery::desired_routes(&self.networks);
        if self.routes_sent.as_ref() != Some(&routes) {
            self.helper.call(Op::SetRoutes { routes: routes.clone() }).await?;
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
        }
    }

    /// Liveness comes from the tunnel (the helper's session), not from Docker's events: a VM
    /// paused by Resource Saver or a dockerd restart sends no event we could rely on.
    async fn check_liveness(&mut self) {
        match self.helper.status().await {
            Ok(s) => self.note_status(&s),
            Err(e) => {
                tracing::warn!("helper status: {e}");
                return;
            }
        }
        if self.last_alive.elapsed() < DEAD_TUNNEL {
            return;
        }
        tracing::warn!("no live tunnel session for {:?}: restarting the guest", self.last_alive.elapsed());
        self.last_alive = Instant::now();
        let _ = guest::remove_all(&self.docker).await;
        self.rules_sent = None;
        if let Err(e) = self.sync().await {
            tracing::warn!("repair failed: {e:#}");
        }
    }

    /// Removes the guest container and withdraws everything from the helper. Idempotent.
    pub async fn teardown(self) -> anyhow::Result<()> {
        let removed = guest::remove_all(&self.docker).await;
        let routes = self.helper.call(Op::SetRoutes { routes: Vec::new() }).await;
        let disconnected = self.helper.call(Op::Disconnect).await;
        tracing::info!("stopped: guest container removed, routes withdrawn, tunnel disconnected");
        removed?;
        routes?;
        disconnected?;
        Ok(())
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
