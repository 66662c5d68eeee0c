//! Helpers for tests that run real iptables inside network namespaces they create.
#![allow(dead_code)]

use dockroute_guest::firewall::{Backend, FirewallSpec, SystemRunner};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs a shell command; panics with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("bash").args(["-c", cmd]).output().expect("bash");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell command; true if it exited 0.
pub fn sh_ok(cmd: &str) -> bool {
    Command::new("bash").args(["-c", cmd]).output().map(|o| o.status.success()).unwrap_or(false)
}

/// A network namespace, deleted when dropped.
pub struct Ns(pub String);

impl Ns {
    pub fn new(tag: &str) -> Ns {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!("dfw-{tag}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        sh(&format!("ip netns add {name} && ip netns exec {name} ip link set lo up"));
        Ns(name)
    }
    pub fn exec(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.0))
    }
    pub fn ok(&self, cmd: &str) -> bool {
        sh_ok(&format!("ip netns exec {} {cmd}", self.0))
    }
    pub fn runner(&self) -> SystemRunner {
        SystemRunner { netns: Some(self.0.clone()) }
    }
    /// `iptables-legacy`, `ip6tables-nft`, ... with `args`.
    pub fn ipt(&self, v6: bool, b: Backend, args: &str) -> String {
        self.exec(&format!("{} {args}", tool(v6, b)))
    }
    /// `-S` of one chain as lines.
    pub fn list(&self, v6: bool, b: Backend, table: &str, chain: &str) -> Vec<String> {
        self.ipt(v6, b, &format!("-t {table} -S {chain}")).lines().map(str::to_string).collect()
    }
    /// Rules only (`-A` lines) of one chain, without the `-A CHAIN ` prefix.
    pub fn rules(&self, v6: bool, b: Backend, table: &str, chain: &str) -> Vec<String> {
        let p = format!("-A {chain} ");
        self.list(v6, b, table, chain).iter().filter_map(|l| l.strip_prefix(&p).map(str::to_string)).collect()
    }
    /// Every ruleset of the namespace, both families and both backends, without comment lines
    /// (timestamps, "legacy tables present" warnings) and with packet counters zeroed.
    pub fn snapshot(&self) -> String {
        let mut s = String::new();
        for t in ["iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"] {
            s.push_str(&format!("## {t}\n"));
            for line in self.exec(t).lines().filter(|l| !l.starts_with('#')) {
                let line = match line.rfind(" [") {
                    Some(i) if line.starts_with(':') => format!("{} [0:0]", &line[..i]),
                    _ => line.to_string(),
                };
                s.push_str(&line);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

pub fn tool(v6: bool, b: Backend) -> &'static str {
    match (v6, b) {
        (false, Backend::Legacy) => "iptables-legacy",
        (false, Backend::Nft) => "iptables-nft",
        (true, Backend::Legacy) => "ip6tables-legacy",
        (true, Backend::Nft) => "ip6tables-nft",
    }
}

/// What dockerd leaves in one family: DOCKER-USER wired from FORWARD (policy DROP), Engine 28's
/// raw direct-access DROP, a nat MASQUERADE.
pub fn simulate_docker(ns: &Ns, b: Backend, v6: bool) {
    let (ctr, net) = if v6 { ("2001:2:0:1::2/128", "2001:2:0:1::/64") } else { ("198.19.1.2/32", "198.19.1.0/24") };
    for args in [
        "-N DOCKER-USER".to_string(),
        "-A DOCKER-USER -j RETURN".into(),
        "-A FORWARD -j DOCKER-USER".into(),
        "-A FORWARD -i br-test -j ACCEPT".into(),
        "-P FORWARD DROP".into(),
        format!("-t raw -A PREROUTING -d {ctr} ! -i br-test -j DROP"),
        format!("-t nat -A POSTROUTING -s {net} ! -o br-test -j MASQUERADE"),
    ] {
        ns.ipt(v6, b, &args);
    }
}

pub fn net<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().unwrap()
}

pub fn spec() -> FirewallSpec {
    FirewallSpec {
        tun: "dockroute0".into(),
        link_v4: net("198.18.7.1/24"),
        link_v6: Some(net("2001:2:7::/64")),
        mac_v4: net("198.18.7.1"),
        mac_v6: Some(net("2001:2:7::1")),
        exposed: vec![net("198.19.1.0/24")],
        internal: vec![net("198.19.3.0/24")],
        pairs: vec![
            (net("198.19.1.0/24"), net("198.19.2.0/24")),
            (net("198.19.4.0/24"), net("198.19.5.0/24")),
            (net("2001:2:1::/64"), net("2001:2:2::/64")),
        ],
    }
}

/// True with root. Without it the test fails, unless DOCKROUTE_SKIP_E2E is set (as in
/// tests-e2e): a silent skip would make a run without root look green.
pub fn is_root() -> bool {
    let root = sh("id -u").trim() == "0";
    if !root {
        assert!(
            std::env::var_os("DOCKROUTE_SKIP_E2E").is_some(),
            "needs root (network namespaces, iptables); set DOCKROUTE_SKIP_E2E=1 to skip"
        );
        eprintln!("skipped (DOCKROUTE_SKIP_E2E): needs root (network namespaces, iptables)");
    }
    root
}
