//! Syncing with Docker and the helper: the networks and containers listed, the routes, names
//! and networks sent to the helper, the guest made sure of with its rules (`sync_policy` says
//! what each needs).

use std::time::Instant;

use dockroute_api::Op;
use ipnet::IpNet;

use super::Controller;
use crate::discovery;
use crate::guest;
use crate::guest_image;
use crate::names;
use crate::sync_policy::GuestStep;
use crate::view::{self, Problem, ProblemError};

impl Controller {
    /// The containers' names from the last listing, routes and toggles; whether they changed.
    pub(super) fn make_names(&mut self) -> bool {
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
    pub(super) async fn send_names(&mut self) {
        if !self.sync.names_needed(&self.names) {
            return;
        }
        let op = Op::SetNames {
            names: self.names.names.clone(),
            domains: self.names.domains.clone(),
            name_ports: self.names.name_ports.clone(),
            domain_ports: self.names.domain_ports.clone(),
        };
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
    pub(super) async fn send_networks(&mut self) {
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

    /// The container list for the dashboard; a failure keeps the last one (the next sync or
    /// event stream error reports Docker's state).
    pub(super) async fn refresh_containers(&mut self) {
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

    /// The networks listed again (an engine whose events do not announce them): a sync when
    /// they changed, as a network event would have made.
    pub(super) async fn poll_networks(&mut self) {
        let listed = self.docker.list_networks(None::<bollard::query_parameters::ListNetworksOptions>).await;
        let Ok(all) = listed else { return };
        if discovery::bridge_networks(&all) == self.networks {
            return;
        }
        // A new bridge may come with rebuilt firewall chains, as after a network event.
        self.sync.docker_may_have_rebuilt_chains();
        if let Err(e) = self.sync().await {
            tracing::warn!("sync after the networks changed failed: {e:#}");
        }
    }

    /// `sync_once`, with a failure the user can see (and a success clearing it).
    pub(super) async fn sync(&mut self) -> anyhow::Result<()> {
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
    pub(super) fn desired_routes(&self) -> Vec<IpNet> {
        let status_routes = self.last_status.as_ref().map(|s| s.routes.as_slice()).unwrap_or_default();
        let config_routes = discovery::config_routes(status_routes);
        discovery::desired_routes(&self.networks, &self.channels.disabled.borrow(), &config_routes)
    }

    /// Lists networks, tells the helper the routes, makes sure the guest runs with current rules.
    pub(super) async fn sync_once(&mut self) -> anyhow::Result<()> {
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
            // The routes stay; the guest sleeps until a container starts. Its image is made
            // present meanwhile (an engine reset or pruned while it slept), so a wake never
            // waits for a load; failing that is no problem of the sleeping tunnel's: the wake
            // tries again and reports it then.
            if let Err(e) = self.ensure_guest_image().await {
                tracing::warn!("loading the guest image while it sleeps failed (the wake tries again): {e:#}");
            }
            return Ok(());
        }
        let rules = self.guest_rules();
        let image_id = self.ensure_guest_image().await?;
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

    /// The guest image for the engine's CPU, loaded if missing; its id.
    async fn ensure_guest_image(&mut self) -> anyhow::Result<String> {
        let engine_arch = self.engine_arch().await?;
        let tarballs =
            guest_image::Tarballs { file: self.opts.guest_tarball.as_deref(), dirs: &self.opts.guest_tarball_dirs };
        guest_image::ensure(&self.docker, &self.spec.image, tarballs, &engine_arch).await
    }

    /// The engine's CPU, for the guest image (`docker info`'s Architecture, e.g. aarch64).
    pub(super) async fn engine_arch(&mut self) -> anyhow::Result<String> {
        if let Some(arch) = &self.engine_arch {
            return Ok(arch.clone());
        }
        let arch = self.docker.info().await?.architecture.unwrap_or_default();
        self.engine_arch = Some(arch.clone());
        Ok(arch)
    }

    /// The guest's rules file: internal networks, the app's pairs and the helper config's.
    pub(super) fn guest_rules(&self) -> String {
        let helper = self.last_status.as_ref().map(|s| s.iptables.as_slice()).unwrap_or_default();
        let exposed = self.last_status.as_ref().map(|s| s.share.exposed.as_slice()).unwrap_or_default();
        discovery::guest_rules(&self.networks, &discovery::all_pairs(&self.opts.pairs, helper), exposed)
    }
}
