//! Sharing containers with teammates over WireGuard: what the `share_*` operations take and
//! answer, the share's part of the status and of the counters, and how the CLI prints them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::secret::Redacted;

/// `share_add`: make (or with `rotate`, replace) a teammate's key pair and return their config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAdd {
    pub name: String,
    /// Their address in the link subnet; default: the config's `token NAME IP`, else the next free.
    pub ip: Option<Ipv4Addr>,
    /// The `Endpoint` written into their config (`HOST:PORT` they can reach the Mac at);
    /// default: the `expose` address, if it is not a wildcard.
    pub endpoint: Option<String>,
    /// Replace the key of an existing teammate (the old one stops working at once).
    #[serde(default)]
    pub rotate: bool,
}

/// A teammate's WireGuard config, wg-quick format. It carries their private key, which the
/// helper does not keep: this is the only copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareConfig {
    pub name: String,
    pub address: Ipv4Addr,
    pub text: Redacted,
}

/// The share's part of the status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareStatus {
    /// The `expose` address; None: sharing is off.
    pub expose: Option<SocketAddr>,
    /// Whether the expose socket is open (it needs the tunnel up).
    pub listening: bool,
    /// Why sharing does not work although `expose` is set.
    pub error: Option<String>,
    /// What teammates may reach, with where each came from.
    pub exposed: Vec<ExposedRoute>,
    pub teammates: Vec<TeammateInfo>,
    /// Datagrams no teammate can be blamed for (garbage, unknown keys), by reason.
    pub unattributed_drops: BTreeMap<String, u64>,
}

/// What teammates may reach in one route: the containers of the Docker network behind it
/// (`network`), or, for a config line no Docker network stands behind, the route's addresses
/// but its first (Docker's gateway by convention). Only routes that are routed count: a
/// disabled, conflicting or refused one is not exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedRoute {
    pub net: IpNet,
    pub source: ExposedBy,
    /// The Docker network's id (the app's toggle is kept by id).
    #[serde(default)]
    pub network: Option<String>,
}

/// A Docker network as the app reports it (`set_networks`). The helper never reads Docker's
/// socket: this is how it knows which addresses are containers and which are the VM's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerNetwork {
    /// Docker's network id: never reused, so a network made again has a new one.
    pub id: String,
    pub name: String,
    pub subnets: Vec<IpNet>,
    /// The bridge's addresses (the VM's own): never a teammate's destination.
    #[serde(default)]
    pub gateways: Vec<IpAddr>,
    /// The addresses of the running containers attached to it.
    #[serde(default)]
    pub containers: Vec<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposedBy {
    /// A `route CIDR expose` line: change it in the file.
    Config,
    /// `set_network_exposed` (the app's toggle), kept in the helper's share state by network id.
    Api,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeammateInfo {
    pub name: String,
    pub address: Option<Ipv4Addr>,
    /// Base64, as WireGuard prints keys; None for a `token` line nobody has a key for yet.
    pub public_key: Option<String>,
    /// Where their datagrams last came from.
    pub endpoint: Option<SocketAddr>,
    /// Milliseconds since the last completed handshake.
    pub last_handshake_ms: Option<u64>,
    /// Why they cannot connect, if they cannot (no key yet, address taken).
    pub problem: Option<String>,
    pub counters: TeammateCounters,
}

/// Inner packets and bytes each way ("rx": from the teammate), and drops by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeammateCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: BTreeMap<String, u64>,
}

/// `share list` as the CLI prints it.
pub fn render_share(s: &ShareStatus) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    match s.expose {
        None => o.push_str("sharing is off (no `expose ADDR:PORT` in the config)\n"),
        Some(a) => {
            let state = if s.listening { "listening" } else { "not listening (tunnel down)" };
            let _ = writeln!(o, "expose {a}: {state}");
        }
    }
    if let Some(e) = &s.error {
        let _ = writeln!(o, "  error: {e}");
    }
    let nets: Vec<String> = s.exposed.iter().map(|r| r.net.to_string()).collect();
    let _ = writeln!(o, "exposed: {}", if nets.is_empty() { "nothing".to_string() } else { nets.join(", ") });
    for t in &s.teammates {
        let addr = t.address.map_or("-".to_string(), |a| a.to_string());
        let hs = t.last_handshake_ms.map_or("never".to_string(), |ms| format!("{:.1} s ago", ms as f64 / 1000.0));
        let c = &t.counters;
        let _ = write!(
            o,
            "{:<16} {addr:<16} handshake {hs:<12} rx {} B ({} pkts) tx {} B ({} pkts)",
            t.name, c.rx_bytes, c.rx_packets, c.tx_bytes, c.tx_packets
        );
        let drops: Vec<String> = c.drops.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
        if !drops.is_empty() {
            let _ = write!(o, " dropped {}", drops.join(" "));
        }
        if let Some(p) = &t.problem {
            let _ = write!(o, " ({p})");
        }
        o.push('\n');
    }
    if s.teammates.is_empty() {
        o.push_str("no teammates (dockroute-helper share add NAME)\n");
    }
    let other: Vec<String> =
        s.unattributed_drops.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k}={n}")).collect();
    if !other.is_empty() {
        let _ = writeln!(o, "dropped from unknown senders: {}", other.join(" "));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_each_teammate_with_traffic_and_drops() {
        let mut t = TeammateInfo {
            name: "alice".into(),
            address: Some("198.18.0.3".parse().unwrap()),
            last_handshake_ms: Some(2500),
            ..Default::default()
        };
        t.counters.rx_bytes = 840;
        t.counters.drops.insert("spoofed_source".into(), 2);
        t.counters.drops.insert("not_allowed_destination".into(), 0);
        let s = ShareStatus {
            expose: Some("0.0.0.0:2512".parse().unwrap()),
            listening: true,
            exposed: vec![ExposedRoute {
                net: "198.19.1.0/24".parse().unwrap(),
                source: ExposedBy::Config,
                network: None,
            }],
            teammates: vec![t],
            unattributed_drops: BTreeMap::from([("unknown_key".into(), 3)]),
            ..Default::default()
        };
        let text = render_share(&s);
        assert!(text.starts_with("expose 0.0.0.0:2512: listening\nexposed: 198.19.1.0/24\n"), "{text}");
        assert!(text.contains("alice") && text.contains("198.18.0.3") && text.contains("2.5 s ago"), "{text}");
        assert!(text.contains("rx 840 B") && text.contains("dropped spoofed_source=2\n"), "{text}");
        assert!(text.ends_with("dropped from unknown senders: unknown_key=3\n"), "{text}");
        assert!(render_share(&ShareStatus::default()).starts_with("sharing is off"));
    }

    #[test]
    fn the_config_text_never_shows_in_debug_output() {
        let c = ShareConfig {
            name: "a".into(),
            address: "198.18.0.3".parse().unwrap(),
            text: Redacted("PrivateKey = c2VjcmV0".into()),
        };
        assert!(!format!("{c:?}").contains("c2VjcmV0"));
    }
}
