//! Which routes go through the tunnel, decided without touching the OS: the config's `route`
//! lines ∪ the app's set − the disabled − conflicts with routes other interfaces own, against a
//! snapshot of the OS routing table. The daemon reads the table, asks [`plan`] and carries the
//! plan out (`Routes::reconcile`); every case is a plain unit test. Also the link-subnet pick.

use crate::link::Link;
use std::collections::{BTreeMap, BTreeSet};

use dockroute_api::{address_space, RouteSource, RouteState};
use dockroute_engine::platform::table::{self, RouteEntry};
use ipnet::{IpNet, Ipv4Net};

/// Docker never has more networks than this; a larger set is a mistake or an attack.
pub const MAX_ROUTES: usize = 1024;

/// Why a subnet must not go through the tunnel (one rule for the config's lines and the app's).
pub use dockroute_engine::platform::table::unroutable;

/// The app's route set as `set_routes` accepts it: at most `MAX_ROUTES`, none unroutable,
/// each normalised to its network. The error names the first offending route.
pub fn validate_app_routes(routes: &[IpNet]) -> Result<BTreeSet<IpNet>, String> {
    if routes.len() > MAX_ROUTES {
        return Err(format!("{} routes; at most {MAX_ROUTES}", routes.len()));
    }
    if let Some((net, why)) = routes.iter().find_map(|n| unroutable(n).map(|why| (n, why))) {
        return Err(format!("route {net}: {why}"));
    }
    Ok(routes.iter().map(IpNet::trunc).collect())
}

/// Config `route` lines and the app's set, each with where it came from (a route in both
/// counts as the config's).
pub fn wanted(config: &[IpNet], app: &BTreeSet<IpNet>) -> BTreeMap<IpNet, RouteSource> {
    let mut all: BTreeMap<IpNet, RouteSource> = app.iter().map(|n| (*n, RouteSource::App)).collect();
    for n in config {
        all.insert(*n, RouteSource::Config);
    }
    all
}

/// `set_route_enabled` may only switch a route that the config or the app asked for.
pub fn known_route(route: IpNet, wanted: &BTreeMap<IpNet, RouteSource>) -> Result<IpNet, String> {
    let route = route.trunc();
    if wanted.contains_key(&route) {
        Ok(route)
    } else {
        Err(format!("no route {route} is configured"))
    }
}

/// The tunnel as the policy sees it, while it is up.
#[derive(Debug, Clone, Copy)]
pub struct TunnelView<'a> {
    /// Our interface: its routes are ours, never a conflict.
    pub ifname: &'a str,
    /// What we installed (and believe is still there).
    pub installed: &'a BTreeSet<IpNet>,
    /// The OS routing table, read just now. (Unreadable: the caller changes nothing, since a
    /// LAN or VPN route could not be told from a free one.)
    pub table: &'a [RouteEntry],
}

/// What to do with the tunnel's routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Each wanted route's state, if the plan is carried out.
    pub states: BTreeMap<IpNet, RouteState>,
    /// The set our interface should carry.
    pub install: BTreeSet<IpNet>,
    /// Ours, but removed by someone else: forget them first, so they are added again.
    pub forget: Vec<IpNet>,
}

/// Why an app route is refused: it is on public address space and no `route` line of the
/// config covers it (`address_space`). The app is less trusted than root's config, so only the
/// config can put public space into the tunnel.
pub fn refused_for_app(net: &IpNet, source: RouteSource, wanted: &BTreeMap<IpNet, RouteSource>) -> Option<String> {
    let lines = wanted.iter().filter(|(n, s)| **s == RouteSource::Config && unroutable(n).is_none());
    (source == RouteSource::App).then(|| address_space::needs_route_line(net, lines.map(|(n, _)| n))).flatten()
}

/// While the tunnel is down nothing can be installed: each route waits (or is disabled, or
/// refused).
pub fn waiting(wanted: &BTreeMap<IpNet, RouteSource>, disabled: &BTreeSet<IpNet>) -> BTreeMap<IpNet, RouteState> {
    let state = |net, source| match refused_for_app(net, source, wanted) {
        _ if disabled.contains(net) => RouteState::Disabled,
        Some(message) => RouteState::Failed { message },
        None => RouteState::Pending,
    };
    wanted.iter().map(|(net, source)| (*net, state(net, *source))).collect()
}

