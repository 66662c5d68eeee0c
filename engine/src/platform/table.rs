//! OS routing-table snapshot and conflict checks: a Docker subnet (or the tunnel link subnet)
//! that overlaps a route someone else owns (LAN, VPN) must not be installed over it.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub dest: IpNet,
    pub interface: String,
    pub gateway: Option<IpAddr>,
}

/// One route of `ip -j route` output, as much of it as Dockroute uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRoute {
    /// Normalised to the network; "default" is 0.0.0.0/0 or ::/0.
    pub dest: IpNet,
    /// The device, or the first next hop's.
    pub dev: Option<String>,
    pub gateway: Option<IpAddr>,
    /// Whether a next hop is named at all ("gateway", "via" or "nexthops"), parseable or not.
    pub has_next_hop: bool,
    /// `type` when iproute2 prints one (blackhole, unreachable, ...; absent for unicast).
    pub kind: Option<String>,
}

impl IpRoute {
    /// A subnet reached directly on a device (what Docker's bridges have), not through a
    /// gateway and not a blackhole or similar.
    pub fn is_connected(&self) -> bool {
        self.dev.is_some() && !self.has_next_hop && self.kind.as_deref().is_none_or(|k| k == "unicast")
    }
}

/// Why a subnet must not go through the tunnel: a prefix this short would swallow the
/// internet (or the LAN), and loopback, link-local and multicast are never container networks.
pub fn unroutable(net: &IpNet) -> Option<&'static str> {
    let too_short = match net {
        IpNet::V4(n) => n.prefix_len() < 8,
        IpNet::V6(n) => n.prefix_len() < 16,
    };
    if too_short {
        return Some("prefix too short for a container network (at least /8, or /16 for IPv6)");
    }
    let special = match net.network() {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_multicast() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_loopback() || a.is_unicast_link_local() || a.is_multicast() || a.is_unspecified(),
    };
    special.then_some("loopback, link-local and multicast ranges are never routed")
}

/// Parses `ip -j -4|-6 route [show table main]` output (iproute2 ≥ 5), the one parser of it.
/// `v6` only decides what "default" means; host routes take their length from the address.
/// Entries it cannot read (no or an odd "dst") are skipped; JSON that is not an array of
/// objects is an error.
pub fn parse_ip_routes(json: &str, v6: bool) -> Result<Vec<IpRoute>, String> {
    // Some iproute2 builds print nothing at all for an empty table.
    if json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("ip route JSON: {e}"))?;
    let arr = v.as_array().ok_or("ip route JSON: top level is not an array")?;
    let str_of =
        |o: &serde_json::Map<String, serde_json::Value>, k: &str| o.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let mut out = Vec::new();
    for r in arr {
        let Some(obj) = r.as_object() else { continue };
        let Some(dst) = obj.get("dst").and_then(|d| d.as_str()) else { continue };
        let dest = if dst == "default" {
            default_net(v6)
        } else {
            match parse_net(dst) {
                Some(n) => n,
                None => continue, // unknown dst form: not something we can compare against
            }
        };
        let first_hop = obj.get("nexthops").and_then(|n| n.as_array()).and_then(|a| a.first());
        let hop_obj = first_hop.and_then(|h| h.as_object());
        // "gateway" is the usual form; "via" is used for cross-family next hops.
        let gw_str = str_of(obj, "gateway")
            .or_else(|| obj.get("via").and_then(|x| x.as_object()).and_then(|x| str_of(x, "host")))
            .or_else(|| hop_obj.and_then(|h| str_of(h, "gateway")));
        out.push(IpRoute {
            dest,
            dev: str_of(obj, "dev").or_else(|| hop_obj.and_then(|h| str_of(h, "dev"))),
            gateway: gw_str.and_then(|g| g.parse().ok()),
            has_next_hop: ["gateway", "via", "nexthops"].iter().any(|k| obj.contains_key(*k)),
            kind: str_of(obj, "type"),
        });
    }
    Ok(out)
}

/// The routing table as conflict checks see it. Entries without "dev" are kept only if they
/// carry a "type" (blackhole, unreachable, ...), which then stands in for the interface.
pub fn parse_ip_json(json: &str, v6: bool) -> Result<Vec<RouteEntry>, String> {
    Ok(parse_ip_routes(json, v6)?
        .into_iter()
        .filter_map(|r| Some(RouteEntry { dest: r.dest, interface: r.dev.or(r.kind)?, gateway: r.gateway }))
        .collect())
}

