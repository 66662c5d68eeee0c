//! Letting Docker Desktop sleep, on Engine 28.5 (and Podman 4.3 and 5) in the "vm" namespace: with no other container
//! the controller stops the guest (the routes stay), the first `docker run` wakes it and that
//! container answers by IP within 3 s; a dockerd that stops and comes back (Resource Saver,
//! sleep) has the tunnel back within 3 s of the first container running; and the guest's idle
//! CPU, from its container's cgroup (children included), stays ≤ 0.05 % of a core. And a cold
//! start: the guest image not in the engine when the app starts, or gone while the guest
//! sleeps; the first container's time to answer is printed against the 1.5 s target.
//! `DOCKROUTE_IDLE_SECONDS` sets the idle window (default 10; scripts/bench.sh uses 60).
//! Needs root and the cached engines. Measured figures print as `MEASURED …` lines.

use std::time::{Duration, Instant, SystemTime};

use dockroute_e2e::docker::{cgroup_dirs, Engine};
use dockroute_e2e::docker_rig::*;
use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::read;
use dockroute_e2e::timeline;

fn guest_running(d: &DockerRig) -> bool {
    d.dockerd.docker(&["inspect", "-f", "{{.State.Running}}", "dockroute-guest"]).is_ok_and(|s| s.trim() == "true")
}

/// busybox httpd with a restart policy, stopping at once (httpd ignores SIGTERM as PID 1).
fn web_restarting(d: &DockerRig, name: &str, net: &str) -> String {
    let cmd = httpd_cmd(name);
    d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        net,
        "--restart",
        "always",
        "--stop-timeout",
        "1",
        "dr-busybox",
        "sh",
        "-c",
        &cmd,
    ]);
    d.dockerd.container_ip(name, net).unwrap()
}

#[test]
fn an_idle_guest_sleeps_and_the_first_container_wakes_it() {
    idle_guest_sleeps_and_wakes(48, Engine::V28);
}
#[test]
fn podman4_an_idle_guest_sleeps_and_the_first_container_wakes_it() {
    idle_guest_sleeps_and_wakes(73, Engine::Podman4);
}
#[test]
fn podman5_an_idle_guest_sleeps_and_the_first_container_wakes_it() {
    idle_guest_sleeps_and_wakes(74, Engine::Podman5);
}

