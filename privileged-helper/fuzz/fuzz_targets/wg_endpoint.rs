//! Any `share add --endpoint` value (or none, with any `expose` address): what is accepted is
//! the value given (or the expose address), as HOST:PORT with a port above 0 and a host that is
//! an IPv4 address, a bracketed IPv6 address or a hostname; and the teammate's config carrying
//! it, read as wg-quick reads it (`#` starts a comment, `key = value`), has exactly the keys we
//! wrote, with that endpoint. Input: one byte picks the expose address (and whether
//! `--endpoint` is given), then the endpoint's text.
#![no_main]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use dockroute_api::dns_name::name_problem;
use dockroute_helper::share::wgconf::{endpoint, render, TeammateConfig};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

const EXPOSE: [&str; 5] = ["0.0.0.0:2512", "127.0.0.1:2512", "198.18.7.1:2512", "[::]:2512", "[2001:2::1]:2512"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let expose: SocketAddr = EXPOSE[usize::from(pick) % EXPOSE.len()].parse().expect("an address");
    let given = (pick & 0x80 == 0).then_some(text);
    let Ok(e) = endpoint(given, expose) else { return };
    if let Some(g) = given {
        assert_eq!(e, g);
    }
    let (host, port) = e.rsplit_once(':').expect("HOST:PORT");
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{e:?}: port");
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => {
            host.parse::<Ipv4Addr>().is_ok() || name_problem(host.strip_suffix('.').unwrap_or(host), false).is_none()
        }
    };
    assert!(host_ok, "{e:?} accepted: its host is no address or hostname");

    let allowed: Vec<IpNet> = vec!["198.19.1.0/24".parse().expect("a net")];
    let config = render(&TeammateConfig {
        name: "alice",
        private_key: "cHJpdmF0ZQ==",
        address: "198.18.5.3".parse().expect("an address"),
        mtu: 1400,
        server_public_key: "cHVibGlj",
        endpoint: &e,
        allowed: &allowed,
    });
    let sections = read_as_wg_quick(&config);
    let keys = |s: &str| sections.get(s).map(|kv| kv.keys().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(keys("[Interface]"), Some(vec!["Address", "MTU", "PrivateKey"]), "{config}");
    assert_eq!(keys("[Peer]"), Some(vec!["AllowedIPs", "Endpoint", "PersistentKeepalive", "PublicKey"]), "{config}");
    assert_eq!(sections["[Peer]"]["Endpoint"], e, "{config}");
});

/// wg-quick's `parse_options`: a `#` starts a comment, a line is `key = value` (split at the
/// first `=`, both trimmed), `[Section]` lines switch sections. A section or a key seen twice
/// fails the check.
fn read_as_wg_quick(config: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current = String::new();
    for line in config.lines() {
        let stripped = line.split('#').next().unwrap_or_default();
        let (key, value) = stripped.split_once('=').unwrap_or((stripped, ""));
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            continue;
        }
        if key.starts_with('[') {
            current = key.to_string();
            assert!(sections.insert(current.clone(), BTreeMap::new()).is_none(), "{key} twice");
            continue;
        }
        let section = sections.entry(current.clone()).or_default();
        assert!(section.insert(key.to_string(), value.to_string()).is_none(), "{key} twice in {current}");
    }
    sections
}
