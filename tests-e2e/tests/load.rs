//! Load and faults, measured: many concurrent connections through the tunnel to nginx, wrk
//! against raw forwarding, a handshake and garbage flood during traffic, a soak, and kill
//! loops, each printing `MEASURED …` lines. Short by default (CI); `DOCKROUTE_LOAD_LONG=1`
//! (what `scripts/load.sh --long` sets) for the long form's figures. Needs root, nginx and wrk.
//! Every address is one of the test's own namespaces (198.18.0.0/15); every loop is bounded.

use std::time::{Duration, Instant};

use dockroute_e2e::load::*;
use dockroute_e2e::netns::{namespaces_with_prefix, require_root, Topology, SIGKILL, SIGTERM};
use dockroute_e2e::rig::{read, Rig};

const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

/// Tunnel for ctr; raw kernel forwarding for ctr2 (same topology, the other bridge); nginx on both.
fn up(slot: u8) -> Rig {
    let mut rig = Rig::new(slot, |t| vec![t.ctr_subnet()]).unwrap();
    let t = &rig.topo;
    start_nginx(t, t.ns_ctr(), t.ctr_addr()).unwrap();
    start_nginx(t, t.ns_ctr2(), t.ctr2_addr()).unwrap();
    t.start_udp_echo(t.ns_ctr(), 7000).unwrap();
    t.run(t.ns_mac(), &["ip", "route", "add", &t.ctr2_subnet(), "via", &t.vm_addr().to_string()]).unwrap();
    rig.start_helper().unwrap();
    rig.start_guest().unwrap();
    rig.wait_traffic("first session", Duration::from_secs(5)).unwrap();
    rig
}

