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
//! able to take over `github.com` on the user's Mac. Nor may a label take another container's
//! own name, the suffix or its wildcard (`*.docker` would answer every name that does not
//! exist). The helper checks the same rules (`dns_name::domain_problem`) on what it is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bollard::models::ContainerSummary;
use dockroute_api::dns_name::{domain_problem, label_problem, name_problem, normalise, MAX_NAME_LEN};
use dockroute_api::{RouteState, RouteStatus};
use ipnet::IpNet;

use crate::discovery::BridgeNetwork;

pub const LABEL_DOMAINS: &str = "dev.dockroute.domains";
/// The port the HTTPS front serves a container's names from (else its only exposed TCP
/// port, else 80).
pub const LABEL_HTTPS_PORT: &str = "dev.dockroute.https-port";
/// `dev.dockroute.https.<sub>=<port>`: one more name, `<sub>.<name>.<suffix>`, served from
/// that port (a second web port of one container: an admin UI, an API beside the app).
pub const LABEL_HTTPS_SUB: &str = "dev.dockroute.https.";
pub const COMPOSE_SERVICE: &str = "com.docker.compose.service";
pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";

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
    /// The HTTPS front's port per name (keys as in `names` and `domains`).
    pub name_ports: BTreeMap<String, u16>,
    pub domain_ports: BTreeMap<String, u16>,
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
/// helper told it, lets a label domain below it count. A label domain never takes another
/// container's own name (its name or compose name): it is skipped, saying whose it is.
pub fn name_set(list: &[ContainerSummary], routed: &Routed, suffix: Option<&str>) -> NameSet {
    let mut set = NameSet::default();
    // Every container's own names first, so a label anywhere in the list can be checked.
    let mut named = Vec::new();
    let mut port_of: Vec<BTreeMap<Claim, u16>> = Vec::new();
    for c in list.iter().filter(|c| !is_guest(c)) {
        let Some(id) = c.id.clone() else { continue };
        let name = c.names.iter().flatten().next().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
        let addrs = routed_addresses(c, routed);
        if name.is_empty() || addrs.is_empty() {
            continue;
        }
        let port = web_port(c);
        let mut own = own_claims(c, &name, suffix, &mut set.skipped);
        let mut ports: BTreeMap<Claim, u16> = own.iter().map(|claim| (claim.clone(), port)).collect();
        for (claim, p) in sub_claims(c, &name, &own, suffix, &mut set.skipped) {
            ports.insert(claim.clone(), p);
            own.push(claim);
        }
        let labels = label_claims(c, &name, suffix, &mut set.skipped);
        ports.extend(labels.iter().map(|claim| (claim.clone(), port)));
        named.push((id, name, addrs, own, labels));
        port_of.push(ports);
    }
    let mut own_names: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (_, name, _, own, _) in &named {
        for claim in own {
            own_names.entry(claim.full(suffix.unwrap_or_default())).or_default().insert(name);
        }
    }
    // Claim → (container names, addresses)
    let mut owners: BTreeMap<Claim, (BTreeSet<String>, BTreeSet<IpAddr>)> = BTreeMap::new();
    for ((id, name, addrs, own, labels), ports) in named.iter().zip(&port_of) {
        let mut claims: BTreeSet<Claim> = own.iter().cloned().collect();
        for claim in labels {
            let full = claim.full(suffix.unwrap_or_default());
            let others: Vec<&str> = own_names.get(&full).into_iter().flatten().copied().filter(|o| o != name).collect();
            if others.is_empty() {
                claims.insert(claim.clone());
            } else {
                let reason = format!("{full} is the name of container {}", others.join(", "));
                set.skipped.push(Skipped { container: name.clone(), name: full, reason });
            }
        }
        for claim in &claims {
            let port = ports.get(claim).copied().unwrap_or(80);
            match claim {
                Claim::Relative(n) => set.name_ports.insert(n.clone(), port),
                Claim::Absolute(n) => set.domain_ports.insert(n.clone(), port),
            };
            let owner = owners.entry(claim.clone()).or_default();
            owner.0.insert(name.clone());
            owner.1.extend(addrs.iter().copied());
        }
        set.claims.insert(id.clone(), claims.into_iter().collect());
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

/// A container's own names: its name and its compose name, relative to the suffix; what
/// cannot be a name goes to `skipped`, and so does a name too long once the suffix is appended
/// (the helper would refuse the whole set for it).
fn own_claims(c: &ContainerSummary, name: &str, suffix: Option<&str>, skipped: &mut Vec<Skipped>) -> Vec<Claim> {
    let mut skip = |n: &str, reason: String| {
        skipped.push(Skipped { container: name.to_string(), name: n.to_string(), reason });
    };
    let mut claims = Vec::new();
    match label_problem(name) {
        None => claims.push(Claim::Relative(name.to_ascii_lowercase())),
        Some(why) => skip(name, why),
    }
    if let (Some(service), Some(project)) = (label(c, COMPOSE_SERVICE), label(c, COMPOSE_PROJECT)) {
        let compose = format!("{service}.{project}");
        match label_problem(service).or_else(|| label_problem(project)) {
            None => claims.push(Claim::Relative(compose.to_ascii_lowercase())),
            Some(why) => skip(&compose, why),
        }
    }
    claims.retain(|claim| match (claim, suffix) {
        (Claim::Relative(n), Some(s)) if n.len() + 1 + s.len() > MAX_NAME_LEN => {
            skip(n, format!("{n}.{s} is longer than {MAX_NAME_LEN} characters"));
            false
        }
        _ => true,
    });
    claims
}

/// The domains of a container's `dev.dockroute.domains` label that may be claimed
/// (`dns_name::domain_problem`), as absolute names; the rest goes to `skipped`.
fn label_claims(c: &ContainerSummary, name: &str, suffix: Option<&str>, skipped: &mut Vec<Skipped>) -> Vec<Claim> {
    let mut claims = Vec::new();
    for domain in label(c, LABEL_DOMAINS).unwrap_or_default().split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let normal = normalise(domain);
        match name_problem(&normal, true).or_else(|| domain_problem(&normal, suffix)) {
            None => claims.push(Claim::Absolute(normal)),
            Some(reason) => skipped.push(Skipped { container: name.to_string(), name: domain.to_string(), reason }),
        }
    }
    claims
}

/// The port the HTTPS front serves the container from: its `dev.dockroute.https-port` label,
/// else 443 if it exposes 443 (it speaks TLS itself: the helper leaves its port 443 alone),
/// else its only exposed TCP port, else 80 (a label that is not a port counts as absent).
pub fn web_port(c: &ContainerSummary) -> u16 {
    if let Some(p) = label(c, LABEL_HTTPS_PORT).and_then(|v| v.trim().parse::<u16>().ok()).filter(|p| *p != 0) {
        return p;
    }
    use bollard::models::PortSummaryTypeEnum;
    let tcp: BTreeSet<u16> = (c.ports.iter().flatten())
        .filter(|p| matches!(p.typ, None | Some(PortSummaryTypeEnum::TCP)))
        .map(|p| p.private_port)
        .collect();
    if tcp.contains(&443) {
        return 443;
    }
    match tcp.len() {
        1 => tcp.into_iter().next().unwrap_or(80),
        _ => 80,
    }
}

/// `dev.dockroute.https.<sub>=<port>` labels: `<sub>.<own name>` for each own relative name,
/// served from that port. A bad sub label or port is skipped, saying why.
fn sub_claims(
    c: &ContainerSummary,
    name: &str,
    own: &[Claim],
    suffix: Option<&str>,
    skipped: &mut Vec<Skipped>,
) -> Vec<(Claim, u16)> {
    let mut out = Vec::new();
    // Sorted: Docker's labels are a map without order, and what is skipped is shown in order.
    let labels: BTreeMap<&str, &String> =
        c.labels.iter().flatten().filter_map(|(k, v)| Some((k.strip_prefix(LABEL_HTTPS_SUB)?, v))).collect();
    for (sub, value) in labels {
        let port = value.trim().parse::<u16>().ok().filter(|p| *p != 0);
        let problem = label_problem(sub).or_else(|| port.is_none().then(|| format!("{value:?} is not a port")));
        if let Some(reason) = problem {
            skipped.push(Skipped { container: name.to_string(), name: format!("{LABEL_HTTPS_SUB}{sub}"), reason });
            continue;
        }
        for claim in own {
            let Claim::Relative(n) = claim else { continue };
            let full = format!("{}.{n}", sub.to_ascii_lowercase());
            if suffix.is_some_and(|s| full.len() + 1 + s.len() > MAX_NAME_LEN) {
                skipped.push(Skipped { container: name.to_string(), name: full, reason: "too long".into() });
                continue;
            }
            out.push((Claim::Relative(full), port.unwrap_or(80)));
        }
    }
    out
}

fn label<'c>(c: &'c ContainerSummary, key: &str) -> Option<&'c str> {
    c.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str).filter(|v| !v.is_empty())
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