/// On Podman "the VM stops" is `podman system service` restarting: its containers keep running
/// (conmon holds them), so that part shows the event stream and the tunnel surviving it.
fn idle_guest_sleeps_and_wakes(slot: u8, engine: Engine) {
    if !require_root() || !engine.require() {
        return;
    }
    let name = engine.name();
    let mut d = DockerRig::prepare(slot, engine);
    d.controller_args.clear(); // the default: the guest sleeps while no container runs
    d.start_controller();
    d.wait_session(Duration::from_secs(20));
    let n1 = subnet(slot, 1);
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    wait_route(&d, &n1, true, "route for the network");

    // Nothing runs: ten seconds later the guest stops; the route stays.
    Topology::wait_until("the guest to sleep", Duration::from_secs(30), || !guest_running(&d))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    assert!(read(&d.controller_log).contains("idle: no containers"), "{}", d.logs());
    assert!(d.route_present(&n1), "the routes stay while the guest sleeps");
    // The helper notices within three keepalives that the guest is gone.
    Topology::wait_until("no live session while idle", Duration::from_secs(10), || {
        !helper_status(&d.rig.api_socket()).unwrap_or_default().contains(": alive")
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}
{}",
            helper_status(&d.rig.api_socket()).unwrap_or_default()
        )
    });
    // An idle guest is not a dead one: nothing recreates it.
    std::thread::sleep(Duration::from_secs(10));
    assert!(!guest_running(&d) && !read(&d.controller_log).contains("recreating the guest"), "{}", d.logs());

    // The first container wakes it: reachable by IP within 3 s of `docker run`.
    let t0 = Instant::now();
    let ip = d.web("dr-web", "dr-app");
    let run_returned = t0.elapsed();
    Topology::wait_until("HTTP to the first container", Duration::from_secs(10), || d.get(&ip).is_ok())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    let wake = t0.elapsed();
    println!(
        "MEASURED [{name}] wake_ms={} (docker run returned after {} ms)",
        wake.as_millis(),
        run_returned.as_millis()
    );
    assert!(wake <= Duration::from_secs(3), "woken in {wake:?}");

    // The VM stops and comes back with containers set to restart: the tunnel is back within 3 s
    // of the first container running.
    d.docker(&["rm", "-f", "dr-web"]);
    let ip2 = web_restarting(&d, "dr-web2", "dr-app");
    Topology::wait_until("HTTP to dr-web2", Duration::from_secs(10), || d.get(&ip2).is_ok()).unwrap();
    d.dockerd.restart().unwrap();
    let running = Topology::wait_until("dr-web2 running again", Duration::from_secs(30), || {
        d.dockerd.docker(&["inspect", "-f", "{{.State.Running}}", "dr-web2"]).is_ok_and(|s| s.trim() == "true")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    let t1 = Instant::now();
    Topology::wait_until("HTTP after the VM came back", Duration::from_secs(15), || d.get(&ip2).is_ok())
        .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    let back = t1.elapsed();
    println!(
        "MEASURED [{name}] vm_back_ms={} (after the first container ran; dockerd answered {} ms before that)",
        back.as_millis(),
        running.as_millis()
    );
    assert!(back <= Duration::from_secs(3), "tunnel back in {back:?}");

    // And the idle VM: nothing runs, the guest sleeps, dockerd restarts, then `docker run`.
    d.docker(&["rm", "-f", "dr-web2"]);
    Topology::wait_until("the guest to sleep again", Duration::from_secs(30), || !guest_running(&d))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    d.dockerd.restart().unwrap();
    let t2 = Instant::now();
    let ip3 = d.web("dr-web3", "dr-app");
    Topology::wait_until("HTTP to the first container after the VM woke", Duration::from_secs(15), || {
        d.get(&ip3).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()));
    let woke = t2.elapsed();
    println!(
        "MEASURED [{name}] idle_vm_wake_ms={} (dockerd restarted while the guest slept, then docker run)",
        woke.as_millis()
    );
    assert!(woke <= Duration::from_secs(3), "woken in {woke:?}");
}

/// The guest container's cgroup `cpu.stat` usage (µs): it and every process it spawned.
fn guest_cpu_usec(d: &DockerRig, id: &str) -> u64 {
    let parent = d.dockerd.cgroup_parent();
    let dirs: Vec<_> =
        [format!("{parent}/{id}"), format!("{parent}/docker-{id}.scope")].iter().flat_map(|n| cgroup_dirs(n)).collect();
    for dir in &dirs {
        if let Ok(text) = std::fs::read_to_string(dir.join("cpu.stat")) {
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix("usage_usec ")) {
                return v.trim().parse().unwrap_or(0);
            }
        }
        // cgroup v1: cpuacct.usage is in ns.
        if let Ok(text) = std::fs::read_to_string(dir.join("cpuacct.usage")) {
            return text.trim().parse::<u64>().unwrap_or(0) / 1000;
        }
    }
    panic!("no cgroup for the guest container {id} under {parent} (looked in {dirs:?})");
}

/// Issue 20's target for the first container after a cold start, from `docker run` returning.
const COLD_START_TARGET: Duration = Duration::from_millis(1500);

/// Time until HTTP to `ip` answers, in tries of at most 250 ms (a lost SYN would otherwise
/// add its 1 s retransmission to the measurement).
fn until_http(d: &DockerRig, ip: &str, what: &str) -> Duration {
    let t = &d.rig.topo;
    Topology::wait_until(what, Duration::from_secs(15), || {
        t.http_get(t.ns_mac(), &format!("http://{ip}/"), Duration::from_millis(250)).is_ok()
    })
    .unwrap_or_else(|e| panic!("{e}\nguest:\n{}\n{}", d.guest_logs(), d.logs()))
}

/// Where the time to the first answer went: the controller's, the helper's and the guest's log
/// lines from 3 s before `docker run` to the answer, in ms after `docker run` started
/// (`answered` counts from `docker run` returning).
fn print_timeline(d: &DockerRig, what: &str, start: SystemTime, run_returned: Duration, answered: Duration) {
    let (ctl, helper, guest) = (read(&d.controller_log), read(&d.rig.helper_log), guest_log_lines(d));
    let logs = [("controller", ctl.as_str()), ("helper", helper.as_str()), ("guest", guest.as_str())];
    println!(
        "MEASURED {what}_timeline (ms after `docker run` started; it returned at +{} ms, the first answer at +{} ms):",
        run_returned.as_millis(),
        (run_returned + answered).as_millis()
    );
    for line in timeline::merge(&logs, start, Duration::from_secs(3), run_returned + answered) {
        println!("MEASURED   {line}");
    }
}

/// The guest's own lines, both streams (`docker logs` gives the CLI's stdout only the
/// container's stdout): from Docker's json-file log.
fn guest_log_lines(d: &DockerRig) -> String {
    let path = d.dockerd.docker(&["inspect", "-f", "{{.LogPath}}", "dockroute-guest"]).unwrap_or_default();
    read(std::path::Path::new(path.trim()))
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("log").and_then(|m| m.as_str()).map(str::to_string))
        .collect()
}

