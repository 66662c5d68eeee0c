//! Proves the Docker test environment (tests-e2e/src/docker/): a real dockerd of each engine
//! runs in a topology's "vm" namespace, runs a busybox container on a network the test makes,
//! survives a restart, and leaves nothing behind. Engines come from
//! scripts/docker-env/install-engines.sh; a missing engine fails the test unless
//! DOCKROUTE_SKIP_DOCKER=1.
//!
//! Addresses (slot S = 80 + n, n = 1..=4), all inside the namespaces the test makes:
//! docker0 198.18.(200+n).1/24, address pool 198.18.(224+4n).0/22, the test network
//! 198.19.(200+n).0/24 with the container at .2. The topology's own subnets (198.18.S,
//! 198.19.S, 198.19.(100+S)) do not overlap them.

use dockroute_e2e::docker::{alive, cgroup_dirs, Dockerd, Engine};
use dockroute_e2e::netns::{namespaces_with_prefix, require_root, Topology};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);
const IMAGE: &str = "dockroute-busybox";

fn ready(engine: Engine) -> bool {
    require_root() && engine.require()
}

/// What a test needs to check, after Drop, that a daemon left nothing.
struct Traces {
    pid: u32,
    dir: PathBuf,
    ns: String,
    cgroup: String,
}

impl Traces {
    fn of(d: &Dockerd) -> Traces {
        Traces { pid: d.pid(), dir: d.dir().to_path_buf(), ns: d.ns.clone(), cgroup: d.cgroup_parent() }
    }

    fn assert_gone(&self) {
        assert!(!PathBuf::from(format!("/proc/{}", self.pid)).exists(), "dockerd {} still runs", self.pid);
        assert!(!alive(self.pid));
        let pids = Command::new("ip").args(["netns", "pids", &self.ns]).output().unwrap();
        let pids = String::from_utf8_lossy(&pids.stdout);
        assert!(pids.trim().is_empty(), "processes left in {}: {pids}", self.ns);
        let needle = self.dir.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&needle), "mounts left under {needle}:\n{mounts}");
        assert!(!self.dir.exists(), "{} still exists", self.dir.display());
        assert!(cgroup_dirs(&self.cgroup).is_empty(), "cgroups left: {:?}", cgroup_dirs(&self.cgroup));
        // Processes naming the dir (containerd, shims), wherever they run.
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(!cmd.contains(&needle), "process {:?} left: {cmd}", e.file_name());
        }
    }
}

fn start(engine: Engine, t: &Topology, n: u8) -> Dockerd {
    let (bip, pool) = (format!("198.18.{}.1/24", 200 + n), format!("198.18.{}.0/22", 224 + 4 * n));
    let s = Instant::now();
    let d = Dockerd::start(engine, t.ns_vm(), &t.dir().join("docker"), &bip, &pool)
        .unwrap_or_else(|e| panic!("starting {}: {e}", engine.name()));
    eprintln!("{}: {} started in {:?}", engine.name(), engine.version().unwrap(), s.elapsed());
    d
}

/// Network `drnet` 198.19.(200+n).0/24 and container `web` at .2 serving "hello from <engine>",
/// restarted by dockerd. Returns (container address, bridge name) once it answers.
fn web(d: &Dockerd, n: u8) -> (String, String) {
    d.import_busybox(IMAGE).unwrap();
    let subnet = format!("198.19.{}.0/24", 200 + n);
    let (gw, ip) = (format!("198.19.{}.1", 200 + n), format!("198.19.{}.2", 200 + n));
    d.docker(&["network", "create", "--subnet", &subnet, "--gateway", &gw, "drnet"]).unwrap();
    let script = format!("echo hello from {} > /www/index.html && exec httpd -f -p 80 -h /www", d.engine.name());
    // httpd as PID 1 ignores SIGTERM: without --stop-timeout every dockerd stop waits 10 s.
    let args = ["run", "-d", "--name", "web", "--restart", "always", "--stop-timeout", "1", "--network", "drnet"];
    let args = [&args[..], &["--ip", &ip, IMAGE]].concat();
    d.docker(&[&args[..], &["sh", "-c", script.as_str()]].concat()).unwrap();
    assert_eq!(d.container_ip("web", "drnet").unwrap(), ip);
    wait_for_web(d, &ip);
    (ip, d.bridge_name("drnet").unwrap())
}

