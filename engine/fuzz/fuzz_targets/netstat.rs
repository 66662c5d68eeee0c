//! Any text as macOS `netstat -rn` output (the helper's routing-table snapshot on a Mac):
//! parsing never panics; every entry's destination is a network and its interface one word;
//! the entries, printed back in netstat's layout, parse to the same entries; and a link subnet
//! chosen against the table never overlaps a route someone else owns.
#![no_main]

use std::fmt::Write;

use dockroute_engine::platform::table::{choose_link_subnet, find_conflict, parse_netstat, RouteEntry};
use ipnet::{IpNet, Ipv4Net};
use libfuzzer_sys::fuzz_target;

const OUR_INTERFACE: &str = "utun9";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let table = parse_netstat(text);
    for e in &table {
        assert_eq!(e.dest, e.dest.trunc(), "{e:?}");
        assert!(!e.interface.is_empty() && !e.interface.contains(char::is_whitespace), "{e:?}");
    }
    // Printed by family, IPv4 first, as netstat does.
    let mut by_family = table.clone();
    by_family.sort_by_key(|e| e.dest.addr().is_ipv6());
    let printed = print(&by_family);
    assert_eq!(parse_netstat(&printed), by_family, "printed as {printed}");
    for configured in ["192.168.251.1/24", "10.251.0.1/28"] {
        let configured: Ipv4Net = configured.parse().expect("a valid net");
        if let Ok(net) = choose_link_subnet(configured, false, &table, OUR_INTERFACE) {
            assert_eq!(find_conflict(IpNet::V4(net), &table, OUR_INTERFACE), None, "{net}");
        }
    }
});

/// One section per family, netstat's modern header; a gateway that is no address as `link#N`.
fn print(table: &[RouteEntry]) -> String {
    let mut out = String::from("Routing tables\n");
    for (title, v6) in [("Internet:", false), ("Internet6:", true)] {
        let _ = writeln!(out, "\n{title}\nDestination        Gateway            Flags               Netif Expire");
        for e in table.iter().filter(|e| e.dest.addr().is_ipv6() == v6) {
            let gateway = e.gateway.map_or_else(|| "link#6".to_string(), |g| g.to_string());
            let _ = writeln!(out, "{}  {gateway}  UGSc  {}", e.dest, e.interface);
        }
    }
    out
}
