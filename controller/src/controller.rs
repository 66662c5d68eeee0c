//! The control loop, a thin driver: it gathers what Docker and the helper say, and carries out
//! what the cores decide — which events matter and when to subscribe again (`docker_link`),
//! when to repair the tunnel (`repair`), what the user sees (`view`), how to take it all down
//! (`teardown`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard::models::{ContainerSummary, EventMessage};
use bollard::Docker;
use dockroute_api::client::Client;
use dockroute_api::{Event, Op, Status};
use futures_util::StreamExt;
use ipnet::IpNet;
use tokio::sync::{watch, Notify};

use crate::discovery::{self, BridgeNetwork};
use crate::docker_link::{self, EventEffect, Resubscribe};
use crate::endpoint::{self, DockerEndpoint, Env};
use crate::guest::{self, GuestSpec};
use crate::guest_image;
use crate::helper_link::{Connection, HelperLink};
use crate::idle::{IdleDecision, IdlePolicy};
use crate::names::{self, NameSet};
use crate::options::{validate_pairs, Options};
use crate::repair::{Decision, RepairPolicy};
use crate::sync_policy::{GuestStep, SyncPolicy};
use crate::teardown;
use crate::view::{self, ContainerView, Gathered, Problem, ProblemError, ViewWriter};

/// The controller's channels to whoever shows its state: it reports what it gathered to the
/// view's writer and follows the user's network toggles and Retry on the others.
pub struct ViewChannels {
    pub view: ViewWriter,
    /// Names of the networks the user switched off.
    pub disabled: watch::Receiver<BTreeSet<String>>,
    /// The user's Retry: reconnect to Docker now rather than at the end of the backoff.
    pub retry: Arc<Notify>,
    /// Whether the guest may sleep while no other container runs (the app's preference).
    pub sleep: watch::Receiver<bool>,
}

/// What to do with the guest and the routes when the controller stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Disconnect: remove the guest container, withdraw the routes, take the tunnel down.
    Teardown,
    /// Quit the app but keep the containers reachable: the next start adopts everything.
    Leave,
}

/// Full re-list, in case an event was missed.
const RESYNC: Duration = Duration::from_secs(30);
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

pub struct Controller {
    opts: Options,
    helper: HelperLink,
    docker: Docker,
    endpoint: DockerEndpoint,
    secret: Vec<u8>,
    spec: GuestSpec,
    networks: Vec<BridgeNetwork>,
    /// What the helper and the guest have from us, and when to send again.
    sync: SyncPolicy,
    channels: ViewChannels,
    containers: Vec<ContainerView>,
    /// Docker's last container list, which the names are made from.
    listed: Vec<ContainerSummary>,
    names: NameSet,
    last_status: Option<Status>,
    docker_problem: Option<Problem>,
    /// The last sync failed for another reason (the guest image, the helper refusing a route).
    sync_problem: Option<Problem>,
    repair: RepairPolicy,
    /// The engine's CPU as `docker info` says it, asked once per connection.
    engine_arch: Option<String>,
    /// Whether the guest sleeps while no other container runs.
    idle: IdlePolicy,
    /// Pokes sent to the guest (each one a new file content, so its watch sees a change).
    pokes: u64,
}

/// What woke the loop.
// One at a time, handled at once: boxing the helper's event would only add noise.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Docker(Option<Result<EventMessage, bollard::errors::Error>>),
    Resync,
    Helper(Option<Event>),
    Liveness,
    Toggle,
    /// The guest may go idle now.
    IdleDue,
    /// The preference to let Docker sleep changed.
    SleepPreference,
    Stop(Exit),
}

