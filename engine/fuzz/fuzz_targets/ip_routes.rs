//! Any text as `ip -j -4|-6 route` output (the guest reads the VM's table, the helper the host's):
//! parsing never panics; every route's destination is a network (host bits cleared); the table
//! for conflict checks is the parsed routes that have a device or a type; `connected_subnet`
//! answers only a connected route that holds the address; the routes, printed back as
//! iproute2's JSON, parse to the same routes; and a link subnet chosen against the table never
//! overlaps a route someone else owns.
#![no_main]

use std::net::IpAddr;

use dockroute_engine::platform::table::{
    choose_link_subnet, connected_subnet, find_conflict, parse_ip_json, parse_ip_routes, IpRoute,
};
use ipnet::{IpNet, Ipv4Net};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

const OUR_INTERFACE: &str = "dockroute0";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for v6 in [false, true] {
        let Ok(routes) = parse_ip_routes(text, v6) else {
            assert!(parse_ip_json(text, v6).is_err(), "the two parsers disagree on {text:?}");
            continue;
        };
        for r in &routes {
            assert_eq!(r.dest, r.dest.trunc(), "{r:?}");
            let addr = r.dest.network();
            if let Some(net) = connected_subnet(addr, &routes) {
                assert!(net.contains(&addr));
                assert!(routes.iter().any(|c| c.is_connected() && c.dest == net), "{net} is no connected route");
            }
        }
        let printed = print(&routes);
        assert_eq!(parse_ip_routes(&printed, v6).as_ref(), Ok(&routes), "printed as {printed}");

        let table = parse_ip_json(text, v6).expect("parse_ip_routes took it");
        let with_interface = routes.iter().filter(|r| r.dev.is_some() || r.kind.is_some()).count();
        assert_eq!(table.len(), with_interface);
        for configured in ["192.168.251.1/24", "10.251.0.1/28", "198.18.7.1/16"] {
            let configured: Ipv4Net = configured.parse().expect("a valid net");
            match choose_link_subnet(configured, false, &table, OUR_INTERFACE) {
                Ok(net) => assert_eq!(find_conflict(IpNet::V4(net), &table, OUR_INTERFACE), None, "{net}"),
                Err(e) => assert!(e.contains("overlaps"), "{e}"),
            }
            let pinned = choose_link_subnet(configured, true, &table, OUR_INTERFACE);
            assert!(pinned.is_err() || pinned == Ok(configured), "a pinned subnet is kept or refused");
        }
    }
});

/// The routes as iproute2 prints them (the forms the parser reads: `dst`, `dev`, `gateway`,
/// `type`, and `nexthops` for a next hop without a usable gateway).
fn print(routes: &[IpRoute]) -> String {
    let all: Vec<Value> = routes
        .iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("dst".into(), json!(dst(r.dest)));
            if let Some(dev) = &r.dev {
                o.insert("dev".into(), json!(dev));
            }
            match r.gateway {
                Some(gw) => {
                    o.insert("gateway".into(), json!(gw.to_string()));
                }
                None if r.has_next_hop => {
                    o.insert("nexthops".into(), json!([]));
                }
                None => {}
            }
            if let Some(kind) = &r.kind {
                o.insert("type".into(), json!(kind));
            }
            Value::Object(o)
        })
        .collect();
    Value::Array(all).to_string()
}

/// A host route as a bare address, anything else with its length.
fn dst(net: IpNet) -> String {
    match (net.addr(), net.prefix_len()) {
        (IpAddr::V4(a), 32) => a.to_string(),
        (IpAddr::V6(a), 128) => a.to_string(),
        _ => net.to_string(),
    }
}
