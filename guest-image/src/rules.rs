//! The rules file the controller copies into the guest container: which networks are
//! `--internal`, which subnet pairs may reach each other, and which routes teammates may reach
//! (the helper's exposed routes; nothing else of the VM is theirs). Same line format as the
//! config file (`key value`, `#` comments), so one habit serves both.
//!
//! ```text
//! internal 198.19.2.0/24
//! iptables 198.19.1.0+198.19.3.0
//! expose 198.19.1.0/24
//! ```

use dockroute_api::Pair;
use dockroute_engine::platform::table::{connected_subnet, IpRoute};
use ipnet::IpNet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub internal: Vec<IpNet>,
    /// Seed syntax, as addresses; resolved to subnets against the VM's routes when applied.
    pub pairs: Vec<Pair>,
    /// What teammates may reach.
    pub exposed: Vec<IpNet>,
}

/// Parses the file; an error names the line and the previous rules stay in force.
pub fn parse(text: &str) -> Result<Rules, String> {
    let mut rules = Rules::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |m: String| format!("line {}: {m} in {line:?}", i + 1);
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["internal", cidr] => {
                let net: IpNet = cidr.parse().map_err(|_| err(format!("{cidr:?} is not a subnet")))?;
                rules.internal.push(net.trunc());
            }
            ["expose", cidr] => {
                let net: IpNet = cidr.parse().map_err(|_| err(format!("{cidr:?} is not a subnet")))?;
                rules.exposed.push(net.trunc());
            }
            // `A-B` (the seed's "remove") needs no rule: absence is removal here. Skipped unread,
            // as before: a malformed remove line never cost the file its other rules.
            ["iptables", pair] if pair.contains('-') && !pair.contains('+') => {}
            ["iptables", pair] => rules.pairs.push(pair.parse::<Pair>().map_err(err)?),
            _ => return Err(err("expected `internal CIDR`, `iptables A+B` or `expose CIDR`".into())),
        }
    }
    Ok(rules)
}

/// Each pair as the subnets of the VM's connected routes (its bridges) that hold its two
/// addresses. A pair whose network does not exist (yet) is left out until it does.
pub fn resolve_pairs(pairs: &[Pair], routes: &[IpRoute]) -> Vec<(IpNet, IpNet)> {
    pairs.iter().filter_map(|p| Some((connected_subnet(p.a, routes)?, connected_subnet(p.b, routes)?))).collect()
}

#[cfg(test)]
mod tests {
    use dockroute_engine::platform::table::parse_ip_routes;

    use super::*;

    fn pair(a: &str, b: &str) -> Pair {
        Pair { a: a.parse().unwrap(), b: b.parse().unwrap() }
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn internal_networks_and_pairs_parse_and_bad_lines_name_their_number() {
        let r = parse("# c\ninternal 198.19.2.5/24\niptables 198.19.1.0+198.19.3.0\niptables 198.19.4.0-198.19.5.0\n")
            .unwrap();
        assert_eq!(r.internal, ["198.19.2.0/24".parse::<IpNet>().unwrap()]);
        assert_eq!(r.pairs, [pair("198.19.1.0", "198.19.3.0")]);
        let e = parse("internal 198.19.2.0/24\nroute 1.2.3.0/24\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse("internal nope").unwrap_err().contains("line 1"));
        let r = parse("expose 198.19.1.7/24\nexpose 2001:2:1::/64\n").unwrap();
        assert_eq!(r.exposed, ["198.19.1.0/24".parse::<IpNet>().unwrap(), "2001:2:1::/64".parse().unwrap()]);
        assert!(parse("expose 198.19.1.0/24\nexpose everything\n").unwrap_err().starts_with("line 2:"));
        assert_eq!(parse("").unwrap(), Rules::default());
    }

    #[test]
    fn pairs_of_either_family_parse_and_bad_or_mixed_ones_name_their_line() {
        let r = parse("iptables 198.19.1.0+198.19.3.0\niptables 2001:2:1::+2001:2:2::\n").unwrap();
        assert_eq!(r.pairs, [pair("198.19.1.0", "198.19.3.0"), pair("2001:2:1::", "2001:2:2::")]);
        for bad in ["iptables 198.19.1.0+2001:2::", "iptables 198.19.1.0/24+198.19.2.0", "iptables +", "iptables x+y"] {
            let e = parse(&format!("internal 198.19.2.0/24\n{bad}\n")).unwrap_err();
            assert!(e.starts_with("line 2:"), "{bad}: {e}");
        }
        // A remove line is skipped unread, even a malformed one.
        assert_eq!(parse("iptables foo-bar\n").unwrap(), Rules::default());
    }

    /// `ip -j -4 route` and `ip -j -6 route` in a VM with three bridges, one of them IPv6.
    const ROUTES_V4: &str = r#"[{"dst":"default","gateway":"192.168.65.1","dev":"eth0","flags":[]},
{"dst":"172.17.0.0/16","dev":"docker0","protocol":"kernel","scope":"link","prefsrc":"172.17.0.1","flags":[]},
{"dst":"172.18.0.0/16","dev":"br-5c0a1f3e2b71","protocol":"kernel","scope":"link","prefsrc":"172.18.0.1","flags":["linkdown"]},
{"dst":"172.20.0.0/16","gateway":"192.168.65.9","dev":"eth0","flags":[]},
{"dst":"192.168.65.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.168.65.3","flags":[]}]"#;
    const ROUTES_V6: &str = r#"[{"dst":"fd00:1::/64","dev":"br-6e1d","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
{"dst":"default","gateway":"fd00:1::1","dev":"br-6e1d","metric":1024,"flags":[],"pref":"medium"}]"#;

    #[test]
    fn pairs_resolve_to_the_connected_subnets_holding_their_addresses_or_wait() {
        let mut routes = parse_ip_routes(ROUTES_V4, false).unwrap();
        routes.extend(parse_ip_routes(ROUTES_V6, true).unwrap());
        let pairs = [
            pair("172.17.0.0", "172.18.0.5"),
            // 172.20.0.0/16 is reached through a gateway: not a bridge of this VM (yet).
            pair("172.17.0.0", "172.20.0.0"),
            pair("fd00:1::", "fd00:1::9"),
            pair("fd00:2::", "fd00:1::"),
        ];
        assert_eq!(
            resolve_pairs(&pairs, &routes),
            [(net("172.17.0.0/16"), net("172.18.0.0/16")), (net("fd00:1::/64"), net("fd00:1::/64"))]
        );
        assert!(resolve_pairs(&pairs, &[]).is_empty());
    }
}
