//! Which address space Dockroute routes without being told: private ranges only. A Docker
//! network can have any subnet (a compose file may say `8.8.8.0/24`); routing it through the
//! tunnel would silently take that range from the internet on the user's machine. A network
//! outside these ranges is routed only where the helper's config has a `route` line covering
//! it: the controller does not ask for it (and says why in the view), and the helper refuses
//! it from the app (the app is less trusted than root's config).
//!
//! Private here means set aside for networks to use and never reachable on the internet:
//! - RFC 1918 (`10/8`, `172.16/12`, `192.168/16`): Docker's own pools.
//! - RFC 6598 shared space (`100.64/10`): carrier NAT and Tailscale; whatever uses it on the
//!   host shows up as a route of another interface, which is a conflict Dockroute reports.
//! - RFC 2544 benchmarking (`198.18/15`) and its IPv6 twin RFC 5180 (`2001:2::/48`): lab
//!   networks; our tests' networks live there.
//! - IPv6 unique local addresses, RFC 4193 (`fc00::/7`): Docker's IPv6 pools.
//!
//! Not private: the documentation ranges (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`,
//! `2001:db8::/32`) are set aside for examples, never for a network, so a network there is as
//! suspect as a public one (and they let tests stand in for public space without sending to
//! it). Link-local, loopback and multicast are never routed at all (the helper's
//! `unroutable`).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

const PRIVATE_V4: [(Ipv4Addr, u8); 5] = [
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
];

const PRIVATE_V6: [(Ipv6Addr, u8); 2] =
    [(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48)];

/// Every private range (v4 first): what the local CA's IP name constraints permit.
pub fn private_ranges() -> Vec<IpNet> {
    let v4 = PRIVATE_V4.iter().filter_map(|(a, p)| Ipv4Net::new(*a, *p).ok()).map(IpNet::V4);
    let v6 = PRIVATE_V6.iter().filter_map(|(a, p)| Ipv6Net::new(*a, *p).ok()).map(IpNet::V6);
    v4.chain(v6).collect()
}

/// Whether all of `net` lies inside one private range.
pub fn is_private(net: &IpNet) -> bool {
    match net {
        IpNet::V4(n) => PRIVATE_V4.iter().any(|(a, p)| Ipv4Net::new(*a, *p).is_ok_and(|r| r.contains(n))),
        IpNet::V6(n) => PRIVATE_V6.iter().any(|(a, p)| Ipv6Net::new(*a, *p).is_ok_and(|r| r.contains(n))),
    }
}

/// Why `net` may not be routed for the app: it is not private and none of `config_routes` (the
/// helper's `route` lines) covers it. None when it may be.
pub fn needs_route_line<'a>(net: &IpNet, config_routes: impl IntoIterator<Item = &'a IpNet>) -> Option<String> {
    if is_private(net) || config_routes.into_iter().any(|r| r.contains(net)) {
        return None;
    }
    Some(format!("{net} is public address space: add `route {net}` to the helper's config to route it"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn dockers_pools_cgnat_benchmarking_and_ula_are_private() {
        for net in [
            "172.17.0.0/16",
            "172.31.255.0/24",
            "10.0.0.0/8",
            "192.168.65.0/24",
            "100.100.0.0/16",
            "198.18.0.0/15",
            "198.19.160.0/24",
            "fd00:18::/64",
            "fc00::/7",
            "2001:2:0:d451::/64",
        ] {
            assert!(is_private(&n(net)), "{net}");
        }
    }

    #[test]
    fn a_compose_network_on_public_or_documentation_space_is_not_private() {
        for net in [
            "8.8.8.0/24",
            "1.1.1.0/24",
            "203.0.113.0/24",
            "192.0.2.0/24",
            "198.51.100.0/24",
            "2001:db8::/32",
            "2a00:1450::/32",
            // Straddling: partly private is not private.
            "172.0.0.0/8",
            "192.168.0.0/15",
            "100.0.0.0/9",
            "fc00::/6",
            "2001:2::/47",
            "240.0.0.0/4",
        ] {
            assert!(!is_private(&n(net)), "{net}");
        }
    }

    #[test]
    fn a_public_network_needs_a_route_line_that_covers_it_whole() {
        let config = [n("203.0.113.0/24"), n("172.18.0.0/16")];
        assert_eq!(needs_route_line(&n("203.0.113.0/24"), &config), None);
        assert_eq!(needs_route_line(&n("203.0.113.128/25"), &config), None, "inside the line's range");
        assert_eq!(
            needs_route_line(&n("8.8.8.0/24"), &config).as_deref(),
            Some("8.8.8.0/24 is public address space: add `route 8.8.8.0/24` to the helper's config to route it")
        );
        assert!(needs_route_line(&n("203.0.112.0/23"), &config).is_some(), "wider than the line");
        assert_eq!(needs_route_line(&n("172.19.0.0/16"), &[]), None, "private needs no line");
    }
}