/// The subnet of the most specific connected route that contains `addr`, if any.
pub fn connected_subnet(addr: IpAddr, routes: &[IpRoute]) -> Option<IpNet> {
    routes.iter().filter(|r| r.is_connected() && r.dest.contains(&addr)).map(|r| r.dest).max_by_key(IpNet::prefix_len)
}

fn default_net(v6: bool) -> IpNet {
    if v6 {
        "::/0".parse().unwrap()
    } else {
        "0.0.0.0/0".parse().unwrap()
    }
}

/// Full-form "addr" or "addr/len"; a bare address is a host route. Normalised to the network.
fn parse_net(s: &str) -> Option<IpNet> {
    if s.contains('/') {
        return s.parse::<IpNet>().ok().map(|n| n.trunc());
    }
    s.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Parses macOS `netstat -rn` (Internet: and Internet6: sections). The Netif column is located
/// from the "Destination" header (older releases have extra Refs/Use columns); unparsable lines
/// are skipped rather than failing the whole snapshot.
pub fn parse_netstat(text: &str) -> Vec<RouteEntry> {
    let mut out = Vec::new();
    let mut v6_section: Option<bool> = None;
    let mut netif_idx = 3; // modern layout: Destination Gateway Flags Netif Expire
    for line in text.lines() {
        let t = line.trim();
        match t {
            "Internet:" => v6_section = Some(false),
            "Internet6:" => v6_section = Some(true),
            _ => {}
        }
        let cols: Vec<&str> = t.split_whitespace().collect();
        if cols.first() == Some(&"Destination") {
            if let Some(i) = cols.iter().position(|c| *c == "Netif") {
                netif_idx = i;
            }
            continue;
        }
        if cols.len() <= netif_idx || netif_idx < 2 {
            continue;
        }
        let (dst, gw) = (cols[0], cols[1]);
        let gateway = strip_scope(gw).parse::<IpAddr>().ok();
        let dest = if dst == "default" {
            // Outside a section header, fall back to the gateway's family.
            let v6 = v6_section.unwrap_or_else(|| gw.contains(':'));
            Some(default_net(v6))
        } else if dst.contains(':') {
            parse_netstat_v6(dst)
        } else {
            parse_netstat_v4(dst)
        };
        let Some(dest) = dest else { continue };
        out.push(RouteEntry { dest, interface: cols[netif_idx].to_owned(), gateway });
    }
    out
}

/// Drops a "%scope" suffix from an address ("fe80::1%lo0" → "fe80::1").
fn strip_scope(s: &str) -> &str {
    s.split('%').next().unwrap_or(s)
}

/// Splits "addr[%scope][/len]" into (addr, len).
fn split_len(s: &str) -> Option<(&str, Option<u8>)> {
    match s.split_once('/') {
        Some((a, l)) => Some((strip_scope(a), Some(l.parse().ok()?))),
        None => Some((strip_scope(s), None)),
    }
}

fn parse_netstat_v6(s: &str) -> Option<IpNet> {
    let (a, len) = split_len(s)?;
    let addr: std::net::Ipv6Addr = a.parse().ok()?;
    let net = ipnet::Ipv6Net::new(addr, len.unwrap_or(128)).ok()?;
    Some(IpNet::V6(net.trunc()))
}

/// netstat abbreviates v4 destinations: "10/8", "192.168.64/24", and without /len
/// "127" (→ /8), "169.254" (→ /16), "192.168.1" (→ /24), "a.b.c.d" (→ /32).
fn parse_netstat_v4(s: &str) -> Option<IpNet> {
    let (a, len) = split_len(s)?;
    let parts: Vec<&str> = a.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut oct = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        // Plain decimal only: u8::from_str would accept "+1", which netstat never prints.
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        oct[i] = p.parse().ok()?;
    }
    let len = len.unwrap_or(parts.len() as u8 * 8);
    let net = Ipv4Net::new(Ipv4Addr::from(oct), len).ok()?;
    Some(IpNet::V4(net.trunc()))
}

