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
        mac_v4: net("198.18.9.2"),
        mac_v6: Some(net("2001:2:0:9::2")),
        internal: internal.iter().map(|s| net(s)).collect(),
        pairs: pairs.iter().map(|(a, b)| (net(a), net(b))).collect(),
        exposed: Vec::new(),
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

/// A TCP connection from `src` (an address of `from`) to `dst:port`: true if it was accepted.
fn tcp_from(from: &Ns, src: &str, dst: &str, port: u16) -> bool {
    let py = format!(
        "import socket; s=socket.socket(); s.settimeout(1.5); s.bind(('{src}',0)); s.connect(('{dst}',{port})); print('open')"
    );
    from.ok(&format!("python3 -c \"{py}\""))
}

/// The packet counters of our chain's rules that end in DROP, by rule, from `*-save -c`.
fn drop_counters(ns: &Ns, b: Backend, chain: &str) -> Vec<(String, u64)> {
    let save = ns.exec(&format!("{}-save -c", tool(false, b)));
    let prefix = format!("-A {chain} ");
    save.lines()
        .filter_map(|l| {
            let (counts, rule) = l.strip_prefix('[')?.split_once("] ")?;
            let rule = rule.strip_prefix(&prefix)?;
            let packets: u64 = counts.split(':').next()?.parse().ok()?;
            rule.ends_with("-j DROP").then(|| (rule.to_string(), packets))
        })
        .collect()
}

fn dropped(ns: &Ns, b: Backend, chain: &str, rule: &str) -> u64 {
    drop_counters(ns, b, chain).into_iter().find(|(r, _)| r == rule).map_or(0, |(_, n)| n)
}