fn wait_for_web(d: &Dockerd, ip: &str) {
    let url = format!("http://{ip}/");
    let want = format!("hello from {}\n", d.engine.name());
    let mut last = String::new();
    let r =
        Topology::wait_until(&format!("{url} from {}", d.ns), Duration::from_secs(15), || match d.http_get(&url, T) {
            Ok(body) if body == want => true,
            Ok(body) => {
                last = format!("unexpected body {body:?}");
                false
            }
            Err(e) => {
                last = e;
                false
            }
        });
    r.unwrap_or_else(|e| panic!("{e}: {last}\n{}", d.log_tail()));
}

fn iptables_save(d: &Dockerd, cmd: &str, table: &str) -> String {
    d.in_ns(&[cmd, "-t", table], T).unwrap_or_else(|e| panic!("{e}"))
}

/// Docker's chains in the namespace's filter and nat tables, and the per-container raw DROP rule
/// of Engine 28.
fn check_rules(d: &Dockerd, ip: &str, bridge: &str) {
    let filter = iptables_save(d, "iptables-save", "filter");
    for chain in [":DOCKER ", ":DOCKER-USER ", ":DOCKER-ISOLATION-STAGE-1 ", "-A FORWARD -j DOCKER-USER"] {
        assert!(filter.contains(chain), "{}: no {chain:?} in filter:\n{filter}", d.engine.name());
    }
    let nat = iptables_save(d, "iptables-save", "nat");
    let masq = format!("-A POSTROUTING -s 198.19.{}.0/24 ! -o {bridge} -j MASQUERADE", ip.split('.').nth(2).unwrap());
    assert!(nat.contains(":DOCKER ") && nat.contains(&masq), "{}: nat:\n{nat}", d.engine.name());
    // Which backend: Debian's `iptables` is iptables-nft; both engines call it, so their rules
    // are nf_tables rules and iptables-legacy sees no Docker chain in the namespace.
    let legacy = d.in_ns(&["iptables-legacy-save"], T).unwrap_or_default();
    eprintln!(
        "{}: iptables backend: {}; legacy tables hold Docker chains: {}",
        d.engine.name(),
        filter.lines().next().unwrap_or("?"),
        legacy.contains("DOCKER")
    );
    assert!(!legacy.contains("DOCKER"), "{} wrote legacy iptables rules:\n{legacy}", d.engine.name());

    // Engine 28 blocks direct access to container addresses: for every container address on a
    // bridge network (gateway mode nat, the default) it adds, in the raw table,
    //   -A PREROUTING -d <container ip>/32 ! -i br-<network id:12> -j DROP
    // so a packet for the container that arrives on any other interface (the VM's uplink,
    // the Dockroute TUN) is dropped before routing. Its filter table also gets
    //   -A DOCKER ! -i br-<id> -o br-<id> -j DROP
    // (only published ports are let through). Engine 20.10 has neither.
    let raw = iptables_save(d, "iptables-save", "raw");
    let drop = format!("-A PREROUTING -d {ip}/32 ! -i {bridge} -j DROP");
    let filter_drop = format!("-A DOCKER ! -i {bridge} -o {bridge} -j DROP");
    match d.engine {
        Engine::V28 => {
            assert!(raw.contains(&drop), "engine28: no {drop:?} in raw:\n{raw}");
            assert!(filter.contains(&filter_drop), "engine28: no {filter_drop:?} in filter:\n{filter}");
        }
        Engine::V20 => {
            assert!(!raw.contains("-j DROP"), "engine20 has raw DROP rules:\n{raw}");
            assert!(!filter.contains(&filter_drop), "engine20: {filter_drop:?} in filter:\n{filter}");
        }
        Engine::Podman4 | Engine::Podman5 => unreachable!("dockerd's own rules: these tests start dockerd only"),
    }
}

