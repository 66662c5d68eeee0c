//! A running tunnel on a `Topology`: the real `dockroute-helper` in "mac", the real
//! `dockroute-guest` in "vm", with logs, restarts and the checks the tests share.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{Topology, SIGTERM};

pub const SIGUSR1: i32 = 10;

type Res<T> = Result<T, String>;

/// The workspace binaries sit next to the test's `deps/` directory; `DOCKROUTE_BIN_DIR` names
/// a directory to take them from first (the load suite measures release binaries).
pub fn bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKROUTE_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(path.exists(), "{} missing: run `cargo build --workspace --bins` first", path.display());
    path
}

/// The start of a Python client of the helper's API (`python3 -c PRELUDE+REST SOCKET …`): a
/// connection to `sys.argv[1]` as `s`, and `send(obj)` / `recv()` in its framing (4-byte length,
/// JSON). The rest of the script follows it.
pub const API_CLIENT_PY: &str = r#"# dockroute e2e API client
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
def send(o):
    b = json.dumps(o).encode(); s.sendall(struct.pack(">I", len(b)) + b)
def recv():
    n = struct.unpack(">I", s.recv(4))[0]; d = b""
    while len(d) < n: d += s.recv(n - len(d))
    return json.loads(d)
"#;

pub struct Rig {
    pub topo: Topology,
    pub config: PathBuf,
    pub secret: PathBuf,
    pub helper: Option<u32>,
    pub guest: Option<u32>,
    pub helper_log: PathBuf,
    pub guest_log: PathBuf,
    /// More arguments for every guest this rig starts (e.g. `--transport tcp`).
    pub guest_args: Vec<String>,
}

impl Rig {
    /// Topology plus a helper config: link subnets in the benchmarking ranges, the helper
    /// listening on the mac end of the veth, and the `route` lines `routes` picks (e.g. the ctr
    /// subnets).
    pub fn new(slot: u8, routes: impl FnOnce(&Topology) -> Vec<String>) -> Res<Rig> {
        let topo = Topology::create(slot)?;
        let routes = routes(&topo);
        let dir = topo.dir().to_path_buf();
        let config = dir.join("dockroute.conf");
        let mut text = format!(
            "# written by the e2e test\naddr 198.18.{}.1/24\naddr6 2001:2:1:{slot:x}::1/64\nhost {}\nport 2511\nmtu 1400\n",
            100 + slot,
            topo.mac_addr()
        );
        for r in &routes {
            text.push_str(&format!("route {r}\n"));
        }
        fs::write(&config, text).map_err(|e| e.to_string())?;
        Ok(Rig {
            secret: dir.join("dockroute.secret"),
            helper_log: dir.join("helper.log"),
            guest_log: dir.join("guest.log"),
            topo,
            config,
            helper: None,
            guest: None,
            guest_args: Vec::new(),
        })
    }

    /// Each rig's helper serves its API here, so parallel tests never share a socket.
    pub fn api_socket(&self) -> PathBuf {
        self.topo.dir().join("api.sock")
    }

    pub fn link_host(&self) -> IpAddr {
        IpAddr::from([198, 18, 100 + self.topo.slot, 1])
    }

    pub fn start_helper(&mut self) -> Res<()> {
        // The log is appended across restarts: wait for a line this start writes.
        let seen = read(&self.helper_log).matches("routes via tunnel").count();
        self.start_helper_no_wait()?;
        // Listening means the TUN and routes are in place.
        let log = self.helper_log.clone();
        Topology::wait_until("helper to listen", Duration::from_secs(5), || {
            read(&log).matches("routes via tunnel").count() > seen
        })
        .map_err(|e| format!("{e}\nhelper log:\n{}", read(&self.helper_log)))?;
        Ok(())
    }

