//! Pairs and pair resolution as the guest uses them: the rules file's `A+B` (the api crate's
//! `Pair`) and the engine's `ip -j route` parser with `connected_subnet`. No namespaces needed.
use dockroute_api::Pair;
use dockroute_engine::platform::table::{connected_subnet, parse_ip_routes};
use ipnet::IpNet;
use std::net::IpAddr;

fn parse_pair(s: &str) -> Result<(IpAddr, IpAddr), String> {
    s.parse::<Pair>().map(|p| (p.a, p.b))
}

/// As `rules::resolve_pairs` resolves each address: routes parsed as their family, then the
/// most specific connected subnet. Unreadable JSON resolves nothing.
fn resolve_subnet(addr: IpAddr, ip_route_json: &str) -> Option<IpNet> {
    connected_subnet(addr, &parse_ip_routes(ip_route_json, addr.is_ipv6()).ok()?)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parse_pair_accepts_the_seed_syntax() {
    assert_eq!(parse_pair("172.0.1.0+172.0.2.0"), Ok((ip("172.0.1.0"), ip("172.0.2.0"))));
    assert_eq!(parse_pair(" 198.19.1.0 + 198.19.2.0\n"), Ok((ip("198.19.1.0"), ip("198.19.2.0"))));
    assert_eq!(parse_pair("2001:2:1::+2001:2:2::"), Ok((ip("2001:2:1::"), ip("2001:2:2::"))));
}

#[test]
fn parse_pair_rejects_bad_input() {
    for bad in [
        "",
        "+",
        "198.19.1.0",
        "198.19.1.0+",
        "+198.19.1.0",
        "198.19.1.0/24+198.19.2.0/24",
        "198.19.1.0+198.19.2.0+198.19.3.0",
        "198.19.1.0+2001:2::",
        "foo+bar",
        "198.19.1.0-198.19.2.0",
        "198.19.1.256+198.19.2.0",
        "\u{0}+\u{ffff}",
    ] {
        assert!(parse_pair(bad).is_err(), "{bad:?} accepted");
    }
}

const V4: &str = r#"[{"dst":"default","gateway":"198.18.0.1","dev":"eth0","flags":[]},
{"dst":"198.18.0.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"198.18.0.2","flags":[]},
{"dst":"198.19.0.0/16","dev":"br-big","protocol":"kernel","scope":"link","prefsrc":"198.19.0.1","flags":[]},
{"dst":"198.19.1.0/24","dev":"br-a","protocol":"kernel","scope":"link","prefsrc":"198.19.1.1","flags":["linkdown"]},
{"dst":"198.19.2.0/24","gateway":"198.18.0.9","dev":"eth0","flags":[]},
{"dst":"198.19.3.7","dev":"eth0","scope":"link","flags":[]},
{"type":"blackhole","dst":"198.19.4.0/24","flags":[]}]"#;

#[test]
fn resolve_subnet_picks_the_most_specific_connected_route() {
    assert_eq!(resolve_subnet(ip("198.19.1.0"), V4), Some("198.19.1.0/24".parse().unwrap()));
    assert_eq!(resolve_subnet(ip("198.19.1.77"), V4), Some("198.19.1.0/24".parse().unwrap()));
    // 198.19.2.0/24 is via a gateway: not connected; the /16 bridge is.
    assert_eq!(resolve_subnet(ip("198.19.2.5"), V4), Some("198.19.0.0/16".parse().unwrap()));
    assert_eq!(resolve_subnet(ip("198.19.3.7"), V4), Some("198.19.3.7/32".parse().unwrap()));
    // blackhole is not a connected route; the /16 still contains it.
    assert_eq!(resolve_subnet(ip("198.19.4.1"), V4), Some("198.19.0.0/16".parse().unwrap()));
    // Only the default route covers it.
    assert_eq!(resolve_subnet(ip("198.20.0.1"), V4), None);
    assert_eq!(resolve_subnet(ip("2001:2::1"), V4), None);
}

#[test]
fn resolve_subnet_ipv6() {
    let j = r#"[{"dst":"2001:2:1::/64","dev":"br-a","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
{"dst":"fe80::/64","dev":"br-a","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
{"dst":"2001:2::/48","dev":"eth0","metric":1024,"flags":[],"pref":"medium","nexthops":[{"gateway":"fe80::1"}]},
{"dst":"default","gateway":"2001:2:1::1","dev":"br-a","metric":1024,"flags":[],"pref":"medium"}]"#;
    assert_eq!(resolve_subnet(ip("2001:2:1::"), j), Some("2001:2:1::/64".parse().unwrap()));
    assert_eq!(resolve_subnet(ip("2001:2:2::"), j), None);
    assert_eq!(resolve_subnet(ip("198.19.1.0"), j), None);
}

#[test]
fn resolve_subnet_survives_bad_json() {
    let a = ip("198.19.1.1");
    let deep = "[".repeat(100_000);
    for bad in [
        "",
        "null",
        "{}",
        "[",
        "[{",
        "[{\"dst\"",
        "[{\"dst\":}]",
        "[{\"dst\":\"198.19.1.0/24\"",
        "[{\"dst\":\"198.19.1.0/24\",]",
        "[{\"dst\":\"198.19.1.0/33\"}]",
        "[{\"dst\":\"x\\u12\"}]",
        "[{\"dst\":\"\\ud800\\u\"}]",
        "[1,2,,]",
        "garbage",
        "\u{0}\u{ffff}\"\\",
        &deep,
    ] {
        assert_eq!(resolve_subnet(a, bad), None, "{bad:?}");
    }
    // Escapes and odd values are tolerated where they do not matter.
    let ok = r#" [ {"dst":"198.19.1.0\/24","dev":"br\u002da","x":[true,false,null,-1.5e3,{"y":"\"\\"}]} ] "#;
    assert_eq!(resolve_subnet(a, ok), Some("198.19.1.0/24".parse().unwrap()));
}
