//! Docker's bridge networks, reduced to what Dockroute needs: their subnets (the routes the
//! helper installs) and whether they are `--internal` (the guest masquerades towards those,
//! since their containers have no route back).

use std::collections::BTreeSet;
use std::net::IpAddr;

use bollard::models::{ContainerSummary, Network};
use dockroute_api::share::{DockerNetwork, ExposedRoute};
use dockroute_api::{address_space, Pair, RouteSource, RouteState, RouteStatus};
use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNetwork {
    pub id: String,
    pub name: String,
    pub subnets: Vec<IpNet>,
    /// The bridge's addresses in the VM (IPAM's gateways): the VM's own, never a container's.
    pub gateways: Vec<IpAddr>,
    pub internal: bool,
}

#[cfg(test)]
impl BridgeNetwork {
    /// A routable bridge network as the unit tests write it: id `id-<name>`, not internal.
    pub(crate) fn test(name: &str, subnets: &[&str]) -> BridgeNetwork {
        BridgeNetwork {
            id: format!("id-{name}"),
            name: name.into(),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            gateways: Vec::new(),
            internal: false,
        }
    }
}

/// Local bridge networks with at least one parseable subnet; others (host, none, overlay,
/// macvlan, networks without IPAM) are not ours to route.
pub fn bridge_networks(all: &[Network]) -> Vec<BridgeNetwork> {
    let mut out: Vec<BridgeNetwork> = all
        .iter()
        .filter(|n| n.driver.as_deref() == Some("bridge"))
        .filter_map(|n| {
            let config = n.ipam.as_ref()?.config.as_ref()?;
            let subnets: Vec<IpNet> =
                config.iter().filter_map(|c| c.subnet.as_deref()?.parse::<IpNet>().ok()).map(|s| s.trunc()).collect();
            let gateways = config.iter().filter_map(|c| c.gateway.as_deref()?.parse::<IpAddr>().ok()).collect();
            (!subnets.is_empty()).then(|| BridgeNetwork {
                id: n.id.clone().unwrap_or_default(),
                name: n.name.clone().unwrap_or_default(),
                subnets,
                gateways,
                internal: n.internal.unwrap_or(false),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Every subnet of every bridge network the user did not switch off (by name), once, in a
/// stable order; a subnet on public address space only where one of the helper's
/// `config_routes` covers it (`skipped` says why the others are not asked for).
pub fn desired_routes(networks: &[BridgeNetwork], disabled: &BTreeSet<String>, config_routes: &[IpNet]) -> Vec<IpNet> {
    let set: BTreeSet<IpNet> = (networks.iter().filter(|n| !disabled.contains(&n.name)))
        .flat_map(|n| n.subnets.iter().copied())
        .filter(|s| skipped(s, config_routes).is_none())
        .collect();
    set.into_iter().collect()
}

/// The helper's `route` lines, as its status reports them (one it refused covers nothing).
pub fn config_routes(status_routes: &[RouteStatus]) -> Vec<IpNet> {
    (status_routes.iter())
        .filter(|r| r.source == RouteSource::Config && !matches!(r.state, RouteState::Failed { .. }))
        .map(|r| r.net)
        .collect()
}

/// Why a network's subnet is not asked for: public address space no `route` line covers. A
/// compose file can give a network any subnet; routing `8.8.8.0/24` would take that range
/// from the internet on this machine.
pub fn skipped(subnet: &IpNet, config_routes: &[IpNet]) -> Option<String> {
    address_space::needs_route_line(subnet, config_routes)
}

/// The networks as the helper's share needs them (`set_networks`): ids, gateways, and the
/// addresses of the running containers on each (matched by network id, else by name). Our own
/// guest runs on the host network and is on none of them.
pub fn docker_networks(networks: &[BridgeNetwork], containers: &[ContainerSummary]) -> Vec<DockerNetwork> {
    networks
        .iter()
        .map(|n| {
            let mut addresses: BTreeSet<IpAddr> = BTreeSet::new();
            for c in containers {
                let Some(eps) = c.network_settings.as_ref().and_then(|s| s.networks.as_ref()) else { continue };
                let on =
                    eps.iter().filter(|(name, ep)| ep.network_id.as_deref().map_or(**name == n.name, |id| id == n.id));
                for (_, ep) in on {
                    let ips = [ep.ip_address.as_deref(), ep.global_ipv6_address.as_deref()];
                    addresses.extend(ips.into_iter().flatten().filter_map(|ip| ip.parse::<IpAddr>().ok()));
                }
            }
            // Only what lies inside the network (the helper refuses the set otherwise).
            addresses.retain(|a| n.subnets.iter().any(|s| s.contains(a)));
            DockerNetwork {
                id: n.id.clone(),
                name: n.name.clone(),
                subnets: n.subnets.clone(),
                gateways: n.gateways.iter().copied().filter(|g| n.subnets.iter().any(|s| s.contains(g))).collect(),
                containers: addresses.into_iter().collect(),
            }
        })
        .collect()
}

/// The guest's rules file: `internal CIDR` per internal subnet, then the `iptables A+B` pairs
/// (seed syntax, as `Pair` prints and parses it) the user configured, then `expose CIDR` per
/// route teammates may reach (the helper's status says which; the guest lets teammates'
/// packets reach nothing else).
pub fn guest_rules(networks: &[BridgeNetwork], pairs: &[Pair], exposed: &[ExposedRoute]) -> String {
    let mut text = String::from("# written by dockroute; the guest re-reads it when it changes\n");
    let internal: BTreeSet<IpNet> =
        networks.iter().filter(|n| n.internal).flat_map(|n| n.subnets.iter().copied()).collect();
    for n in internal {
        text.push_str(&format!("internal {n}\n"));
    }
    for p in pairs {
        text.push_str(&format!("iptables {p}\n"));
    }
    let exposed: BTreeSet<IpNet> = exposed.iter().map(|r| r.net).collect();
    for n in exposed {
        text.push_str(&format!("expose {n}\n"));
    }
    text
}

/// The pairs for the guest's rules: the app's `--iptables` ones, then those of the helper's
/// config file (its `status` reports them: the helper never talks to Docker, so the app, which
/// writes the rules, merges them), each pair once whichever way round it is written.
pub fn all_pairs(app: &[Pair], helper: &[Pair]) -> Vec<Pair> {
    let mut out: Vec<Pair> = Vec::new();
    for p in app.iter().chain(helper) {
        if !out.iter().any(|q| (q.a, q.b) == (p.a, p.b) || (q.a, q.b) == (p.b, p.a)) {
            out.push(*p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{Ipam, IpamConfig};

    fn net(name: &str, driver: &str, subnets: &[&str], internal: bool) -> Network {
        Network {
            name: Some(name.into()),
            id: Some(format!("id-{name}")),
            driver: Some(driver.into()),
            internal: Some(internal),
            ipam: Some(Ipam {
                config: Some(
                    subnets.iter().map(|s| IpamConfig { subnet: Some(s.to_string()), ..Default::default() }).collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_bridge_networks_with_subnets_count_and_routes_are_deduplicated() {
        let all = [
            net("bridge", "bridge", &["198.19.0.0/24"], false),
            net("host", "host", &[], false),
            net("none", "null", &[], false),
            net("app", "bridge", &["198.19.1.0/24", "2001:2:0:1::/64"], false),
            net("private", "bridge", &["198.19.2.0/24"], true),
            net("swarm", "overlay", &["198.19.9.0/24"], false),
            net("dup", "bridge", &["198.19.1.0/24"], false),
            net("broken", "bridge", &["not-a-cidr"], false),
        ];
        let b = bridge_networks(&all);
        let names: Vec<&str> = b.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["app", "bridge", "dup", "private"]);
        let routes: Vec<String> = desired_routes(&b, &BTreeSet::new(), &[]).iter().map(ToString::to_string).collect();
        assert_eq!(routes, ["198.19.0.0/24", "198.19.1.0/24", "198.19.2.0/24", "2001:2:0:1::/64"]);
    }

    #[test]
    fn the_helpers_config_pairs_join_the_apps_once() {
        let p = |s: &str| s.parse::<Pair>().unwrap();
        let app = [p("198.19.1.0+198.19.2.0")];
        let helper = [p("198.19.2.0+198.19.1.0"), p("198.19.3.0+198.19.4.0")];
        assert_eq!(all_pairs(&app, &helper), [p("198.19.1.0+198.19.2.0"), p("198.19.3.0+198.19.4.0")]);
        assert_eq!(all_pairs(&[], &helper[1..]), [p("198.19.3.0+198.19.4.0")]);
        assert!(all_pairs(&[], &[]).is_empty());
    }

    #[test]
    fn the_rules_file_lists_internal_subnets_and_pairs() {
        let b = bridge_networks(&[
            net("private", "bridge", &["198.19.2.0/24"], true),
            net("app", "bridge", &["198.19.1.0/24"], false),
        ]);
        let pair: Pair = "198.19.1.0+198.19.3.0".parse().unwrap();
        let text = guest_rules(&b, &[pair], &[]);
        assert!(text.contains("internal 198.19.2.0/24\n"));
        assert!(!text.contains("198.19.1.0/24"));
        assert!(!text.contains("expose"), "nothing exposed: teammates reach nothing in the VM");
        assert!(text.contains("iptables 198.19.1.0+198.19.3.0\n"));
        let line = text.lines().find(|l| l.starts_with("iptables ")).unwrap();
        assert_eq!(line["iptables ".len()..].parse::<Pair>(), Ok(pair), "the guest reads back the same pair");
    }

    #[test]
    fn a_compose_network_on_public_space_is_not_asked_for_until_a_config_route_covers_it() {
        let b = [
            BridgeNetwork::test("app", &["172.18.0.0/16"]),
            BridgeNetwork::test("evil", &["8.8.8.0/24"]),
            BridgeNetwork::test("lab", &["203.0.113.0/24", "fd00:113::/64"]),
        ];
        let shown = |routes: Vec<IpNet>| routes.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(shown(desired_routes(&b, &BTreeSet::new(), &[])), ["172.18.0.0/16", "fd00:113::/64"]);
        let line: IpNet = "203.0.113.0/24".parse().unwrap();
        assert_eq!(
            shown(desired_routes(&b, &BTreeSet::new(), &[line])),
            ["172.18.0.0/16", "203.0.113.0/24", "fd00:113::/64"]
        );
        assert!(skipped(&"8.8.8.0/24".parse().unwrap(), &[line]).unwrap().contains("add `route 8.8.8.0/24`"));
    }

    #[test]
    fn config_routes_are_the_helpers_route_lines_it_did_not_refuse() {
        let r = |net: &str, source, state| RouteStatus { net: net.parse().unwrap(), source, enabled: true, state };
        let status = [
            r("203.0.113.0/24", RouteSource::Config, RouteState::Installed),
            r("198.51.100.0/24", RouteSource::Config, RouteState::Disabled),
            r("0.0.0.0/1", RouteSource::Config, RouteState::Failed { message: "prefix too short".into() }),
            r("172.18.0.0/16", RouteSource::App, RouteState::Installed),
        ];
        let got: Vec<String> = config_routes(&status).iter().map(ToString::to_string).collect();
        assert_eq!(got, ["203.0.113.0/24", "198.51.100.0/24"]);
    }

    #[test]
    fn exposed_routes_go_to_the_guest_once_each() {
        use dockroute_api::share::ExposedBy;
        let r = |net: &str, source| ExposedRoute { net: net.parse().unwrap(), source, network: None };
        let text = guest_rules(&[], &[], &[r("198.19.1.0/24", ExposedBy::Api), r("198.19.1.0/24", ExposedBy::Config)]);
        assert_eq!(text.lines().filter(|l| l.starts_with("expose ")).collect::<Vec<_>>(), ["expose 198.19.1.0/24"]);
    }

    #[test]
    fn the_helper_hears_each_networks_gateways_and_its_containers_addresses_on_it() {
        use bollard::models::{ContainerSummaryNetworkSettings, EndpointSettings};
        let mut all = [net("app", "bridge", &["198.19.1.0/24"], false), net("db", "bridge", &["198.19.2.0/24"], false)];
        for n in &mut all {
            let gw = if n.name.as_deref() == Some("app") { "198.19.1.1" } else { "198.19.2.1" };
            n.ipam.as_mut().unwrap().config.as_mut().unwrap()[0].gateway = Some(gw.into());
        }
        let b = bridge_networks(&all);
        let ep = |id: Option<&str>, ip: &str| EndpointSettings {
            network_id: id.map(str::to_string),
            ip_address: Some(ip.into()),
            ..Default::default()
        };
        // On both networks; the second endpoint is matched by name (no id reported), and an
        // address outside its network is left out.
        let c = ContainerSummary {
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some(
                    [
                        ("app".to_string(), ep(Some("id-app"), "198.19.1.10")),
                        ("db".to_string(), ep(None, "198.19.2.10")),
                    ]
                    .into(),
                ),
            }),
            ..Default::default()
        };
        let stray = ContainerSummary {
            network_settings: Some(ContainerSummaryNetworkSettings {
                networks: Some([("app".to_string(), ep(Some("id-app"), "10.9.9.9"))].into()),
            }),
            ..Default::default()
        };
        let d = docker_networks(&b, &[c, stray]);
        let got: Vec<(&str, Vec<String>, Vec<String>)> = d
            .iter()
            .map(|n| {
                let s = |v: &[IpAddr]| v.iter().map(ToString::to_string).collect();
                (n.id.as_str(), s(&n.gateways), s(&n.containers))
            })
            .collect();
        assert_eq!(
            got,
            [
                ("id-app", vec!["198.19.1.1".to_string()], vec!["198.19.1.10".to_string()]),
                ("id-db", vec!["198.19.2.1".to_string()], vec!["198.19.2.10".to_string()]),
            ]
        );
    }
}
