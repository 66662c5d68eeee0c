//! What the user sees, as one serialisable snapshot: the dashboard renders it whole and the
//! tray menu is derived from it. Pure functions only, so every state the UI can show is a plain
//! unit test. `derive` makes the whole view from what was gathered; `writer` is the one place
//! it is published.
//!
//! The phase is not stored: `View::phase()` derives it from the user's wish, the problem and
//! the session, and the page gets it as the field `phase` (see `Serialize for View`), so no
//! writer of the view can leave it stale.

use std::collections::{BTreeSet, VecDeque};

use dockroute_api::share::{ExposedBy, ExposedRoute};
use dockroute_api::{RouteState, RouteStatus, ShareStatus, StatsReport, Status};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::discovery::BridgeNetwork;
use crate::dns_view::{DnsView, NameView};
pub use crate::engines::choice::EngineView;
use crate::https_view::HttpsView;

pub mod derive;
mod problems;
pub mod writer;

pub use problems::{
    docker_problem, engine_not_needed_problem, helper_approval_problem, helper_outdated_problem, helper_problem,
    helper_refused_problem, Action, Problem, ProblemError, ProblemKind,
};

/// Samples kept for the throughput chart (the helper pushes stats about once a second).
pub const THROUGHPUT_SAMPLES: usize = 60;

/// Deserialising ignores `phase` (it is derived); only tests read a view back.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct View {
    pub app_version: String,
    /// The user's choice (Connect/Disconnect), which `phase()` follows as far as it can.
    pub want_connected: bool,
    pub problem: Option<Problem>,
    /// The Docker engine in use, e.g. `unix:///var/run/docker.sock`.
    pub engine: Option<String>,
    pub helper_socket: String,
    /// The version the helper answered with (its status), while it answers.
    #[serde(default)]
    pub helper_version: Option<String>,
    pub tunnel: Option<TunnelView>,
    pub networks: Vec<NetworkView>,
    pub containers: Vec<ContainerView>,
    pub stats: Option<StatsReport>,
    pub throughput: VecDeque<Sample>,
    /// Set by the app shell (the controller does not own login items).
    pub autostart: bool,
    /// The helper's DNS server for container names, while it runs.
    #[serde(default)]
    pub dns: Option<DnsView>,
    /// Teammates over WireGuard (the helper's `share`), while the helper reports it.
    pub share: Option<ShareStatus>,
    /// The guest is stopped because no other container runs (Docker Desktop may sleep); the
    /// routes stay, and the first container brings it back.
    pub idle: bool,
    /// The preference behind `idle`: stop the guest while no other container runs.
    pub let_docker_sleep: bool,
    /// HTTPS for container names: the switch, the front, the local CA; while the helper
    /// answers.
    #[serde(default)]
    pub https: Option<HttpsView>,
    /// Every engine found, the followed one marked: the dashboard and the menu switch here.
    #[serde(default)]
    pub engines: Vec<EngineView>,
    /// What a user debugging a broken setup asks first: which engine, which versions, how the
    /// guest reaches the host, which firewall it found.
    #[serde(default)]
    pub runtime: Option<RuntimeView>,
}

/// The followed engine's facts, while a controller runs on it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuntimeView {
    /// "Docker Desktop", "Colima", …
    pub engine: String,
    pub engine_version: Option<String>,
    /// The Docker API version both sides agreed on.
    pub api_version: Option<String>,
    /// The name the guest dials for the host, with the address it is pinned to if the user
    /// pinned one: `host.lima.internal`, `host.docker.internal → 198.18.0.1 (--host-address)`.
    pub host_name: String,
    /// The guest's firewall backend per family, as its log says (`iptables-nft`, …); None
    /// until the guest has said.
    pub firewall: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Disconnected,
    Connecting,
    Connected,
    Error,
    /// Connected as far as the user is concerned, but the guest sleeps: no container runs.
    Idle,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelView {
    pub interface: Option<String>,
    pub listen: Option<String>,
    pub host_v4: Option<String>,
    pub guest_v4: Option<String>,
    pub host_v6: Option<String>,
    pub guest_v6: Option<String>,
    pub mtu: Option<u16>,
    pub session: Option<dockroute_api::SessionInfo>,
    /// Why the helper could not bring its side up, when it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteShown {
    Installed,
    Pending,
    Disabled,
    Conflict,
    Failed,
    /// On public address space no `route` line of the helper's config covers: not asked for.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    pub id: String,
    pub name: String,
    pub subnets: Vec<IpNet>,
    pub containers: usize,
    /// The user's toggle.
    pub enabled: bool,
    pub route: RouteShown,
    /// A sentence naming what the route collides with.
    pub conflict: Option<String>,
    /// Why (a subnet of) it is not routed although switched on: public address space, with
    /// the `route` line that would route it.
    #[serde(default)]
    pub skipped: Option<String>,
    /// A network whose route collides cannot be switched on from here.
    pub checkable: bool,
    /// Teammates may reach it (a subnet of it is exposed).
    #[serde(default)]
    pub exposed: bool,
    /// Exposed by a `route … expose` line: only the config file can take it back.
    #[serde(default)]
    pub exposed_by_config: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    pub addresses: Vec<Address>,
    pub ports: Vec<Port>,
    /// Its DNS names (empty while the helper answers no names).
    #[serde(default)]
    pub names: Vec<NameView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub network: String,
    pub ip: std::net::IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    pub protocol: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unix time, milliseconds.
    pub t_ms: u64,
    pub tx_bps: f64,
    pub rx_bps: f64,
}

