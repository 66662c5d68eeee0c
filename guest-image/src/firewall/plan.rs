//! What our chains must contain, per family: a pure function of the spec (the tunnel, its link
//! subnets, the `--internal` networks and the pairs). No I/O.

use std::fmt;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub const CHAIN_FWD: &str = "DOCKROUTE-FWD";
pub const CHAIN_PRE: &str = "DOCKROUTE-PRE";
pub const CHAIN_POST: &str = "DOCKROUTE-POST";
/// Everything we create; teardown removes these and the rules that jump to them, nothing else.
pub const OUR_CHAINS: [&str; 3] = [CHAIN_FWD, CHAIN_PRE, CHAIN_POST];

/// One of our chains: its table, and the built-in chains that may jump to it in order of
/// preference (the first that exists; the last one is created by the kernel with the table).
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    pub table: &'static str,
    pub chain: &'static str,
    pub parents: &'static [&'static str],
}

impl Slot {
    /// The chain our jump belongs in, given which chains the table has now.
    pub fn parent(&self, exists: impl Fn(&str) -> bool) -> &'static str {
        self.parents.iter().copied().find(|p| exists(p)).unwrap_or(self.parents[self.parents.len() - 1])
    }
}

/// filter via DOCKER-USER (Docker's hook, evaluated before its own DROPs), raw PREROUTING
/// (ahead of Engine 28's per-container DROPs), nat POSTROUTING (MASQUERADE to internal networks).
pub const SLOTS: [Slot; 3] = [
    Slot { table: "filter", chain: CHAIN_FWD, parents: &["DOCKER-USER", "FORWARD"] },
    Slot { table: "raw", chain: CHAIN_PRE, parents: &["PREROUTING"] },
    Slot { table: "nat", chain: CHAIN_POST, parents: &["POSTROUTING"] },
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallSpec {
    /// TUN device carrying the Mac's traffic (e.g. `dockroute0`).
    pub tun: String,
    /// Link subnet of the tunnel (the Mac's side addresses come from here).
    pub link_v4: Ipv4Net,
    pub link_v6: Option<Ipv6Net>,
    /// `--internal` networks: no default route back, so MASQUERADE traffic from the link to them.
    pub internal: Vec<IpNet>,
    /// Container subnets allowed to reach each other (both directions).
    pub pairs: Vec<(IpNet, IpNet)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(net: &IpNet) -> Family {
        if net.addr().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
}

/// Why a spec cannot be turned into rules. Nothing is changed when planning fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// Not a Linux interface name (it is written into the rules: no spaces, no shell).
    BadInterface(String),
    /// A pair of one IPv4 and one IPv6 subnet: no single rule can hold it.
    MixedPair(IpNet, IpNet),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::BadInterface(name) => write!(f, "invalid interface name {name:?}"),
            SpecError::MixedPair(a, b) => write!(f, "pair {a}+{b} mixes IPv4 and IPv6"),
        }
    }
}

impl std::error::Error for SpecError {}

/// The desired contents of our chains for one family, in `SLOTS` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub family: Family,
    pub rules: [Vec<String>; 3],
}

impl Plan {
    /// Each of our chains with the rules it must hold.
    pub fn chains(&self) -> impl Iterator<Item = (&'static Slot, &[String])> {
        SLOTS.iter().zip(self.rules.iter().map(Vec::as_slice))
    }
}

/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_INTERFACE_NAME: usize = 15;

fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_INTERFACE_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn push_unique(v: &mut Vec<String>, r: String) {
    if !v.contains(&r) {
        v.push(r);
    }
}