/// Decides each wanted route's state and what the tunnel's interface should carry.
pub fn plan(wanted: &BTreeMap<IpNet, RouteSource>, disabled: &BTreeSet<IpNet>, t: TunnelView) -> Plan {
    // An empty table is a read that went wrong (every system has some route), not proof
    // that someone removed all of ours.
    let forget = if t.table.is_empty() {
        Vec::new()
    } else {
        let present = |n: &IpNet| t.table.iter().any(|e| e.dest == *n && e.interface == t.ifname);
        t.installed.iter().filter(|n| !present(n)).copied().collect()
    };
    let mut states = BTreeMap::new();
    let mut install = BTreeSet::new();
    for (net, source) in wanted {
        let state = if disabled.contains(net) {
            RouteState::Disabled
        } else if let Some(why) = unroutable(net) {
            RouteState::Failed { message: why.to_string() }
        } else if let Some(message) = refused_for_app(net, *source, wanted) {
            RouteState::Failed { message }
        } else if let Some(c) = table::find_conflict(*net, t.table, t.ifname) {
            RouteState::Conflict { interface: c.interface.clone(), route: c.dest }
        } else {
            install.insert(*net);
            RouteState::Installed
        };
        states.insert(*net, state);
    }
    Plan { states, install, forget }
}

/// Routes the OS refused are Failed with its reason, whatever the plan expected.
pub fn record_failures(states: &mut BTreeMap<IpNet, RouteState>, failures: &[(IpNet, String)]) {
    for (net, message) in failures {
        states.insert(*net, RouteState::Failed { message: message.clone() });
    }
}