fn image_present(d: &DockerRig) -> bool {
    d.dockerd.docker(&["image", "inspect", &dockroute_controller_image()]).is_ok()
}

#[test]
fn a_cold_start_without_the_guest_image_answers_the_first_container_soon() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let slot = 63;
    // `prepare` leaves the guest image out of the engine, the way a fresh install finds it.
    let mut d = DockerRig::prepare(slot, Engine::V28);
    d.controller_args.clear();
    let tar_mb = std::fs::metadata(&d.tar).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    d.start_controller();
    let n1 = subnet(slot, 1);
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    let t0 = Instant::now();
    let wall0 = SystemTime::now();
    let ip = d.web("dr-web", "dr-app");
    let run_returned = t0.elapsed();
    let first = until_http(&d, &ip, "HTTP to the first container after the app started");
    print_timeline(&d, "cold_start", wall0, run_returned, first);
    println!(
        "MEASURED cold_start_ms={} (app started, then network create + docker run at once; docker run returned after {} ms; image tarball {tar_mb:.1} MB; target ≤ {} ms: {})",
        first.as_millis(),
        run_returned.as_millis(),
        COLD_START_TARGET.as_millis(),
        if first <= COLD_START_TARGET { "met" } else { "missed" }
    );

    // The guest sleeps; the engine loses the image (a reset VM, a prune) and restarts. The
    // image comes back while the guest still sleeps, and the first container does not wait.
    d.docker(&["rm", "-f", "dr-web"]);
    Topology::wait_until("the guest to sleep", Duration::from_secs(30), || !guest_running(&d))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    d.docker(&["rm", "-f", "dockroute-guest"]);
    d.docker(&["rmi", &dockroute_controller_image()]);
    d.dockerd.restart().unwrap();
    Topology::wait_until("the image loaded while the guest sleeps", Duration::from_secs(30), || image_present(&d))
        .unwrap_or_else(|e| panic!("{e}\n{}", d.logs()));
    assert!(!guest_running(&d), "loading the image does not wake the guest: {}", d.logs());
    let t1 = Instant::now();
    let wall1 = SystemTime::now();
    let ip2 = d.web("dr-web2", "dr-app");
    let run_returned = t1.elapsed();
    let woke = until_http(&d, &ip2, "HTTP to the first container after the image was reloaded");
    print_timeline(&d, "wake_after_reload", wall1, run_returned, woke);
    println!(
        "MEASURED wake_after_reload_ms={} (image loaded while asleep; docker run returned after {} ms; target ≤ {} ms: {})",
        woke.as_millis(),
        run_returned.as_millis(),
        COLD_START_TARGET.as_millis(),
        if woke <= COLD_START_TARGET { "met" } else { "missed" }
    );
    // The old way loaded it now, after `docker run`: a generous bound that still tells.
    assert!(woke <= Duration::from_secs(4), "woken in {woke:?}");
}

#[test]
fn the_guests_idle_cpu_in_real_docker_is_at_most_a_twentieth_of_a_percent() {
    if !require_root() || !Engine::V28.require() {
        return;
    }
    let slot = 49;
    let secs: u64 = std::env::var("DOCKROUTE_IDLE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let d = DockerRig::up(slot, Engine::V28);
    let n1 = subnet(slot, 1);
    d.docker(&["network", "create", "--subnet", &n1, "dr-app"]);
    wait_route(&d, &n1, true, "route");
    let ip = d.web("dr-web", "dr-app");
    Topology::wait_until("HTTP", Duration::from_secs(10), || d.get(&ip).is_ok()).unwrap();
    let id = d.docker(&["inspect", "-f", "{{.Id}}", "dockroute-guest"]).trim().to_string();
    // Let the start settle (the first firewall apply, its notifications' check).
    std::thread::sleep(Duration::from_secs(3));
    let (u0, t0) = (guest_cpu_usec(&d, &id), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let (u1, wall) = (guest_cpu_usec(&d, &id), t0.elapsed());
    let pct = (u1 - u0) as f64 / wall.as_micros() as f64 * 100.0;
    println!(
        "MEASURED guest_idle_cpu_pct={pct:.4} ({} µs of CPU in {:.1} s, one container, Engine {})",
        u1 - u0,
        wall.as_secs_f64(),
        Engine::V28.version().unwrap_or_default().trim()
    );
    assert!(d.get(&ip).is_ok(), "the tunnel still works after the idle window");
    assert!(pct <= 0.05, "idle guest used {pct:.4} % of a core");
}
