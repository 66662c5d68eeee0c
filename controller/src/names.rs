//! The DNS names of the running containers (pure): what the controller sends the helper with
//! `set_names` and what the dashboard shows.
//!
//! Each container on a routed network is `<container>` (below the helper's suffix:
//! `web.docker`), `<service>.<project>` from compose's labels, and every name in its
//! `dev.dockroute.domains` label (comma-separated, `*.` wildcards allowed) as that exact
//! domain. A name resolves to every address the container has on a routed bridge network (not
//! on one the user switched off, nor one whose route conflicts). A name two containers claim
//! resolves to all of them and is reported as a clash. Names DNS cannot carry are skipped, and
//! said so.
//!
//! Label domains are honoured below the suffix and below the private-use names only (`.test`,
//! `.example`, `.internal`, `.home.arpa`): labels come with images, and an image must not be
//! able to take over `github.com` on the user's Mac.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bollard::models::ContainerSummary;
use dockroute_api::dns_name::{label_problem, name_problem, normalise};
use dockroute_api::{RouteState, RouteStatus};
use ipnet::IpNet;

use crate::discovery::BridgeNetwork;

pub const LABEL_DOMAINS: &str = "dev.dockroute.domains";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
/// Reserved for private use (RFC 6761, RFC 8375, ICANN's `.internal`): never a public name.
pub const PRIVATE_USE: [&str; 4] = ["test", "example", "internal", "home.arpa"];

/// A name as the controller sends it: relative to the helper's suffix, or absolute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    Relative(String),
    Absolute(String),
}

