//! Keeps the VM's firewall as the agent needs it: applied once the session gives us the link
//! subnets, re-applied when the rules file changes or a pair's networks appear or go, checked
//! when something changed (`recheck` says when) so that a dockerd that rebuilt its chains gets
//! our jumps back, and removed on exit.

use std::path::PathBuf;
use std::time::Duration;

use dockroute_engine::platform::table::IpRoute;
use dockroute_engine::proto::SessionParams;
use dockroute_stdx::Settle;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::firewall::{Family, FirewallSpec, Iptables, SystemRunner};
use crate::rules::{self, Rules};

/// `ip route` answers at once; this only bounds a wedged one.
const ROUTES_TIMEOUT: Duration = Duration::from_secs(5);

/// The tunnel as the firewall sees it: the device, the link subnets of the session and the
/// Mac's addresses on them (everyone else on the tunnel is a teammate).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    tun: String,
    v4: Ipv4Net,
    v6: Option<Ipv6Net>,
    mac_v4: Ipv4Addr,
    mac_v6: Option<Ipv6Addr>,
}

impl Link {
    /// None if the session's IPv4 prefix is impossible (an IPv6 one only drops IPv6).
    fn from_session(tun: &str, p: &SessionParams) -> Option<Link> {
        let v4 = Ipv4Net::new(p.guest_v4, p.prefix_v4).ok()?.trunc();
        let v6 = p.v6.and_then(|(_, g, prefix)| Ipv6Net::new(g, prefix).ok()).map(|n| n.trunc());
        let mac_v6 = p.v6.filter(|_| v6.is_some()).map(|(h, _, _)| h);
        Some(Link { tun: tun.to_string(), v4, v6, mac_v4: p.host_v4, mac_v6 })
    }
}

pub struct FirewallKeeper {
    iptables: Iptables<SystemRunner>,
    rules_path: Option<PathBuf>,
    rules: Rules,
    /// The rules file's text: a change applies on its second equal read (never a half-written
    /// file).
    rules_text: Settle<String>,
    link: Option<Link>,
    /// The pairs as last applied, resolved to subnets: a pair's networks may appear after the
    /// rules file named them, so each check resolves again and re-applies on a change.
    resolved_pairs: Vec<(IpNet, IpNet)>,
}

impl FirewallKeeper {
    pub fn new(rules_path: Option<PathBuf>) -> Result<FirewallKeeper, String> {
        let mut iptables = Iptables::detect(SystemRunner::default())?;
        // A guest killed without its SIGTERM (docker rm -f, OOM) left its chains: start clean.
        iptables.teardown()?;
        tracing::info!(
            "VM firewall: iptables backend {:?} (IPv4), {:?} (IPv6)",
            iptables.backend(Family::V4),
            iptables.backend(Family::V6)
        );
        let mut me = FirewallKeeper {
            iptables,
            rules_path,
            rules: Rules::default(),
            rules_text: Settle::default(),
            link: None,
            resolved_pairs: Vec::new(),
        };
        // Two reads at once, so the rules are in force before the first session's apply. The
        // settle guard is not needed here: the controller puts the file in place before the
        // container starts.
        me.poll_rules();
        me.poll_rules();
        Ok(me)
    }

    pub fn set_link(&mut self, tun: &str, p: &SessionParams) {
        if let Some(link) = Link::from_session(tun, p) {
            self.link = Some(link);
            self.apply();
        }
    }

    /// Re-reads the rules file; applies it once two reads agree. An unreadable file changes
    /// nothing (the rules in force stay).
    pub fn poll_rules(&mut self) {
        let Some(path) = &self.rules_path else { return };
        let Ok(text) = std::fs::read_to_string(path) else { return };
        let Some(text) = self.rules_text.offer(text) else { return };
        match rules::parse(&text) {
            Ok(r) => {
                tracing::info!("rules: internal {:?}, pairs {:?}, exposed {:?}", r.internal, r.pairs, r.exposed);
                self.rules = r;
                self.apply();
            }
            Err(e) => tracing::error!("{}: {e} (keeping the previous rules)", path.display()),
        }
    }