impl View {
    /// The phase that follows from the user's wish, the problem and the helper's session.
    pub fn phase(&self) -> Phase {
        if !self.want_connected {
            Phase::Disconnected
        } else if self.problem.as_ref().is_some_and(|p| p.kind.blocks()) {
            Phase::Error
        } else if self.idle {
            Phase::Idle
        } else if self.tunnel.as_ref().and_then(|t| t.session.as_ref()).is_some_and(|s| s.alive) {
            Phase::Connected
        } else {
            Phase::Connecting
        }
    }

    /// Shows that the helper waits for the user's approval in `settings` (the app knows it from
    /// macOS), in place of the helper-unreachable problem it explains. Nothing else is replaced:
    /// with another problem, or none, the helper was reached and the approval is old news.
    pub fn show_helper_approval(&mut self, settings: &str) {
        if self.want_connected && self.helper_unreachable() {
            self.problem = Some(helper_approval_problem(settings));
        }
    }

    /// Shows why macOS does not run the helper (the app knows it from macOS), in place of the
    /// helper-unreachable problem it explains, with the other way in.
    pub fn show_helper_refused(&mut self, why: &str) {
        if self.want_connected && self.helper_unreachable() {
            self.problem = Some(helper_refused_problem(why));
        }
    }

    /// Says that the running helper is older than the app, when nothing else is wrong (it still
    /// works: a warning, not an error).
    pub fn show_helper_outdated(&mut self, helper: &str, app: &str) {
        if self.problem.as_ref().is_none_or(|p| !p.kind.blocks()) {
            self.problem = Some(helper_outdated_problem(helper, app));
        }
    }

    fn helper_unreachable(&self) -> bool {
        let kind = self.problem.as_ref().map(|p| p.kind);
        matches!(kind, Some(ProblemKind::HelperNotInstalled | ProblemKind::HelperNotRunning))
    }

    /// The problem to show when no blocking one is set: the first route conflict, else the
    /// first network skipped for its public subnet, if any.
    pub fn conflict_warning(&self) -> Option<Problem> {
        let warning = |kind, n: &NetworkView, detail: &String| Problem {
            kind,
            title: format!("Network {} is not routed", n.name),
            detail: detail.clone(),
            action: None,
        };
        (self.networks.iter().find_map(|n| n.conflict.as_ref().map(|c| warning(ProblemKind::RouteConflict, n, c))))
            .or_else(|| {
                self.networks.iter().find_map(|n| n.skipped.as_ref().map(|s| warning(ProblemKind::RouteSkipped, n, s)))
            })
    }
}

/// The view as the page reads it: every field, plus the derived `phase`.
impl Serialize for View {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Page<'a> {
            app_version: &'a str,
            phase: Phase,
            want_connected: bool,
            problem: &'a Option<Problem>,
            engine: &'a Option<String>,
            helper_socket: &'a str,
            helper_version: &'a Option<String>,
            tunnel: &'a Option<TunnelView>,
            networks: &'a [NetworkView],
            containers: &'a [ContainerView],
            stats: &'a Option<StatsReport>,
            throughput: &'a VecDeque<Sample>,
            autostart: bool,
            dns: &'a Option<DnsView>,
            share: &'a Option<ShareStatus>,
            idle: bool,
            let_docker_sleep: bool,
            https: &'a Option<HttpsView>,
            engines: &'a [EngineView],
            runtime: &'a Option<RuntimeView>,
        }
        // Named one by one (no `..`): a field added to `View` fails to compile here until the
        // page gets it too.
        let View {
            app_version,
            want_connected,
            problem,
            engine,
            helper_socket,
            helper_version,
            tunnel,
            networks,
            containers,
            stats,
            throughput,
            autostart,
            dns,
            share,
            idle,
            let_docker_sleep,
            https,
            engines,
            runtime,
        } = self;
        Page {
            app_version,
            phase: self.phase(),
            want_connected: *want_connected,
            problem,
            engine,
            helper_socket,
            helper_version,
            tunnel,
            networks,
            containers,
            stats,
            throughput,
            autostart: *autostart,
            dns,
            share,
            idle: *idle,
            let_docker_sleep: *let_docker_sleep,
            https,
            engines,
            runtime,
        }
        .serialize(s)
    }
}

pub fn tunnel_view(s: &Status) -> TunnelView {
    TunnelView {
        interface: s.interface.clone(),
        listen: s.listen.map(|a| a.to_string()),
        host_v4: s.link.as_ref().map(|l| l.host_v4.to_string()),
        guest_v4: s.link.as_ref().map(|l| l.guest_v4.to_string()),
        host_v6: s.link.as_ref().and_then(|l| l.host_v6.map(|n| n.to_string())),
        guest_v6: s.link.as_ref().and_then(|l| l.guest_v6.map(|a| a.to_string())),
        mtu: s.link.as_ref().map(|l| l.mtu),
        session: s.session.clone(),
        error: s.error.clone(),
    }
}

