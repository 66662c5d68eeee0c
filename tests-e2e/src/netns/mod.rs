//! Network-namespace topology for Dockroute end-to-end tests (std only, needs root).
//!
//! One `Topology` per test, keyed by `slot` (1..=99) so tests can run in parallel. It lives
//! entirely in four namespaces `drt{S}-{mac,vm,ctr,ctr2}`; the root namespace is never
//! modified. Addresses come only from the benchmarking ranges 198.18.0.0/15 and 2001:2::/48,
//! so no packet can be meant for a real host. `{S:x}` is the slot in hex, `SS` 2-digit hex.
//!
//! ```text
//! mac  veth-vm  198.18.S.1/24  2001:2:0:ffSS::1/64
//!  |
//! vm   veth-mac 198.18.S.2/24  2001:2:0:ffSS::2/64                 (forwarding on)
//!      br0 198.19.S.1/24       2001:2:0:{S:x}::1/64     - veth-ctr  - ctr  eth0 .10 ::10
//!      br1 198.19.(100+S).1/24 2001:2:0:{100+S:x}::1/64 - veth-ctr2 - ctr2 eth0 .10 ::10
//! ```
//! mac has no route to the container subnets until the tunnel (or `add_direct_routes`) adds one.
//!
//! By concern: the topology here (namespaces, addresses, routes, what runs in them), `process`
//! (running a command or a child, bounded in time; knows nothing of the topology), `traffic` (test servers and clients: httpd,
//! a UDP echo, wget, ping; the Python helpers are `udp_echo.py` and `udp_client.py`).

use std::fs::{self, OpenOptions};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

mod process;
mod traffic;

pub(crate) use process::{describe, wait_bounded};
pub use process::{run_bounded, SIGHUP, SIGINT, SIGKILL, SIGTERM};
use process::{signal_child, sys, Res, GRACE, PROXY_VARS, RUN_TIMEOUT};

