//! What is exposed, decided without I/O: from the config's `route … expose` lines, the app's
//! toggles (kept by Docker network id), the Docker networks the app reports and the routes'
//! states, to the routes teammates see (status, their AllowedIPs, the guest's rules) and the
//! policy's `Rules` (which addresses are containers, which are the VM's).
//!
//! - Exposure follows the network, not a subnet string: an app toggle names a network id and
//!   the subnets it had when it was switched on; a network that is gone (or reported with other
//!   subnets) exposes nothing, and a new network on the same subnet has a new id.
//! - Only a routed route is exposed: one that is disabled, in conflict with another interface's
//!   route, or refused by the OS exposes nothing (a route waiting for the tunnel still counts,
//!   so the dashboard's switch keeps its state while the tunnel is down).
//! - A config line with a Docker network behind it (any reported subnet overlapping it)
//!   exposes that network's containers within it; without one (no app, or a route to something
//!   that is not Docker) it is an open route (`Rules::open`), as the seed's `expose` was.
//! - Every reported network's gateways are the VM's addresses: never a destination.

use std::collections::BTreeMap;

use dockroute_api::share::{DockerNetwork, ExposedBy, ExposedRoute};
use dockroute_api::{RouteSource, RouteState};
use ipnet::IpNet;

use super::policy::Rules;
use super::state::ExposedNetwork;

/// The routes' side of the daemon: what is wanted and what became of it.
pub struct Routing<'a> {
    pub wanted: &'a BTreeMap<IpNet, RouteSource>,
    pub states: &'a BTreeMap<IpNet, RouteState>,
}

