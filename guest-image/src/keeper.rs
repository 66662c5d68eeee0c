//! The VM firewall as the agent runs it: applied once the session gives us the link subnets,
//! re-applied when the rules file changes, checked every tick so that a dockerd that rebuilt
//! its chains gets our jumps back, and removed on exit.

use std::path::PathBuf;
use std::process::Command;

use dockroute_engine::proto::SessionParams;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::firewall::{self, Firewall, FirewallSpec, SystemRunner};
use crate::rules::{self, Rules};

pub struct VmFirewall {
    fw: Firewall<SystemRunner>,
    rules_path: Option<PathBuf>,
    rules: Rules,
    applied_text: Option<String>,
    /// A changed rules text seen once; applied when the next tick reads it unchanged.
    candidate: Option<String>,
    link: Option<(String, Ipv4Net, Option<Ipv6Net>)>,
    /// The pairs as last applied, resolved to subnets: a pair's networks may appear after the
    /// rules file named them, so each tick resolves again and re-applies on a change.
    resolved_pairs: Vec<(IpNet, IpNet)>,
}

impl VmFirewall {
    pub fn new(rules_path: Option<PathBuf>) -> Result<VmFirewall, String> {
        let mut fw = Firewall::detect(SystemRunner::default())?;
        // A guest killed without its SIGTERM (docker rm -f, OOM) left its chains: start clean.
        fw.teardown()?;
        tracing::info!(
            "VM firewall: iptables backend {:?} (IPv4), {:?} (IPv6)",
            fw.backend(firewall::Family::V4),
            fw.backend(firewall::Family::V6)
        );
        let mut me = VmFirewall {
            fw,
            rules_path,
            rules: Rules::default(),
            applied_text: None,
            candidate: None,
            link: None,
            resolved_pairs: Vec::new(),
        };
        // Read the file once now, so the first apply already has the rules.
        me.poll_rules();
        me.poll_rules();
        Ok(me)
    }

    pub fn set_link(&mut self, tun: &str, p: &SessionParams) {
        let v4 = Ipv4Net::new(p.guest_v4, p.prefix_v4).map(|n| n.trunc()).ok();
        let v6 = p.v6.and_then(|(_, g, prefix)| Ipv6Net::new(g, prefix).ok()).map(|n| n.trunc());
        if let Some(v4) = v4 {
            self.link = Some((tun.to_string(), v4, v6));
            self.apply();
        }
    }

    /// Re-reads the rules file; applies it once two reads agree (never a half-written file).
    pub fn poll_rules(&mut self) {
        let Some(path) = &self.rules_path else { return };
        let Ok(text) = std::fs::read_to_string(path) else { return };
        if self.applied_text.as_deref() == Some(text.as_str()) {
            self.candidate = None;
            return;
        }
        if self.candidate.as_deref() != Some(text.as_str()) {
            self.candidate = Some(text);
            return;
        }
        self.candidate = None;
        self.applied_text = Some(text.clone());
        match rules::parse(&text) {
            Ok(r) => {
                tracing::info!("rules: internal {:?}, pairs {:?}", r.internal, r.pairs);
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
        match self.fw.ensure() {
            Ok(true) => tracing::warn!("Docker rebuilt its firewall chains: restored our rules"),
            Ok(false) => {}
            Err(e) => tracing::warn!("checking the firewall: {e}"),
        }
    }

    fn resolve_pairs(&self) -> Vec<(IpNet, IpNet)> {
        if self.rules.pairs.is_empty() {
            return Vec::new();
        }
        let routes = vm_routes();
        self.rules
            .pairs
            .iter()
            .filter_map(|(a, b)| Some((firewall::resolve_subnet(*a, &routes)?, firewall::resolve_subnet(*b, &routes)?)))
            .collect()
    }

    fn apply(&mut self) {
        let Some((tun, link_v4, link_v6)) = self.link.clone() else { return };
        let pairs = self.resolve_pairs();
        if pairs.len() < self.rules.pairs.len() {
            tracing::info!("{} pair(s) wait for their networks to exist", self.rules.pairs.len() - pairs.len());
        }
        let spec = FirewallSpec { tun, link_v4, link_v6, internal: self.rules.internal.clone(), pairs: pairs.clone() };
        match self.fw.apply(&spec) {
            Ok(()) => {
                tracing::info!(
                    "VM firewall rules applied ({} internal, {} pairs)",
                    spec.internal.len(),
                    spec.pairs.len()
                );
                self.resolved_pairs = pairs;
            }
            Err(e) => tracing::error!("applying the VM firewall rules: {e}"),
        }
    }

    pub fn teardown(&mut self) {
        match self.fw.teardown() {
            Ok(()) => tracing::info!("VM firewall rules removed"),
            Err(e) => tracing::error!("removing the VM firewall rules: {e}"),
        }
    }
}

/// The VM's routes (both families) as one JSON array, for resolving pair addresses.
fn vm_routes() -> String {
    let mut all: Vec<serde_json::Value> = Vec::new();
    for fam in ["-4", "-6"] {
        if let Ok(out) = Command::new("ip").env("LC_ALL", "C").args(["-j", fam, "route"]).output() {
            if let Ok(serde_json::Value::Array(v)) = serde_json::from_slice(&out.stdout) {
                all.extend(v);
            }
        }
    }
    serde_json::Value::Array(all).to_string()
}
