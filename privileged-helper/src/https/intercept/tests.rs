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

#[test]
fn named_containers_are_redirected_and_one_that_serves_443_itself_is_left_alone() {
    let front: SocketAddr = "198.19.0.1:443".parse().unwrap();
    let plan = Plan::for_names(&spec(), "docker", front);
    let got: Vec<String> = plan.addresses.iter().map(|a| a.to_string()).collect();
    // 172.18.0.7's only name says 443; 172.18.0.8 has a name that says 443 too: its own TLS
    // would be hidden behind the front, so it is left alone whatever its other names say.
    assert_eq!(got, ["172.18.0.2", "172.18.0.3"]);
    assert_eq!(plan.front, front);
}

#[test]
fn only_the_fronts_family_is_redirected_and_no_names_means_an_empty_plan() {
    let v6_front: SocketAddr = "[fd00::1]:443".parse().unwrap();
    let plan = Plan::for_names(&spec(), "docker", v6_front);
    assert_eq!(plan.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["fd00::2"]);
    let empty = Plan::for_names(&NameSpec::default(), "docker", "198.19.0.1:443".parse().unwrap());
    assert!(empty.addresses.is_empty());
}