/// True when the e2e tests can run (root and a working `ip netns`). Otherwise the test fails,
/// unless DOCKROUTE_SKIP_E2E is set: then it prints why and the test returns early.
pub fn require_root() -> bool {
    let why = match Command::new("ip").args(["netns", "list"]).output() {
        _ if unsafe { sys::geteuid() } != 0 => "not running as root".to_string(),
        Ok(o) if o.status.success() => return true,
        Ok(o) => format!("`ip netns list`: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => format!("cannot run `ip`: {e}"),
    };
    // A silent skip would let a run without root look green: skipping must be asked for.
    assert!(
        std::env::var_os("DOCKROUTE_SKIP_E2E").is_some(),
        "netns e2e tests need root and iproute2 `ip netns` ({why}); set DOCKROUTE_SKIP_E2E=1 to skip them"
    );
    eprintln!("SKIPPED (DOCKROUTE_SKIP_E2E): netns e2e tests need root and iproute2 `ip netns` ({why})");
    false
}

/// Names of the network namespaces that start with `prefix` (to check what a test left).
/// Panics if `ip netns list` cannot run: an empty answer must mean "none left", not "unknown".
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("running ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(String::from)
        .collect()
}

pub struct Topology {
    pub slot: u8,
    ns: [String; 4], // mac, vm, ctr, ctr2
    dir: PathBuf,    // scratch: docroots, server logs, captured output
    children: Mutex<Vec<Child>>,
}

impl Topology {
    /// Builds the topology for `slot`, first removing whatever a crashed run left behind.
    pub fn create(slot: u8) -> Res<Topology> {
        if !(1..=99).contains(&slot) {
            return Err(format!("slot {slot} out of range 1..=99"));
        }
        let dir = std::env::temp_dir().join(format!("dockroute-e2e-drt{slot}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let ns = ["mac", "vm", "ctr", "ctr2"].map(|r| format!("drt{slot}-{r}"));
        let t = Topology { slot, ns, dir, children: Mutex::new(Vec::new()) };
        t.purge_namespaces();
        // On error `t` is dropped right here, which tears the half-built topology down.
        t.build().map_err(|e| format!("building topology for slot {slot}: {e}"))?;
        Ok(t)
    }

    fn build(&self) -> Res<()> {
        let [mac, vm, ctr, ctr2] = &self.ns;
        for ns in &self.ns {
            self.add_namespace(ns)?;
            // DAD off before any interface exists, so every v6 address is usable at once.
            self.sysctl(ns, "net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0")?;
            self.ip(ns, "link set lo up")?;
        }
        self.sysctl(vm, "net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")?;
        // A new namespace copies IPv4 settings from the root namespace; the "mac" and the
        // containers are hosts, not routers, whatever the machine running the tests is.
        for ns in [mac, ctr, ctr2] {
            self.sysctl(ns, "net.ipv4.ip_forward=0")?;
        }
        // Each veth is created inside a namespace with its peer placed straight into another,
        // so no interface ever appears in the root namespace.
        self.ip(mac, &format!("link add veth-vm type veth peer name veth-mac netns {vm}"))?;
        let (m, v) = ((self.mac_addr(), self.mac_addr6()), (self.vm_addr(), self.vm_addr6()));
        for (ns, dev, (a4, a6)) in [(mac, "veth-vm", m), (vm, "veth-mac", v)] {
            self.ip(ns, &format!("link set {dev} up"))?;
            self.ip(ns, &format!("addr add {a4}/24 dev {dev}"))?;
            self.ip(ns, &format!("-6 addr add {a6}/64 dev {dev} nodad"))?;
        }
        let s = self.slot;
        for (br, port, ns, n) in [("br0", "veth-ctr", ctr, s), ("br1", "veth-ctr2", ctr2, 100 + s)] {
            let (gw4, gw6) = (Ipv4Addr::new(198, 19, n, 1), v6(n.into(), 1));
            let (a4, a6) = (Ipv4Addr::new(198, 19, n, 10), v6(n.into(), 0x10));
            self.ip(vm, &format!("link add {br} type bridge"))?;
            self.ip(vm, &format!("link set {br} up"))?;
            self.ip(vm, &format!("addr add {gw4}/24 dev {br}"))?;
            self.ip(vm, &format!("-6 addr add {gw6}/64 dev {br} nodad"))?;
            self.ip(vm, &format!("link add {port} type veth peer name eth0 netns {ns}"))?;
            self.ip(vm, &format!("link set {port} master {br} up"))?;
            self.ip(ns, "link set eth0 up")?;
            self.ip(ns, &format!("addr add {a4}/24 dev eth0"))?;
            self.ip(ns, &format!("-6 addr add {a6}/64 dev eth0 nodad"))?;
            self.ip(ns, &format!("route add default via {gw4}"))?;
            self.ip(ns, &format!("-6 route add default via {gw6}"))?;
        }
        Ok(())
    }

    fn add_namespace(&self, ns: &str) -> Res<()> {
        // Parallel first-time `ip netns add` calls can race while making /run/netns a shared
        // mount; a few bounded retries absorb that.
        let mut last = String::new();
        for attempt in 1..=3 {
            match self.exec(root_ip(&["netns", "add", ns]), RUN_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
            let _ = self.exec(root_ip(&["netns", "del", ns]), RUN_TIMEOUT);
            sleep(Duration::from_millis(50 * attempt));
        }
        Err(last)
    }

    /// Kills every process in this slot's namespaces, then deletes them. All of them were
    /// started by this harness; survivors of a crashed run would keep ports and logs busy.
    fn purge_namespaces(&self) {
        let list = self.exec(root_ip(&["netns", "list"]), RUN_TIMEOUT).unwrap_or_default();
        let present: Vec<&str> = list.lines().filter_map(|l| l.split(' ').next()).collect();
        for ns in self.ns.iter().filter(|n| present.contains(&n.as_str())) {
            let pids = self.exec(root_ip(&["netns", "pids", ns]), RUN_TIMEOUT).unwrap_or_default();
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()).filter(|p| *p > 1) {
                unsafe { sys::kill(pid, SIGKILL) };
            }
            let _ = self.exec(root_ip(&["netns", "del", ns]), RUN_TIMEOUT);
        }
    }

    pub fn ns_mac(&self) -> &str {
        &self.ns[0]
    }
    pub fn ns_vm(&self) -> &str {
        &self.ns[1]
    }
    pub fn ns_ctr(&self) -> &str {
        &self.ns[2]
    }
    pub fn ns_ctr2(&self) -> &str {
        &self.ns[3]
    }
    /// Scratch directory; removed on drop unless the test is panicking (logs stay for a look).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn mac_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.slot, 1)
    }
    pub fn vm_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.slot, 2)
    }
    pub fn mac_addr6(&self) -> Ipv6Addr {
        v6(0xff00 | u16::from(self.slot), 1)
    }
    pub fn vm_addr6(&self) -> Ipv6Addr {
        v6(0xff00 | u16::from(self.slot), 2)
    }
    pub fn ctr_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, self.slot, 10)
    }
    pub fn ctr2_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, 100 + self.slot, 10)
    }
    pub fn ctr_addr6(&self) -> Ipv6Addr {
        v6(self.slot.into(), 0x10)
    }
    pub fn ctr2_addr6(&self) -> Ipv6Addr {
        v6(100 + u16::from(self.slot), 0x10)
    }
    pub fn ctr_subnet(&self) -> String {
        format!("198.19.{}.0/24", self.slot)
    }
    pub fn ctr2_subnet(&self) -> String {
        format!("198.19.{}.0/24", 100 + self.slot)
    }
    pub fn ctr_subnet6(&self) -> String {
        format!("{}/64", v6(self.slot.into(), 0))
    }
    pub fn ctr2_subnet6(&self) -> String {
        format!("{}/64", v6(100 + u16::from(self.slot), 0))
    }

    /// `ip netns exec NS program`, without proxy variables; add args and stdio as needed.
    /// Panics if `ns` is not one of ours, so nothing runs in the root namespace by mistake.
    pub fn cmd(&self, ns: &str, program: &str) -> Command {
        assert!(self.ns.iter().any(|n| n == ns), "{ns:?} is not a namespace of slot {}", self.slot);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        for v in PROXY_VARS {
            c.env_remove(v);
        }
        c
    }

    /// Runs `args` in `ns` to completion (killed after 20 s): Ok(stdout), or Err naming the
    /// command, its exit status and stderr.
    pub fn run(&self, ns: &str, args: &[&str]) -> Res<String> {
        self.run_timeout(ns, args, RUN_TIMEOUT)
    }

    pub fn run_timeout(&self, ns: &str, args: &[&str], timeout: Duration) -> Res<String> {
        let (prog, rest) = args.split_first().ok_or("run: empty command")?;
        let mut c = self.cmd(ns, prog);
        c.args(rest);
        self.exec(c, timeout)
    }

    fn exec(&self, c: Command, timeout: Duration) -> Res<String> {
        run_bounded(c, timeout, &self.dir)
    }

    /// `ip -n NS ARGS` (whitespace-separated), to configure our namespaces.
    fn ip(&self, ns: &str, args: &str) -> Res<String> {
        let mut c = Command::new("ip");
        c.args(["-n", ns]).args(args.split_whitespace());
        self.exec(c, RUN_TIMEOUT)
    }

    /// Namespaced sysctls, so they are set from inside the namespace.
    fn sysctl(&self, ns: &str, settings: &str) -> Res<String> {
        let mut c = self.cmd(ns, "busybox");
        c.args(["sysctl", "-w"]).args(settings.split_whitespace());
        self.exec(c, RUN_TIMEOUT)
    }

    /// Starts `args` in `ns` in the background in its own process group, stdout+stderr
    /// appended to `log`. Returns a handle (the pid); Drop kills it if still running.
    pub fn spawn(&self, ns: &str, args: &[&str], log: &Path) -> Res<u32> {
        let (prog, rest) = args.split_first().ok_or("spawn: empty command")?;
        let out = OpenOptions::new().create(true).append(true).open(log);
        let out = out.map_err(|e| format!("opening log {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut c = self.cmd(ns, prog);
        c.args(rest).stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = c.spawn().map_err(|e| format!("`{}`: cannot start: {e}", describe(&c)))?;
        let pid = child.id();
        self.kids().push(child);
        Ok(pid)
    }

    fn kids(&self) -> MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_kid<T>(&self, handle: u32, f: impl FnOnce(&mut Child) -> Res<T>) -> Res<T> {
        let mut kids = self.kids();
        f(kids.iter_mut().find(|c| c.id() == handle).ok_or(format!("no spawned child {handle}"))?)
    }

    /// Sends `sig` to a running child's process group and returns at once (e.g. SIGHUP).
    pub fn signal(&self, handle: u32, sig: i32) -> Res<()> {
        self.with_kid(handle, |c| match signal_child(c, sig) {
            true => Ok(()),
            false => Err(format!("child {handle} is not running")),
        })
    }

    /// Sends `sig` and waits up to 2 s: Ok(exit status), also if it had exited already.
    /// A child still running after that is SIGKILLed and reported as Err.
    pub fn kill(&self, handle: u32, sig: i32) -> Res<ExitStatus> {
        self.with_kid(handle, |c| {
            signal_child(c, sig);
            if let Some(s) = wait_bounded(c, GRACE) {
                return Ok(s);
            }
            signal_child(c, SIGKILL);
            let _ = wait_bounded(c, GRACE);
            Err(format!("child {handle} ignored signal {sig} for {GRACE:?}; sent SIGKILL"))
        })
    }

    /// Exit status once a spawned child has exited; None while it runs (or if unknown).
    pub fn status(&self, handle: u32) -> Option<ExitStatus> {
        self.with_kid(handle, |c| c.try_wait().map_err(|e| e.to_string())).ok().flatten()
    }

    /// Baseline path without the tunnel: mac routes both container subnets via the vm.
    /// `add`, not `replace`: it fails loudly rather than clobber routes the tunnel made.
    pub fn add_direct_routes(&self) -> Res<()> {
        for (fam, net, gw) in self.direct_routes() {
            self.ip(self.ns_mac(), &format!("{fam} route add {net} via {gw}"))?;
        }
        Ok(())
    }

    /// Removes only the routes `add_direct_routes` made (matched by gateway); idempotent.
    pub fn remove_direct_routes(&self) -> Res<()> {
        for (fam, net, gw) in self.direct_routes() {
            match self.ip(self.ns_mac(), &format!("{fam} route del {net} via {gw}")) {
                Err(e) if !e.contains("No such process") => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    fn direct_routes(&self) -> [(&str, String, String); 4] {
        let (v4, v6) = (self.vm_addr().to_string(), self.vm_addr6().to_string());
        [
            ("-4", self.ctr_subnet(), v4.clone()),
            ("-4", self.ctr2_subnet(), v4),
            ("-6", self.ctr_subnet6(), v6.clone()),
            ("-6", self.ctr2_subnet6(), v6),
        ]
    }

    /// Pings ctr and ctr2 over v4 and v6 from mac (needs `add_direct_routes` or the tunnel).
    pub fn check_direct_path(&self) -> Res<()> {
        let (c, c2) = (self.ctr_addr(), self.ctr2_addr());
        for a in [c.into(), c2.into(), self.ctr_addr6().into(), self.ctr2_addr6().into()] {
            self.ping(self.ns_mac(), a, 1, Duration::from_secs(2))?;
        }
        Ok(())
    }

    /// `ip -4 route` + `ip -6 route` of `ns`; for diagnostics, so errors come back as text.
    pub fn routes(&self, ns: &str) -> String {
        self.show(ns, &["-4 route", "-6 route"])
    }
    pub fn links(&self, ns: &str) -> String {
        self.show(ns, &["link"])
    }
    pub fn addrs(&self, ns: &str) -> String {
        self.show(ns, &["addr"])
    }
    /// Addresses and routes of all four namespaces, for failure messages.
    pub fn dump(&self) -> String {
        self.ns.iter().map(|n| format!("=== {n}\n{}{}", self.addrs(n), self.routes(n))).collect()
    }
    fn show(&self, ns: &str, what: &[&str]) -> String {
        what.iter().map(|w| format!("$ ip {w}\n{}\n", self.ip(ns, w).unwrap_or_else(|e| e))).collect()
    }

    /// Polls `f` every ~20 ms until it returns true (Ok(elapsed)) or `timeout` passes.
    pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> Res<Duration> {
        let start = Instant::now();
        // Every round but the last sleeps 20 ms, so the count only backs up the clock.
        for _ in 0..=timeout.as_millis() / 20 + 1 {
            if f() {
                return Ok(start.elapsed());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            sleep(left.min(Duration::from_millis(20)));
        }
        Err(format!("timed out after {:?} waiting for {what}", start.elapsed()))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let mut kids = std::mem::take(&mut *self.kids());
        for c in kids.iter_mut() {
            signal_child(c, SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        for c in kids.iter_mut() {
            if wait_bounded(c, deadline.saturating_duration_since(Instant::now())).is_none() {
                signal_child(c, SIGKILL);
                let _ = wait_bounded(c, Duration::from_secs(1));
            }
        }
        self.purge_namespaces(); // also gets grandchildren that left their process group
        if std::thread::panicking() {
            eprintln!("netns: test failed; keeping logs in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn v6(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, 0, net, 0, 0, 0, host)
}

fn root_ip(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(args);
    c
}