impl Controller {
    /// Connects to the helper (handing it the secret) and to Docker.
    pub async fn connect(opts: Options, channels: ViewChannels) -> anyhow::Result<Controller> {
        validate_pairs(&opts.pairs)?;
        let secret = match &opts.secret {
            Some(s) => s.clone(),
            // A fresh secret: it only ever exists in memory here, in the helper's memory and as
            // a file inside the guest container.
            None => crate::new_secret()?,
        };
        // The helper first: without it nothing works, and installing it is the user's job,
        // while Docker Desktop usually just needs a moment.
        let mut helper = HelperLink::new(opts.helper_socket.clone(), secret.clone());
        helper.connect().await.map_err(ProblemError)?;
        let endpoint = endpoint::resolve(&Env::from_process())
            .map_err(|e| ProblemError(view::docker_problem("the configured endpoint", &e)))?;
        let docker = docker_link::connect(&endpoint)
            .await
            .map_err(|e| ProblemError(view::docker_problem(&endpoint.host, &format!("{e:#}"))))?;
        // The guest takes the helper's transport setting.
        let transport = match helper.client() {
            Some(c) => c.status().await.map(|s| s.transport).unwrap_or_default(),
            None => Default::default(),
        };
        let spec = GuestSpec {
            image: opts.guest_image.clone(),
            port: opts.port,
            host_address: opts.host_address,
            secret_fingerprint: guest::fingerprint(&secret),
            transport,
        };
        tracing::info!("docker engine: {} (from {})", endpoint.host, endpoint.source);
        let idle = IdlePolicy::new(*channels.sleep.borrow());
        let me = Controller {
            opts,
            helper,
            docker,
            endpoint,
            secret,
            spec,
            networks: Vec::new(),
            sync: SyncPolicy::default(),
            channels,
            containers: Vec::new(),
            listed: Vec::new(),
            names: NameSet::default(),
            last_status: None,
            docker_problem: None,
            sync_problem: None,
            repair: RepairPolicy::new(Instant::now()),
            engine_arch: None,
            idle,
            pokes: 0,
        };
        me.publish();
        Ok(me)
    }

    /// The helper connection, made again if it was lost; a change in whether the helper can
    /// be reached shows in the view.
    async fn helper(&mut self) -> anyhow::Result<&Client> {
        let shown = self.helper.problem().cloned();
        let connected = self.helper.connect().await;
        if self.helper.problem() != shown.as_ref() {
            self.publish();
        }
        match connected {
            Ok(Connection::Kept) => {}
            Ok(Connection::Made) => {
                self.sync.helper_reconnected();
                self.repair.helper_reconnected(Instant::now());
            }
            Err(problem) => return Err(ProblemError(problem).into()),
        }
        self.helper.client().ok_or_else(|| anyhow::anyhow!("the helper closed the connection"))
    }

    /// Reports what the controller knows to the view (the dashboard and the tray), which is
    /// derived from it.
    fn publish(&self) {
        let gathered = Gathered {
            live: true,
            engine: Some(self.endpoint.host.clone()),
            status: self.last_status.clone(),
            networks: self.networks.clone(),
            disabled: self.channels.disabled.borrow().clone(),
            containers: self.containers.clone(),
            names: self.names.clone(),
            idle: self.idle.is_idle(),
            helper_problem: self.helper.problem().cloned(),
            docker_problem: self.docker_problem.clone(),
            sync_problem: self.sync_problem.clone(),
        };
        self.channels.view.update(|inputs| inputs.controller_reports(gathered));
    }

    fn set_docker_problem(&mut self, problem: Option<Problem>) {
        if self.docker_problem != problem {
            self.docker_problem = problem;
            self.publish();
        }
    }