/// From mac, routed through the vm namespace (not from the bridge): Engine 20.10 forwards it,
/// Engine 28's DROP rules stop it (the reason Dockroute needs its VM firewall rules).
fn check_direct_access(t: &Topology, d: &Dockerd, ip: &str, n: u8) {
    let net = format!("198.19.{}.0/24", 200 + n);
    t.run(t.ns_mac(), &["ip", "route", "add", &net, "via", &t.vm_addr().to_string()]).unwrap();
    let got = t.http_get(t.ns_mac(), &format!("http://{ip}/"), T);
    match d.engine {
        Engine::V20 => assert_eq!(got.unwrap(), "hello from engine20\n"),
        Engine::V28 => assert!(got.is_err(), "engine28 let a routed packet reach {ip}: {got:?}"),
        Engine::Podman4 | Engine::Podman5 => unreachable!("these tests start dockerd only"),
    }
    t.run(t.ns_mac(), &["ip", "route", "del", &net, "via", &t.vm_addr().to_string()]).unwrap();
}

/// The topology's own bridges (br0, br1 in vm) with dockerd in the namespace: IPv4 from mac
/// to ctr still forwards (the topology enabled forwarding first, so neither engine turns the
/// FORWARD policy to DROP). IPv6 differs: Engine 20.10 with --ip6tables sets the ip6tables
/// FORWARD policy to DROP regardless, so mac reaches ctr over v6 only with Engine 28.
fn check_topology_path(t: &Topology, d: &Dockerd) {
    t.add_direct_routes().unwrap();
    for a in [t.ctr_addr(), t.ctr2_addr()] {
        t.ping(t.ns_mac(), a.into(), 1, T).unwrap_or_else(|e| panic!("{e}\n{}", t.dump()));
    }
    let v4 = iptables_save(d, "iptables-save", "filter");
    assert!(v4.contains(":FORWARD ACCEPT"), "{}: v4 FORWARD policy:\n{v4}", d.engine.name());
    let v6 = iptables_save(d, "ip6tables-save", "filter");
    let ping6 = t.ping(t.ns_mac(), t.ctr_addr6().into(), 1, T);
    match d.engine {
        Engine::V20 => {
            assert!(v6.contains(":FORWARD DROP"), "engine20: v6 FORWARD policy:\n{v6}");
            assert!(ping6.is_err(), "engine20 forwarded v6 despite FORWARD DROP");
        }
        Engine::V28 => {
            assert!(v6.contains(":FORWARD ACCEPT"), "engine28: v6 FORWARD policy:\n{v6}");
            ping6.unwrap_or_else(|e| panic!("{e}\n{}", t.dump()));
        }
        Engine::Podman4 | Engine::Podman5 => unreachable!("these tests start dockerd only"),
    }
    t.remove_direct_routes().unwrap();
}

fn full_cycle(engine: Engine, n: u8) {
    if !ready(engine) {
        return;
    }
    let slot = 80 + n;
    let prefix = format!("drt{slot}-");
    let t = Topology::create(slot).unwrap();
    let mut d = start(engine, &t, n);
    let (ip, bridge) = web(&d, n);
    check_rules(&d, &ip, &bridge);
    check_direct_access(&t, &d, &ip, n);
    check_topology_path(&t, &d);

    if engine == Engine::V20 {
        // The guest image's base (Debian minbase + iptables + iproute2) imports and runs.
        d.import_base("dockroute-base").unwrap();
        let out = d.docker(&["run", "--rm", "--network", "none", "dockroute-base", "iptables-legacy", "-V"]).unwrap();
        assert!(out.contains("legacy"), "{out}");
        let out = d.docker(&["run", "--rm", "--network", "none", "dockroute-base", "iptables-nft", "-V"]).unwrap();
        assert!(out.contains("nf_tables"), "{out}");
    }

    // Restart: the container (restart policy always) and its network come back.
    let (old_pid, s) = (d.pid(), Instant::now());
    d.restart().unwrap_or_else(|e| panic!("restarting {}: {e}", engine.name()));
    assert_ne!(d.pid(), old_pid);
    eprintln!("{}: restarted in {:?}", engine.name(), s.elapsed());
    assert!(s.elapsed() < Duration::from_secs(10), "restart took {:?}", s.elapsed());
    wait_for_web(&d, &ip);
    assert_eq!(d.bridge_name("drnet").unwrap(), bridge);
    check_rules(&d, &ip, &bridge);

    let before = Traces::of(&d);
    assert!(!d.processes().is_empty() && !d.mounts().is_empty());
    drop(d);
    before.assert_gone();
    drop(t);
    assert!(namespaces_with_prefix(&prefix).is_empty(), "namespaces left: {:?}", namespaces_with_prefix(&prefix));
}