impl Claim {
    /// The name as the user types it.
    pub fn full(&self, suffix: &str) -> String {
        match self {
            Claim::Relative(n) => format!("{n}.{suffix}"),
            Claim::Absolute(n) => n.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub name: Claim,
    /// The containers' names, sorted.
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub container: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameSet {
    /// For `set_names`.
    pub names: BTreeMap<String, Vec<IpAddr>>,
    pub domains: BTreeMap<String, Vec<IpAddr>>,
    /// Container id → its names.
    pub claims: BTreeMap<String, Vec<Claim>>,
    pub clashes: Vec<Clash>,
    pub skipped: Vec<Skipped>,
}

/// Which addresses are reachable: on a bridge network the user did not switch off, in a subnet
/// whose route does not conflict with another interface's and is not skipped (public space no
/// `route` line covers).
#[derive(Debug, Clone, Default)]
pub struct Routed {
    networks: BTreeMap<String, Vec<IpNet>>,
    unrouted: Vec<IpNet>,
}

impl Routed {
    pub fn new(networks: &[BridgeNetwork], disabled: &BTreeSet<String>, routes: &[RouteStatus]) -> Routed {
        let config_routes = crate::discovery::config_routes(routes);
        let skipped = (networks.iter().flat_map(|n| &n.subnets))
            .filter(|s| crate::discovery::skipped(s, &config_routes).is_some())
            .copied();
        Routed {
            networks: (networks.iter().filter(|n| !disabled.contains(&n.name)))
                .map(|n| (n.name.clone(), n.subnets.clone()))
                .collect(),
            unrouted: (routes.iter().filter(|r| matches!(r.state, RouteState::Conflict { .. })))
                .map(|r| r.net)
                .chain(skipped)
                .collect(),
        }
    }

    pub fn contains(&self, network: &str, ip: IpAddr) -> bool {
        self.networks
            .get(network)
            .is_some_and(|subnets| subnets.iter().any(|s| s.contains(&ip) && !self.unrouted.contains(s)))
    }
}

/// The names of the running containers in `list` (our guest left out); `suffix`, once the
/// helper told it, lets a label domain below it count as the relative name it is.
pub fn name_set(list: &[ContainerSummary], routed: &Routed, suffix: Option<&str>) -> NameSet {
    let mut set = NameSet::default();
    // Claim → (container names, addresses)
    let mut owners: BTreeMap<Claim, (BTreeSet<String>, BTreeSet<IpAddr>)> = BTreeMap::new();
    for c in list.iter().filter(|c| !is_guest(c)) {
        let Some(id) = c.id.clone() else { continue };
        let name = c.names.iter().flatten().next().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
        let addrs = routed_addresses(c, routed);
        if name.is_empty() || addrs.is_empty() {
            continue;
        }
        let claims = claims_of(c, &name, suffix, &mut set.skipped);
        for claim in &claims {
            let owner = owners.entry(claim.clone()).or_default();
            owner.0.insert(name.clone());
            owner.1.extend(addrs.iter().copied());
        }
        set.claims.insert(id, claims);
    }
    for (claim, (containers, addrs)) in owners {
        let addrs: Vec<IpAddr> = addrs.into_iter().collect();
        if containers.len() > 1 {
            set.clashes.push(Clash { name: claim.clone(), containers: containers.into_iter().collect() });
        }
        match claim {
            Claim::Relative(n) => set.names.insert(n, addrs),
            Claim::Absolute(n) => set.domains.insert(n, addrs),
        };
    }
    set
}

fn is_guest(c: &ContainerSummary) -> bool {
    c.labels.as_ref().is_some_and(|l| l.contains_key(crate::guest::LABEL_OURS))
}

fn routed_addresses(c: &ContainerSummary, routed: &Routed) -> BTreeSet<IpAddr> {
    let Some(nets) = c.network_settings.as_ref().and_then(|s| s.networks.as_ref()) else { return BTreeSet::new() };
    nets.iter()
        .flat_map(|(net, ep)| {
            [ep.ip_address.as_deref(), ep.global_ipv6_address.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|ip| ip.parse::<IpAddr>().ok())
                .filter(move |ip| routed.contains(net, *ip))
        })
        .collect()
}

/// The names one container claims; what cannot be a name goes to `skipped`.
fn claims_of(c: &ContainerSummary, name: &str, suffix: Option<&str>, skipped: &mut Vec<Skipped>) -> Vec<Claim> {
    let mut skip = |n: &str, reason: String| {
        skipped.push(Skipped { container: name.to_string(), name: n.to_string(), reason });
    };
    let mut claims = BTreeSet::new();
    match label_problem(name) {
        None => {
            claims.insert(Claim::Relative(name.to_ascii_lowercase()));
        }
        Some(why) => skip(name, why),
    }
    let label = |k: &str| c.labels.as_ref().and_then(|l| l.get(k)).map(String::as_str).filter(|v| !v.is_empty());
    if let (Some(service), Some(project)) = (label(COMPOSE_SERVICE), label(COMPOSE_PROJECT)) {
        let compose = format!("{service}.{project}");
        match label_problem(service).or_else(|| label_problem(project)) {
            None => {
                claims.insert(Claim::Relative(compose.to_ascii_lowercase()));
            }
            Some(why) => skip(&compose, why),
        }
    }
    for domain in label(LABEL_DOMAINS).unwrap_or_default().split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let normal = normalise(domain);
        if let Some(why) = name_problem(&normal, true) {
            skip(domain, why);
            continue;
        }
        let zone = normal.strip_prefix("*.").unwrap_or(&normal);
        let below = |z: &str| zone.strip_suffix(z).is_some_and(|head| head.ends_with('.'));
        match suffix {
            Some(s) if normal.strip_suffix(s).is_some_and(|head| head.ends_with('.') && !head.starts_with("*.")) => {
                claims.insert(Claim::Relative(normal[..normal.len() - s.len() - 1].to_string()));
            }
            Some(s) if below(s) || zone == s => {
                claims.insert(Claim::Absolute(normal));
            }
            _ if PRIVATE_USE.iter().any(|p| below(p)) => {
                claims.insert(Claim::Absolute(normal));
            }
            _ => {
                let allowed: Vec<String> = suffix.into_iter().chain(PRIVATE_USE).map(|d| format!(".{d}")).collect();
                skip(domain, format!("only names below {} are answered", allowed.join(", ")));
            }
        }
    }
    claims.into_iter().collect()
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
