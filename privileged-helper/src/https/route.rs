//! Where a TLS connection for a name goes (pure): the name's container address, found exactly
//! as the DNS server finds it (`dns::table`, wildcards included), and its web port — the port
//! the app sent for the name, else the nearest wildcard owner's, else 80.

use std::net::{IpAddr, SocketAddr};

use crate::dns::names::NameSpec;
use crate::dns::table::{Lookup, NameTable};

/// The port a name is served from when the app sent none (an app from before HTTPS, or a
/// container that says nothing): plain HTTP's.
pub const DEFAULT_PORT: u16 = 80;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Container(SocketAddr),
    /// In our zones, but no running container has the name.
    NoContainer,
    /// Not one of our zones at all.
    NotOurs,
}

#[derive(Debug, Clone, Default)]
pub struct Routes {
    table: NameTable,
    ports: std::collections::BTreeMap<String, u16>,
}

impl Routes {
    pub fn new(suffix: &str, spec: &NameSpec) -> Routes {
        Routes { table: NameTable::new(suffix, spec, 0), ports: spec.ports.clone() }
    }

    /// `name` in lower case, without a final dot.
    pub fn target(&self, name: &str) -> Target {
        let labels: Vec<String> = name.split('.').map(str::to_string).collect();
        let addrs = match self.table.lookup(&labels) {
            Lookup::NotOurs => return Target::NotOurs,
            Lookup::Found { addrs, .. } => addrs,
            Lookup::Empty { .. } | Lookup::NxDomain { .. } => return Target::NoContainer,
        };
        // IPv4 first: every container has it, IPv6 only on networks that enable it.
        let ip: Option<IpAddr> =
            addrs.v4.first().map(|a| (*a).into()).or_else(|| addrs.v6.first().map(|a| (*a).into()));
        match ip {
            Some(ip) => Target::Container(SocketAddr::new(ip, self.port(name))),
            None => Target::NoContainer,
        }
    }

    fn port(&self, name: &str) -> u16 {
        if let Some(p) = self.ports.get(name) {
            return *p;
        }
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(p) = self.ports.get(&format!("*.{parent}")) {
                return *p;
            }
            rest = parent;
        }
        DEFAULT_PORT
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dns::names::{validate, with_ports};

    fn routes() -> Routes {
        let ip = |s: &str| -> Vec<IpAddr> { vec![s.parse().unwrap()] };
        let names = BTreeMap::from([
            ("web".to_string(), vec!["fd00::2".parse().unwrap(), "172.18.0.2".parse().unwrap()]),
            ("admin.web".to_string(), ip("172.18.0.2")),
            ("v6".to_string(), ip("fd00::6")),
            ("plain".to_string(), ip("172.18.0.9")),
        ]);
        let domains = BTreeMap::from([("*.shop.test".to_string(), ip("172.18.0.3"))]);
        let spec = validate(&names, &domains, "docker").unwrap();
        let name_ports = BTreeMap::from([("web".to_string(), 3000), ("admin.web".to_string(), 8081)]);
        let domain_ports = BTreeMap::from([("*.shop.test".to_string(), 8443)]);
        Routes::new("docker", &with_ports(spec, &name_ports, &domain_ports, "docker").unwrap())
    }

    fn at(s: &str) -> Target {
        Target::Container(s.parse().unwrap())
    }

    #[test]
    fn a_name_goes_to_its_containers_v4_address_on_its_port_else_80() {
        let r = routes();
        assert_eq!(r.target("web.docker"), at("172.18.0.2:3000"));
        assert_eq!(r.target("admin.web.docker"), at("172.18.0.2:8081"), "a second port of one container");
        assert_eq!(r.target("plain.docker"), at("172.18.0.9:80"));
        assert_eq!(r.target("v6.docker"), at("[fd00::6]:80"));
        assert_eq!(r.target("a.b.shop.test"), at("172.18.0.3:8443"), "a wildcard's port");
    }

    #[test]
    fn a_name_nobody_has_is_no_container_and_other_zones_are_not_ours() {
        let r = routes();
        for gone in ["gone.docker", "docker", "x.admin.web.docker"] {
            assert_eq!(r.target(gone), Target::NoContainer, "{gone}");
        }
        for outside in ["github.com", "shop.test.com", "test"] {
            assert_eq!(r.target(outside), Target::NotOurs, "{outside}");
        }
    }
}