#[test]
fn engine20_in_vm_namespace() {
    full_cycle(Engine::V20, 1);
}

#[test]
fn engine28_in_vm_namespace() {
    full_cycle(Engine::V28, 2);
}

/// Both engines at once, in two namespaces, started in parallel: separate data and exec roots,
/// containerd sockets and cgroups; each sees only its own container.
#[test]
fn both_engines_at_once() {
    if !(ready(Engine::V20) && ready(Engine::V28)) {
        return;
    }
    let pairs = [(Engine::V20, 3u8), (Engine::V28, 4u8)];
    let topos: Vec<Topology> = pairs.iter().map(|(_, n)| Topology::create(80 + n).unwrap()).collect();
    let daemons: Vec<Dockerd> = std::thread::scope(|s| {
        let hs: Vec<_> = pairs.iter().zip(&topos).map(|((e, n), t)| s.spawn(move || start(*e, t, *n))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let webs: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = daemons.iter().zip(pairs).map(|(d, (_, n))| s.spawn(move || web(d, n))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (a, b) = (&daemons[0], &daemons[1]);
    assert_ne!(a.socket, b.socket);
    assert_ne!(a.pid(), b.pid());
    let server = |d: &Dockerd| d.docker(&["version", "--format", "{{.Server.Version}}"]).unwrap();
    assert!(server(a).starts_with("20.10."), "{}", server(a));
    // sid's docker.io is 28.x now; a later major keeps the DROP rules this is about.
    let major = |v: String| v.split('.').next().and_then(|m| m.parse::<u32>().ok()).unwrap_or(0);
    assert!(major(server(b)) >= 28, "{}", server(b));
    for (d, (ip, bridge)) in daemons.iter().zip(&webs) {
        let ids = d.docker(&["ps", "-q"]).unwrap();
        assert_eq!(ids.lines().count(), 1, "{}: {ids}", d.engine.name());
        check_rules(d, ip, bridge);
        // Its containerd is its own: the socket lives in its exec root.
        assert!(d.dir().join("exec/containerd/containerd.sock").exists());
    }
    // Each namespace reaches only its own daemon's container.
    assert!(a.http_get(&format!("http://{}/", webs[1].0), Duration::from_secs(1)).is_err());
    assert!(b.http_get(&format!("http://{}/", webs[0].0), Duration::from_secs(1)).is_err());

    let traces: Vec<Traces> = daemons.iter().map(Traces::of).collect();
    drop(daemons);
    for t in &traces {
        t.assert_gone();
    }
    drop(topos);
    assert!(namespaces_with_prefix("drt83-").is_empty() && namespaces_with_prefix("drt84-").is_empty());
}

/// A test that died without Drop leaves dockerd, containerd, a shim, a container and mounts
/// behind: the next start with the same dir clears all of it first.
#[test]
fn start_clears_a_crashed_run() {
    if !ready(Engine::V20) {
        return;
    }
    let t = Topology::create(85).unwrap();
    let d = start(Engine::V20, &t, 5);
    let (ip, _) = web(&d, 5);
    let (old_pids, old_pid) = (d.processes(), d.pid());
    assert!(old_pids.len() >= 4, "dockerd, containerd, shim, httpd: {old_pids:?}");
    assert!(!d.mounts().is_empty());
    std::mem::forget(d); // as if the test process had died

    let d = start(Engine::V20, &t, 5);
    for p in &old_pids {
        // The forgotten dockerd stays a zombie of this process: alive() does not count those.
        assert!(!alive(*p), "pid {p} of the crashed run survived");
    }
    assert_ne!(d.pid(), old_pid);
    assert!(d.docker(&["images", "-q"]).unwrap().trim().is_empty(), "not a fresh data root");
    assert!(d.http_get(&format!("http://{ip}/"), Duration::from_secs(1)).is_err());
    let traces = Traces::of(&d);
    drop(d);
    traces.assert_gone();
}
