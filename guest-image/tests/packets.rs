//! Real packets: a "mac" namespace pings containers behind a bridge in a "vm" namespace whose
//! firewall looks like Docker Engine 28's (FORWARD policy DROP, raw direct-access DROP, network
//! isolation). Run as root: `cargo test -j1 -- --test-threads=1`.
mod common;

use common::*;
use dockroute_guest::firewall::{Backend, Family, FirewallSpec, Iptables};

struct Lab {
    vm: Ns,
    mac: Ns,
    ctr: Ns,
    _ctr2: Ns,
}

/// vm: br-test 198.19.1.1/24 (ctr 198.19.1.2), br-b 198.19.2.1/24 (ctr2 198.19.2.2),
/// dockroute0 198.18.9.1/24 <-veth-> mac 198.18.9.2/24 with a route to 198.19.0.0/16.
fn lab(b: Backend) -> Lab {
    let (vm, mac, ctr, ctr2) = (Ns::new("vm"), Ns::new("mac"), Ns::new("ctr"), Ns::new("ctr2"));
    vm.exec(&format!("ip link add dockroute0 type veth peer name eth0 netns {}", mac.0));
    vm.exec("ip addr add 198.18.9.1/24 dev dockroute0");
    vm.exec("ip link set dockroute0 up");
    mac.exec("ip addr add 198.18.9.2/24 dev eth0");
    mac.exec("ip link set eth0 up");
    mac.exec("ip route add 198.19.0.0/16 via 198.18.9.1");
    for (br, port, c, n) in [("br-test", "ctr0", &ctr, 1), ("br-b", "ctr1", &ctr2, 2)] {
        vm.exec(&format!("ip link add {br} type bridge"));
        vm.exec(&format!("ip addr add 198.19.{n}.1/24 dev {br}"));
        vm.exec(&format!("ip link set {br} up"));
        vm.exec(&format!("ip link add {port} type veth peer name eth0 netns {}", c.0));
        vm.exec(&format!("ip link set {port} master {br} up"));
        c.exec(&format!("ip addr add 198.19.{n}.2/24 dev eth0"));
        c.exec("ip link set eth0 up");
        c.exec(&format!("ip route add default via 198.19.{n}.1"));
    }
    vm.exec("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1");
    // IPv6 on the tun link and br-test only (nodad: usable at once).
    vm.exec("ip addr add 2001:2:0:9::1/64 dev dockroute0 nodad");
    vm.exec("ip addr add 2001:2:0:1::1/64 dev br-test nodad");
    mac.exec("ip addr add 2001:2:0:9::2/64 dev eth0 nodad");
    mac.exec("ip -6 route add 2001:2::/48 via 2001:2:0:9::1");
    ctr.exec("ip addr add 2001:2:0:1::2/64 dev eth0 nodad");
    ctr.exec("ip -6 route add default via 2001:2:0:1::1");
    simulate_docker(&vm, b, false);
    simulate_docker(&vm, b, true);
    for args in [
        "-t raw -A PREROUTING -d 198.19.2.2/32 ! -i br-b -j DROP",
        "-A FORWARD -i br-b -j ACCEPT",
        // Docker's network isolation, evaluated after DOCKER-USER.
        "-I FORWARD 2 -i br-test -o br-b -j DROP",
        "-I FORWARD 2 -i br-b -o br-test -j DROP",
    ] {
        vm.ipt(false, b, args);
    }
    Lab { vm, mac, ctr, _ctr2: ctr2 }
}

fn ping(from: &Ns, to: &str) -> bool {
    from.ok(&format!("busybox ping -c1 -W1 {to}"))
}

fn spec(internal: &[&str], pairs: &[(&str, &str)]) -> FirewallSpec {
    FirewallSpec {
        tun: "dockroute0".into(),
        link_v4: net("198.18.9.0/24"),
        link_v6: Some(net("2001:2:0:9::/64")),
        internal: internal.iter().map(|s| net(s)).collect(),
        pairs: pairs.iter().map(|(a, b)| (net(a), net(b))).collect(),
    }
}

fn packets(b: Backend) {
    if !is_root() {
        return;
    }
    let l = lab(b);
    // The lab's plumbing works where no firewall is in the way.
    assert!(ping(&l.mac, "198.18.9.1"));
    assert!(ping(&l.ctr, "198.19.1.1"));
    assert!(ping(&l.mac, "2001:2:0:9::1"));
    assert!(ping(&l.ctr, "2001:2:0:1::1"));
    let before = l.vm.snapshot();

    let mut fw = Iptables::detect(l.vm.runner()).unwrap();
    assert_eq!(fw.backend(Family::V4), b);
    assert_eq!(fw.backend(Family::V6), b);
    assert!(!ping(&l.mac, "198.19.1.2"), "Docker's rules must drop this before apply");
    assert!(!ping(&l.mac, "2001:2:0:1::2"));
    fw.apply(&spec(&[], &[])).unwrap();
    assert!(ping(&l.mac, "198.19.1.2"), "mac -> ctr after apply");
    assert!(ping(&l.mac, "2001:2:0:1::2"), "mac -> ctr over IPv6 after apply");
    assert!(ping(&l.mac, "198.19.2.2"), "mac -> ctr2 after apply");

    // Only the raw ACCEPT lets it pass Engine 28's DROP: remove our raw jump and it fails.
    l.vm.ipt(false, b, "-t raw -D PREROUTING -j DOCKROUTE-PRE");
    assert!(!ping(&l.mac, "198.19.1.2"), "raw DROP must win without our raw jump");
    assert!(fw.ensure().unwrap());
    assert!(ping(&l.mac, "198.19.1.2"));

    // Pairs: ctr <-> ctr2 are isolated (and raw-dropped) until paired.
    assert!(!ping(&l.ctr, "198.19.2.2"));
    fw.apply(&spec(&[], &[("198.19.1.0/24", "198.19.2.0/24")])).unwrap();
    assert!(ping(&l.ctr, "198.19.2.2"), "paired networks reach each other");
    fw.apply(&spec(&[], &[])).unwrap();
    assert!(!ping(&l.ctr, "198.19.2.2"));

    // --internal: no default route back from the container.
    l.ctr.exec("ip route del default");
    l.ctr.exec("ip -6 route del default");
    assert!(!ping(&l.mac, "198.19.1.2"), "no route back without MASQUERADE");
    assert!(!ping(&l.mac, "2001:2:0:1::2"));
    fw.apply(&spec(&["198.19.1.0/24", "2001:2:0:1::/64"], &[])).unwrap();
    assert!(ping(&l.mac, "198.19.1.2"), "MASQUERADE makes replies on-link");
    assert!(ping(&l.mac, "2001:2:0:1::2"), "IPv6 MASQUERADE too");
    fw.apply(&spec(&[], &[])).unwrap();
    assert!(!ping(&l.mac, "198.19.1.2"));
    assert!(!ping(&l.mac, "2001:2:0:1::2"));
    l.ctr.exec("ip route add default via 198.19.1.1");
    l.ctr.exec("ip -6 route add default via 2001:2:0:1::1");
    assert!(ping(&l.mac, "198.19.1.2"));
    assert!(ping(&l.mac, "2001:2:0:1::2"));

    fw.teardown().unwrap();
    assert!(!ping(&l.mac, "198.19.1.2"), "dropped again after teardown");
    assert!(!ping(&l.mac, "2001:2:0:1::2"));
    assert_eq!(l.vm.snapshot(), before);
}

#[test]
fn packets_legacy() {
    packets(Backend::Legacy);
}

#[test]
fn packets_nft() {
    packets(Backend::Nft);
}
