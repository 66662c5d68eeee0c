//! What our chains must contain, per family: a pure function of the spec (the tunnel, its link
//! subnets and the Mac's addresses on it, the `--internal` networks, the pairs and what is
//! exposed to teammates). No I/O.
//!
//! Teammates: every packet from the tunnel that is not from the Mac's own link address is a
//! teammate's (the helper lets a teammate send only from their own address). Those go through
//! `DOCKROUTE-MATE` in raw PREROUTING, before conntrack and before Docker's DNAT in nat
//! PREROUTING can rewrite them: whatever the VM answers itself (LOCAL: every gateway, the VM's
//! own addresses, a published port's DNAT) is dropped, so are broadcast and multicast, and what
//! is not in an exposed route; each rule's counter counts its drops. Towards the tunnel only the
//! Mac may be called; anyone else (the teammates) gets replies to what they opened (conntrack),
//! forwarded (`DOCKROUTE-FWD`) or from the VM itself (`DOCKROUTE-OUT`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub const CHAIN_FWD: &str = "DOCKROUTE-FWD";
pub const CHAIN_OUT: &str = "DOCKROUTE-OUT";
pub const CHAIN_MATE: &str = "DOCKROUTE-MATE";
pub const CHAIN_PRE: &str = "DOCKROUTE-PRE";
pub const CHAIN_POST: &str = "DOCKROUTE-POST";
/// Everything we create; teardown removes these and the rules that jump to them, nothing else.
pub const OUR_CHAINS: [&str; 5] = [CHAIN_FWD, CHAIN_OUT, CHAIN_MATE, CHAIN_PRE, CHAIN_POST];

/// One of our chains: its table, and the built-in chains that may jump to it in order of
/// preference (the first that exists; the last one is created by the kernel with the table).
/// None: only another chain of ours jumps to it (it comes before that one in `SLOTS`, so a
/// restore creates it first).
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    pub table: &'static str,
    pub chain: &'static str,
    pub parents: &'static [&'static str],
}

impl Slot {
    /// The chain our jump belongs in, given which chains the table has now.
    pub fn parent(&self, exists: impl Fn(&str) -> bool) -> Option<&'static str> {
        self.parents.iter().copied().find(|p| exists(p)).or(self.parents.last().copied())
    }
}

