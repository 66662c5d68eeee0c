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

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// Bound for `run` and the internal `ip` calls: a hung command is killed, never waited on.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);
/// Dropped from every command so busybox wget never heads for a proxy outside the namespaces.
const PROXY_VARS: [&str; 6] = ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"];

type Res<T> = Result<T, String>;

mod sys {
    // std links libc anyway; declaring the two calls avoids a libc crate dependency.
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn geteuid() -> u32;
    }
}

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

    /// busybox httpd on port 80 (v4 and v6) serving "hello from {ns}\n"; returns its handle
    /// once it answers locally.
    pub fn start_http(&self, ns: &str) -> Res<u32> {
        let www = self.dir.join(format!("www-{ns}"));
        let body = format!("hello from {ns}\n");
        let wrote = fs::create_dir_all(&www).and_then(|_| fs::write(www.join("index.html"), body));
        wrote.map_err(|e| format!("docroot {}: {e}", www.display()))?;
        let log = self.dir.join(format!("httpd-{ns}.log"));
        let args = ["busybox", "httpd", "-f", "-vv", "-p", "80", "-h", &www.to_string_lossy()];
        let h = self.spawn(ns, &args, &log)?;
        self.wait_started(h, &format!("httpd in {ns}"), &log, || {
            self.http_get(ns, "http://127.0.0.1/", Duration::from_secs(1)).is_ok()
        })?;
        Ok(h)
    }

    /// python3 UDP echo server on [::]:port (dual stack, so v4 too); returns once bound.
    pub fn start_udp_echo(&self, ns: &str, port: u16) -> Res<u32> {
        let log = self.dir.join(format!("udp-echo-{ns}-{port}.log"));
        let _ = fs::remove_file(&log);
        let h = self.spawn(ns, &["python3", "-c", UDP_ECHO_PY, &port.to_string()], &log)?;
        self.wait_started(h, &format!("UDP echo in {ns} on port {port}"), &log, || {
            fs::read_to_string(&log).is_ok_and(|s| s.contains("ready"))
        })?;
        Ok(h)
    }

    fn wait_started(&self, h: u32, what: &str, log: &Path, ready: impl Fn() -> bool) -> Res<()> {
        let r = Self::wait_until(what, Duration::from_secs(5), || self.status(h).is_some() || ready());
        let why = match (r, self.status(h)) {
            (Ok(_), None) => return Ok(()),
            (_, Some(s)) => s.to_string(),
            (r, None) => r.err().unwrap_or_default(),
        };
        let log_text = fs::read_to_string(log).unwrap_or_default();
        Err(format!("{what} did not start ({why}); {}:\n{log_text}", log.display()))
    }

    /// GET `url` with busybox wget: Ok(body). This busybox's wget has no working `-T` (it
    /// segfaults), so `timeout` is enforced by killing wget.
    pub fn http_get(&self, from: &str, url: &str, timeout: Duration) -> Res<String> {
        self.run_timeout(from, &["busybox", "wget", "-q", "-Y", "off", "-O", "-", url], timeout)
    }

    /// `count` echo requests 0.2 s apart; Ok only if all are answered within `timeout`.
    /// Without a route it fails at once (ENETUNREACH), not after the timeout.
    pub fn ping(&self, from: &str, addr: IpAddr, count: u32, timeout: Duration) -> Res<()> {
        let fam = if addr.is_ipv6() { "-6" } else { "-4" };
        let w = timeout.as_secs_f64().ceil().max(1.0).to_string();
        let (n, a) = (count.to_string(), addr.to_string());
        let args = ["busybox", "ping", fam, "-c", &n, "-i", "0.2", "-W", &w, "-w", &w, &a];
        let out = self.run_timeout(from, &args, timeout + Duration::from_secs(2))?;
        match out.contains(&format!(" {count} packets received")) {
            true => Ok(()),
            false => Err(format!("ping {addr} from {from}: not all {count} replies:\n{out}")),
        }
    }

    /// Sends one datagram from `from` and returns the first reply from `addr`.
    pub fn udp_exchange(&self, from: &str, addr: SocketAddr, data: &[u8], timeout: Duration) -> Res<Vec<u8>> {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
        let t = timeout.as_secs_f64().to_string();
        let args = ["python3", "-c", UDP_CLIENT_PY, &ip, &port, &hex, &t];
        let out = self.run_timeout(from, &args, timeout + Duration::from_secs(5))?; // + python start-up
        let out = out.trim();
        let byte = |i: usize| out.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
        let bytes: Option<Vec<u8>> = (0..out.len()).step_by(2).map(byte).collect();
        bytes.ok_or_else(|| format!("udp_exchange: bad helper output {out:?}"))
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

/// Runs `c` to completion, killed (its whole process group) after `timeout`: Ok(stdout), or Err
/// naming the command, its status and stderr. Output goes to unlinked scratch files in
/// `scratch_dir`, not pipes, so a stray grandchild holding a pipe open can never keep us
/// waiting past the timeout.
pub fn run_bounded(mut c: Command, timeout: Duration, scratch_dir: &Path) -> Res<String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let desc = describe(&c);
    let scratch = || -> Res<(File, File)> {
        let name = format!("run-{}-{}.tmp", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let p = scratch_dir.join(name);
        let f = OpenOptions::new().read(true).write(true).create_new(true).open(&p);
        let f = f.map_err(|e| format!("`{desc}`: creating {}: {e}", p.display()))?;
        let _ = fs::remove_file(&p);
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        Ok((f, f2))
    };
    let ((mut out, out2), (mut err, err2)) = (scratch()?, scratch()?);
    c.stdin(Stdio::null()).stdout(out2).stderr(err2).process_group(0);
    let mut child = c.spawn().map_err(|e| format!("`{desc}`: cannot start: {e}"))?;
    let status = wait_bounded(&mut child, timeout);
    if status.is_none() {
        signal_child(&mut child, SIGKILL);
        let _ = wait_bounded(&mut child, GRACE);
    }
    let (stdout, stderr) = (read_back(&mut out), read_back(&mut err));
    let detail = format!("{}{}", stderr.trim(), tail(&stdout));
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(format!("`{desc}` failed ({s}): {detail}")),
        None => Err(format!("`{desc}` timed out after {timeout:?}, killed: {detail}")),
    }
}

