//! apply / ensure / teardown / detect against real iptables (legacy and nft), each test in its own
//! network namespace. Run as root: `cargo test -j1 -- --test-threads=1`.
mod common;

use common::*;
use dockroute_guest::firewall::{Backend, Family, Iptables};

const FWD_V4: [&str; 9] = [
    "-i dockroute0 -j ACCEPT",
    "-d 198.18.7.1/32 -o dockroute0 -j ACCEPT",
    "-o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "-o dockroute0 -j DROP",
    "-s 198.19.1.0/24 -d 198.19.2.0/24 -j ACCEPT",
    "-s 198.19.2.0/24 -d 198.19.1.0/24 -j ACCEPT",
    "-s 198.19.4.0/24 -d 198.19.5.0/24 -j ACCEPT",
    "-s 198.19.5.0/24 -d 198.19.4.0/24 -j ACCEPT",
    "-j RETURN",
];

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Our jump is rule 1 of `chain`, and there is exactly one.
fn assert_jump_first(ns: &Ns, v6: bool, b: Backend, table: &str, chain: &str, ours: &str) {
    let rules = ns.rules(v6, b, table, chain);
    let jump = format!("-j {ours}");
    assert_eq!(rules.first(), Some(&jump), "{table} {chain} (v6={v6}): {rules:?}");
    assert_eq!(rules.iter().filter(|r| **r == jump).count(), 1, "{table} {chain}: {rules:?}");
}

fn assert_all_jumps_first(ns: &Ns, b: Backend) {
    for v6 in [false, true] {
        assert_jump_first(ns, v6, b, "filter", "DOCKER-USER", "DOCKROUTE-FWD");
        assert_jump_first(ns, v6, b, "raw", "PREROUTING", "DOCKROUTE-PRE");
        assert_jump_first(ns, v6, b, "filter", "OUTPUT", "DOCKROUTE-OUT");
        assert_jump_first(ns, v6, b, "nat", "POSTROUTING", "DOCKROUTE-POST");
        // No stray jump from FORWARD while DOCKER-USER exists.
        assert!(!ns.rules(v6, b, "filter", "FORWARD").iter().any(|r| r.contains("DOCKROUTE")));
    }
}

