//! A teammate's machine for the share tests: namespace `drt{S}-tm`, joined to "mac" by a veth
//! (mac 198.18.(150+S).1/24, teammate .2; a second teammate `drt{S}-tm1` on its own veth,
//! 198.19.(250-n).1/24 and .2), running Debian's `wireguard-go` configured from
//! exactly what `dockroute-helper share add` printed (through `wg-quick strip`, as wg-quick
//! itself does). Everything it starts is killed and its namespace deleted on drop.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::netns::{run_bounded, Topology};
use crate::rig::bin;

type Res<T> = Result<T, String>;

const RUN: Duration = Duration::from_secs(20);

pub struct Teammate {
    pub ns: String,
    pub slot: u8,
    /// 0 for the first teammate of a topology, 1.. for more.
    pub nth: u8,
    dir: PathBuf,
    children: Vec<Child>,
    interfaces: Vec<String>,
}

/// What the printed config says besides the `wg` part (which `wg-quick strip` gives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Printed {
    pub address: String,
    pub mtu: String,
    pub allowed: Vec<String>,
    pub peer_public_key: String,
}

impl Printed {
    pub fn parse(text: &str) -> Res<Printed> {
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()))
                .ok_or(format!("no `{key}` in the printed config:\n{text}"))
        };
        Ok(Printed {
            address: value("Address")?,
            mtu: value("MTU")?,
            allowed: value("AllowedIPs")?.split(',').map(|s| s.trim().to_string()).collect(),
            peer_public_key: value("PublicKey")?,
        })
    }
}

impl Teammate {
    pub fn create(topo: &Topology) -> Res<Teammate> {
        Teammate::create_nth(topo, 0)
    }