fn session_id(rig: &Rig) -> String {
    let s = rig.status_text();
    s.lines()
        .find_map(|l| l.trim().strip_prefix("session "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn many_concurrent_connections_are_all_answered_and_wrk_compares_with_raw() {
    if !require_root() {
        return;
    }
    let size = sizes();
    let rig = up(51);
    let t = &rig.topo;
    let n = size.connections.to_string();
    let target = format!("{}:80", t.ctr_addr());
    let line = load_tool(t, t.ns_mac(), &["conns", &target, &n, "60"], Duration::from_secs(90))
        .unwrap_or_else(|e| panic!("{e}\nhelper:\n{}\nguest:\n{}", read(&rig.helper_log), read(&rig.guest_log)));
    println!("MEASURED concurrent connections through the tunnel: {line}");
    assert_eq!(figure(&line, "answered"), size.connections as u64, "every one answered: {line}");
    assert_eq!(figure(&line, "open_at_once"), size.connections as u64, "all open at once: {line}");

    let tunnel = wrk(t, t.ns_mac(), &format!("http://{}/", t.ctr_addr()), size.wrk_seconds, 64).unwrap();
    let raw = wrk(t, t.ns_mac(), &format!("http://{}/", t.ctr2_addr()), size.wrk_seconds, 64).unwrap();
    println!(
        "MEASURED wrk (64 connections, {} s): tunnel {tunnel:.0} req/s, raw forwarding {raw:.0} req/s, ratio {:.2}",
        size.wrk_seconds,
        tunnel / raw
    );
    assert!(tunnel > 0.0 && raw > 0.0);
}

#[test]
fn a_handshake_and_garbage_flood_leaves_the_session_and_half_the_throughput() {
    if !require_root() {
        return;
    }
    let size = sizes();
    let rig = up(52);
    let t = &rig.topo;
    let helper = rig.helper.unwrap();
    let url = format!("http://{}/", t.ctr_addr());
    let session = session_id(&rig);
    assert!(!session.is_empty(), "{}", rig.status_text());
    let calm = wrk(t, t.ns_mac(), &url, size.flood_seconds, 64).unwrap();
    let rss_before = rss_kb(helper);

    // The flood comes from the VM side at the helper's own UDP and TCP port, during wrk.
    let target = format!("{}:2511", t.mac_addr());
    let secs = (size.flood_seconds + 2).to_string();
    let rate = size.flood_rate.to_string();
    let log = t.dir().join("flood.log");
    let flood = t.spawn(t.ns_vm(), &[&bin_path("dockroute-load"), "flood", &target, &secs, &rate], &log).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let mut peak = rss_before;
    let sampler = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(rss_kb(helper));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        (stop, h)
    };
    let flooded = wrk(t, t.ns_mac(), &url, size.flood_seconds, 64).unwrap();
    Topology::wait_until("the flood to end", Duration::from_secs(30), || t.status(flood).is_some()).unwrap();
    sampler.0.store(true, std::sync::atomic::Ordering::SeqCst);
    peak = peak.max(sampler.1.join().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    let rss_after = rss_kb(helper);
    let sent = read(&log);
    let ratio = flooded / calm;
    println!("MEASURED flood ({}): {}", target, sent.trim());
    println!("MEASURED throughput without flood {calm:.0} req/s, under flood {flooded:.0} req/s, ratio {ratio:.2}");
    println!("MEASURED helper RSS before {rss_before} KiB, peak {peak} KiB, after {rss_after} KiB");
    assert_eq!(session_id(&rig), session, "the session is unchanged:\n{}", rig.status_text());
    // Asserted in the long form, which runs alone; the short one shares CI's two cores with
    // every other test.
    if size.long {
        assert!(ratio >= 0.5, "throughput under flood {flooded:.0} vs {calm:.0} req/s");
    }
    assert!(peak <= rss_before + 32 * 1024, "helper RSS bounded: {rss_before} → peak {peak} KiB");
    assert!(figure(sent.trim(), "udp_hellos") > 0, "the flood ran: {sent}");
}

/// The binary's path as a string (for `spawn`).
fn bin_path(name: &str) -> String {
    dockroute_e2e::rig::bin(name).to_string_lossy().into_owned()
}

#[test]
fn a_soak_of_mixed_traffic_keeps_memory_and_descriptors_flat() {
    if !require_root() {
        return;
    }
    let size = sizes();
    let rig = up(53);
    let t = &rig.topo;
    let (helper, guest) = (rig.helper.unwrap(), rig.guest.unwrap());
    // Warm up first, so allocator growth on the first traffic is not counted as a leak.
    wrk(t, t.ns_mac(), &format!("http://{}/", t.ctr_addr()), 2, 32).unwrap();
    let before = [(rss_kb(helper), fd_count(helper)), (rss_kb(guest), fd_count(guest))];
    let start = Instant::now();
    let (mut requests, mut pings, mut echoes) = (0.0, 0u32, 0u32);
    // Mixed: HTTP bursts through nginx, pings, UDP echoes, until the soak time is up.
    while start.elapsed() < Duration::from_secs(size.soak_seconds) {
        let left = Duration::from_secs(size.soak_seconds).saturating_sub(start.elapsed()).as_secs().clamp(1, 10);
        requests += wrk(t, t.ns_mac(), &format!("http://{}/", t.ctr_addr()), left as u32, 16).unwrap() * left as f64;
        if t.ping(t.ns_mac(), t.ctr_addr().into(), 3, Duration::from_secs(3)).is_ok() {
            pings += 3;
        }
        let to = std::net::SocketAddr::new(t.ctr_addr().into(), 7000);
        if t.udp_exchange(t.ns_mac(), to, b"soak", Duration::from_secs(1)).is_ok() {
            echoes += 1;
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    let after = [(rss_kb(helper), fd_count(helper)), (rss_kb(guest), fd_count(guest))];
    println!(
        "MEASURED soak {} s: ~{requests:.0} HTTP requests, {pings} pings, {echoes} UDP echoes",
        start.elapsed().as_secs()
    );
    for (name, (b, a)) in ["helper", "guest"].iter().zip(before.iter().zip(after.iter())) {
        println!("MEASURED soak {name}: RSS {} → {} KiB, descriptors {} → {}", b.0, a.0, b.1, a.1);
        // The bound: 8 MiB of RSS growth (buffers reach their high-water mark early) and no
        // descriptor left behind.
        assert!(a.0 <= b.0 + 8 * 1024, "{name} RSS grew from {} to {} KiB", b.0, a.0);
        assert!(a.1 <= b.1, "{name} descriptors grew from {} to {}", b.1, a.1);
    }
}

/// What must hold after every recovery: one tunnel device per end, one route, the same set of
/// firewall chains as before, the rig's four namespaces and no more.
fn nothing_left_behind(rig: &Rig, chains: &[String]) {
    let t = &rig.topo;
    assert_eq!(devices_named(t, t.ns_mac(), "dockroute0"), 1, "{}", t.links(t.ns_mac()));
    assert_eq!(devices_named(t, t.ns_vm(), "dockroute0"), 1, "{}", t.links(t.ns_vm()));
    let routes = t.routes(t.ns_mac());
    assert_eq!(routes.matches(&format!("{} dev dockroute0", t.ctr_subnet())).count(), 1, "{routes}");
    // The guest applies its rules when its session comes up, alongside the first packets.
    Topology::wait_until("the guest's firewall chains as before", Duration::from_secs(5), || {
        our_chains(t, t.ns_vm()) == chains
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} vs {chains:?}", our_chains(t, t.ns_vm())));
    assert_eq!(namespaces_with_prefix(&format!("drt{}-", t.slot)).len(), 4);
}

#[test]
fn kill_loops_recover_and_leave_nothing_behind() {
    if !require_root() {
        return;
    }
    let size = sizes();
    let mut rig = up(54);
    Topology::wait_until("the guest's firewall chains", Duration::from_secs(5), || {
        !our_chains(&rig.topo, rig.topo.ns_vm()).is_empty()
    })
    .unwrap();
    let chains = our_chains(&rig.topo, rig.topo.ns_vm());
    let timeout = Duration::from_secs(20);
    let report = |what: &str, took: &[Duration]| {
        println!(
            "MEASURED {what}: {} rounds, recovery p50 {} ms, p99 {} ms",
            took.len(),
            percentile(took, 50).as_millis(),
            percentile(took, 99).as_millis()
        );
    };

    let mut took = Vec::new();
    for _ in 0..size.rounds {
        rig.stop_helper(SIGKILL).unwrap();
        let start = Instant::now();
        rig.start_helper().unwrap();
        rig.wait_traffic("after kill -9 of the helper", timeout).unwrap();
        took.push(start.elapsed());
        nothing_left_behind(&rig, &chains);
    }
    report("kill -9 helper → restarted → traffic", &took);

    let mut took = Vec::new();
    for _ in 0..size.rounds {
        rig.stop_guest(SIGKILL).unwrap();
        let start = Instant::now();
        rig.start_guest().unwrap();
        rig.wait_traffic("after kill -9 of the guest", timeout).unwrap();
        took.push(start.elapsed());
        nothing_left_behind(&rig, &chains);
    }
    report("kill -9 guest → restarted → traffic", &took);

    let mut took = Vec::new();
    for _ in 0..size.rounds {
        let guest = rig.guest.unwrap();
        rig.topo.signal(guest, SIGSTOP).unwrap();
        std::thread::sleep(Duration::from_secs(size.stop_seconds));
        rig.topo.signal(guest, SIGCONT).unwrap();
        let start = Instant::now();
        rig.wait_traffic("after SIGSTOP/SIGCONT of the guest", timeout).unwrap();
        took.push(start.elapsed());
        nothing_left_behind(&rig, &chains);
    }
    report(&format!("SIGSTOP guest {} s, SIGCONT → traffic", size.stop_seconds), &took);
    rig.stop_guest(SIGTERM).unwrap();
    rig.stop_helper(SIGTERM).unwrap();
}

#[test]
fn dockerd_kill_loop_recovers_and_leaves_nothing_behind() {
    use dockroute_e2e::docker::Engine;
    use dockroute_e2e::docker_rig::{httpd_cmd, subnet, wait_route, DockerRig};
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let size = sizes();
    let slot = 50;
    let mut d = DockerRig::up(slot, Engine::V28);
    let n1 = subnet(slot, 1);
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    wait_route(&d, &n1, true, "route");
    let cmd = httpd_cmd("dr-web");
    d.docker(&[
        "run",
        "-d",
        "--name",
        "dr-web",
        "--network",
        "dr-app",
        "--restart",
        "always",
        "dr-busybox",
        "sh",
        "-c",
        &cmd,
    ]);
    let ip = d.dockerd.container_ip("dr-web", "dr-app").unwrap();
    Topology::wait_until("HTTP", Duration::from_secs(10), || d.get(&ip).is_ok()).unwrap();
    let chains = our_chains(&d.rig.topo, d.rig.topo.ns_vm());
    let guests =
        |d: &DockerRig| d.dockerd.docker(&["ps", "-aq", "--filter", "label=dev.dockroute.guest"]).unwrap_or_default();
    let mut took = Vec::new();
    for round in 0..size.rounds {
        d.dockerd.kill_and_restart().unwrap();
        let start = Instant::now();
        Topology::wait_until("HTTP after dockerd was killed", Duration::from_secs(30), || d.get(&ip).is_ok())
            .unwrap_or_else(|e| panic!("round {round}: {e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
        took.push(start.elapsed());
        let t = &d.rig.topo;
        assert_eq!(guests(&d).lines().count(), 1, "one guest container: {}", guests(&d));
        assert_eq!(devices_named(t, t.ns_vm(), "dockroute0"), 1, "{}", t.links(t.ns_vm()));
        assert_eq!(devices_named(t, t.ns_mac(), "dockroute0"), 1, "{}", t.links(t.ns_mac()));
        // Docker's own chains may be rebuilt; ours must be there exactly once.
        Topology::wait_until("our chains as before", Duration::from_secs(10), || our_chains(t, t.ns_vm()) == chains)
            .unwrap_or_else(|e| panic!("{e}: {:?} vs {chains:?}", our_chains(t, t.ns_vm())));
        assert_eq!(namespaces_with_prefix(&format!("drt{slot}-")).len(), 4);
        assert!(d.route_present(&n1));
    }
    println!(
        "MEASURED kill -9 dockerd → restarted → container reachable: {} rounds, recovery p50 {} ms, p99 {} ms",
        took.len(),
        percentile(&took, 50).as_millis(),
        percentile(&took, 99).as_millis()
    );
}