/// One plan per family the spec uses (a family with no link, no internal network and no pair
/// gets none: ip6tables is left alone without IPv6).
pub fn plan(spec: &FirewallSpec) -> Result<Vec<Plan>, SpecError> {
    if !is_interface_name(&spec.tun) {
        return Err(SpecError::BadInterface(spec.tun.clone()));
    }
    if let Some((a, b)) = spec.pairs.iter().find(|(a, b)| Family::of(a) != Family::of(b)) {
        return Err(SpecError::MixedPair(*a, *b));
    }
    let mut out = Vec::new();
    for f in Family::BOTH {
        let link: Option<IpNet> = match f {
            Family::V4 => Some(spec.link_v4.trunc().into()),
            Family::V6 => spec.link_v6.map(|n| n.trunc().into()),
        };
        let internal: Vec<IpNet> = spec.internal.iter().filter(|n| Family::of(n) == f).map(IpNet::trunc).collect();
        let pairs: Vec<(IpNet, IpNet)> =
            spec.pairs.iter().filter(|(a, _)| Family::of(a) == f).map(|(a, b)| (a.trunc(), b.trunc())).collect();
        if link.is_none() && internal.is_empty() && pairs.is_empty() {
            continue;
        }
        let t = &spec.tun;
        let (mut fwd, mut pre, mut post) = (
            vec![format!("-i {t} -j ACCEPT"), format!("-o {t} -j ACCEPT")],
            vec![format!("-i {t} -j ACCEPT")],
            Vec::new(),
        );
        // Written in the order iptables prints options (-s -d -i -o -j), so that the chain's
        // `*-save` output compares equal to the plan and `ensure()` sees no false difference.
        for (a, b) in pairs {
            for (s, d) in [(a, b), (b, a)] {
                push_unique(&mut fwd, format!("-s {s} -d {d} -j ACCEPT"));
                push_unique(&mut pre, format!("-s {s} -d {d} -j ACCEPT"));
            }
        }
        // Without a link subnet in this family no packet of the Mac's arrives in it to rewrite.
        if let Some(l) = link {
            for n in internal {
                push_unique(&mut post, format!("-s {l} -d {n} -j MASQUERADE"));
            }
        }
        fwd.push("-j RETURN".into());
        pre.push("-j RETURN".into());
        out.push(Plan { family: f, rules: [fwd, pre, post] });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net<T: std::str::FromStr>(s: &str) -> T
    where
        T::Err: fmt::Debug,
    {
        s.parse().unwrap()
    }

    fn spec() -> FirewallSpec {
        FirewallSpec {
            tun: "dockroute0".into(),
            link_v4: net("198.18.7.1/24"),
            link_v6: None,
            internal: Vec::new(),
            pairs: Vec::new(),
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_tunnel_alone_accepts_both_ways_in_filter_and_inbound_in_raw() {
        let plans = plan(&spec()).unwrap();
        assert_eq!(plans.len(), 1, "no IPv6 link, no IPv6 network: ip6tables is left alone");
        let p = &plans[0];
        assert_eq!(p.family, Family::V4);
        assert_eq!(p.rules[0], strs(&["-i dockroute0 -j ACCEPT", "-o dockroute0 -j ACCEPT", "-j RETURN"]));
        assert_eq!(p.rules[1], strs(&["-i dockroute0 -j ACCEPT", "-j RETURN"]));
        assert_eq!(p.rules[2], Vec::<String>::new(), "no internal network: nothing to MASQUERADE");
        let chains: Vec<(&str, &str)> = p.chains().map(|(s, _)| (s.table, s.chain)).collect();
        assert_eq!(chains, [("filter", CHAIN_FWD), ("raw", CHAIN_PRE), ("nat", CHAIN_POST)]);
    }

    #[test]
    fn pairs_accept_both_directions_in_filter_and_raw_in_save_order_once() {
        let mut s = spec();
        s.pairs = vec![
            (net("198.19.1.9/24"), net("198.19.2.0/24")),
            // The same pair again, and reversed: no duplicate rule.
            (net("198.19.1.0/24"), net("198.19.2.0/24")),
            (net("198.19.2.0/24"), net("198.19.1.0/24")),
        ];
        let p = &plan(&s).unwrap()[0];
        let both = ["-s 198.19.1.0/24 -d 198.19.2.0/24 -j ACCEPT", "-s 198.19.2.0/24 -d 198.19.1.0/24 -j ACCEPT"];
        assert_eq!(
            p.rules[0],
            strs(&["-i dockroute0 -j ACCEPT", "-o dockroute0 -j ACCEPT", both[0], both[1], "-j RETURN"])
        );
        assert_eq!(p.rules[1], strs(&["-i dockroute0 -j ACCEPT", both[0], both[1], "-j RETURN"]));
    }

    #[test]
    fn internal_networks_masquerade_from_the_link_subnet_of_their_family() {
        let mut s = spec();
        s.link_v6 = Some(net("2001:2:7::1/64"));
        s.internal = vec![net("198.19.3.7/24"), net("2001:2:3::/64"), net("198.19.3.0/24")];
        let plans = plan(&s).unwrap();
        assert_eq!(plans.iter().map(|p| p.family).collect::<Vec<_>>(), [Family::V4, Family::V6]);
        assert_eq!(plans[0].rules[2], strs(&["-s 198.18.7.0/24 -d 198.19.3.0/24 -j MASQUERADE"]));
        assert_eq!(plans[1].rules[2], strs(&["-s 2001:2:7::/64 -d 2001:2:3::/64 -j MASQUERADE"]));
        assert_eq!(plans[1].rules[0][0], "-i dockroute0 -j ACCEPT");
    }

    #[test]
    fn an_ipv6_network_without_an_ipv6_link_gets_chains_but_no_masquerade() {
        let mut s = spec();
        s.internal = vec![net("2001:2:3::/64")];
        s.pairs = vec![(net("2001:2:1::/64"), net("2001:2:2::/64"))];
        let plans = plan(&s).unwrap();
        let v6 = plans.iter().find(|p| p.family == Family::V6).expect("a v6 plan for the v6 pair");
        assert_eq!(v6.rules[2], Vec::<String>::new());
        assert!(v6.rules[0].contains(&"-s 2001:2:1::/64 -d 2001:2:2::/64 -j ACCEPT".to_string()));
        assert!(!plans[0].rules[0].iter().any(|r| r.contains("2001:")), "v6 rules stay out of iptables");
    }

    #[test]
    fn interface_names_that_are_not_linux_names_are_refused() {
        for bad in ["", "dock route0; rm", "a/b", "tun0\n", "0123456789abcdef", "dockröute"] {
            let s = FirewallSpec { tun: bad.into(), ..spec() };
            assert_eq!(plan(&s), Err(SpecError::BadInterface(bad.into())), "{bad:?}");
        }
        for good in ["utun3", "dr_1.a-b", "0123456789abcde"] {
            assert!(plan(&FirewallSpec { tun: good.into(), ..spec() }).is_ok(), "{good:?}");
        }
        assert_eq!(SpecError::BadInterface("a b".into()).to_string(), "invalid interface name \"a b\"");
    }

    #[test]
    fn a_pair_mixing_families_is_refused_whole() {
        let mut s = spec();
        s.pairs = vec![(net("198.19.1.0/24"), net("198.19.2.0/24")), (net("198.19.1.0/24"), net("2001:2::/64"))];
        let e = plan(&s).unwrap_err();
        assert_eq!(e, SpecError::MixedPair(net("198.19.1.0/24"), net("2001:2::/64")));
        assert_eq!(e.to_string(), "pair 198.19.1.0/24+2001:2::/64 mixes IPv4 and IPv6");
    }

    #[test]
    fn the_jump_goes_to_the_first_parent_that_exists_else_the_last() {
        let filter = &SLOTS[0];
        assert_eq!(filter.parent(|c| c == "DOCKER-USER" || c == "FORWARD"), "DOCKER-USER");
        assert_eq!(filter.parent(|c| c == "FORWARD"), "FORWARD");
        assert_eq!(filter.parent(|_| false), "FORWARD", "a table not there yet: the kernel's chain");
        assert_eq!(SLOTS[1].parent(|_| false), "PREROUTING");
    }
}
