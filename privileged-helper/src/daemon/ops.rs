//! The daemon's state and what every API operation does to it, without sockets, devices,
//! files or randomness: `State::apply` checks the caller's right, changes the state and
//! returns the `Effect` the daemon must carry out (bring the tunnel up, hand the engine a new
//! secret, reconcile routes, make a teammate's key, write the share's state). Routes are
//! changed through `Routes<B: RouteBackend>`, the seam: `ip`/`route` in the daemon, a recorder
//! in the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;

use crate::config::Config;
use dockroute_api::share::DockerNetwork;
use dockroute_api::Secret;
use dockroute_api::{
    ApiError, ErrorCode, LinkInfo, Op, RouteSource, RouteState, RouteStatus, SecretSource, SessionInfo, Status,
    TunnelRequest,
};
use dockroute_engine::platform::table::RouteEntry;
use dockroute_engine::platform::{RouteBackend, Routes};
use ipnet::IpNet;

use super::route_policy::{self, TunnelView};
use crate::dns::{names as dns_names, NameSpec};
use crate::https::app_trust::CaChange;
use crate::link::Link;
use crate::share::book::{AddPlan, Book, Save, Scene};

/// Everything the daemon knows apart from the tunnel's devices and tasks.
pub struct State {
    pub config: Config,
    pub secret: Secret,
    pub secret_source: SecretSource,
    /// The app's route set (`set_routes`), besides the config's `route` lines.
    pub app_routes: BTreeSet<IpNet>,
    /// Routes the user switched off.
    pub disabled: BTreeSet<IpNet>,
    /// The user asked for the tunnel (`connect`); it may still be down, see `error`.
    pub requested: bool,
    pub route_states: BTreeMap<IpNet, RouteState>,
    /// Why the tunnel is not up although requested.
    pub error: Option<String>,
    /// The names the DNS server answers (`set_names`), kept while the tunnel is down.
    pub names: NameSpec,
    /// The Docker networks behind the app's routes (`set_networks`): the share's exposure.
    pub networks: Vec<DockerNetwork>,
    /// The share's state file, as last written.
    pub share: Book,
    /// The running tunnel's link (None while it is down: the config's then).
    pub tunnel_link: Option<Link>,
    /// The app's HTTPS switch (`set_https`); the front runs iff this and the config's `https`.
    pub https_wanted: bool,
}

/// Whether the caller may share (`authz::share_check`), or why not: handing teammates access
/// or taking it back reaches past this Mac (ARCHITECTURE.md, threat model). Listing does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareRight {
    Granted,
    Refused(String),
}

impl ShareRight {
    fn check(&self) -> Result<(), ApiError> {
        match self {
            ShareRight::Granted => Ok(()),
            ShareRight::Refused(why) => Err(ApiError::new(ErrorCode::NotAuthorised, why.clone())),
        }
    }
}

/// What the daemon must carry out after `State::apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer with the status (the engine knows the session).
    Status,
    /// Answer with the engine's counters.
    Stats,
    /// Bring the tunnel up (idempotent); a failure is the answer.
    Connect,
    /// Take the tunnel down.
    Disconnect,
    /// Give a running engine `State::secret`.
    NewSecret,
    /// Reconcile the routes with the changed wish.
    Routes,
    /// Give a running DNS server `State::names`.
    Names,
    /// Bring the share in line with `State::networks` (or an unchanged toggle).
    Share,
    /// Answer with the share's status.
    ShareList,
    /// Make a teammate's key pair (randomness is the driver's), then `Book::keyed`, `SaveShare`
    /// and answer with `AddPlan::config`.
    MakeKey(AddPlan),
    /// Write the share's state file, `Book::commit` it once written, bring the share in line.
    SaveShare(Save),
    /// Start or stop the HTTPS front as `State::https_wanted` and the config say.
    Https,
    /// Carry out a change of where the local CA is trusted (files, commands: the driver's).
    CaTrust(CaChange),
    /// Nothing (the connection handles `hello` and `subscribe` itself).
    Nothing,
}