/// Routes that don't claim address space against us: default routes (any more specific route
/// wins anyway), loopback, link-local, multicast, and anything on our own interface.
pub fn is_ignorable(e: &RouteEntry, our_interface: &str) -> bool {
    // Loopback, link-local, multicast (built once: this runs per route per candidate subnet).
    const SPECIAL: [IpNet; 6] = [
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16)),
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10)),
        IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4)),
        IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8)),
    ];
    // /1 too: full-tunnel VPNs cover everything with 0/1 + 128/1 instead of replacing the
    // default route; they claim no particular network, and our longer prefixes win anyway.
    e.dest.prefix_len() <= 1 || e.interface == our_interface || SPECIAL.iter().any(|s| s.contains(&e.dest))
}

/// The first non-ignorable entry whose destination overlaps `net` (prefixes overlap iff one
/// contains the other; different families never overlap).
pub fn find_conflict<'a>(net: IpNet, table: &'a [RouteEntry], our_interface: &str) -> Option<&'a RouteEntry> {
    let net = net.trunc();
    table.iter().find(|e| !is_ignorable(e, our_interface) && (net.contains(&e.dest) || e.dest.contains(&net)))
}

/// Documented fallback order for the tunnel link subnet.
pub const LINK_CANDIDATES: &[&str] = &[
    "192.168.251.0/24", // mac-docker-connector's default
    "192.168.252.0/24",
    "192.168.253.0/24",
    "192.168.254.0/24",
    "10.251.0.0/24",
    "10.252.0.0/24",
    "10.253.0.0/24",
    "10.254.0.0/24",
    "172.31.251.0/24",
    "172.31.252.0/24",
    "172.31.253.0/24",
    "172.31.254.0/24",
];

fn describe(e: &RouteEntry) -> String {
    match e.gateway {
        Some(g) => format!("route {} via {} on {}", e.dest, g, e.interface),
        None => format!("route {} on {}", e.dest, e.interface),
    }
}