fn lifecycle(b: Backend) {
    if !is_root() {
        return;
    }
    let ns = Ns::new("life");
    simulate_docker(&ns, b, false);
    simulate_docker(&ns, b, true);
    let before = ns.snapshot();

    let mut fw = Iptables::detect(ns.runner()).unwrap();
    assert_eq!((fw.backend(Family::V4), fw.backend(Family::V6)), (b, b));
    assert_eq!(ns.snapshot(), before, "detection must change nothing");

    // apply: chains, contents, jumps at position 1.
    fw.apply(&spec()).unwrap();
    assert_all_jumps_first(&ns, b);
    assert_eq!(ns.rules(false, b, "filter", "DOCKROUTE-FWD"), strs(&FWD_V4));
    assert_eq!(
        ns.rules(false, b, "raw", "DOCKROUTE-MATE"),
        strs(&[
            "-m addrtype --dst-type LOCAL -j DROP",
            "-m addrtype ! --dst-type UNICAST -j DROP",
            "-d 198.19.1.0/24 -j ACCEPT",
            "-j DROP",
        ])
    );
    assert_eq!(
        ns.rules(false, b, "raw", "DOCKROUTE-PRE"),
        strs(&[
            "-s 198.18.7.1/32 -i dockroute0 -j ACCEPT",
            "-i dockroute0 -j DOCKROUTE-MATE",
            "-s 198.19.1.0/24 -d 198.19.2.0/24 -j ACCEPT",
            "-s 198.19.2.0/24 -d 198.19.1.0/24 -j ACCEPT",
            "-s 198.19.4.0/24 -d 198.19.5.0/24 -j ACCEPT",
            "-s 198.19.5.0/24 -d 198.19.4.0/24 -j ACCEPT",
            "-j RETURN",
        ])
    );
    assert_eq!(ns.rules(false, b, "nat", "DOCKROUTE-POST"), strs(&["-s 198.18.7.0/24 -d 198.19.3.0/24 -j MASQUERADE"]));
    assert_eq!(
        ns.rules(true, b, "filter", "DOCKROUTE-FWD"),
        strs(&[
            "-i dockroute0 -j ACCEPT",
            "-d 2001:2:7::1/128 -o dockroute0 -j ACCEPT",
            "-o dockroute0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-o dockroute0 -j DROP",
            "-s 2001:2:1::/64 -d 2001:2:2::/64 -j ACCEPT",
            "-s 2001:2:2::/64 -d 2001:2:1::/64 -j ACCEPT",
            "-j RETURN",
        ])
    );
    assert_eq!(ns.rules(true, b, "nat", "DOCKROUTE-POST"), Vec::<String>::new());
    // Docker's own rules are untouched, just one below ours.
    assert_eq!(ns.rules(false, b, "raw", "PREROUTING")[1], "-d 198.19.1.2/32 ! -i br-test -j DROP");

    // apply twice: nothing duplicated, nothing to repair.
    let once = ns.snapshot();
    fw.apply(&spec()).unwrap();
    assert_all_jumps_first(&ns, b);
    assert_eq!(ns.snapshot(), once);
    assert!(!fw.ensure().unwrap());

    // A different spec: a pair removed, an internal network added (v4 and v6).
    let mut s2 = spec();
    s2.pairs.remove(0);
    s2.internal.push(net("198.19.6.0/24"));
    s2.internal.push(net("2001:2:3::/64"));
    fw.apply(&s2).unwrap();
    assert_all_jumps_first(&ns, b);
    let mut fwd = FWD_V4.to_vec();
    fwd.drain(4..6);
    assert_eq!(ns.rules(false, b, "filter", "DOCKROUTE-FWD"), strs(&fwd));
    assert_eq!(
        ns.rules(false, b, "raw", "DOCKROUTE-PRE"),
        strs(&[
            "-s 198.18.7.1/32 -i dockroute0 -j ACCEPT",
            "-i dockroute0 -j DOCKROUTE-MATE",
            "-s 198.19.4.0/24 -d 198.19.5.0/24 -j ACCEPT",
            "-s 198.19.5.0/24 -d 198.19.4.0/24 -j ACCEPT",
            "-j RETURN",
        ])
    );
    assert_eq!(
        ns.rules(false, b, "nat", "DOCKROUTE-POST"),
        strs(&["-s 198.18.7.0/24 -d 198.19.3.0/24 -j MASQUERADE", "-s 198.18.7.0/24 -d 198.19.6.0/24 -j MASQUERADE"])
    );
    assert_eq!(ns.rules(true, b, "nat", "DOCKROUTE-POST"), strs(&["-s 2001:2:7::/64 -d 2001:2:3::/64 -j MASQUERADE"]));
    assert!(!fw.ensure().unwrap());

    // dockerd restarts: DOCKER-USER rebuilt, our raw jump gone, a new nat rule above ours.
    for v6 in [false, true] {
        ns.ipt(v6, b, "-F DOCKER-USER");
        ns.ipt(v6, b, "-A DOCKER-USER -j RETURN");
        ns.ipt(v6, b, "-t raw -D PREROUTING -j DOCKROUTE-PRE");
        let src = if v6 { "2001:2:9::/64" } else { "198.19.9.0/24" };
        ns.ipt(v6, b, &format!("-t nat -I POSTROUTING 1 -s {src} ! -o br-x -j MASQUERADE"));
    }
    assert!(fw.ensure().unwrap());
    assert_all_jumps_first(&ns, b);
    assert!(!fw.ensure().unwrap());

    // Someone flushes our chain (iptables -F): ensure refills it.
    ns.ipt(false, b, "-F DOCKROUTE-FWD");
    assert!(fw.ensure().unwrap());
    assert_eq!(ns.rules(false, b, "filter", "DOCKROUTE-FWD"), strs(&fwd));
    assert!(!fw.ensure().unwrap());

    // Teardown: exactly Docker's rules again (including the ones "dockerd" added meanwhile).
    let mut expected = ns.snapshot();
    fw.teardown().unwrap();
    let after = ns.snapshot();
    assert!(!after.contains("DOCKROUTE"), "{after}");
    expected = expected.lines().filter(|l| !l.contains("DOCKROUTE")).map(|l| format!("{l}\n")).collect();
    assert_eq!(after, expected);
    fw.teardown().unwrap();
    assert_eq!(ns.snapshot(), after);
    // ensure() after teardown must not bring anything back.
    assert!(!fw.ensure().unwrap(), "nothing to ensure after teardown");
    assert_eq!(ns.snapshot(), after, "ensure after teardown re-added rules");
}

