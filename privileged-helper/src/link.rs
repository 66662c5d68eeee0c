//! The tunnel's IPv4 link as the helper sees it (`Link {host, guest}`) and the one rule for the
//! guest's address on it: the route policy picks the subnet, the share keeps teammates off the
//! link's own addresses, the config names the default.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// The tunnel's IPv4 link: our address (with the subnet) and the guest's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The host's address, with the subnet.
    pub host: Ipv4Net,
    pub guest: Ipv4Addr,
}

impl Link {
    /// The link on `host`'s subnet: the guest takes the first other address (the one rule,
    /// for the configured subnet and a fallback alike).
    pub fn on(host: Ipv4Net) -> Link {
        Link { host, guest: nth_host(host, 1) }
    }

    /// The link's addresses no teammate may have.
    pub fn reserved(&self) -> [Ipv4Addr; 4] {
        [self.host.addr(), self.guest, self.host.network(), self.host.broadcast()]
    }

    /// Why `ip` cannot be a teammate's, if it cannot.
    pub fn refuses(&self, ip: Ipv4Addr) -> Option<String> {
        if !self.host.contains(&ip) {
            Some(format!("{ip} is outside the link subnet {}", self.host.trunc()))
        } else if self.reserved().contains(&ip) {
            Some(format!("{ip} is reserved in the link subnet {} (host, guest, network, broadcast)", self.host.trunc()))
        } else {
            None
        }
    }
}

/// The n-th address after the network address (wrapping inside the subnet, skipping the
/// host's own).
pub fn nth_host(net: Ipv4Net, n: u32) -> Ipv4Addr {
    let base = u32::from(net.network());
    let size = 1u32 << (32 - u32::from(net.prefix_len())).min(31);
    let mut candidate = base + (n % size.max(2));
    if candidate == u32::from(net.addr()) {
        candidate = base + ((n + 1) % size.max(2));
    }
    candidate.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_host_skips_our_own_address_and_wraps_inside_the_subnet() {
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(nth_host(net("10.0.0.1/24"), 1), ip("10.0.0.2"), "skips .1, ours");
        assert_eq!(nth_host(net("10.0.0.9/24"), 1), ip("10.0.0.1"));
        assert_eq!(nth_host(net("10.0.0.1/30"), 5), ip("10.0.0.2"), "5 wraps to 1 (ours), then 2");
        assert_eq!(nth_host(net("10.0.0.2/30"), 6), ip("10.0.0.3"), "6 wraps to 2 (ours), then 3");
        assert_eq!(nth_host(net("10.0.0.3/30"), 3), ip("10.0.0.0"), "the last one wraps to the first");
        assert_eq!(nth_host(net("10.0.0.4/31"), 0), ip("10.0.0.5"), "a /31 has two");
        assert_eq!(nth_host(net("10.0.0.5/32"), 1), ip("10.0.0.6"), "a /32 has no other: the next one");
    }
}