impl Routing<'_> {
    /// Wanted, and installed or waiting for the tunnel: not disabled, in conflict or refused.
    pub fn routed(&self, net: &IpNet) -> bool {
        self.wanted.contains_key(net)
            && matches!(self.states.get(net), None | Some(RouteState::Installed | RouteState::Pending))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// What teammates may reach, route by route: the config's lines first, then the app's.
    pub routes: Vec<ExposedRoute>,
    /// The same as the policy needs it (without the link, which the share adds).
    pub rules: Rules,
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Is this app toggle still about the network it was made for?
fn same_network(record: &ExposedNetwork, n: &DockerNetwork) -> bool {
    let mut now: Vec<IpNet> = n.subnets.iter().map(IpNet::trunc).collect();
    let mut then = record.subnets.clone();
    now.sort();
    then.sort();
    record.id == n.id && now == then
}

/// Docker networks the app may report at most (like routes), and container addresses in all.
pub const MAX_NETWORKS: usize = 1024;
pub const MAX_CONTAINER_ADDRESSES: usize = 65_536;

/// `set_networks` as the helper accepts it: bounded, ids Docker could have made, and every
/// gateway and container address inside its network's subnets. The error names the network.
pub fn validate_networks(networks: &[DockerNetwork]) -> Result<Vec<DockerNetwork>, String> {
    if networks.len() > MAX_NETWORKS {
        return Err(format!("{} networks; at most {MAX_NETWORKS}", networks.len()));
    }
    let addresses: usize = networks.iter().map(|n| n.containers.len() + n.gateways.len()).sum();
    if addresses > MAX_CONTAINER_ADDRESSES {
        return Err(format!("{addresses} addresses; at most {MAX_CONTAINER_ADDRESSES}"));
    }
    let mut out = Vec::with_capacity(networks.len());
    for n in networks {
        let id_ok = (1..=128).contains(&n.id.len()) && n.id.bytes().all(|b| b.is_ascii_alphanumeric());
        if !id_ok {
            return Err(format!("network id {:?}: 1 to 128 letters or digits", n.id));
        }
        if n.name.len() > 256 || n.subnets.len() > 16 {
            return Err(format!("network {}: name over 256 bytes or more than 16 subnets", n.id));
        }
        let subnets: Vec<IpNet> = n.subnets.iter().map(IpNet::trunc).collect();
        let outside = n.gateways.iter().chain(&n.containers).find(|a| !subnets.iter().any(|s| s.contains(*a)));
        if let Some(a) = outside {
            return Err(format!("network {} ({}): {a} is in none of its subnets", n.name, n.id));
        }
        out.push(DockerNetwork { subnets, ..n.clone() });
    }
    Ok(out)
}

pub fn decide(
    config_exposed: &[IpNet],
    app_exposed: &[ExposedNetwork],
    networks: &[DockerNetwork],
    routing: &Routing,
) -> Exposure {
    let mut out = Exposure::default();
    out.rules.gateways = networks.iter().flat_map(|n| n.gateways.iter().copied()).collect();
    for line in config_exposed.iter().filter(|n| routing.routed(n)) {
        let behind: Vec<&DockerNetwork> =
            networks.iter().filter(|n| n.subnets.iter().any(|s| overlaps(s, line))).collect();
        if behind.is_empty() {
            out.rules.open.push(*line);
        }
        for n in &behind {
            let inside = n.containers.iter().filter(|c| line.contains(*c));
            out.rules.containers.extend(inside);
        }
        out.routes.push(ExposedRoute { net: *line, source: ExposedBy::Config, network: None });
    }
    for record in app_exposed {
        let Some(n) = networks.iter().find(|n| same_network(record, n)) else { continue };
        for subnet in n.subnets.iter().map(IpNet::trunc).filter(|s| routing.routed(s)) {
            out.rules.containers.extend(n.containers.iter().filter(|c| subnet.contains(*c)));
            if !out.routes.iter().any(|r| r.net == subnet) {
                let network = Some(n.id.clone());
                out.routes.push(ExposedRoute { net: subnet, source: ExposedBy::Api, network });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn network(id: &str, subnet: &str, containers: &[&str]) -> DockerNetwork {
        let net = n(subnet);
        let gw = match net.network() {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
        };
        DockerNetwork {
            id: id.into(),
            name: format!("net-{id}"),
            subnets: vec![net],
            gateways: vec![gw],
            containers: containers.iter().map(|c| ip(c)).collect(),
        }
    }

    fn record(id: &str, subnet: &str) -> ExposedNetwork {
        ExposedNetwork { id: id.into(), name: format!("net-{id}"), subnets: vec![n(subnet)] }
    }

    /// Every route in `app` wanted by the app and installed, unless `states` says otherwise.
    fn with_routes<T>(app: &[&str], states: &[(&str, RouteState)], f: impl FnOnce(&Routing) -> T) -> T {
        let wanted = app.iter().map(|s| (n(s), RouteSource::App)).collect();
        let mut st: BTreeMap<IpNet, RouteState> = app.iter().map(|s| (n(s), RouteState::Installed)).collect();
        st.extend(states.iter().map(|(s, state)| (n(s), state.clone())));
        f(&Routing { wanted: &wanted, states: &st })
    }

    #[test]
    fn an_exposed_network_offers_its_containers_and_never_its_gateway() {
        let nets = [network("aa", "198.19.1.0/24", &["198.19.1.10"]), network("bb", "198.19.2.0/24", &["198.19.2.10"])];
        let e = with_routes(&["198.19.1.0/24", "198.19.2.0/24"], &[], |r| {
            decide(&[], &[record("aa", "198.19.1.0/24")], &nets, r)
        });
        assert_eq!(e.rules.containers, [ip("198.19.1.10")].into());
        assert_eq!(e.rules.gateways, [ip("198.19.1.1"), ip("198.19.2.1")].into(), "every network's gateway");
        assert!(e.rules.open.is_empty());
        assert_eq!(
            e.routes,
            [ExposedRoute { net: n("198.19.1.0/24"), source: ExposedBy::Api, network: Some("aa".into()) }]
        );
    }

    #[test]
    fn an_attack_by_reusing_a_removed_networks_subnet_finds_nothing_exposed() {
        // "aa" was exposed, then removed; "cc" was created on the same subnet.
        let nets = [network("cc", "198.19.1.0/24", &["198.19.1.10"])];
        let e = with_routes(&["198.19.1.0/24"], &[], |r| decide(&[], &[record("aa", "198.19.1.0/24")], &nets, r));
        assert_eq!(
            e,
            Exposure { rules: Rules { gateways: [ip("198.19.1.1")].into(), ..Rules::default() }, ..Default::default() }
        );
        // A network reported under the exposed id with other subnets is not the one exposed.
        let moved = [network("aa", "10.99.0.0/16", &["10.99.0.10"])];
        let e = with_routes(&["10.99.0.0/16"], &[], |r| decide(&[], &[record("aa", "198.19.1.0/24")], &moved, r));
        assert!(e.routes.is_empty() && e.rules.containers.is_empty(), "{e:?}");
    }

    #[test]
    fn an_attack_through_a_disabled_conflicting_or_refused_route_finds_nothing_exposed() {
        let nets = [network("aa", "198.19.1.0/24", &["198.19.1.10"])];
        let states = [
            RouteState::Disabled,
            RouteState::Conflict { interface: "utun4".into(), route: n("198.19.0.0/16") },
            RouteState::Failed { message: "File exists".into() },
        ];
        for state in states {
            let e = with_routes(&["198.19.1.0/24"], &[("198.19.1.0/24", state.clone())], |r| {
                decide(&[n("198.19.1.0/24")], &[record("aa", "198.19.1.0/24")], &nets, r)
            });
            assert!(
                e.routes.is_empty() && e.rules.containers.is_empty() && e.rules.open.is_empty(),
                "{state:?}: {e:?}"
            );
        }
        // Not wanted at all (the app no longer routes it): not exposed either.
        let e = with_routes(&[], &[], |r| decide(&[], &[record("aa", "198.19.1.0/24")], &nets, r));
        assert!(e.routes.is_empty());
        // Waiting for the tunnel still counts (the switch keeps its state).
        let e = with_routes(&["198.19.1.0/24"], &[("198.19.1.0/24", RouteState::Pending)], |r| {
            decide(&[], &[record("aa", "198.19.1.0/24")], &nets, r)
        });
        assert_eq!(e.routes.len(), 1);
    }

    #[test]
    fn a_config_line_exposes_the_containers_of_the_networks_behind_it_or_is_open_without_one() {
        let nets = [
            network("aa", "198.19.1.0/24", &["198.19.1.10", "198.19.1.11"]),
            network("bb", "198.19.2.0/24", &["198.19.2.10"]),
        ];
        let e = with_routes(&["198.19.1.0/24", "198.19.2.0/24"], &[], |r| {
            let mut both = r.wanted.clone();
            both.insert(n("198.19.0.0/16"), RouteSource::Config);
            both.insert(n("198.20.0.0/16"), RouteSource::Config);
            let routing = Routing { wanted: &both, states: r.states };
            decide(&[n("198.19.0.0/16"), n("198.20.0.0/16")], &[], &nets, &routing)
        });
        assert_eq!(e.rules.containers, [ip("198.19.1.10"), ip("198.19.1.11"), ip("198.19.2.10")].into());
        assert_eq!(e.rules.open, [n("198.20.0.0/16")], "no Docker network behind it");
        let sources: Vec<_> = e.routes.iter().map(|r| (r.net, r.source)).collect();
        assert_eq!(sources, [(n("198.19.0.0/16"), ExposedBy::Config), (n("198.20.0.0/16"), ExposedBy::Config)]);
    }

    #[test]
    fn an_attack_by_reporting_addresses_outside_a_network_or_endless_networks_is_refused() {
        let good = network("aa", "198.19.1.5/24", &["198.19.1.10"]);
        assert_eq!(validate_networks(std::slice::from_ref(&good)).unwrap()[0].subnets, [n("198.19.1.0/24")]);
        let mut outside = good.clone();
        outside.containers.push(ip("192.168.1.1"));
        assert!(validate_networks(&[outside]).unwrap_err().contains("192.168.1.1 is in none of its subnets"));
        let mut gw = good.clone();
        gw.gateways = vec![ip("198.18.5.1")];
        assert!(validate_networks(&[gw]).is_err(), "a gateway outside the network");
        for id in ["", "../x", "a b", &"f".repeat(129)] {
            let bad = DockerNetwork { id: id.into(), ..good.clone() };
            assert!(validate_networks(&[bad]).unwrap_err().contains("network id"), "{id:?}");
        }
        assert!(validate_networks(&vec![good.clone(); MAX_NETWORKS + 1]).is_err());
        let crowded = DockerNetwork { containers: vec![ip("198.19.1.10"); MAX_CONTAINER_ADDRESSES], ..good };
        assert!(validate_networks(&[crowded]).unwrap_err().contains("addresses"));
    }

    #[test]
    fn a_container_on_two_networks_is_reached_only_on_the_exposed_one() {
        let mut a = network("aa", "198.19.1.0/24", &["198.19.1.10"]);
        let mut b = network("bb", "198.19.2.0/24", &["198.19.2.10"]);
        // The same container, attached to both: the app reports its address on each network.
        a.containers.push(ip("198.19.1.20"));
        b.containers.push(ip("198.19.2.20"));
        let e = with_routes(&["198.19.1.0/24", "198.19.2.0/24"], &[], |r| {
            decide(&[], &[record("aa", "198.19.1.0/24")], &[a, b], r)
        });
        assert_eq!(e.rules.containers, [ip("198.19.1.10"), ip("198.19.1.20")].into());
    }
}
