//! Real Docker, on both engines the existing tools broke on: Debian's 20.10 and sid's 28.x.
//! dockerd runs in the "vm" namespace, the helper in "mac", `dockroute --headless` drives both;
//! the guest is the real image, loaded from its `docker save` tarball. Needs root and
//! `scripts/docker-env/install-engines.sh`. Measured times print as `MEASURED …` lines.

use std::process::Command;
use std::time::{Duration, Instant};

use dockroute_e2e::docker::Engine;
use dockroute_e2e::docker_rig::*;
use dockroute_e2e::netns::{require_root, Topology, SIGTERM};
use dockroute_e2e::rig::{iptables_snapshot, read};

fn routes_follow_networks(slot: u8, engine: Engine) {
    if !require_root() || !engine.require() {
        return;
    }
    routes_follow_networks_on(&DockerRig::up(slot, engine));
}

/// Networks made and removed, v4 and v6, --internal, the `iptables A+B` pair. Leaves dr-private,
/// dr-v6, dr-pa/pb/pc and their containers.
fn routes_follow_networks_on(d: &DockerRig) {
    let (slot, name) = (d.rig.topo.slot, d.dockerd.engine.name().to_string());
    let (n1, internal, v6net) = (subnet(slot, 1), subnet(slot, 2), subnet6(slot, 3));

    // A new network: its route appears in "mac" within 1 s, a container on it answers.
    let t0 = Instant::now();
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    wait_route(d, &n1, true, "route for a new network");
    let took = t0.elapsed();
    println!("MEASURED [{name}] network create (CLI returns) → route in mac: {} ms", took.as_millis());
    assert!(took <= Duration::from_secs(1), "route took {took:?}");
    let ip = d.web("dr-web", "dr-app");
    let body = Topology::wait_until("HTTP from mac to the container", Duration::from_secs(5), || d.get(&ip).is_ok())
        .map(|_| d.get(&ip).unwrap())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    assert_eq!(body.trim(), "hello from dr-web");

    // --internal and the `A+B` pair below: checked on Docker only. On Podman 4.3 a container on
    // an --internal network was not reached within 6 s, not investigated yet (issue 24's
    // closing note).
    let docker_only = !d.dockerd.engine.is_podman();
    // --internal: no default route in the container, so the guest masquerades towards it.
    if docker_only {
        d.docker(&["network", "create", "--internal", "--subnet", &internal, "dr-private"]);
        wait_route(d, &internal, true, "route for the internal network");
        let ip_private = d.web("dr-private-web", "dr-private");
        Topology::wait_until("HTTP to a container on an --internal network", Duration::from_secs(5), || {
            d.get(&ip_private).is_ok()
        })
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    }

    // IPv6.
    d.docker(&["network", "create", "--ipv6", "--subnet", &v6net, "--subnet", &subnet(slot, 6), "dr-v6"]);
    wait_route(d, &v6net, true, "route for the IPv6 network");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "dr-web6",
        "--network",
        "dr-v6",
        "dr-busybox",
        "sh",
        "-c",
        &httpd_cmd("dr-web6"),
    ]);
    let ip6 =
        d.docker(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.GlobalIPv6Address}}{{end}}", "dr-web6"]);
    let ip6 = ip6.trim().to_string();
    assert!(ip6.starts_with("2001:2:0:d"), "container v6 address {ip6:?}");
    Topology::wait_until("HTTP over IPv6 to a container", Duration::from_secs(5), || d.get(&ip6).is_ok())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));

    // Two networks joined by the `iptables A+B` pair: container to container works across
    // them; a third network without a pair stays isolated.
    if docker_only {
        let (pa, pb, pc) = (subnet(slot, 4), subnet(slot, 5), subnet(slot, 7));
        d.docker(&["network", "create", "--subnet", &pa, "dr-pa"]);
        d.docker(&["network", "create", "--subnet", &pb, "dr-pb"]);
        d.docker(&["network", "create", "--subnet", &pc, "dr-pc"]);
        let ip_b = d.web("dr-in-b", "dr-pb");
        let ip_c = d.web("dr-in-c", "dr-pc");
        d.docker(&["run", "-d", "--name", "dr-in-a", "--network", "dr-pa", "dr-busybox", "sleep", "600"]);
        // (this busybox's wget -T crashes: the CLI call is bounded instead)
        let from_a = |ip: &str| {
            d.dockerd.docker_timeout(
                &["exec", "dr-in-a", "wget", "-q", "-O", "-", &format!("http://{ip}/")],
                Duration::from_secs(3),
            )
        };
        Topology::wait_until("A reaches B through the pair", Duration::from_secs(8), || from_a(&ip_b).is_ok())
            .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
        assert!(from_a(&ip_c).is_err(), "A must not reach C: no pair for it");
    }

    // Removing the network withdraws its route.
    d.docker(&["rm", "-f", "dr-web"]);
    let t1 = Instant::now();
    d.docker(&["network", "rm", "dr-app"]);
    wait_route(d, &n1, false, "route gone after network rm");
    println!("MEASURED [{name}] network rm → route gone: {} ms", t1.elapsed().as_millis());
}