/// Picks the tunnel link subnet. A candidate keeps `configured`'s last octet and its prefix
/// length when that fits inside a /24 (≥ 24), otherwise it is a /24.
pub fn choose_link_subnet(
    configured: Ipv4Net,
    pinned: bool,
    table: &[RouteEntry],
    our_interface: &str,
) -> Result<Ipv4Net, String> {
    let Some(hit) = find_conflict(IpNet::V4(configured), table, our_interface) else {
        return Ok(configured);
    };
    let why = format!("link subnet {} overlaps {}", configured.trunc(), describe(hit));
    if pinned {
        return Err(format!("{why}; it is pinned in the configuration, choose another one"));
    }
    let prefix = configured.prefix_len().max(24);
    // Same last octet as configured (".1" stays ".1"), also for longer prefixes.
    let offset = u32::from(configured.addr()) & 0xff;
    for c in LINK_CANDIDATES {
        let base: Ipv4Net = c.parse().expect("LINK_CANDIDATES are valid");
        let addr = Ipv4Addr::from(u32::from(base.network()) | offset);
        let cand = Ipv4Net::new(addr, prefix).expect("prefix ≤ 32");
        if cand.trunc() == configured.trunc() {
            continue;
        }
        if find_conflict(IpNet::V4(cand), table, our_interface).is_none() {
            return Ok(cand);
        }
    }
    Err(format!("{why}, and every candidate in {LINK_CANDIDATES:?} overlaps an existing route"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn re(dest: &str, iface: &str) -> RouteEntry {
        RouteEntry { dest: n(dest), interface: iface.into(), gateway: None }
    }

    const IP4: &str = r#"[{"dst":"default","gateway":"192.168.1.1","dev":"eth0","protocol":"dhcp","flags":[]},{"dst":"172.17.0.0/16","dev":"docker0","protocol":"kernel","scope":"link","prefsrc":"172.17.0.1","flags":["linkdown"]},{"type":"unreachable","dst":"10.9.0.0/16","flags":[]},{"dst":"192.168.1.7","gateway":"192.168.1.1","dev":"eth0","flags":[]},{"dst":"10.20.0.0/16","flags":[],"nexthops":[{"gateway":"192.168.1.2","dev":"eth1","weight":1,"flags":[]}]},{"dst":"10.30.0.0/16","flags":[]}]"#;
    const IP6: &str = r#"[{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"2001:db8::5","dev":"wg0","metric":1024,"flags":[]},{"dst":"default","gateway":"fe80::1","dev":"eth0","protocol":"ra","metric":1024,"flags":[],"pref":"medium"}]"#;

    #[test]
    fn ip_json_v4() {
        let t = parse_ip_json(IP4, false).unwrap();
        let gw = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(t.len(), 5, "route without dev/type/nexthops must be skipped: {t:?}");
        assert_eq!(t[0], RouteEntry { dest: n("0.0.0.0/0"), interface: "eth0".into(), gateway: gw("192.168.1.1") });
        assert_eq!(t[1], re("172.17.0.0/16", "docker0"));
        assert_eq!(t[2], re("10.9.0.0/16", "unreachable"));
        assert_eq!(t[3].dest, n("192.168.1.7/32"));
        assert_eq!((t[4].interface.as_str(), t[4].gateway), ("eth1", gw("192.168.1.2")));
    }

    #[test]
    fn ip_json_v6_and_errors() {
        let t = parse_ip_json(IP6, true).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], re("fe80::/64", "eth0"));
        assert_eq!(t[1].dest, n("2001:db8::5/128"));
        assert_eq!(t[2].dest, n("::/0"));
        assert_eq!(t[2].gateway, Some("fe80::1".parse().unwrap()));
        assert!(parse_ip_json("[{\"dst\":", false).is_err());
        assert!(parse_ip_json("{\"dst\":\"default\"}", false).is_err());
        assert!(parse_ip_json("not json", true).is_err());
        assert_eq!(parse_ip_json("[]", false).unwrap(), vec![]);
    }

    #[test]
    fn only_device_routes_without_a_next_hop_count_as_connected() {
        let r = parse_ip_routes(IP4, false).unwrap();
        let connected: Vec<String> = r.iter().filter(|r| r.is_connected()).map(|r| r.dest.to_string()).collect();
        assert_eq!(connected, ["172.17.0.0/16"], "{r:?}");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(connected_subnet(ip("172.17.3.4"), &r), Some(n("172.17.0.0/16")));
        // Behind a gateway (the /32 and the multipath /16), unreachable, or only the default.
        for a in ["192.168.1.7", "10.20.0.1", "10.9.0.1", "8.8.8.8"] {
            assert_eq!(connected_subnet(ip(a), &r), None, "{a}");
        }
        let nested = r#"[{"dst":"198.19.0.0/16","dev":"br-a"},{"dst":"198.19.1.0/24","dev":"br-b"},
            {"dst":"198.19.1.5","dev":"br-c"},{"type":"unicast","dst":"198.19.2.0/24","dev":"br-d"}]"#;
        let r = parse_ip_routes(nested, false).unwrap();
        assert_eq!(connected_subnet(ip("198.19.1.9"), &r), Some(n("198.19.1.0/24")), "the most specific");
        assert_eq!(connected_subnet(ip("198.19.1.5"), &r), Some(n("198.19.1.5/32")), "a host route");
        assert_eq!(connected_subnet(ip("198.19.2.1"), &r), Some(n("198.19.2.0/24")), "explicit unicast");
    }

    const NETSTAT: &str = "Routing tables

Internet:
Destination        Gateway            Flags               Netif Expire
default            192.168.1.1        UGScg                 en0
127                127.0.0.1          UCS                   lo0
127.0.0.1          127.0.0.1          UH                    lo0
169.254            link#6             UCS                   en0      !
192.168.1          link#6             UCS                   en0      !
192.168.1.1/32     link#6             UCS                   en0      !
192.168.1.1        a4:91:b1:12:34:56  UHLWIir               en0   1187
10.8/16            10.8.0.1           UGSc                utun3
224.0.0/4          link#6             UmCS                  en0      !
garbage line