    /// Puts our jumps back if dockerd rebuilt its chains, and applies pairs whose networks
    /// appeared (or went) since.
    pub fn ensure(&mut self) {
        if self.link.is_none() {
            return;
        }
        if !self.rules.pairs.is_empty() && self.resolve_pairs() != self.resolved_pairs {
            self.apply();
            return;
        }
        match self.iptables.ensure() {
            Ok(true) => tracing::warn!("Docker rebuilt its firewall chains: restored our rules"),
            Ok(false) => {}
            Err(e) => tracing::warn!("checking the firewall: {e}"),
        }
    }

    fn resolve_pairs(&self) -> Vec<(IpNet, IpNet)> {
        if self.rules.pairs.is_empty() {
            return Vec::new();
        }
        rules::resolve_pairs(&self.rules.pairs, &vm_routes())
    }

    fn apply(&mut self) {
        let Some(link) = self.link.clone() else { return };
        let pairs = self.resolve_pairs();
        if pairs.len() < self.rules.pairs.len() {
            tracing::info!("{} pair(s) wait for their networks to exist", self.rules.pairs.len() - pairs.len());
        }
        let spec = FirewallSpec {
            tun: link.tun,
            link_v4: link.v4,
            link_v6: link.v6,
            mac_v4: link.mac_v4,
            mac_v6: link.mac_v6,
            internal: self.rules.internal.clone(),
            pairs: pairs.clone(),
            exposed: self.rules.exposed.clone(),
        };
        match self.iptables.apply(&spec) {
            Ok(()) => {
                tracing::info!(
                    "VM firewall rules applied ({} internal, {} pairs, {} exposed to teammates)",
                    spec.internal.len(),
                    spec.pairs.len(),
                    spec.exposed.len()
                );
                self.resolved_pairs = pairs;
            }
            Err(e) => tracing::error!("applying the VM firewall rules: {e}"),
        }
    }

    pub fn teardown(&mut self) {
        match self.iptables.teardown() {
            Ok(()) => tracing::info!("VM firewall rules removed"),
            Err(e) => tracing::error!("removing the VM firewall rules: {e}"),
        }
    }
}

/// The VM's routes, both families, each parsed as its family. A family whose `ip` fails or
/// prints something unreadable contributes nothing: its pairs wait.
fn vm_routes() -> Vec<IpRoute> {
    let mut all = Vec::new();
    for v6 in [false, true] {
        match dockroute_engine::platform::ip_routes(v6, ROUTES_TIMEOUT) {
            Ok(r) => all.extend(r),
            Err(e) => tracing::debug!("the VM's routes ({}): {e}", if v6 { "-6" } else { "-4" }),
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(prefix_v4: u8, v6: Option<(&str, &str, u8)>) -> SessionParams {
        SessionParams {
            session_id: 7,
            mtu: 1400,
            keepalive_ms: 2000,
            host_v4: "198.18.7.1".parse().unwrap(),
            guest_v4: "198.18.7.2".parse().unwrap(),
            prefix_v4,
            v6: v6.map(|(h, g, p)| (h.parse().unwrap(), g.parse().unwrap(), p)),
        }
    }

    #[test]
    fn the_link_subnets_come_from_the_session_as_networks() {
        let link = Link::from_session("dockroute0", &params(24, Some(("fd00:7::1", "fd00:7::2", 64)))).unwrap();
        assert_eq!(
            link,
            Link {
                tun: "dockroute0".into(),
                v4: "198.18.7.0/24".parse().unwrap(),
                v6: "fd00:7::/64".parse().ok(),
                mac_v4: "198.18.7.1".parse().unwrap(),
                mac_v6: "fd00:7::1".parse().ok(),
            }
        );
        assert_eq!(Link::from_session("dockroute0", &params(24, None)).unwrap().v6, None);
        assert_eq!(
            Link::from_session("dockroute0", &params(24, Some(("fd00:7::1", "fd00:7::2", 129)))).unwrap().v6,
            None
        );
        assert_eq!(Link::from_session("dockroute0", &params(33, None)), None);
    }
}