/// The configured link subnet, or (unless it is pinned) the first free fallback when another
/// interface routes it; the guest takes the first other address.
pub fn pick_link(configured: Ipv4Net, pinned: bool, table: &[RouteEntry]) -> Result<Link, String> {
    // No interface of ours exists yet: every route in the table is someone else's.
    let host = table::choose_link_subnet(configured, pinned, table, "")?;
    Ok(Link::on(host))
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn set(nets: &[&str]) -> BTreeSet<IpNet> {
        nets.iter().map(|s| n(s)).collect()
    }

    fn entry(dest: &str, interface: &str) -> RouteEntry {
        RouteEntry { dest: n(dest), interface: interface.into(), gateway: None }
    }

    /// A host with a LAN, a default route, and whatever `extra` adds.
    fn table(extra: &[(&str, &str)]) -> Vec<RouteEntry> {
        let mut t = vec![entry("0.0.0.0/0", "eth0"), entry("192.168.1.0/24", "eth0")];
        t.extend(extra.iter().map(|(d, i)| entry(d, i)));
        t
    }

    fn destructure(p: Plan) -> (BTreeMap<IpNet, RouteState>, BTreeSet<IpNet>, Vec<IpNet>) {
        (p.states, p.install, p.forget)
    }

    fn up<'a>(installed: &'a BTreeSet<IpNet>, table: &'a [RouteEntry]) -> TunnelView<'a> {
        TunnelView { ifname: "dockroute0", installed, table }
    }

    #[test]
    fn config_and_app_routes_minus_disabled_minus_conflicts_are_installed() {
        let wanted = wanted(&[n("172.17.0.0/16"), n("10.8.0.0/16")], &set(&["172.18.0.0/16", "172.19.0.0/16"]));
        assert_eq!(wanted[&n("172.17.0.0/16")], RouteSource::Config);
        assert_eq!(wanted[&n("172.18.0.0/16")], RouteSource::App);
        let disabled = set(&["172.19.0.0/16"]);
        let t = table(&[("10.8.0.0/24", "utun3")]);
        let (states, install, forget) = destructure(plan(&wanted, &disabled, up(&BTreeSet::new(), &t)));
        assert_eq!(install, set(&["172.17.0.0/16", "172.18.0.0/16"]));
        assert!(forget.is_empty());
        assert_eq!(states[&n("172.19.0.0/16")], RouteState::Disabled);
        let conflict = RouteState::Conflict { interface: "utun3".into(), route: n("10.8.0.0/24") };
        assert_eq!(states[&n("10.8.0.0/16")], conflict);
        assert_eq!(states[&n("172.17.0.0/16")], RouteState::Installed);
    }

    #[test]
    fn a_route_in_both_the_config_and_the_app_set_is_the_configs() {
        let wanted = wanted(&[n("172.18.0.0/16")], &set(&["172.18.0.0/16"]));
        assert_eq!(wanted.into_iter().collect::<Vec<_>>(), [(n("172.18.0.0/16"), RouteSource::Config)]);
    }

    #[test]
    fn a_conflict_that_clears_gets_the_route_installed() {
        let wanted = wanted(&[], &set(&["10.8.0.0/16"]));
        let vpn = table(&[("10.0.0.0/8", "utun4")]);
        let (states, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &vpn)));
        assert!(install.is_empty());
        assert_eq!(
            states[&n("10.8.0.0/16")],
            RouteState::Conflict { interface: "utun4".into(), route: n("10.0.0.0/8") }
        );
        // The VPN disconnects: its route is gone from the next snapshot.
        let (states, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &table(&[]))));
        assert_eq!(install, set(&["10.8.0.0/16"]));
        assert_eq!(states[&n("10.8.0.0/16")], RouteState::Installed);
    }

    #[test]
    fn our_route_removed_by_someone_else_is_forgotten_so_it_is_added_again() {
        let wanted = wanted(&[n("172.17.0.0/16")], &set(&["172.18.0.0/16"]));
        let installed = set(&["172.17.0.0/16", "172.18.0.0/16"]);
        // 172.18 is still there, 172.17 was deleted by hand.
        let t = table(&[("172.18.0.0/16", "dockroute0")]);
        let (states, install, forget) = destructure(plan(&wanted, &BTreeSet::new(), up(&installed, &t)));
        assert_eq!(forget, [n("172.17.0.0/16")]);
        assert_eq!(install, installed, "both stay wanted: the forgotten one is added back");
        assert!(states.values().all(|s| *s == RouteState::Installed), "{states:?}");
    }

    #[test]
    fn our_route_that_moved_to_another_interface_is_forgotten_and_then_a_conflict() {
        let wanted = wanted(&[], &set(&["172.18.0.0/16"]));
        let installed = set(&["172.18.0.0/16"]);
        let t = table(&[("172.18.0.0/16", "br-1234")]);
        let (states, install, forget) = destructure(plan(&wanted, &BTreeSet::new(), up(&installed, &t)));
        assert_eq!(forget, [n("172.18.0.0/16")]);
        assert!(install.is_empty());
        assert!(
            matches!(&states[&n("172.18.0.0/16")], RouteState::Conflict { interface, .. } if interface == "br-1234")
        );
    }

    #[test]
    fn two_of_our_routes_that_overlap_are_both_installed() {
        let wanted = wanted(&[n("172.18.0.0/16")], &set(&["172.18.5.0/24"]));
        let none = BTreeSet::new();
        let (_, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&none, &table(&[]))));
        assert_eq!(install, set(&["172.18.0.0/16", "172.18.5.0/24"]));
        // Next round both are in the table on our interface: still neither conflicts.
        let t = table(&[("172.18.0.0/16", "dockroute0"), ("172.18.5.0/24", "dockroute0")]);
        let (states, install, forget) = destructure(plan(&wanted, &BTreeSet::new(), up(&install, &t)));
        assert_eq!((install.len(), forget.len()), (2, 0));
        assert!(states.values().all(|s| *s == RouteState::Installed), "{states:?}");
    }

    #[test]
    fn unroutable_nets_fail_with_the_reason() {
        let cases = [
            ("10.0.0.0/7", "prefix too short"),
            ("fd00::/15", "prefix too short"),
            ("127.0.0.0/8", "loopback"),
            ("169.254.0.0/16", "link-local"),
            ("fe80::/64", "link-local"),
            ("224.0.0.0/8", "multicast"),
            ("ff00::/16", "multicast"),
        ];
        let config: Vec<IpNet> = cases.iter().map(|(c, _)| n(c)).collect();
        let wanted = wanted(&config, &BTreeSet::new());
        let (states, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &table(&[]))));
        assert!(install.is_empty());
        for (net, why) in cases {
            match &states[&n(net)] {
                RouteState::Failed { message } => assert!(message.contains(why), "{net}: {message}"),
                other => panic!("{net}: {other:?}"),
            }
        }
        assert_eq!(unroutable(&n("10.0.0.0/8")), None);
        assert_eq!(unroutable(&n("fd00:1::/64")), None);
    }

    #[test]
    fn set_routes_is_bounded_refuses_unroutable_nets_and_normalises() {
        let ok = validate_app_routes(&[n("172.18.1.7/16"), n("fd00:1::5/64")]).unwrap();
        assert_eq!(ok, set(&["172.18.0.0/16", "fd00:1::/64"]));
        let many: Vec<IpNet> =
            (0..=MAX_ROUTES as u32).map(|i| IpNet::from(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)))).collect();
        assert_eq!(validate_app_routes(&many).unwrap_err(), format!("{} routes; at most {MAX_ROUTES}", MAX_ROUTES + 1));
        assert!(validate_app_routes(&many[..MAX_ROUTES]).is_ok());
        let e = validate_app_routes(&[n("172.18.0.0/16"), n("0.0.0.0/0")]).unwrap_err();
        assert!(e.starts_with("route 0.0.0.0/0: prefix too short"), "{e}");
    }

    #[test]
    fn only_a_known_route_can_be_switched() {
        let wanted = wanted(&[n("172.17.0.0/16")], &set(&["172.18.0.0/16"]));
        assert_eq!(known_route(n("172.18.3.4/16"), &wanted), Ok(n("172.18.0.0/16")));
        assert_eq!(known_route(n("172.17.0.0/16"), &wanted), Ok(n("172.17.0.0/16")));
        assert_eq!(known_route(n("10.9.0.0/16"), &wanted), Err("no route 10.9.0.0/16 is configured".into()));
    }

    #[test]
    fn an_empty_table_forgets_nothing() {
        let wanted = wanted(&[n("172.17.0.0/16")], &BTreeSet::new());
        let installed = set(&["172.17.0.0/16"]);
        let (states, install, forget) = destructure(plan(&wanted, &BTreeSet::new(), up(&installed, &[])));
        assert!(forget.is_empty());
        assert_eq!((install, states[&n("172.17.0.0/16")].clone()), (installed.clone(), RouteState::Installed));
        // The same table with something in it does reveal the loss.
        let (_, _, forget) = destructure(plan(&wanted, &BTreeSet::new(), up(&installed, &table(&[]))));
        assert_eq!(forget, [n("172.17.0.0/16")]);
    }

    #[test]
    fn without_a_tunnel_every_route_waits_or_is_disabled() {
        let wanted = wanted(&[n("172.17.0.0/16")], &set(&["172.18.0.0/16"]));
        let states = waiting(&wanted, &set(&["172.18.0.0/16"]));
        let want = [(n("172.17.0.0/16"), RouteState::Pending), (n("172.18.0.0/16"), RouteState::Disabled)];
        assert_eq!(states.into_iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn refused_routes_are_failed_with_the_os_reason() {
        let wanted = wanted(&[], &set(&["172.18.0.0/16", "172.19.0.0/16"]));
        let (mut states, _, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &table(&[]))));
        record_failures(&mut states, &[(n("172.19.0.0/16"), "`ip` failed: File exists".into())]);
        assert_eq!(states[&n("172.18.0.0/16")], RouteState::Installed);
        assert_eq!(states[&n("172.19.0.0/16")], RouteState::Failed { message: "`ip` failed: File exists".into() });
    }

    #[test]
    fn the_link_subnet_moves_when_taken_unless_pinned() {
        let configured: Ipv4Net = "192.168.251.1/24".parse().unwrap();
        let free = pick_link(configured, true, &table(&[])).unwrap();
        assert_eq!(free, Link { host: configured, guest: "192.168.251.2".parse().unwrap() });
        let taken = table(&[("192.168.251.0/24", "en5")]);
        let moved = pick_link(configured, false, &taken).unwrap();
        assert_eq!(moved, Link { host: "192.168.252.1/24".parse().unwrap(), guest: "192.168.252.2".parse().unwrap() });
        let e = pick_link(configured, true, &taken).unwrap_err();
        assert!(e.contains("192.168.251.0/24") && e.contains("en5") && e.contains("pinned"), "{e}");
    }

    #[test]
    fn an_app_route_on_public_space_is_refused_unless_a_config_line_covers_it() {
        // A compose file's `8.8.8.0/24` sent by the app (or any API caller): refused, with how
        // to route it; the same app route under a config line is installed.
        let wanted = wanted(&[n("203.0.113.0/24")], &set(&["8.8.8.0/24", "203.0.113.128/25", "172.18.0.0/16"]));
        let t = table(&[]);
        let (states, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &t)));
        let refused = "8.8.8.0/24 is public address space: add `route 8.8.8.0/24` to the helper's config to route it";
        assert_eq!(states[&n("8.8.8.0/24")], RouteState::Failed { message: refused.into() });
        assert_eq!(install, set(&["203.0.113.0/24", "203.0.113.128/25", "172.18.0.0/16"]));
        // While the tunnel is down the status already says so.
        assert_eq!(
            waiting(&wanted, &BTreeSet::new())[&n("8.8.8.0/24")],
            RouteState::Failed { message: refused.into() }
        );
        assert_eq!(waiting(&wanted, &BTreeSet::new())[&n("203.0.113.128/25")], RouteState::Pending);
    }

    #[test]
    fn a_config_line_the_helper_refuses_covers_nothing_for_the_app() {
        // `route 0.0.0.0/1` is unroutable (too short): it may not wave public app routes in.
        let wanted = wanted(&[n("0.0.0.0/1")], &set(&["8.8.8.0/24"]));
        let t = table(&[]);
        let (states, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &t)));
        assert!(install.is_empty());
        assert!(matches!(&states[&n("8.8.8.0/24")], RouteState::Failed { message } if message.contains("public")));
        // A public route the config itself names is root's choice.
        let wanted = wanted_only_config(&[n("8.8.8.0/24")]);
        let (_, install, _) = destructure(plan(&wanted, &BTreeSet::new(), up(&BTreeSet::new(), &t)));
        assert_eq!(install, set(&["8.8.8.0/24"]));
    }

    fn wanted_only_config(config: &[IpNet]) -> BTreeMap<IpNet, RouteSource> {
        wanted(config, &BTreeSet::new())
    }
}