fn repairs(slot: u8, engine: Engine) {
    if !require_root() || !engine.require() {
        return;
    }
    repairs_on(&mut DockerRig::up(slot, engine));
}

/// The engine restarted, the guest killed, removed and frozen, the helper restarted: each
/// time the container answers again. Makes dr-app (subnet 1) and dr-after-restart (subnet 0).
fn repairs_on(d: &mut DockerRig) {
    let (slot, name) = (d.rig.topo.slot, d.dockerd.engine.name().to_string());
    let n1 = subnet(slot, 1);
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    wait_route(d, &n1, true, "route");
    let ip = d.web("dr-web", "dr-app");
    Topology::wait_until("HTTP", Duration::from_secs(5), || d.get(&ip).is_ok()).unwrap();

    // dockerd restarted: tunnel and routes back within 5 s of Docker being up again.
    d.dockerd.restart().unwrap();
    let up = Instant::now();
    d.docker(&["start", "dr-web"]);
    Topology::wait_until("HTTP after a dockerd restart", Duration::from_secs(5), || d.get(&ip).is_ok())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    assert!(d.route_present(&n1));
    println!("MEASURED [{name}] dockerd restart → container reachable again: {} ms", up.elapsed().as_millis());
    // The controller follows the new dockerd's events: a network made now gets its route.
    let n2 = subnet(slot, 0);
    let t = Instant::now();
    d.docker(&["network", "create", "--subnet", &n2, "dr-after-restart"]);
    wait_route(d, &n2, true, "route for a network created after the dockerd restart");
    assert!(t.elapsed() <= Duration::from_secs(2), "event stream back after the restart: {:?}", t.elapsed());

    // kill -9 of the guest's process: restored (restart policy, or the controller).
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "dockroute-guest"]);
    let killed = Instant::now();
    assert!(Command::new("kill").args(["-9", pid.trim()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    Topology::wait_until("HTTP after kill -9 of the guest", Duration::from_secs(10), || d.get(&ip).is_ok())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    println!("MEASURED [{name}] guest kill -9 → reachable again: {} ms", killed.elapsed().as_millis());

    // docker rm -f of the guest container: the controller recreates it.
    let removed = Instant::now();
    d.docker(&["rm", "-f", "dockroute-guest"]);
    Topology::wait_until("HTTP after docker rm -f of the guest", Duration::from_secs(10), || d.get(&ip).is_ok())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    println!("MEASURED [{name}] guest docker rm -f → reachable again: {} ms", removed.elapsed().as_millis());

    // A frozen guest (what Resource Saver does to the VM): no event says so; the tunnel does.
    let paused = Instant::now();
    d.docker(&["pause", "dockroute-guest"]);
    Topology::wait_until("HTTP after the guest froze", Duration::from_secs(25), || d.get(&ip).is_ok()).unwrap_or_else(
        |e| {
            panic!(
                "{e}
{}",
                d.logs()
            )
        },
    );
    println!(
        "MEASURED [{name}] guest frozen (docker pause) → detected and repaired: {} ms",
        paused.elapsed().as_millis()
    );

    // The helper restarted under a running app: the app reconnects and hands over its secret.
    d.rig.stop_helper(SIGTERM).unwrap();
    let restarted = Instant::now();
    d.rig.start_helper().unwrap();
    Topology::wait_until("HTTP after a helper restart", Duration::from_secs(10), || d.get(&ip).is_ok()).unwrap_or_else(
        |e| {
            panic!(
                "{e}
{}",
                d.logs()
            )
        },
    );
    println!("MEASURED [{name}] helper restart → reachable again: {} ms", restarted.elapsed().as_millis());
}

fn secret_and_disconnect(slot: u8, engine: Engine) {
    if !require_root() || !engine.require() {
        return;
    }
    secret_and_disconnect_on(&mut DockerRig::up(slot, engine));
}

/// The secret only where it belongs, then Disconnect leaves nothing of ours. Makes dr-last
/// (subnet 3).
fn secret_and_disconnect_on(d: &mut DockerRig) {
    let slot = d.rig.topo.slot;
    // The secret: in the helper's memory and a file in the container, nowhere else.
    let secret = d.dockerd.docker(&["exec", "dockroute-guest", "cat", "/etc/dockroute/secret"]).unwrap();
    let secret = secret.trim().to_string();
    assert_eq!(secret.len(), 64, "a 32-byte hex secret");
    let inspect = d.docker(&["inspect", "dockroute-guest"]);
    assert!(!inspect.contains(&secret), "docker inspect shows the secret");
    for (what, text) in [
        ("controller log", read(&d.controller_log)),
        ("helper log", read(&d.rig.helper_log)),
        ("guest log", d.guest_logs()),
        ("dockerd log", std::fs::read_to_string(d.dockerd.log_path()).unwrap_or_default()),
    ] {
        assert!(!text.contains(&secret), "the secret appears in the {what}");
    }
    let mode = d.docker(&["exec", "dockroute-guest", "stat", "-c", "%a", "/etc/dockroute/secret"]);
    assert_eq!(mode.trim(), "600");

    // Disconnect (SIGTERM to the controller): guest container, its rules, routes and the
    // TUN devices all gone.
    let n1 = subnet(slot, 3);
    d.docker(&["network", "create", "--subnet", &n1, "dr-last"]);
    wait_route(d, &n1, true, "route");
    let fw_with_guest = iptables_snapshot(&d.rig.topo, d.rig.topo.ns_vm());
    assert!(fw_with_guest.contains("DOCKROUTE-FWD"), "the guest installed its rules");
    // The local CA's certificate for containers (HTTPS is on by default).
    let volumes = |d: &DockerRig| d.docker(&["volume", "ls", "-q", "--filter", "name=dockroute-ca"]);
    Topology::wait_until("the dockroute-ca volume", Duration::from_secs(20), || volumes(d).trim() == "dockroute-ca")
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", volumes(d), d.logs()));
    let h = d.controller.take().unwrap();
    let status = d.rig.topo.kill(h, SIGTERM).unwrap();
    assert!(status.success(), "controller exit: {status}\n{}", read(&d.controller_log));
    let listing = d.docker(&["ps", "-a", "--filter", "label=dev.dockroute.guest", "-q"]);
    assert!(listing.trim().is_empty(), "guest container left: {listing}");
    assert_eq!(volumes(d).trim(), "", "the CA's volume left");
    let fw_after = iptables_snapshot(&d.rig.topo, d.rig.topo.ns_vm());
    assert!(!fw_after.contains("DOCKROUTE"), "guest rules left:\n{fw_after}");
    // netavark's nftables driver (Podman 5) keeps its own table beside iptables-nft's: ours
    // must be in neither.
    let nft = d.rig.topo.run(d.rig.topo.ns_vm(), &["nft", "list", "ruleset"]).unwrap_or_default();
    assert!(!nft.contains("DOCKROUTE"), "guest rules left in nftables:\n{nft}");
    assert!(!d.route_present(&n1), "route left after disconnect");
    assert!(!d.rig.topo.links(d.rig.topo.ns_mac()).contains("dockroute0"), "helper TUN left");
    assert!(!d.rig.topo.links(d.rig.topo.ns_vm()).contains("dockroute0"), "guest TUN left");
}

#[test]
fn engine20_routes_follow_networks() {
    routes_follow_networks(41, Engine::V20);
}
#[test]
fn engine28_routes_follow_networks() {
    routes_follow_networks(42, Engine::V28);
}
#[test]
fn engine20_repairs() {
    repairs(43, Engine::V20);
}
#[test]
fn engine28_repairs() {
    repairs(44, Engine::V28);
}
#[test]
fn engine20_secret_and_disconnect() {
    secret_and_disconnect(45, Engine::V20);
}
#[test]
fn engine28_secret_and_disconnect() {
    secret_and_disconnect(46, Engine::V28);
}

/// Podman behind DOCKER_HOST (rootful `podman system service`, driven only through its
/// Docker-compatible API): the scenarios above in one set-up per engine, to keep CI short.
fn every_scenario(slot: u8, engine: Engine) {
    if !require_root() || !engine.require() {
        return;
    }
    let mut d = DockerRig::up(slot, engine);
    eprintln!("{}: {}", engine.name(), engine.version().unwrap_or_default());
    routes_follow_networks_on(&d);
    repairs_on(&mut d);
    secret_and_disconnect_on(&mut d);
}
#[test]
fn podman4_every_scenario() {
    every_scenario(75, Engine::Podman4);
}
#[test]
fn podman5_every_scenario() {
    every_scenario(76, Engine::Podman5);
}
