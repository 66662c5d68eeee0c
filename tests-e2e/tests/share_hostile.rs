//! A hostile teammate, end to end: real dockerd (Engine 28), the real helper, guest and
//! `dockroute --headless`, and teammates on Debian's wireguard-go + wg configured from what
//! `share add` printed, then widened: AllowedIPs 0.0.0.0/0 and a route into the tunnel for every
//! test subnet. Each probe of something that is not an exposed network's container must go
//! unanswered, and its drop must be counted (the helper's per-teammate counters; where the
//! helper cannot know, the guest's `DOCKROUTE-MATE` counters). Then exposure follows the
//! network: a removed exposed network's subnet, reused by a new network, is not reachable until
//! that network is exposed. Needs root. Measured numbers print as `MEASURED …` lines.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use dockroute_api::ShareStatus;
use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::*;
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::read;
use dockroute_e2e::teammate::{self, share_cli, Teammate};

// Slots 60..=64 are the share's hostile tests' (docker_rig's second address band).
const SLOT: u8 = 60;
const ALICE_WG: &str = "drt6a";
const BOB_WG: &str = "drt6b";

fn share(d: &DockerRig, args: &[&str]) -> Result<String, String> {
    share_cli(&d.rig.api_socket(), args)
}

fn share_list(d: &DockerRig) -> ShareStatus {
    teammate::share_list(&d.rig.api_socket())
}

/// Every drop counted against `name`, by reason.
fn drops(d: &DockerRig, name: &str) -> BTreeMap<String, u64> {
    let s = share_list(d);
    s.teammates.into_iter().find(|t| t.name == name).map(|t| t.counters.drops).unwrap_or_default()
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

/// A probe from the teammate's namespace: a TCP connection (`tcp`), or a UDP DNS question
/// (`dns`) with its answer awaited. Prints `open`/`answered` or fails.
const PROBE_PY: &str = r#"# dockroute e2e hostile probe
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind == "tcp":
    s = socket.create_connection((host, port), timeout=1.5); print("open")
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.5)
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x06docker\x00\x00\x01\x00\x01"
    s.sendto(q, (host, port)); s.recv(512); print("answered")
"#;

fn reached(tm: &Teammate, kind: &str, host: &str, port: u16) -> bool {
    tm.run(&["python3", "-c", PROBE_PY, kind, host, &port.to_string()], Duration::from_secs(5))
        .is_ok_and(|o| o.contains("open") || o.contains("answered"))
}

/// A TCP listener on every address of `ns` (the VM's wildcard address, an outside host).
const LISTEN_PY: &str = r#"# dockroute e2e listener
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64); print("ready", flush=True)
while True: s.accept()[0].close()
"#;

fn listen(t: &Topology, ns: &str, port: u16) {
    let log = t.dir().join(format!("listen-{ns}-{port}.log"));
    t.spawn(ns, &["python3", "-c", LISTEN_PY, &port.to_string()], &log).unwrap();
    Topology::wait_until("a listener", Duration::from_secs(5), || read(&log).contains("ready")).unwrap();
}

/// The packet counter of one rule of the guest's teammates' chain in the VM (whichever
/// iptables backend holds it).
fn mate_counter(t: &Topology, rule: &str) -> u64 {
    for tool in ["iptables-nft-save", "iptables-legacy-save"] {
        let Ok(save) = t.run(t.ns_vm(), &[tool, "-c"]) else { continue };
        let line = format!("-A DOCKROUTE-MATE {rule}");
        if let Some(n) = save.lines().find_map(|l| {
            let (counts, r) = l.strip_prefix('[')?.split_once("] ")?;
            (r == line).then(|| counts.split(':').next()?.parse::<u64>().ok())?
        }) {
            return n;
        }
    }
    0
}

/// The "outside" namespace behind the VM's NAT and its listener: both gone on drop.
struct Outside(String, std::process::Child);

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.1.kill();
        let _ = self.1.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn add_line(d: &DockerRig, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(&d.rig.config).unwrap();
    writeln!(f, "{text}").unwrap();
}

