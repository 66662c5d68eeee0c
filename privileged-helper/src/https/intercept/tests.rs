use std::collections::BTreeMap;

use super::*;
use crate::dns::names::{validate, with_ports};

fn spec() -> NameSpec {
    let ips = |s: &[&str]| -> Vec<IpAddr> { s.iter().map(|a| a.parse().unwrap()).collect() };
    let names = BTreeMap::from([
        ("web".to_string(), ips(&["172.18.0.2", "fd00::2"])),
        ("admin.web".to_string(), ips(&["172.18.0.2"])),
        ("tls".to_string(), ips(&["172.18.0.7"])),
        ("shared".to_string(), ips(&["172.18.0.8"])),
        ("shared-tls".to_string(), ips(&["172.18.0.8"])),
    ]);
    let domains = BTreeMap::from([("*.shop.test".to_string(), ips(&["172.18.0.3"]))]);
    let spec = validate(&names, &domains, "docker").unwrap();
    let name_ports = BTreeMap::from([
        ("web".to_string(), 3000),
        ("admin.web".to_string(), 8081),
        ("tls".to_string(), 443),
        ("shared-tls".to_string(), 443),
    ]);
    with_ports(spec, &name_ports, &BTreeMap::new(), "docker").unwrap()
}

fn routed() -> Vec<IpNet> {
    vec!["172.18.0.0/16".parse().unwrap(), "fd00::/64".parse().unwrap()]
}

#[test]
fn a_name_pointing_outside_the_tunnels_routes_never_redirects_that_address() {
    // An API caller may name any address (`set_names`), e.g. a LAN server's: its port 443
    // must not be taken from every user of this machine.
    let ips = |s: &[&str]| -> Vec<IpAddr> { s.iter().map(|a| a.parse().unwrap()).collect() };
    let names = BTreeMap::from([("lan".to_string(), ips(&["10.0.0.5"])), ("web".to_string(), ips(&["172.18.0.2"]))]);
    let spec = validate(&names, &BTreeMap::new(), "docker").unwrap();
    let plan = Plan::for_names(&spec, "docker", "198.19.0.1:443".parse().unwrap(), &routed());
    assert_eq!(plan.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["172.18.0.2"]);
    let nothing_routed = Plan::for_names(&spec, "docker", "198.19.0.1:443".parse().unwrap(), &[]);
    assert!(nothing_routed.addresses.is_empty());
}

#[test]
fn named_containers_are_redirected_and_one_that_serves_443_itself_is_left_alone() {
    let front: SocketAddr = "198.19.0.1:443".parse().unwrap();
    let plan = Plan::for_names(&spec(), "docker", front, &routed());
    let got: Vec<String> = plan.addresses.iter().map(|a| a.to_string()).collect();
    // 172.18.0.7's only name says 443; 172.18.0.8 has a name that says 443 too: its own TLS
    // would be hidden behind the front, so it is left alone whatever its other names say.
    assert_eq!(got, ["172.18.0.2", "172.18.0.3"]);
    assert_eq!(plan.front, front);
}

#[test]
fn only_the_fronts_family_is_redirected_and_no_names_means_an_empty_plan() {
    let v6_front: SocketAddr = "[fd00::1]:443".parse().unwrap();
    let plan = Plan::for_names(&spec(), "docker", v6_front, &routed());
    assert_eq!(plan.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["fd00::2"]);
    let empty = Plan::for_names(&NameSpec::default(), "docker", "198.19.0.1:443".parse().unwrap(), &routed());
    assert!(empty.addresses.is_empty());
}