/// apply then teardown leaves the namespace byte-for-byte as Docker left it.
fn roundtrip_exact(b: Backend) {
    if !is_root() {
        return;
    }
    let ns = Ns::new("exact");
    simulate_docker(&ns, b, false);
    simulate_docker(&ns, b, true);
    let before = ns.snapshot();
    let mut fw = Iptables::detect(ns.runner()).unwrap();
    fw.apply(&spec()).unwrap();
    fw.apply(&spec()).unwrap();
    assert_ne!(ns.snapshot(), before);
    fw.teardown().unwrap();
    assert_eq!(ns.snapshot(), before);
    fw.teardown().unwrap();
    assert_eq!(ns.snapshot(), before);
}

#[test]
fn lifecycle_legacy() {
    lifecycle(Backend::Legacy);
}

#[test]
fn lifecycle_nft() {
    lifecycle(Backend::Nft);
}

#[test]
fn roundtrip_exact_legacy() {
    roundtrip_exact(Backend::Legacy);
}

#[test]
fn roundtrip_exact_nft() {
    roundtrip_exact(Backend::Nft);
}

#[test]
fn detection() {
    if !is_root() {
        return;
    }
    for b in [Backend::Legacy, Backend::Nft] {
        let ns = Ns::new("det");
        simulate_docker(&ns, b, false);
        let fw = Iptables::detect(ns.runner()).unwrap();
        assert_eq!(fw.backend(Family::V4), b);
        // v6 has no Docker chains here: the default of `ip6tables`.
        let default = if ns.exec("ip6tables --version").contains("legacy") { Backend::Legacy } else { Backend::Nft };
        assert_eq!(fw.backend(Family::V6), default);
    }
    // Mixed: v4 in legacy, v6 in nft.
    let ns = Ns::new("det");
    simulate_docker(&ns, Backend::Legacy, false);
    simulate_docker(&ns, Backend::Nft, true);
    let fw = Iptables::detect(ns.runner()).unwrap();
    assert_eq!((fw.backend(Family::V4), fw.backend(Family::V6)), (Backend::Legacy, Backend::Nft));
    // Both hold DOCKER-USER, only nft's is wired from FORWARD (a stale legacy leftover).
    let ns = Ns::new("det");
    simulate_docker(&ns, Backend::Nft, false);
    ns.ipt(false, Backend::Legacy, "-N DOCKER-USER");
    let fw = Iptables::detect(ns.runner()).unwrap();
    assert_eq!(fw.backend(Family::V4), Backend::Nft);
    // Neither: `iptables --version` decides.
    let ns = Ns::new("det");
    let before = ns.snapshot();
    let fw = Iptables::detect(ns.runner()).unwrap();
    let default = if ns.exec("iptables --version").contains("legacy") { Backend::Legacy } else { Backend::Nft };
    assert_eq!(fw.backend(Family::V4), default);
    assert_eq!(ns.snapshot(), before, "detection must not instantiate tables");
}

/// No DOCKER-USER (Docker not started yet, or no Docker chains at all): we jump from FORWARD; once
/// dockerd creates DOCKER-USER, ensure() moves the jump there.
#[test]
fn no_docker_user_then_docker_appears() {
    if !is_root() {
        return;
    }
    for b in [Backend::Legacy, Backend::Nft] {
        let ns = Ns::new("nodu");
        let mut fw = Iptables::with_backends(ns.runner(), b, b);
        let mut s = spec();
        s.link_v6 = None;
        s.pairs.retain(|(a, _)| matches!(a, ipnet::IpNet::V4(_)));
        fw.apply(&s).unwrap();
        assert_jump_first(&ns, false, b, "filter", "FORWARD", "DOCKROUTE-FWD");
        assert_jump_first(&ns, false, b, "raw", "PREROUTING", "DOCKROUTE-PRE");
        assert!(!ns.exec(&format!("{}-save", tool(true, b))).contains("DOCKROUTE"), "no v6 asked for");
        assert!(!fw.ensure().unwrap());

        // dockerd starts: creates DOCKER-USER and puts its jump on top of FORWARD.
        ns.ipt(false, b, "-N DOCKER-USER");
        ns.ipt(false, b, "-I FORWARD 1 -j DOCKER-USER");
        assert!(fw.ensure().unwrap());
        assert_jump_first(&ns, false, b, "filter", "DOCKER-USER", "DOCKROUTE-FWD");
        assert_eq!(ns.rules(false, b, "filter", "FORWARD"), vec!["-j DOCKER-USER".to_string()]);
        assert!(!fw.ensure().unwrap());
        fw.teardown().unwrap();
        assert!(!ns.snapshot().contains("DOCKROUTE"));
        assert_eq!(ns.rules(false, b, "filter", "DOCKER-USER"), Vec::<String>::new());
    }
}