    fn show_status(&mut self, status: Status) {
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status);
            // Route conflicts and the DNS suffix change which names there are (sent on the
            // next liveness check).
            self.make_names();
            self.publish();
        }
    }

    /// The containers' names from the last listing, routes and toggles; whether they changed.
    fn make_names(&mut self) -> bool {
        let status = self.last_status.as_ref();
        let routes = status.map(|s| s.routes.as_slice()).unwrap_or_default();
        let routed = names::Routed::new(&self.networks, &self.channels.disabled.borrow(), routes);
        let suffix = status.and_then(|s| s.dns.as_ref()).map(|d| d.suffix.as_str());
        let names = names::name_set(&self.listed, &routed, suffix);
        let changed = names != self.names;
        self.names = names;
        changed
    }

    /// Sends the helper the names, if it does not have them yet.
    async fn send_names(&mut self) {
        if !self.sync.names_needed(&self.names) {
            return;
        }
        let op = Op::SetNames { names: self.names.names.clone(), domains: self.names.domains.clone() };
        let Some(helper) = self.helper.client() else { return };
        match helper.call(op).await {
            Ok(_) => {
                tracing::info!("dns names: {} relative, {} absolute", self.names.names.len(), self.names.domains.len());
                self.sync.names_sent(self.names.clone());
            }
            Err(e) => tracing::warn!("the helper refused the names: {e}"),
        }
    }

    /// Sends the helper the networks behind the routes (which addresses are containers, which
    /// the VM's), if it does not have them yet: what exposing a network means to its share.
    async fn send_networks(&mut self) {
        let networks = discovery::docker_networks(&self.networks, &self.listed);
        if !self.sync.networks_needed(&networks) {
            return;
        }
        let Some(helper) = self.helper.client() else { return };
        match helper.call(Op::SetNetworks { networks: networks.clone() }).await {
            Ok(_) => self.sync.networks_sent(networks),
            Err(e) => tracing::warn!("the helper refused the networks: {e}"),
        }
    }

    /// Runs until `shutdown` resolves, then tears down or leaves everything as `Exit` says.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = Exit>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(RESYNC);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        let mut resubscribe = Resubscribe::default();
        let mut disabled = self.channels.disabled.clone();
        let mut sleep = self.channels.sleep.clone();
        let exit = 'outer: loop {
            // Subscribed before the listing in `sync`, so nothing falls between the two.
            let mut events = self.docker.events(Some(docker_link::subscription(SystemTime::now()))).boxed();
            let subscribed = Instant::now();
            let mut delivered = false;
            // A new stream may follow a dockerd restart, which rebuilds the chains.
            self.sync.docker_may_have_rebuilt_chains();
            if let Err(e) = self.sync().await {
                tracing::warn!("cannot sync with docker ({}): {e:#}", self.endpoint.host);
            } else {
                loop {
                    let idle_due = self.idle.poll_timeout();
                    let idle_timer = async {
                        match idle_due {
                            Some(at) => tokio::time::sleep_until(at.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    let wake = tokio::select! {
                        ev = events.next() => Wake::Docker(ev),
                        _ = resync.tick() => Wake::Resync,
                        ev = self.helper.next_event() => Wake::Helper(ev),
                        _ = liveness.tick() => Wake::Liveness,
                        Ok(()) = disabled.changed() => Wake::Toggle,
                        () = idle_timer => Wake::IdleDue,
                        Ok(()) = sleep.changed() => Wake::SleepPreference,
                        exit = &mut shutdown => Wake::Stop(exit),
                    };
                    match wake {
                        Wake::Docker(Some(Ok(ev))) => {
                            delivered = true;
                            if docker_link::other_container_started(&ev) {
                                // Before anything else: the container waits for the tunnel.
                                self.idle.handle_container_started(Instant::now());
                                self.carry_out_idle().await;
                            }
                            if docker_link::is_network_change(&ev) {
                                self.sync.docker_may_have_rebuilt_chains();
                            }
                            match docker_link::classify(&ev) {
                                EventEffect::Sync => {
                                    if let Err(e) = self.sync().await {
                                        tracing::warn!("sync after a docker event failed: {e:#}");
                                    }
                                }
                                EventEffect::RefreshContainers => self.refresh_containers().await,
                                EventEffect::Nothing => {}
                            }
                        }
                        Wake::Docker(Some(Err(e))) => {
                            tracing::warn!("docker event stream: {e}");
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &e)));
                            break;
                        }
                        Wake::Docker(None) => {
                            tracing::warn!("docker event stream ended (dockerd restarted?)");
                            let why = "the event stream ended (dockerd restarted?)";
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &why)));
                            break;
                        }
                        Wake::Resync => {
                            if let Err(e) = self.sync().await {
                                tracing::warn!("periodic sync failed: {e:#}");
                            }
                        }
                        Wake::Helper(ev) => {
                            self.on_helper_event(ev);
                            if self.sync.sync_after_helper_event(&self.desired_routes()) {
                                if let Err(e) = self.sync().await {
                                    tracing::warn!("sync after the helper's routes changed failed: {e:#}");
                                }
                            }
                        }
                        Wake::Liveness => self.check_liveness().await,
                        Wake::Toggle => {
                            if let Err(e) = self.sync().await {
                                tracing::warn!("applying a network toggle failed: {e:#}");
                            }
                        }
                        Wake::IdleDue => self.idle.handle_timeout(Instant::now()),
                        Wake::SleepPreference => self.idle.set_enabled(*sleep.borrow_and_update()),
                        Wake::Stop(exit) => break 'outer exit,
                    }
                    self.carry_out_idle().await;
                }
            }
            let wait = resubscribe.stream_ended(delivered, subscribed.elapsed());
            tracing::info!("reconnecting to docker in {wait:?}");
            let retry = self.channels.retry.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = retry.notified() => resubscribe.retried(),
                exit = &mut shutdown => break 'outer exit,
            }
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
                self.repair.handle_status(Instant::now(), &s);
                self.show_status(s);
            }
            Some(Event::Stats(stats)) => {
                let now_ms = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default();
                self.channels.view.update(|inputs| inputs.traffic.push(stats, now_ms));
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
                let others = list
                    .iter()
                    .filter(|c| !c.labels.as_ref().is_some_and(|l| l.contains_key(guest::LABEL_OURS)))
                    .count();
                self.idle.handle_listing(Instant::now(), others);
                let views = view::container_views(&list, &self.networks);
                self.listed = list;
                let names_changed = self.make_names();
                if views != self.containers || names_changed {
                    self.containers = views;
                    self.publish();
                }
                // At once: a name resolves within a second of `docker run`.
                self.send_names().await;
                self.send_networks().await;
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

    /// The routes to ask the helper for: the networks switched on, public space only where
    /// the helper's config routes (from its last status) cover it.
    fn desired_routes(&self) -> Vec<IpNet> {
        let status_routes = self.last_status.as_ref().map(|s| s.routes.as_slice()).unwrap_or_default();
        let config_routes = discovery::config_routes(status_routes);
        discovery::desired_routes(&self.networks, &self.channels.disabled.borrow(), &config_routes)
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
        let routes = self.desired_routes();
        if self.sync.routes_needed(&routes) {
            self.helper().await?.call(Op::SetRoutes { routes: routes.clone() }).await?;
            let shown: Vec<String> = routes.iter().map(ToString::to_string).collect();
            tracing::info!("routes for docker networks: [{}]", shown.join(", "));
            self.sync.routes_sent(routes);
            self.repair.routes_sent();
        }
        self.send_networks().await;
        if self.idle.is_idle() {
            // The routes stay; the guest sleeps until a container starts.
            return Ok(());
        }
        let rules = self.guest_rules();
        let engine_arch = self.engine_arch().await?;
        let tarballs =
            guest_image::Tarballs { file: self.opts.guest_tarball.as_deref(), dirs: &self.opts.guest_tarball_dirs };
        let image_id = guest_image::ensure(&self.docker, &self.spec.image, tarballs, &engine_arch).await?;
        let ensured = guest::ensure(&self.docker, &self.spec, &image_id, &self.secret, &rules).await?;
        if ensured != guest::Ensured::AlreadyRunning {
            tracing::info!("guest container: {ensured:?}");
            self.repair.guest_started(Instant::now());
        }
        match self.sync.guest_step(&ensured, &rules) {
            GuestStep::UpdateRules => guest::update_rules(&self.docker, &rules).await?,
            GuestStep::Poke => {
                self.pokes += 1;
                guest::poke(&self.docker, self.pokes).await?;
            }
            GuestStep::Nothing => {}
        }
        self.sync.guest_has(rules);
        Ok(())
    }

    /// The engine's CPU, for the guest image (`docker info`'s Architecture, e.g. aarch64).
    async fn engine_arch(&mut self) -> anyhow::Result<String> {
        if let Some(arch) = &self.engine_arch {
            return Ok(arch.clone());
        }
        let arch = self.docker.info().await?.architecture.unwrap_or_default();
        self.engine_arch = Some(arch.clone());
        Ok(arch)
    }

    /// The guest's rules file: internal networks, the app's pairs and the helper config's.
    fn guest_rules(&self) -> String {
        let helper = self.last_status.as_ref().map(|s| s.iptables.as_slice()).unwrap_or_default();
        let exposed = self.last_status.as_ref().map(|s| s.share.exposed.as_slice()).unwrap_or_default();
        discovery::guest_rules(&self.networks, &discovery::all_pairs(&self.opts.pairs, helper), exposed)
    }

    /// Carries out what the idle policy decided: the guest sleeps or wakes.
    async fn carry_out_idle(&mut self) {
        while let Some(decision) = self.idle.poll() {
            let now = Instant::now();
            match decision {
                IdleDecision::StopGuest => {
                    tracing::info!("idle: no containers; stopping the guest (the routes stay)");
                    self.repair.set_guest_idle(now, true);
                    if let Err(e) = guest::stop_all(&self.docker).await {
                        tracing::warn!("cannot stop the guest: {e:#}");
                    }
                }
                IdleDecision::StartGuest => {
                    tracing::info!("a container started: waking the guest");
                    self.repair.set_guest_idle(now, false);
                    if let Err(e) = self.sync().await {
                        tracing::warn!("waking the guest failed: {e:#}");
                    }
                }
            }
            self.publish();
        }
    }

    /// Every second: the helper's status into the repair policy, its decisions carried out.
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
        let now = Instant::now();
        if SyncPolicy::sync_for_transport(self.spec.transport, status.transport) {
            tracing::info!("the helper's transport is now {}", status.transport);
            self.spec.transport = status.transport;
            if let Err(e) = self.sync().await {
                tracing::warn!("sync after a transport change failed: {e:#}");
            }
        }
        self.repair.handle_status(now, &status);
        // Events come only on change (and a lagging receiver misses some): the second-by-second
        // status keeps the dashboard's handshake age and session state current.
        self.show_status(status);
        self.send_names().await;
        if self.sync.sync_for_rules(self.idle.is_idle(), &self.guest_rules()) {
            if let Err(e) = self.sync().await {
                tracing::warn!("updating the guest's rules failed: {e:#}");
            }
        }
        while let Some(decision) = self.repair.poll(now) {
            match decision {
                Decision::SendRoutes => {
                    if let Err(e) = self.sync().await {
                        tracing::warn!("sync after reconnecting to the helper failed: {e:#}");
                    }
                }
                Decision::AskHelperToConnect => {
                    if let Some(h) = self.helper.client() {
                        if let Err(e) = h.call(Op::Connect).await {
                            tracing::warn!("helper cannot connect the tunnel: {e}");
                        }
                    }
                }
                Decision::RecreateGuest { dead_for, next_after } => {
                    tracing::warn!(
                        "no live tunnel session for {dead_for:?}: recreating the guest (next try at the earliest in {next_after:?})"
                    );
                    let _ = guest::remove_all(&self.docker).await;
                    self.sync.guest_removed();
                    if let Err(e) = self.sync().await {
                        tracing::warn!("repair failed: {e:#}");
                    }
                }
            }
        }
    }

    /// Disconnect: removes the guest container and withdraws everything from the helper.
    /// An error says something may be left (the supervisor tries again).
    async fn teardown(mut self) -> anyhow::Result<()> {
        let reached = self.helper().await.map(|_| ()).map_err(|e| format!("{e:#}"));
        let helper = reached.and_then(|()| self.helper.client().ok_or_else(|| "the connection closed".to_string()));
        teardown::run(Ok(&self.docker), helper).await.into_result()
    }
}