    /// Another teammate's machine on the same "mac" (`nth` 1..=8), on a network of its own.
    pub fn create_nth(topo: &Topology, nth: u8) -> Res<Teammate> {
        let slot = topo.slot;
        let (ns, dir) = match nth {
            0 => (format!("drt{slot}-tm"), topo.dir().join("teammate")),
            n => (format!("drt{slot}-tm{n}"), topo.dir().join(format!("teammate{n}"))),
        };
        let veth = if nth == 0 { "veth-tm".to_string() } else { format!("veth-tm{nth}") };
        let me = Teammate { ns: ns.clone(), slot, nth, dir, children: Vec::new(), interfaces: Vec::new() };
        fs::create_dir_all(&me.dir).map_err(|e| e.to_string())?;
        me.purge();
        root(&["ip", "netns", "add", &ns])?;
        let mac = topo.ns_mac();
        root(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
        root(&["ip", "-n", mac, "link", "add", &veth, "type", "veth", "peer", "name", "veth-mac", "netns", &ns])?;
        root(&["ip", "-n", mac, "addr", "add", &format!("{}/24", me.mac_side()), "dev", &veth])?;
        root(&["ip", "-n", mac, "link", "set", &veth, "up"])?;
        root(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", me.addr()), "dev", "veth-mac"])?;
        root(&["ip", "-n", &ns, "link", "set", "veth-mac", "up"])?;
        Ok(me)
    }

    /// The Mac's address on the teammate's network (the helper's `expose` address).
    pub fn mac_side(&self) -> Ipv4Addr {
        match self.nth {
            0 => Ipv4Addr::new(198, 18, 150 + self.slot, 1),
            n => Ipv4Addr::new(198, 19, 250 - n, 1),
        }
    }

    pub fn addr(&self) -> Ipv4Addr {
        match self.nth {
            0 => Ipv4Addr::new(198, 18, 150 + self.slot, 2),
            n => Ipv4Addr::new(198, 19, 250 - n, 2),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(args);
        for v in ["http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            c.env_remove(v);
        }
        c
    }

    /// Runs `args` in the teammate's namespace: Ok(stdout).
    pub fn run(&self, args: &[&str], timeout: Duration) -> Res<String> {
        run_bounded(self.cmd(args), timeout, &self.dir)
    }

    /// Starts `args` in the background, output to `log`.
    pub fn spawn(&mut self, args: &[&str], log: &Path) -> Res<()> {
        use std::os::unix::process::CommandExt;
        let out = fs::OpenOptions::new().create(true).append(true).open(log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut c = self.cmd(args);
        c.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        self.children.push(c.spawn().map_err(|e| format!("{args:?}: {e}"))?);
        Ok(())
    }

    /// Waits for every background process (bounded), e.g. a prober that ends by itself.
    pub fn wait_children(&mut self, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A `wireguard-go` interface configured from the printed config, as wg-quick would:
    /// `wg setconf` with the stripped config, then Address, MTU and a route per AllowedIPs.
    pub fn wireguard_up(&mut self, ifname: &str, printed_text: &str) -> Res<Printed> {
        let printed = Printed::parse(printed_text)?;
        // wg-quick names the interface after the file.
        let conf = self.dir.join(format!("{ifname}.conf"));
        fs::write(&conf, printed_text).map_err(|e| e.to_string())?;
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        let stripped = root(&["wg-quick", "strip", &conf.to_string_lossy()])?;
        let wg = self.dir.join(format!("{ifname}.wg"));
        fs::write(&wg, &stripped).map_err(|e| e.to_string())?;
        fs::set_permissions(&wg, fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
        let sock = PathBuf::from(format!("/var/run/wireguard/{ifname}.sock"));
        let _ = fs::remove_file(&sock);
        let log = self.dir.join(format!("{ifname}.log"));
        self.spawn(&["env", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "wireguard-go", "-f", ifname], &log)?;
        self.interfaces.push(ifname.to_string());
        Topology::wait_until("wireguard-go's socket", Duration::from_secs(10), || sock.exists())
            .map_err(|e| format!("{e}: {}", fs::read_to_string(&log).unwrap_or_default()))?;
        self.run(&["wg", "setconf", ifname, &wg.to_string_lossy()], RUN)?;
        self.run(&["ip", "addr", "add", &printed.address, "dev", ifname], RUN)?;
        self.run(&["ip", "link", "set", ifname, "mtu", &printed.mtu, "up"], RUN)?;
        for net in &printed.allowed {
            self.run(&["ip", "route", "replace", net, "dev", ifname], RUN)?;
        }
        Ok(printed)
    }

    /// What the teammate may do to their own side: widen AllowedIPs and route more through it.
    pub fn widen(&self, ifname: &str, peer: &str, nets: &[String]) -> Res<()> {
        self.run(&["wg", "set", ifname, "peer", peer, "allowed-ips", "0.0.0.0/0"], RUN)?;
        for net in nets {
            self.run(&["ip", "route", "replace", net, "dev", ifname], RUN)?;
        }
        Ok(())
    }

    fn purge(&self) {
        if let Ok(pids) = root(&["ip", "netns", "pids", &self.ns]) {
            for pid in pids.split_whitespace() {
                let _ = root(&["kill", "-9", pid]);
            }
        }
        let _ = root(&["ip", "netns", "del", &self.ns]);
    }
}

impl Drop for Teammate {
    fn drop(&mut self) {
        for c in &mut self.children {
            unsafe { kill(-(c.id() as i32), 15) };
        }
        std::thread::sleep(Duration::from_millis(200));
        for c in &mut self.children {
            if matches!(c.try_wait(), Ok(None)) {
                unsafe { kill(-(c.id() as i32), 9) };
            }
            let _ = c.wait();
        }
        self.purge();
        for i in &self.interfaces {
            let _ = fs::remove_file(format!("/var/run/wireguard/{i}.sock"));
        }
    }
}

/// `dockroute-helper share ARGS --socket SOCKET`, as root: Ok(stdout), or the error it printed.
pub fn share_cli(socket: &Path, args: &[&str]) -> Res<String> {
    let out = Command::new(bin("dockroute-helper"))
        .arg("share")
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .map_err(|e| e.to_string())?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        false => Err(format!("share {args:?}: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// `share list --json`.
pub fn share_list(socket: &Path) -> dockroute_api::ShareStatus {
    serde_json::from_str(&share_cli(socket, &["list", "--json"]).unwrap()).unwrap()
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn clock_gettime(clock: i32, tp: *mut [i64; 2]) -> i32;
}

/// CLOCK_MONOTONIC in seconds: the clock Python's `time.monotonic()` reads, so a probe's
/// timestamps and the test's can be compared.
pub fn monotonic_secs() -> f64 {
    let mut t = [0i64; 2];
    unsafe { clock_gettime(1, &mut t) };
    t[0] as f64 + t[1] as f64 / 1e9
}

fn root(args: &[&str]) -> Res<String> {
    let (prog, rest) = args.split_first().ok_or("empty command")?;
    let mut c = Command::new(prog);
    c.args(rest);
    run_bounded(c, RUN, &std::env::temp_dir())
}
