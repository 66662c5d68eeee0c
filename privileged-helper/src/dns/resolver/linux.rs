//! Linux: systemd-resolved's per-link settings through `resolvectl`: our server as the tunnel
//! link's DNS, our zones as its routing-only domains (`~docker`), and the link never a
//! default route, so no other query ever reaches us. `resolvectl revert` undoes all three, and
//! resolved forgets them anyway when the link goes. Without resolved, nothing is changed: the
//! log and the status say what to add (and the README).
//!
//! The decision is `plan` (pure); `Resolvectl` only looks at the system and runs its commands.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use dockroute_stdx::process::Cmd;

use super::{Applied, HostResolver};

/// What the system offers, as `plan` needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Env {
    /// /run/systemd/resolve exists and `resolvectl` answers.
    pub resolved: bool,
    /// The helper runs in the host's network namespace. In another one (the end-to-end tests),
    /// an interface index means nothing to resolved: it must not be told anything.
    pub host_netns: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run these, in order.
    Resolvectl(Vec<Vec<String>>),
    /// Change nothing; tell the user this.
    Manual(String),
}

pub fn plan(env: Env, ifname: &str, server: IpAddr, zones: &BTreeSet<String>) -> Plan {
    let dotted: Vec<String> = zones.iter().map(|z| format!(".{z}")).collect();
    if !env.host_netns {
        return Plan::Manual(format!(
            "not configured (the helper runs in its own network namespace): ask {server} for {}",
            dotted.join(", ")
        ));
    }
    if !env.resolved {
        let servers: Vec<String> = zones.iter().map(|z| format!("server=/{z}/{server}")).collect();
        return Plan::Manual(format!(
            "not configured (systemd-resolved is not running): send queries for {} to {server}, \
             e.g. with dnsmasq: {}",
            dotted.join(", "),
            servers.join(" ")
        ));
    }
    let cmd = |args: &[&str]| -> Vec<String> {
        std::iter::once("resolvectl").chain(args.iter().copied()).map(str::to_string).collect()
    };
    let mut domain = cmd(&["domain", ifname]);
    domain.extend(zones.iter().map(|z| format!("~{z}")));
    Plan::Resolvectl(vec![cmd(&["dns", ifname, &server.to_string()]), domain, cmd(&["default-route", ifname, "false"])])
}

/// The command that undoes `plan`'s.
pub fn revert_command(ifname: &str) -> Vec<String> {
    ["resolvectl", "revert", ifname].map(str::to_string).to_vec()
}

#[derive(Default)]
pub struct Resolvectl {
    /// The link we configured, to revert.
    configured: Option<String>,
    /// The manual advice last logged (logged once, not at every change of names).
    advised: Option<String>,
}

impl Resolvectl {
    fn env() -> Env {
        let resolved = Path::new("/run/systemd/resolve").is_dir() && run(&["resolvectl", "status"]).is_ok();
        let netns = |p: &str| std::fs::read_link(p).ok();
        let host_netns = netns("/proc/self/ns/net").is_some_and(|me| Some(me) == netns("/proc/1/ns/net"));
        Env { resolved, host_netns }
    }
}

/// resolved answers at once or not at all; the daemon's loop waits for this.
const RESOLVECTL_TIMEOUT: Duration = Duration::from_secs(5);

fn run(argv: &[&str]) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("empty command")?;
    Cmd::new(*program).args(args.iter().copied()).timeout(RESOLVECTL_TIMEOUT).run().map_err(|e| e.to_string())
}

impl HostResolver for Resolvectl {
    fn apply(&mut self, server: IpAddr, ifname: &str, zones: &BTreeSet<String>) -> Applied {
        match plan(Resolvectl::env(), ifname, server, zones) {
            Plan::Manual(advice) => {
                if self.advised.as_ref() != Some(&advice) {
                    tracing::warn!("dns: host resolver {advice}");
                    self.advised = Some(advice.clone());
                }
                Applied { description: advice, problems: Vec::new() }
            }
            Plan::Resolvectl(commands) => {
                self.configured = Some(ifname.to_string());
                let problems: Vec<String> = commands
                    .iter()
                    .filter_map(|c| run(&c.iter().map(String::as_str).collect::<Vec<_>>()).err())
                    .collect();
                let domains: Vec<String> = zones.iter().map(|z| format!("~{z}")).collect();
                Applied { description: format!("resolvectl: {server} on {ifname} for {}", domains.join(" ")), problems }
            }
        }
    }

    fn revert(&mut self) -> Vec<String> {
        let Some(ifname) = self.configured.take() else { return Vec::new() };
        let argv = revert_command(&ifname);
        run(&argv.iter().map(String::as_str).collect::<Vec<_>>()).err().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> BTreeSet<String> {
        ["docker", "shop.test"].map(str::to_string).into()
    }

    const SERVER: [u8; 4] = [192, 168, 251, 1];

    #[test]
    fn with_resolved_the_link_gets_our_server_and_routing_domains_and_is_no_default_route() {
        let env = Env { resolved: true, host_netns: true };
        let Plan::Resolvectl(cmds) = plan(env, "dockroute0", IpAddr::from(SERVER), &zones()) else { panic!() };
        let lines: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
        assert_eq!(
            lines,
            [
                "resolvectl dns dockroute0 192.168.251.1",
                "resolvectl domain dockroute0 ~docker ~shop.test",
                "resolvectl default-route dockroute0 false",
            ]
        );
        assert_eq!(revert_command("dockroute0").join(" "), "resolvectl revert dockroute0");
    }

    #[test]
    fn without_resolved_nothing_is_changed_and_the_advice_names_server_and_zones() {
        let env = Env { resolved: false, host_netns: true };
        let Plan::Manual(advice) = plan(env, "dockroute0", IpAddr::from(SERVER), &zones()) else { panic!() };
        assert!(advice.contains("systemd-resolved is not running"), "{advice}");
        assert!(advice.contains("server=/docker/192.168.251.1 server=/shop.test/192.168.251.1"), "{advice}");
    }

    #[test]
    fn in_another_network_namespace_resolved_is_never_told() {
        let env = Env { resolved: true, host_netns: false };
        let Plan::Manual(advice) = plan(env, "dockroute0", IpAddr::from(SERVER), &zones()) else { panic!() };
        assert!(advice.contains("own network namespace") && advice.contains(".docker, .shop.test"), "{advice}");
    }

    #[test]
    fn revert_without_apply_runs_nothing() {
        assert!(Resolvectl::default().revert().is_empty());
    }
}