/// What a route check did, for the daemon's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// A route's state changed (subscribers should hear of it).
    pub changed: bool,
    /// Work was left undone (a refused route, an unreadable table): check again soon.
    pub retry_soon: bool,
}

/// The tunnel's part of the status, while it is up.
#[derive(Debug, Clone)]
pub struct TunnelFacts {
    pub listen: SocketAddr,
    pub interface: String,
    pub link: LinkInfo,
    pub session: Option<SessionInfo>,
}

impl State {
    pub fn new(config: Config, secret: Secret, share: Book) -> State {
        State {
            config,
            secret,
            secret_source: SecretSource::File,
            app_routes: BTreeSet::new(),
            disabled: BTreeSet::new(),
            requested: false,
            route_states: BTreeMap::new(),
            error: None,
            names: NameSpec::default(),
            networks: Vec::new(),
            share,
            tunnel_link: None,
            https_wanted: true,
        }
    }

    /// Applies an operation's change of state; an invalid argument, or a share operation the
    /// caller has no right to, changes nothing. This match is the one list of operations.
    pub fn apply(&mut self, op: Op, right: &ShareRight) -> Result<Effect, ApiError> {
        let invalid = |msg: String| ApiError::new(ErrorCode::InvalidArgument, msg);
        Ok(match op {
            Op::Status => Effect::Status,
            Op::Stats => Effect::Stats,
            Op::Connect => {
                self.requested = true;
                Effect::Connect
            }
            Op::Disconnect => {
                self.requested = false;
                self.error = None;
                Effect::Disconnect
            }
            Op::SetSecret { secret } => {
                self.secret = Secret::new(secret.0.into_bytes()).map_err(|e| invalid(e.to_string()))?;
                self.secret_source = SecretSource::Api;
                tracing::info!("shared secret replaced through the API");
                Effect::NewSecret
            }
            Op::SetRoutes { routes } => {
                self.app_routes = route_policy::validate_app_routes(&routes).map_err(invalid)?;
                Effect::Routes
            }
            Op::SetRouteEnabled { route, enabled } => {
                let route = route_policy::known_route(route, &self.wanted()).map_err(invalid)?;
                if enabled {
                    self.disabled.remove(&route);
                } else {
                    self.disabled.insert(route);
                }
                Effect::Routes
            }
            Op::SetNames { names, domains, name_ports, domain_ports } => {
                let suffix = &self.config.dns.suffix;
                let spec = dns_names::validate(&names, &domains, suffix).map_err(invalid)?;
                self.names = dns_names::with_ports(spec, &name_ports, &domain_ports, suffix).map_err(invalid)?;
                Effect::Names
            }
            Op::SetNetworks { networks } => {
                self.networks = crate::share::exposure::validate_networks(&networks).map_err(invalid)?;
                Effect::Share
            }
            Op::ShareList => Effect::ShareList,
            Op::ShareAdd(add) => {
                right.check()?;
                Effect::MakeKey(self.share.plan_add(add, &self.scene(&self.wanted()))?)
            }
            Op::ShareRevoke { name } => {
                right.check()?;
                Effect::SaveShare(self.share.revoke(&name)?)
            }
            Op::SetNetworkExposed { network, exposed } => {
                right.check()?;
                match self.share.set_exposed(&network, exposed, &self.scene(&self.wanted()))? {
                    Some(save) => Effect::SaveShare(save),
                    None => Effect::Share,
                }
            }
            Op::SetHttps { serve } => {
                self.https_wanted = serve;
                Effect::Https
            }
            // Trust changes what the whole machine believes: the same right as sharing.
            Op::CaTrust => {
                right.check()?;
                Effect::CaTrust(CaChange::Trust)
            }
            Op::CaUntrust => {
                right.check()?;
                Effect::CaTrust(CaChange::Untrust)
            }
            Op::CaTrusted { trusted } => {
                right.check()?;
                Effect::CaTrust(CaChange::RecordLoginKeychain(trusted))
            }
            Op::Hello { .. } | Op::Subscribe => Effect::Nothing,
        })
    }