Internet6:
Destination                             Gateway                                 Flags               Netif Expire
default                                 fe80::%utun0                            UGcIg               utun0
::1                                     ::1                                     UHL                   lo0
fe80::%lo0/64                           fe80::1%lo0                             UcI                   lo0
fd00:1::/64                             link#15                                 UCS                 utun3
ff00::/8                                ::1                                     UmCI                  lo0
";

    #[test]
    fn netstat_macos() {
        let t = parse_netstat(NETSTAT);
        let got: Vec<(String, &str)> = t.iter().map(|e| (e.dest.to_string(), e.interface.as_str())).collect();
        let want = [
            ("0.0.0.0/0", "en0"),
            ("127.0.0.0/8", "lo0"),
            ("127.0.0.1/32", "lo0"),
            ("169.254.0.0/16", "en0"),
            ("192.168.1.0/24", "en0"),
            ("192.168.1.1/32", "en0"),
            ("192.168.1.1/32", "en0"),
            ("10.8.0.0/16", "utun3"),
            ("224.0.0.0/4", "en0"),
            ("::/0", "utun0"),
            ("::1/128", "lo0"),
            ("fe80::/64", "lo0"),
            ("fd00:1::/64", "utun3"),
            ("ff00::/8", "lo0"),
        ];
        let want: Vec<(String, &str)> = want.iter().map(|(d, i)| (d.to_string(), *i)).collect();
        assert_eq!(got, want);
        assert_eq!(t[0].gateway, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(t[3].gateway, None, "link#N is not an address");
        assert_eq!(t[6].gateway, None, "a MAC is not an address");
        assert_eq!(t[9].gateway, Some("fe80::".parse().unwrap()), "scope stripped");
        // Only VPN and LAN routes survive the ignore filter.
        let owners: Vec<String> = t.iter().filter(|e| !is_ignorable(e, "utun9")).map(|e| e.dest.to_string()).collect();
        assert_eq!(owners, ["192.168.1.0/24", "192.168.1.1/32", "192.168.1.1/32", "10.8.0.0/16", "fd00:1::/64"]);
    }

    #[test]
    fn netstat_old_layout_with_refs_use() {
        let t =
            parse_netstat("Internet:\nDestination Gateway Flags Refs Use Netif Expire\n10/8 10.0.0.1 UGSc 1 0 utun2\n");
        assert_eq!(
            t,
            vec![RouteEntry {
                dest: n("10.0.0.0/8"),
                interface: "utun2".into(),
                gateway: Some("10.0.0.1".parse().unwrap())
            }]
        );
    }

    #[test]
    fn conflicts() {
        let vpn = [re("172.16.0.0/12", "utun3")];
        let hit = find_conflict(n("172.18.0.0/16"), &vpn, "utun9").unwrap();
        assert_eq!(hit.interface, "utun3");
        assert!(find_conflict(n("172.18.0.0/16"), &[re("10.0.0.0/8", "en0")], "utun9").is_none());
        assert!(find_conflict(n("172.18.0.0/16"), &[re("172.18.0.0/16", "utun9")], "utun9").is_none());
        assert!(find_conflict(n("172.18.0.0/16"), &[re("0.0.0.0/0", "en0")], "utun9").is_none());
        assert!(find_conflict(n("172.18.0.0/16"), &[re("172.18.0.0/16", "en0")], "utun9").is_some());
        let inner = [re("172.18.5.0/24", "en1")];
        assert_eq!(find_conflict(n("172.18.0.0/16"), &inner, "utun9"), Some(&inner[0]));
        assert!(find_conflict(n("fd00::/8"), &vpn, "utun9").is_none());
        assert!(find_conflict(n("172.16.0.0/12"), &[re("::/0", "x"), re("fd00::/8", "x")], "u").is_none());
        // Loopback / link-local / multicast never count, first owning match wins.
        let t = [
            re("127.0.0.0/8", "lo0"),
            re("169.254.0.0/16", "en0"),
            re("224.0.0.0/4", "en0"),
            re("0.0.0.0/1", "utun4"),
            re("0.0.0.0/2", "utun5"),
        ];
        assert_eq!(find_conflict(n("0.0.0.0/0"), &t, "u").unwrap().interface, "utun5", "a /1 is default-like");
        // A full-tunnel VPN's 0/1 + 128/1 claims no network: Docker subnets still install.
        let full_tunnel = [re("0.0.0.0/1", "utun4"), re("128.0.0.0/1", "utun4")];
        assert!(find_conflict(n("172.18.0.0/16"), &full_tunnel, "u").is_none());
        assert!(find_conflict(n("127.1.0.0/16"), &t[..3], "u").is_none());
    }

    fn v4(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn link_subnet() {
        assert_eq!(LINK_CANDIDATES.len(), 12);
        assert!(LINK_CANDIDATES.iter().all(|c| v4(c).prefix_len() == 24 && v4(c).trunc() == v4(c)));
        let cfg = v4("192.168.251.1/24");
        let t = vec![re("192.168.1.0/24", "en0")];
        assert_eq!(choose_link_subnet(cfg, false, &t, "utun9"), Ok(cfg));
        let t = vec![re("192.168.251.0/24", "en5")];
        assert_eq!(choose_link_subnet(cfg, false, &t, "utun9"), Ok(v4("192.168.252.1/24")));
        // A route on our own interface (left from a previous run) is not a collision.
        assert_eq!(choose_link_subnet(cfg, true, &[re("192.168.251.0/24", "utun9")], "utun9"), Ok(cfg));
        let err = choose_link_subnet(cfg, true, &t, "utun9").unwrap_err();
        assert!(err.contains("192.168.251.0/24") && err.contains("en5"), "{err}");
        // The whole 192.168/16 owned by a VPN: skip to the 10.x candidates, offset .7 kept.
        let t = vec![re("192.168.0.0/16", "utun3")];
        assert_eq!(choose_link_subnet(v4("192.168.251.7/24"), false, &t, "utun9"), Ok(v4("10.251.0.7/24")));
        // A /30 keeps its length inside the candidate /24.
        assert_eq!(choose_link_subnet(v4("192.168.251.5/30"), false, &t, "utun9"), Ok(v4("10.251.0.5/30")));
        let all = vec![re("192.168.0.0/16", "utun3"), re("10.0.0.0/8", "utun4"), re("172.16.0.0/12", "en7")];
        let err = choose_link_subnet(cfg, false, &all, "utun9").unwrap_err();
        assert!(err.contains("utun3") && err.contains("every candidate"), "{err}");
    }

    /// Runs iproute2 read-only (`show`) and checks the snapshot parses.
    #[cfg(target_os = "linux")]
    #[test]
    fn real_ip_route_tables() {
        for (flag, v6) in [("-4", false), ("-6", true)] {
            let out = std::process::Command::new("ip").args(["-j", flag, "route", "show", "table", "main"]).output();
            let out = out.expect("ip(8) from iproute2 is needed for this test (scripts/setup.sh installs it)");
            assert!(out.status.success(), "ip {flag} failed: {out:?}");
            let t = parse_ip_json(&String::from_utf8_lossy(&out.stdout), v6).unwrap();
            assert!(!t.is_empty(), "expected at least one {flag} route");
            assert!(t.iter().all(|e| e.dest.addr().is_ipv6() == v6), "{t:?}");
        }
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(Ipv4Addr::from(a).into(), l).unwrap()),
            (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(std::net::Ipv6Addr::from(a).into(), l).unwrap()),
        ]
    }

    fn arb_entry() -> impl Strategy<Value = RouteEntry> {
        (arb_net(), prop::sample::select(vec!["en0", "utun3", "utun9"])).prop_map(|(d, i)| RouteEntry {
            dest: d.trunc(),
            interface: i.into(),
            gateway: None,
        })
    }

    proptest! {
        #[test]
        fn conflict_matches_naive(net in arb_net(), table in prop::collection::vec(arb_entry(), 0..8)) {
            let naive = table.iter().find(|e| {
                let (a, b) = (net.trunc(), e.dest);
                !is_ignorable(e, "utun9") && (a.contains(&b.network()) || b.contains(&a.network()))
            });
            prop_assert_eq!(find_conflict(net, &table, "utun9"), naive);
        }

        #[test]
        fn netstat_never_panics(lines in prop::collection::vec("[ -~]{0,60}", 0..12),
                                dsts in prop::collection::vec("[0-9.:/%a-f]{0,20}", 0..6)) {
            let mut text = lines.join("\n");
            for d in &dsts {
                text.push_str(&format!("\n{d} link#1 UCS en0 !"));
            }
            let _ = parse_netstat(&text);
        }
    }
}