#[test]
fn a_hostile_teammate_reaches_the_exposed_containers_and_nothing_else_and_exposure_follows_the_network() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let d = DockerRig::up(SLOT, Engine::V28);
    let t = &d.rig.topo;
    let mut alice = Teammate::create(t).unwrap();
    let mut bob = Teammate::create_nth(t, 1).unwrap();
    // The topology's second bridge in the VM stands for a route with no Docker network behind
    // it; the VM gets one more address on it that the helper cannot know of.
    let open_route = t.ctr2_subnet();
    let vm_hidden_addr = open_route.replace(".0/24", ".254");
    t.run(t.ns_vm(), &["ip", "addr", "add", &format!("{vm_hidden_addr}/24"), "dev", "br1"]).unwrap();
    t.start_http(t.ns_ctr2()).unwrap();
    add_line(&d, &format!("expose 0.0.0.0:2512\ntoken alice\ntoken bob\nroute {open_route} expose"));
    Topology::wait_until("the expose socket", Duration::from_secs(10), || share_list(&d).listening)
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));

    // Docker: an exposed network with a web container; a hidden one with a web container and a
    // container publishing port 8080 on the VM's addresses.
    let (shared, hidden) = (subnet(SLOT, 1), subnet(SLOT, 2));
    d.docker(&["network", "create", "--subnet", &shared, "dr-shared"]);
    d.docker(&["network", "create", "--subnet", &hidden, "dr-hidden"]);
    let web = d.web("dr-web", "dr-shared");
    let hidden_web = d.web("dr-hidden-web", "dr-hidden");
    let pub_cmd = httpd_cmd("dr-published");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "dr-published",
        "--network",
        "dr-hidden",
        "-p",
        "8080:80",
        "dr-busybox",
        "sh",
        "-c",
        &pub_cmd,
    ]);
    wait_route(&d, &shared, true, "route for dr-shared");
    wait_route(&d, &hidden, true, "route for dr-hidden");
    // Services the VM itself answers: on its wildcard address, and an outside host behind its NAT.
    listen(t, t.ns_vm(), 9999);
    let out_ns = format!("drt{SLOT}-out");
    let _ = Command::new("ip").args(["netns", "del", &out_ns]).stderr(std::process::Stdio::null()).status();
    for cmd in [
        vec!["ip", "netns", "add", out_ns.as_str()],
        vec![
            "ip",
            "-n",
            t.ns_vm(),
            "link",
            "add",
            "veth-out",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &out_ns,
        ],
        vec!["ip", "-n", t.ns_vm(), "addr", "add", "198.18.235.1/24", "dev", "veth-out"],
        vec!["ip", "-n", t.ns_vm(), "link", "set", "veth-out", "up"],
        vec!["ip", "-n", &out_ns, "addr", "add", "198.18.235.2/24", "dev", "eth0"],
        vec!["ip", "-n", &out_ns, "link", "set", "eth0", "up"],
        vec!["ip", "-n", &out_ns, "link", "set", "lo", "up"],
    ] {
        let (p, a) = cmd.split_first().unwrap();
        let st = Command::new(p).args(a).status().unwrap();
        assert!(st.success(), "{cmd:?}");
    }
    t.run(t.ns_vm(), &["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "veth-out", "-j", "MASQUERADE"]).unwrap();
    // Not one of the topology's namespaces: its listener is this guard's, killed with it.
    let log = t.dir().join("listen-out.log");
    let out_listener = Command::new("ip")
        .args(["netns", "exec", &out_ns, "python3", "-c", LISTEN_PY, "7000"])
        .stdout(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _out_guard = Outside(out_ns.clone(), out_listener);
    Topology::wait_until("the outside listener", Duration::from_secs(5), || read(&log).contains("ready")).unwrap();
    // Bob, another teammate, listens on his tunnel address.
    let mac_side = alice.mac_side().to_string();
    share(&d, &["expose", "dr-shared"]).unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    let alice_cfg = share(&d, &["add", "alice", "--endpoint", &format!("{mac_side}:2512")]).unwrap();
    let bob_cfg = share(&d, &["add", "bob", "--endpoint", &format!("{}:2512", bob.mac_side())]).unwrap();
    let a = alice.wireguard_up(ALICE_WG, &alice_cfg).unwrap();
    let b = bob.wireguard_up(BOB_WG, &bob_cfg).unwrap();
    assert!(a.allowed.contains(&shared) && !a.allowed.contains(&hidden), "AllowedIPs = the exposed routes: {a:?}");
    let bob_addr = b.address.trim_end_matches("/32").to_string();
    let bob_listen = bob.dir().join("listen.log");
    bob.spawn(&["python3", "-c", LISTEN_PY, "7000"], &bob_listen).unwrap();

    // The exposed container answers her, through WireGuard and the guest.
    let url = format!("http://{web}/");
    Topology::wait_until("alice reaches the exposed container", Duration::from_secs(20), || {
        alice.run(&["busybox", "wget", "-q", "-Y", "off", "-O", "-", &url], Duration::from_secs(3)).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\nguest:\n{}", d.logs(), d.guest_logs()));
    assert!(reached(&alice, "tcp", &web, 80));

    // Hostile: everything into her tunnel.
    let (vm_link, mac_link, guest_link) =
        (t.vm_addr().to_string(), d.rig.link_host().to_string(), format!("198.18.{}.2", 100 + SLOT));
    let mut nets: Vec<String> = (0..8).map(|i| subnet(SLOT, i)).collect();
    nets.extend([
        format!("198.18.{SLOT}.0/24"),
        format!("198.18.{}.0/24", 100 + SLOT),
        format!("198.18.{}.0/24", 180 + SLOT),
        t.ctr_subnet(),
        open_route.clone(),
        "198.18.235.0/24".into(),
        "198.19.249.0/24".into(),
    ]);
    alice.widen(ALICE_WG, &a.peer_public_key, &nets).unwrap();
    let gw = |net: &str| net.replace(".0/24", ".1");
    let probes: Vec<(&str, String, u16, &str)> = vec![
        ("tcp", gw(&shared), 9999, "the exposed network's gateway (a service on the VM's wildcard address)"),
        ("tcp", gw(&hidden), 9999, "the hidden network's gateway"),
        ("tcp", format!("198.18.{}.1", 180 + SLOT), 9999, "docker0's gateway"),
        ("tcp", gw(&t.ctr_subnet()), 9999, "another bridge of the VM"),
        ("tcp", vm_link.clone(), 9999, "the VM's own address"),
        ("tcp", guest_link.clone(), 9999, "the guest's tunnel address"),
        ("tcp", gw(&shared), 8080, "a published port, on the exposed network's gateway"),
        ("tcp", vm_link.clone(), 8080, "a published port, on the VM's address"),
        ("tcp", hidden_web.clone(), 80, "a container on a network that is not exposed"),
        ("tcp", mac_link.clone(), 53, "the Mac's link address"),
        ("dns", mac_link.clone(), 53, "the helper's DNS"),
        ("tcp", t.mac_addr().to_string(), 22, "the Mac's other address"),
        ("tcp", bob_addr.clone(), 7000, "another teammate"),
        ("tcp", "198.18.235.2".into(), 7000, "an outside host through the VM's NAT"),
    ];
    // Controls: the Mac itself reaches what the VM answers (so a dark probe means dropped,
    // not absent).
    for (what, url) in [
        ("the VM's wildcard service through the exposed gateway", format!("{}:9999", gw(&shared))),
        ("the published port", format!("{}:8080", gw(&shared))),
    ] {
        let (host, port) = url.split_once(':').unwrap();
        let ok = t.run(t.ns_mac(), &["python3", "-c", PROBE_PY, "tcp", host, port]).is_ok();
        assert!(ok, "control: the Mac reaches {what} ({url})");
    }
    assert!(d.get(&hidden_web).is_ok(), "control: the Mac reaches the hidden container");
    let mut counted = Vec::new();
    for (kind, host, port, what) in &probes {
        let before = total(&drops(&d, "alice"));
        assert!(!reached(&alice, kind, host, *port), "alice must not reach {what} ({host}:{port})");
        let after = total(&drops(&d, "alice"));
        assert!(after > before, "{what}: the drop is counted against alice ({before} -> {after})");
        counted.push(format!("{what}={}", after - before));
    }
    println!("MEASURED share_hostile drops per probe: {}", counted.join(", "));
    let by_reason = drops(&d, "alice");
    println!("MEASURED share_hostile alice drops by reason: {by_reason:?}");
    assert!(by_reason.get("not_allowed_destination").copied().unwrap_or(0) >= probes.len() as u64);

    // A route no Docker network stands behind: the helper lets the probe of an address it
    // cannot tell from a container's through; the guest drops it as the VM's own, and counts it.
    let local = "-m addrtype --dst-type LOCAL -j DROP";
    let before = mate_counter(t, local);
    assert!(!reached(&alice, "tcp", &vm_hidden_addr, 9999), "the VM's address on an open route");
    let after = mate_counter(t, local);
    println!("MEASURED share_hostile guest DOCKROUTE-MATE LOCAL drops {before} -> {after}");
    assert!(after > before, "the guest's chain counts the drop ({before} -> {after})");
    let ctr2 = t.ctr2_addr().to_string();
    assert!(reached(&alice, "tcp", &ctr2, 80), "a host on that open route is hers to reach");

    // Exposure follows the network: remove the exposed one, make another on the same subnet.
    d.docker(&["rm", "-f", "dr-web"]);
    d.docker(&["network", "rm", "dr-shared"]);
    Topology::wait_until("exposure gone with the network", Duration::from_secs(10), || {
        !share_list(&d).exposed.iter().any(|r| r.net.to_string() == shared)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    d.docker(&["network", "create", "--subnet", &shared, "dr-reborn"]);
    let reborn = d.web("dr-reborn-web", "dr-reborn");
    wait_route(&d, &shared, true, "route for the reborn network");
    std::thread::sleep(Duration::from_secs(2)); // the controller's next report of the containers
    assert!(!share_list(&d).exposed.iter().any(|r| r.net.to_string() == shared), "not exposed until someone says so");
    let before = total(&drops(&d, "alice"));
    assert!(!reached(&alice, "tcp", &reborn, 80), "a new network on the old subnet is not exposed");
    assert!(total(&drops(&d, "alice")) > before, "and the drop is counted");
    share(&d, &["expose", "dr-reborn"]).unwrap();
    Topology::wait_until("alice reaches the newly exposed network", Duration::from_secs(20), || {
        reached(&alice, "tcp", &reborn, 80)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\nguest:\n{}", d.logs(), d.guest_logs()));
    drop(bob);
}