/// A hostile teammate inside the tunnel (any source but the Mac's link address), against the
/// real kernel: only the exposed network's containers answer; the VM itself (its gateways, its
/// tunnel address, a service on its wildcard address, a published port that DNATs to a network
/// that is not exposed), the network that is not exposed and the outside behind the VM's NAT
/// stay dark, and each kind of drop is counted in our raw chain. Containers cannot call the
/// teammate either. The Mac, on the same tunnel, keeps reaching all of it (the control).
fn teammate_attacks(b: Backend) {
    if !is_root() {
        return;
    }
    let l = lab(b);
    let out = Ns::new("out");
    // An "outside" host behind the VM's NAT, with a listener.
    l.vm.exec(&format!("ip link add vm-out type veth peer name eth0 netns {}", out.0));
    l.vm.exec("ip addr add 198.18.10.1/24 dev vm-out");
    l.vm.exec("ip link set vm-out up");
    out.exec("ip addr add 198.18.10.2/24 dev eth0");
    out.exec("ip link set eth0 up");
    l.mac.exec("ip route add 198.18.10.0/24 via 198.18.9.1");
    l.vm.ipt(false, b, "-t nat -A POSTROUTING -s 198.18.9.0/24 -o vm-out -j MASQUERADE");
    l.vm.ipt(false, b, "-A FORWARD -o vm-out -j ACCEPT");
    l.vm.ipt(false, b, "-A FORWARD -i vm-out -j ACCEPT");
    // Docker's published port: 8080 on any local address DNATs to ctr2 (a network never exposed).
    l.vm.ipt(false, b, "-t nat -N DOCKER");
    l.vm.ipt(false, b, "-t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER");
    l.vm.ipt(false, b, "-t nat -A DOCKER -p tcp --dport 8080 -j DNAT --to-destination 198.19.2.2:7000");
    // Listeners: the containers, the VM's wildcard address, the outside host.
    let listen = |ns: &Ns, port: u16| {
        let py = format!(
            "import socket,threading; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); \
             s.bind(('0.0.0.0',{port})); s.listen(64)\nwhile True: s.accept()[0].close()"
        );
        sh(&format!("ip netns exec {} timeout 120 python3 -c \"{py}\" >/dev/null 2>&1 &", ns.0));
    };
    listen(&l.ctr, 7000);
    listen(&l._ctr2, 7000);
    listen(&l.vm, 9999);
    listen(&out, 7000);
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The teammate: another address of the tunnel's far end.
    l.mac.exec("ip addr add 198.18.9.3/24 dev eth0");
    let mate = "198.18.9.3";
    let mac = "198.18.9.2";

    let mut fw = Iptables::detect(l.vm.runner()).unwrap();
    fw.apply(&FirewallSpec { exposed: vec![net("198.19.1.0/24")], ..spec(&[], &[]) }).unwrap();

    // The exposed container answers the teammate.
    assert!(tcp_from(&l.mac, mate, "198.19.1.2", 7000), "the exposed container is the teammate's to reach");
    assert!(l.mac.ok(&format!("busybox ping -c1 -W1 -I {mate} 198.19.1.2")));

    let local = "-m addrtype --dst-type LOCAL -j DROP";
    let not_exposed = "-j DROP";
    for (what, dst, port, rule) in [
        ("the exposed network's gateway (a service on the VM's wildcard address)", "198.19.1.1", 9999, local),
        ("the other network's gateway", "198.19.2.1", 9999, local),
        ("the VM's tunnel address", "198.18.9.1", 9999, local),
        ("the VM's outside address", "198.18.10.1", 9999, local),
        ("a published port DNATed to a network that is not exposed", "198.18.9.1", 8080, local),
        ("the same published port on the exposed network's gateway", "198.19.1.1", 8080, local),
        ("a container on a network that is not exposed", "198.19.2.2", 7000, not_exposed),
        ("an outside host through the VM's NAT", "198.18.10.2", 7000, not_exposed),
    ] {
        let before = dropped(&l.vm, b, "DOCKROUTE-MATE", rule);
        assert!(tcp_from(&l.mac, mac, dst, port), "control: the Mac reaches {what} ({dst}:{port})");
        assert!(!tcp_from(&l.mac, mate, dst, port), "the teammate must not reach {what} ({dst}:{port})");
        let after = dropped(&l.vm, b, "DOCKROUTE-MATE", rule);
        assert!(after > before, "{what}: the drop is counted by `{rule}` ({before} -> {after})");
    }
    // Broadcast to the exposed network: dropped as not unicast.
    let before = dropped(&l.vm, b, "DOCKROUTE-MATE", "-m addrtype ! --dst-type UNICAST -j DROP");
    let py = format!("import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('{mate}',0)); s.sendto(b'x', ('198.19.1.255', 9))");
    l.mac.exec(&format!("python3 -c \"{py}\""));
    assert!(dropped(&l.vm, b, "DOCKROUTE-MATE", "-m addrtype ! --dst-type UNICAST -j DROP") > before);

    // Nobody inside calls the teammate: only replies to what they opened go out the tunnel.
    let before = dropped(&l.vm, b, "DOCKROUTE-FWD", "-o dockroute0 -j DROP");
    assert!(l.ctr.ok(&format!("busybox ping -c1 -W1 {mac}")), "control: a container may call the Mac");
    assert!(!l.ctr.ok(&format!("busybox ping -c1 -W1 {mate}")), "a container must not call a teammate");
    assert!(dropped(&l.vm, b, "DOCKROUTE-FWD", "-o dockroute0 -j DROP") > before);
    let before = dropped(&l.vm, b, "DOCKROUTE-OUT", "-o dockroute0 -j DROP");
    assert!(!l.vm.ok(&format!("busybox ping -c1 -W1 {mate}")), "nor does the VM itself");
    assert!(dropped(&l.vm, b, "DOCKROUTE-OUT", "-o dockroute0 -j DROP") > before);

    // Taking the exposure back closes it for the teammate, not for the Mac.
    fw.apply(&spec(&[], &[])).unwrap();
    assert!(!tcp_from(&l.mac, mate, "198.19.1.2", 7000));
    assert!(tcp_from(&l.mac, mac, "198.19.1.2", 7000));
    fw.teardown().unwrap();
    let _ = sh_ok(&format!("ip netns pids {} | xargs -r kill", l.vm.0));
    for ns in [&l.ctr, &l._ctr2, &out] {
        let _ = sh_ok(&format!("ip netns pids {} | xargs -r kill", ns.0));
    }
}

#[test]
fn teammate_attacks_on_the_vm_and_unexposed_networks_are_dropped_legacy() {
    teammate_attacks(Backend::Legacy);
}

#[test]
fn teammate_attacks_on_the_vm_and_unexposed_networks_are_dropped_nft() {
    teammate_attacks(Backend::Nft);
}