/// Leftovers in the backend Docker no longer uses are removed by teardown too.
#[test]
fn teardown_cleans_other_backend() {
    if !is_root() {
        return;
    }
    let ns = Ns::new("other");
    simulate_docker(&ns, Backend::Legacy, false);
    simulate_docker(&ns, Backend::Nft, false);
    let before = ns.snapshot();
    Iptables::with_backends(ns.runner(), Backend::Legacy, Backend::Legacy).apply(&spec()).unwrap();
    Iptables::with_backends(ns.runner(), Backend::Nft, Backend::Nft).apply(&spec()).unwrap();
    let mut fw = Iptables::detect(ns.runner()).unwrap();
    fw.teardown().unwrap();
    assert_eq!(ns.snapshot().lines().filter(|l| l.contains("DOCKROUTE")).count(), 0);
    // v6 tables our apply created (Docker had none in v6 here) stay, empty: compare v4 only.
    let v4 = |s: &str| s.split("## ip6tables").next().unwrap_or("").to_string();
    assert_eq!(v4(&ns.snapshot()), v4(&before));
}

/// Errors, not panics, when the tools are missing or the spec is bad.
#[test]
fn bad_spec_and_missing_tools() {
    if !is_root() {
        return;
    }
    let ns = Ns::new("bad");
    let mut fw = Iptables::with_backends(ns.runner(), Backend::Nft, Backend::Nft);
    let mut s = spec();
    s.tun = "dock route0; rm".into();
    assert!(fw.apply(&s).is_err());
    let mut s = spec();
    s.pairs.push((net("198.19.1.0/24"), net("2001:2::/64")));
    assert!(fw.apply(&s).is_err());
    assert!(!ns.snapshot().contains("DOCKROUTE"));

    let mut fw = Iptables::with_backends(
        dockroute_guest::firewall::SystemRunner { netns: Some("dfw-no-such-namespace".into()) },
        Backend::Nft,
        Backend::Nft,
    );
    assert!(fw.apply(&spec()).is_err());
    assert!(fw.ensure().is_err());
    assert!(Iptables::detect(dockroute_guest::firewall::SystemRunner { netns: Some("dfw-no-such-namespace".into()) })
        .is_err());
}

/// A Runner that implements only `run` gets `*-restore` input through a temporary file.
#[test]
fn default_run_input_via_file() {
    if !is_root() {
        return;
    }
    struct Plain(dockroute_guest::firewall::SystemRunner);
    impl dockroute_guest::firewall::Runner for Plain {
        fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String> {
            self.0.run(program, args)
        }
    }
    for b in [Backend::Legacy, Backend::Nft] {
        let ns = Ns::new("plain");
        simulate_docker(&ns, b, false);
        let before = ns.snapshot();
        let mut fw = Iptables::detect(Plain(ns.runner())).unwrap();
        let mut s = spec();
        s.link_v6 = None;
        s.pairs.truncate(2);
        fw.apply(&s).unwrap();
        assert_jump_first(&ns, false, b, "filter", "DOCKER-USER", "DOCKROUTE-FWD");
        assert_eq!(ns.rules(false, b, "filter", "DOCKROUTE-FWD"), strs(&FWD_V4));
        assert!(!fw.ensure().unwrap());
        fw.teardown().unwrap();
        assert_eq!(ns.snapshot(), before);
    }
}