/// filter via DOCKER-USER (Docker's hook, evaluated before its own DROPs) and OUTPUT, raw
/// PREROUTING (ahead of Engine 28's per-container DROPs and of nat's DNAT), nat POSTROUTING
/// (MASQUERADE to internal networks).
pub const SLOTS: [Slot; 5] = [
    Slot { table: "filter", chain: CHAIN_FWD, parents: &["DOCKER-USER", "FORWARD"] },
    Slot { table: "filter", chain: CHAIN_OUT, parents: &["OUTPUT"] },
    Slot { table: "raw", chain: CHAIN_MATE, parents: &[] },
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
    /// The Mac's own addresses on the link: everything else from the tunnel is a teammate's.
    pub mac_v4: Ipv4Addr,
    pub mac_v6: Option<Ipv6Addr>,
    /// `--internal` networks: no default route back, so MASQUERADE traffic from the link to them.
    pub internal: Vec<IpNet>,
    /// Container subnets allowed to reach each other (both directions).
    pub pairs: Vec<(IpNet, IpNet)>,
    /// What teammates may reach (the helper's exposed routes, from the controller).
    pub exposed: Vec<IpNet>,
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
    pub rules: [Vec<String>; 5],
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
        let mac: Option<IpAddr> = match f {
            Family::V4 => Some(spec.mac_v4.into()),
            Family::V6 => spec.mac_v6.map(IpAddr::from),
        };
        let host = |a: IpAddr| format!("{a}/{}", if a.is_ipv4() { 32 } else { 128 });
        // Towards the tunnel: the Mac may be called; anyone else only answered.
        let to_tunnel = |v: &mut Vec<String>| {
            if let Some(m) = mac {
                v.push(format!("-d {} -o {t} -j ACCEPT", host(m)));
            }
            v.push(format!("-o {t} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"));
            v.push(format!("-o {t} -j DROP"));
        };
        let mut fwd = vec![format!("-i {t} -j ACCEPT")];
        to_tunnel(&mut fwd);
        let mut output = Vec::new();
        to_tunnel(&mut output);
        output.push("-j RETURN".into());
        let mut mate = vec![
            "-m addrtype --dst-type LOCAL -j DROP".to_string(),
            "-m addrtype ! --dst-type UNICAST -j DROP".to_string(),
        ];
        let exposed: Vec<IpNet> = spec.exposed.iter().filter(|n| Family::of(n) == f).map(IpNet::trunc).collect();
        for n in exposed {
            push_unique(&mut mate, format!("-d {n} -j ACCEPT"));
        }
        mate.push("-j DROP".into());
        let mut pre = Vec::new();
        if let Some(m) = mac {
            pre.push(format!("-s {} -i {t} -j ACCEPT", host(m)));
        }
        pre.push(format!("-i {t} -j {CHAIN_MATE}"));
        let mut post = Vec::new();
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
        out.push(Plan { family: f, rules: [fwd, output, mate, pre, post] });
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
            mac_v4: net("198.18.7.1"),
            mac_v6: None,
            internal: Vec::new(),
            pairs: Vec::new(),
            exposed: Vec::new(),
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const FWD: [&str; 4] = [
        "-i dockroute0 -j ACCEPT",
        "-d 198.18.7.1/32 -o dockroute0 -j ACCEPT",
        "-o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "-o dockroute0 -j DROP",
    ];

    #[test]
    fn the_tunnel_alone_lets_the_mac_in_and_out_and_answers_anyone_else() {
        let plans = plan(&spec()).unwrap();
        assert_eq!(plans.len(), 1, "no IPv6 link, no IPv6 network: ip6tables is left alone");
        let p = &plans[0];
        assert_eq!(p.family, Family::V4);
        assert_eq!(p.rules[0], strs(&[&FWD[..], &["-j RETURN"]].concat()));
        assert_eq!(p.rules[1], strs(&[&FWD[1..], &["-j RETURN"]].concat()));
        assert_eq!(
            p.rules[3],
            strs(&["-s 198.18.7.1/32 -i dockroute0 -j ACCEPT", "-i dockroute0 -j DOCKROUTE-MATE", "-j RETURN"])
        );
        assert_eq!(p.rules[4], Vec::<String>::new(), "no internal network: nothing to MASQUERADE");
        let chains: Vec<(&str, &str)> = p.chains().map(|(s, _)| (s.table, s.chain)).collect();
        assert_eq!(
            chains,
            [
                ("filter", CHAIN_FWD),
                ("filter", CHAIN_OUT),
                ("raw", CHAIN_MATE),
                ("raw", CHAIN_PRE),
                ("nat", CHAIN_POST)
            ]
        );
    }

    #[test]
    fn an_attack_from_the_tunnel_by_anyone_but_the_mac_reaches_only_exposed_routes_never_the_vm() {
        let s =
            FirewallSpec { exposed: vec![net("198.19.1.9/24"), net("198.19.1.0/24"), net("fd00:1::/64")], ..spec() };
        let p = &plan(&s).unwrap()[0];
        assert_eq!(
            p.rules[2],
            strs(&[
                "-m addrtype --dst-type LOCAL -j DROP",
                "-m addrtype ! --dst-type UNICAST -j DROP",
                "-d 198.19.1.0/24 -j ACCEPT",
                "-j DROP",
            ]),
            "the VM's own addresses (gateways, published ports) first, then all but the exposed"
        );
        let nothing = &plan(&spec()).unwrap()[0];
        assert_eq!(nothing.rules[2].last().map(String::as_str), Some("-j DROP"));
        assert!(!nothing.rules[2].iter().any(|r| r.contains("ACCEPT")), "nothing exposed, nothing reached");
        // The MATE chain is created before the chain that jumps to it.
        assert!(SLOTS.iter().position(|s| s.chain == CHAIN_MATE) < SLOTS.iter().position(|s| s.chain == CHAIN_PRE));
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
        assert_eq!(p.rules[0], strs(&[&FWD[..], &both[..], &["-j RETURN"]].concat()));
        assert_eq!(
            p.rules[3],
            strs(&[
                "-s 198.18.7.1/32 -i dockroute0 -j ACCEPT",
                "-i dockroute0 -j DOCKROUTE-MATE",
                both[0],
                both[1],
                "-j RETURN"
            ])
        );
    }

    #[test]
    fn internal_networks_masquerade_from_the_link_subnet_of_their_family() {
        let mut s = spec();
        s.link_v6 = Some(net("2001:2:7::1/64"));
        s.mac_v6 = Some(net("2001:2:7::1"));
        s.internal = vec![net("198.19.3.7/24"), net("2001:2:3::/64"), net("198.19.3.0/24")];
        let plans = plan(&s).unwrap();
        assert_eq!(plans.iter().map(|p| p.family).collect::<Vec<_>>(), [Family::V4, Family::V6]);
        assert_eq!(plans[0].rules[4], strs(&["-s 198.18.7.0/24 -d 198.19.3.0/24 -j MASQUERADE"]));
        assert_eq!(plans[1].rules[4], strs(&["-s 2001:2:7::/64 -d 2001:2:3::/64 -j MASQUERADE"]));
        assert_eq!(plans[1].rules[0][0], "-i dockroute0 -j ACCEPT");
        assert_eq!(plans[1].rules[0][1], "-d 2001:2:7::1/128 -o dockroute0 -j ACCEPT");
        assert_eq!(plans[1].rules[3][0], "-s 2001:2:7::1/128 -i dockroute0 -j ACCEPT");
    }

    #[test]
    fn an_ipv6_network_without_an_ipv6_link_gets_chains_but_no_masquerade() {
        let mut s = spec();
        s.internal = vec![net("2001:2:3::/64")];
        s.pairs = vec![(net("2001:2:1::/64"), net("2001:2:2::/64"))];
        let plans = plan(&s).unwrap();
        let v6 = plans.iter().find(|p| p.family == Family::V6).expect("a v6 plan for the v6 pair");
        assert_eq!(v6.rules[4], Vec::<String>::new());
        assert!(v6.rules[0].contains(&"-s 2001:2:1::/64 -d 2001:2:2::/64 -j ACCEPT".to_string()));
        assert_eq!(v6.rules[3][0], "-i dockroute0 -j DOCKROUTE-MATE", "no Mac address in this family");
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
        assert_eq!(filter.parent(|c| c == "DOCKER-USER" || c == "FORWARD"), Some("DOCKER-USER"));
        assert_eq!(filter.parent(|c| c == "FORWARD"), Some("FORWARD"));
        assert_eq!(filter.parent(|_| false), Some("FORWARD"), "a table not there yet: the kernel's chain");
        assert_eq!(SLOTS[3].parent(|_| false), Some("PREROUTING"));
        assert_eq!(SLOTS[2].parent(|_| true), None, "only our PRE chain jumps to MATE");
    }
}