/// One row per bridge network: the user's toggle, and what the helper did with its routes.
/// `routes` is the helper's last report; a subnet it does not mention yet is pending. A subnet
/// on public space that none of its config routes covers is skipped (`discovery::skipped`).
pub fn network_views(
    networks: &[BridgeNetwork],
    disabled: &BTreeSet<String>,
    routes: &[RouteStatus],
    containers: &[ContainerView],
) -> Vec<NetworkView> {
    let config_routes = crate::discovery::config_routes(routes);
    networks
        .iter()
        .map(|n| {
            let enabled = !disabled.contains(&n.name);
            let skipped: Vec<String> =
                n.subnets.iter().filter_map(|s| crate::discovery::skipped(s, &config_routes)).collect();
            let all_skipped = !n.subnets.is_empty() && skipped.len() == n.subnets.len();
            let states: Vec<&RouteState> =
                n.subnets.iter().filter_map(|s| routes.iter().find(|r| r.net == *s).map(|r| &r.state)).collect();
            let conflict = states.iter().find_map(|st| match st {
                RouteState::Conflict { interface, route } => Some(format!(
                    "Route {} conflicts with {interface} ({route}) — a VPN or another network uses these addresses",
                    n.subnets.iter().find(|s| s.contains(route) || route.contains(*s)).unwrap_or(&n.subnets[0])
                )),
                _ => None,
            });
            let route = if conflict.is_some() {
                RouteShown::Conflict
            } else if !skipped.is_empty() {
                RouteShown::Skipped
            } else if !enabled {
                RouteShown::Disabled
            } else if states.iter().any(|s| matches!(s, RouteState::Failed { .. })) {
                RouteShown::Failed
            } else if states.len() == n.subnets.len() && states.iter().all(|s| matches!(s, RouteState::Installed)) {
                RouteShown::Installed
            } else {
                RouteShown::Pending
            };
            let count = containers.iter().filter(|c| c.addresses.iter().any(|a| a.network == n.name)).count();
            NetworkView {
                id: n.id.clone(),
                name: n.name.clone(),
                subnets: n.subnets.clone(),
                containers: count,
                enabled: enabled && conflict.is_none() && !all_skipped,
                route,
                checkable: conflict.is_none() && !all_skipped,
                conflict,
                skipped: (!skipped.is_empty()).then(|| format!("Skipped: {}", skipped.join("; "))),
                exposed: false,
                exposed_by_config: false,
            }
        })
        .collect()
}

/// Marks the networks teammates may reach: the app's toggle by network id (a network made again
/// on the same subnet is not the one exposed), a config line by subnet (which makes the toggle
/// read-only: the file owns it).
pub fn mark_exposed(networks: &mut [NetworkView], exposed: &[ExposedRoute]) {
    for n in networks {
        let hits: Vec<&ExposedRoute> = exposed
            .iter()
            .filter(|e| match (&e.network, e.source) {
                (Some(id), _) => *id == n.id,
                (None, ExposedBy::Config) => n.subnets.contains(&e.net),
                (None, ExposedBy::Api) => false,
            })
            .collect();
        n.exposed = !hits.is_empty();
        n.exposed_by_config = hits.iter().any(|e| e.source == ExposedBy::Config);
    }
}

/// Running containers on the routed bridge networks, as the dashboard lists them. Our own guest
/// is left out; names lose Docker's leading slash.
pub fn container_views(list: &[bollard::models::ContainerSummary], networks: &[BridgeNetwork]) -> Vec<ContainerView> {
    let bridge: BTreeSet<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    let mut out: Vec<ContainerView> = list
        .iter()
        .filter(|c| !c.labels.as_ref().is_some_and(|l| l.contains_key(crate::guest::LABEL_OURS)))
        .filter_map(|c| {
            let nets = c.network_settings.as_ref()?.networks.as_ref()?;
            let mut addresses = Vec::new();
            for (name, ep) in nets.iter().filter(|(name, _)| bridge.contains(name.as_str())) {
                for ip in [ep.ip_address.as_deref(), ep.global_ipv6_address.as_deref()].into_iter().flatten() {
                    if let Ok(ip) = ip.parse() {
                        addresses.push(Address { network: name.clone(), ip });
                    }
                }
            }
            if addresses.is_empty() {
                return None;
            }
            let ports: BTreeSet<Port> = c
                .ports
                .iter()
                .flatten()
                .map(|p| Port {
                    port: p.private_port,
                    protocol: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
                })
                .collect();
            let name = c.names.iter().flatten().next().map(|n| n.trim_start_matches('/').to_string());
            Some(ContainerView {
                id: c.id.clone().unwrap_or_default(),
                name: name.unwrap_or_else(|| c.id.clone().unwrap_or_default().chars().take(12).collect()),
                addresses,
                ports: ports.into_iter().collect(),
                names: Vec::new(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests;