    /// What the share sees of the daemon: config, link (the tunnel's, else the config's), routes.
    pub fn scene<'a>(&'a self, wanted: &'a BTreeMap<IpNet, RouteSource>) -> Scene<'a> {
        let link = self.tunnel_link.unwrap_or(Link::on(self.config.addr));
        Scene { config: &self.config, link, wanted, route_states: &self.route_states, networks: &self.networks }
    }

    /// Config `route` lines and the app's set, each with where it came from.
    pub fn wanted(&self) -> BTreeMap<IpNet, RouteSource> {
        route_policy::wanted(&self.config.route_nets(), &self.app_routes)
    }

    /// Makes the tunnel's routes follow the policy. `routes`: the tunnel's, None while it is
    /// down; `read_table`: the OS routing table (read only when the tunnel is up).
    pub fn check_routes<B: RouteBackend>(
        &mut self,
        routes: Option<&mut Routes<B>>,
        read_table: impl FnOnce() -> io::Result<Vec<RouteEntry>>,
    ) -> Checked {
        let wanted = self.wanted();
        let Some(routes) = routes else {
            let states = route_policy::waiting(&wanted, &self.disabled);
            let changed = states != self.route_states;
            self.route_states = states;
            return Checked { changed, retry_soon: false };
        };
        let table = match read_table() {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("cannot read the routing table ({e}); routes unchanged until the next check");
                return Checked { changed: false, retry_soon: true };
            }
        };
        let installed: BTreeSet<IpNet> = routes.installed().copied().collect();
        let view = TunnelView { ifname: routes.ifname(), installed: &installed, table: &table };
        let mut plan = route_policy::plan(&wanted, &self.disabled, view);
        for net in &plan.forget {
            tracing::warn!("route {net} via {} was removed by someone else; adding it again", routes.ifname());
            routes.forget(net);
        }
        for (net, state) in &plan.states {
            if let RouteState::Conflict { interface, route } = state {
                tracing::warn!("route {net} not installed: overlaps {route} on {interface}");
            }
        }
        let install: Vec<IpNet> = plan.install.iter().copied().collect();
        let failures: Vec<(IpNet, String)> =
            routes.reconcile(&install).into_iter().map(|(net, e)| (net, e.to_string())).collect();
        for (net, e) in &failures {
            tracing::error!("route {net}: {e}");
        }
        route_policy::record_failures(&mut plan.states, &failures);
        let changed = plan.states != self.route_states;
        if changed {
            log_installed(routes);
        }
        self.route_states = plan.states;
        Checked { changed, retry_soon: !failures.is_empty() }
    }

    /// The status as the API reports it; `tunnel`: what the running tunnel adds.
    pub fn status(&self, tunnel: Option<TunnelFacts>) -> Status {
        let routes = self
            .wanted()
            .into_iter()
            .map(|(net, source)| RouteStatus {
                net,
                source,
                enabled: !self.disabled.contains(&net),
                state: self.route_states.get(&net).cloned().unwrap_or(RouteState::Pending),
            })
            .collect();
        let (listen, interface, link, session) = match tunnel {
            Some(t) => (Some(t.listen), Some(t.interface), Some(t.link), t.session),
            None => (None, None, None, None),
        };
        Status {
            helper_version: env!("CARGO_PKG_VERSION").to_string(),
            requested: if self.requested { TunnelRequest::Up } else { TunnelRequest::Down },
            error: self.error.clone(),
            listen,
            interface,
            link,
            session,
            routes,
            secret_source: self.secret_source,
            // The daemon adds the DNS server's part: it owns the server.
            dns: None,
            https: None,
            iptables: self.config.iptables_pairs(),
            // Filled in by the daemon's `Share`.
            share: Default::default(),
            transport: self.config.transport,
        }
    }
}

/// One log line with every route through the tunnel (the end-to-end rig waits for it).
pub fn log_installed<B: RouteBackend>(routes: &Routes<B>) {
    let now: Vec<String> = routes.installed().map(ToString::to_string).collect();
    tracing::info!("routes via tunnel: [{}]", now.join(", "));
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