    /// Starts the helper without waiting for its tunnel (for tests where it cannot come up).
    pub fn start_helper_no_wait(&mut self) -> Res<()> {
        let args = [
            bin("dockroute-helper").to_string_lossy().into_owned(),
            "run".into(),
            "--config".into(),
            self.config.to_string_lossy().into_owned(),
            "--socket".into(),
            self.api_socket().to_string_lossy().into_owned(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.helper = Some(self.topo.spawn(self.topo.ns_mac(), &args, &self.helper_log)?);
        Ok(())
    }

    /// Starts a guest with the helper's secret (copied, as the app will copy it into the VM).
    pub fn start_guest(&mut self) -> Res<()> {
        let copy = self.topo.dir().join("guest.secret");
        copy_private(&self.secret, &copy)?;
        let h = self.spawn_guest(&copy, "dockroute0", &self.guest_log.clone())?;
        self.guest = Some(h);
        Ok(())
    }

    pub fn spawn_guest(&self, secret: &Path, tun: &str, log: &Path) -> Res<u32> {
        let server = format!("{}:2511", self.topo.mac_addr());
        let mut args = vec![
            bin("dockroute-guest").to_string_lossy().into_owned(),
            "--server".into(),
            server,
            "--secret-file".into(),
            secret.to_string_lossy().into_owned(),
            "--tun-name".into(),
            tun.into(),
        ];
        args.extend(self.guest_args.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.topo.spawn(self.topo.ns_vm(), &args, log)
    }

    pub fn stop_helper(&mut self, signal: i32) -> Res<()> {
        let h = self.helper.take().ok_or("helper not running")?;
        let status = self.topo.kill(h, signal)?;
        if signal == SIGTERM && !status.success() {
            return Err(format!("helper exited with {status}:\n{}", read(&self.helper_log)));
        }
        Ok(())
    }

    pub fn stop_guest(&mut self, signal: i32) -> Res<()> {
        let h = self.guest.take().ok_or("guest not running")?;
        let status = self.topo.kill(h, signal)?;
        if signal == SIGTERM && !status.success() {
            return Err(format!("guest exited with {status}:\n{}", read(&self.guest_log)));
        }
        Ok(())
    }

    /// Waits for one UDP round trip to the ctr echo server through the tunnel; Ok(elapsed).
    pub fn wait_traffic(&self, what: &str, timeout: Duration) -> Res<Duration> {
        let to = std::net::SocketAddr::new(self.topo.ctr_addr().into(), 7000);
        let start = Instant::now();
        let mut last = String::new();
        for _ in 0..200 {
            match self.topo.udp_exchange(self.topo.ns_mac(), to, b"probe", Duration::from_millis(200)) {
                Ok(r) if r == b"probe" => return Ok(start.elapsed()),
                Ok(r) => last = format!("unexpected reply {r:?}"),
                Err(e) => last = e,
            }
            if start.elapsed() >= timeout {
                break;
            }
        }
        Err(format!(
            "{what}: no UDP echo through the tunnel within {timeout:?} (last: {last})\nhelper log:\n{}\nguest log:\n{}\n{}",
            read(&self.helper_log),
            read(&self.guest_log),
            self.topo.dump()
        ))
    }

    /// Asks the helper for its counters (SIGUSR1) and returns the newest stats line.
    pub fn helper_stats(&self) -> Res<String> {
        self.stats_of(self.helper.ok_or("helper not running")?, &self.helper_log)
    }

    pub fn guest_stats(&self) -> Res<String> {
        self.stats_of(self.guest.ok_or("guest not running")?, &self.guest_log)
    }

    fn stats_of(&self, handle: u32, log: &Path) -> Res<String> {
        let before = read(log).matches("stats:").count();
        self.topo.signal(handle, SIGUSR1)?;
        Topology::wait_until("stats in the log", Duration::from_secs(3), || {
            read(log).matches("stats:").count() > before
        })?;
        let text = read(log);
        Ok(text.lines().rev().find(|l| l.contains("stats:")).unwrap_or_default().to_string())
    }

    /// `dockroute-helper status` of this rig's helper (empty if it does not answer).
    pub fn status_text(&self) -> String {
        let out = std::process::Command::new(bin("dockroute-helper"))
            .args(["status", "--socket"])
            .arg(self.api_socket())
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// Adds lines to the helper's config (before `start_helper`).
    pub fn configure(&self, lines: &str) -> Res<()> {
        let mut text = read(&self.config);
        text.push_str(lines);
        fs::write(&self.config, text).map_err(|e| e.to_string())
    }

    pub fn session_ups(&self, log: &Path) -> usize {
        read(log).matches("session up").count()
    }
}

/// A counter from a stats line, e.g. `drop_count(line, "replay")`.
pub fn counter(stats_line: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    stats_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&key))
        .and_then(|v| v.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {stats_line:?}"))
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

pub fn copy_private(from: &Path, to: &Path) -> Res<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::remove_file(to);
    fs::copy(from, to).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

/// Interfaces with their addresses and flags, and both route tables of a namespace, without
/// what changes on its own (operational state, counters), so a before/after comparison shows
/// only what someone added or removed.
pub fn net_snapshot(topo: &Topology, ns: &str) -> String {
    let mut out = String::new();
    for args in [&["-br", "addr"][..], &["-br", "link"]] {
        let mut a = vec!["ip"];
        a.extend_from_slice(args);
        let text = topo.run(ns, &a).unwrap_or_else(|e| e);
        for line in text.lines() {
            // `name state rest...`: drop the state column (a bridge flips UNKNOWN -> UP alone).
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or_default();
            let rest: Vec<&str> = words.skip(1).collect();
            out.push_str(&format!("{name} {}\n", rest.join(" ")));
        }
    }
    for args in [&["-4", "route"][..], &["-6", "route"]] {
        let mut a = vec!["ip"];
        a.extend_from_slice(args);
        out.push_str(&topo.run(ns, &a).unwrap_or_else(|e| e));
    }
    out
}

/// Every table of both iptables backends, v4 and v6, in a namespace, without the comment lines
/// and packet counters that change on their own.
pub fn iptables_snapshot(topo: &Topology, ns: &str) -> String {
    let mut out = String::new();
    for tool in ["iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"] {
        let text = topo.run(ns, &[tool]).unwrap_or_else(|e| format!("{tool}: {e}"));
        out.push_str(&format!("## {tool}\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            // ":CHAIN POLICY [packets:bytes]" -> without the counters.
            let line = match line.find(" [") {
                Some(i) if line.starts_with(':') => &line[..i],
                _ => line,
            };
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The handshake time the guest measured for its last session, in microseconds.
pub fn last_handshake_us(guest_log: &Path) -> Option<u64> {
    read(guest_log).lines().rev().find_map(|l| {
        let i = l.find("handshake_us")?;
        let digits: String =
            l[i..].chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })
}