/// Signals the child's process group, but only while the child is unreaped: once reaped,
/// its pid may belong to someone else.
fn signal_child(c: &mut Child, sig: i32) -> bool {
    let pgid = -(c.id() as i32);
    matches!(c.try_wait(), Ok(None)) && pgid < -1 && unsafe { sys::kill(pgid, sig) } == 0
}

pub(crate) fn wait_bounded(c: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match c.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn read_back(f: &mut File) -> String {
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

fn tail(stdout: &str) -> String {
    let t = stdout.trim();
    let cut = t.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
    if t.is_empty() {
        String::new()
    } else {
        format!("\nstdout: {}", &t[cut..])
    }
}

/// The command line for messages, with inline scripts cut to their first line.
pub(crate) fn describe(c: &Command) -> String {
    let arg = |a: &std::ffi::OsStr| match a.to_string_lossy().split_once('\n') {
        Some((first, _)) => format!("'{first} ...'"),
        None => a.to_string_lossy().into_owned(),
    };
    std::iter::once(c.get_program()).chain(c.get_args()).map(arg).collect::<Vec<_>>().join(" ")
}

const UDP_ECHO_PY: &str = r#"# dockroute e2e udp echo
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
print("ready", flush=True)
end = time.monotonic() + 3600
for _ in range(10**6):  # bounded in count and time; the harness kills it at drop anyway
    s.settimeout(max(end - time.monotonic(), 0.001))
    try: data, peer = s.recvfrom(65535)
    except socket.timeout: break
    s.sendto(data, peer)
"#;

const UDP_CLIENT_PY: &str = r#"# dockroute e2e udp client
import socket, sys
host, port, data, t = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(t)
try:
    s.connect((host, port)); s.send(data); print(s.recv(65535).hex())
except socket.timeout: sys.exit("no UDP reply from %s port %d within %ss" % (host, port, t))
except OSError as e: sys.exit("UDP exchange with %s port %d: %s" % (host, port, e))
"#;
