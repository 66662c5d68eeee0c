//! Real dockerd in the "vm" namespace with the helper in "mac" and the real guest image saved
//! as a tarball: what the Docker tests and the app's WebDriver tests stand on.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::docker::{Dockerd, Engine};
use crate::netns::{Topology, SIGTERM};
use crate::rig::{bin, read, Rig};

/// One topology + dockerd + helper + controller. Slots 41..=50 keep their addresses apart:
/// dockerd's bridge 198.18.(150+S).1/24, its pool 198.18.(200+4(S-40)).0/22, the test's docker
/// networks 198.19.(160+8(S-40)+i).0/24 and 2001:2:0:d{S}{i}::/64. Slots 60..=64 (the share's
/// hostile-teammate tests, whose teammate network is 198.18.(150+S).0/24) use a band of their
/// own: bridge 198.18.(180+S).1/24, pool 198.18.(190+S).0/24, networks 198.19.(200+8(S-60)+i).0/24
/// (the same addresses as other slots' in places, but never inside one slot's namespaces).
/// Slots 65..=69 (local_attacker.rs) take the addresses of slot S-20, likewise, and slots
/// 70..=79 (the Podman tests) those of slot S-30 (not 71: its subnet 3, 198.19.171.0/24, is the
/// topology's second container network, 198.19.(100+S).0/24); engines.rs (two engines joined to
/// one Mac) takes 77 and 78, app_https.rs 64. A slot is one set of namespaces and one dockerd:
/// two tests that may run at once never share one.
pub struct DockerRig {
    pub rig: Rig,
    pub dockerd: Dockerd,
    pub controller: Option<u32>,
    pub controller_log: PathBuf,
    /// The guest image, `docker save`d.
    pub tar: PathBuf,
    /// More arguments for `dockroute --headless`. By default `--keep-guest-running`: most
    /// tests watch the tunnel before any container runs; tests/sleep.rs clears it.
    pub controller_args: Vec<String>,
}

pub fn subnet(slot: u8, i: u8) -> String {
    match slot {
        60..=64 => format!("198.19.{}.0/24", 200 + 8 * (slot - 60) + i),
        _ => format!("198.19.{}.0/24", 160 + 8 * (in_band(slot) - 40) + i),
    }
}

/// The slot among 41..=50 whose addresses `slot` uses.
fn in_band(slot: u8) -> u8 {
    match slot {
        65..=69 => slot - 20,
        70..=79 => slot - 30,
        _ => slot,
    }
}

/// dockerd's `--bip` and `--default-address-pool` for a slot (see `DockerRig`).
fn bridge_and_pool(slot: u8) -> (String, String) {
    match slot {
        60..=64 => (format!("198.18.{}.1/24", 180 + slot), format!("198.18.{}.0/24", 190 + slot)),
        _ => {
            let s = in_band(slot);
            (format!("198.18.{}.1/24", 150 + s), format!("198.18.{}.0/22", 200 + 4 * (s - 40)))
        }
    }
}

pub fn subnet6(slot: u8, i: u8) -> String {
    format!("2001:2:0:d{slot:02}{i}::/64")
}

impl DockerRig {
    /// Everything up and a `dockroute --headless` controller with a live session.
    pub fn up(slot: u8, engine: Engine) -> DockerRig {
        let mut me = DockerRig::prepare(slot, engine);
        me.start_controller();
        me.wait_session(Duration::from_secs(20));
        me
    }

    /// dockerd, the guest tarball and the helper; no controller (the caller brings the app).
    pub fn prepare(slot: u8, engine: Engine) -> DockerRig {
        let mut rig = Rig::new(slot, |_| Vec::new()).unwrap();
        let dir = PathBuf::from(format!("/tmp/drd{slot}"));
        let (bip, pool) = bridge_and_pool(slot);
        let dockerd = Dockerd::start(engine, rig.topo.ns_vm(), &dir, &bip, &pool).unwrap();
        dockerd.import_busybox("dr-busybox").unwrap();
        // The real guest image, built on this engine and saved; then removed again, so the
        // controller has to load it from the tarball the way the app does.
        let tar = rig.topo.dir().join("guest.tar");
        let build = Command::new("bash")
            .arg(workspace().join("guest-image/build.sh"))
            .env("DOCKER_HOST", format!("unix://{}", dockerd.socket.display()))
            .env("GUEST_TAR", &tar)
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(build.status.success(), "guest-image/build.sh: {}", String::from_utf8_lossy(&build.stderr));
        let image = dockroute_controller_image();
        dockerd.docker(&["rmi", &image]).unwrap();
        rig.start_helper().unwrap();
        let controller_log = rig.topo.dir().join("controller.log");
        let controller_args = vec!["--keep-guest-running".to_string()];
        DockerRig { rig, dockerd, controller: None, controller_log, tar, controller_args }
    }

    pub fn start_controller(&mut self) {
        let t = &self.rig.topo;
        let args = [
            "env".to_string(),
            format!("DOCKER_HOST=unix://{}", self.dockerd.socket.display()),
            // Everything the app logs, so the secret-in-logs check sees all of it.
            "RUST_LOG=trace".to_string(),
            bin("dockroute").to_string_lossy().into_owned(),
            "--headless".into(),
            "--helper-socket".into(),
            self.rig.api_socket().to_string_lossy().into_owned(),
            "--host-address".into(),
            t.mac_addr().to_string(),
            "--guest-image-tar".into(),
            self.tar.to_string_lossy().into_owned(),
            "--iptables".into(),
            format!("{}+{}", net_addr(&subnet(t.slot, 4)), net_addr(&subnet(t.slot, 5))),
        ];
        let args: Vec<&str> = args.iter().chain(&self.controller_args).map(String::as_str).collect();
        self.controller = Some(t.spawn(t.ns_mac(), &args, &self.controller_log).unwrap());
    }

    pub fn wait_session(&self, timeout: Duration) -> Duration {
        let sock = self.rig.api_socket();
        Topology::wait_until("a live tunnel session", timeout, || {
            helper_status(&sock).is_some_and(|s| s.contains("alive"))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn route_present(&self, net: &str) -> bool {
        self.rig.topo.routes(self.rig.topo.ns_mac()).contains(&format!("{net} dev dockroute0"))
    }

    pub fn logs(&self) -> String {
        format!(
            "controller log:\n{}\nhelper log:\n{}\ndockerd log tail:\n{}",
            read(&self.controller_log),
            read(&self.rig.helper_log),
            self.dockerd.log_tail()
        )
    }

    pub fn docker(&self, args: &[&str]) -> String {
        self.dockerd.docker(args).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()))
    }

    pub fn guest_logs(&self) -> String {
        self.dockerd.docker(&["logs", "dockroute-guest"]).unwrap_or_else(|e| e)
    }

    /// HTTP GET from "mac" to a container, through the tunnel.
    pub fn get(&self, ip: &str) -> Result<String, String> {
        let url = if ip.contains(':') { format!("http://[{ip}]/") } else { format!("http://{ip}/") };
        self.rig.topo.http_get(self.rig.topo.ns_mac(), &url, Duration::from_secs(3))
    }

    /// The app's command line against this rig: its helper, the "mac" address, the guest
    /// tarball, the dashboard shown, the guest kept running (tests/sleep.rs covers sleeping).
    pub fn app_args(&self) -> Vec<String> {
        vec![
            "--show-dashboard".into(),
            "--helper-socket".into(),
            self.rig.api_socket().display().to_string(),
            "--host-address".into(),
            self.rig.topo.mac_addr().to_string(),
            "--guest-image-tar".into(),
            self.tar.display().to_string(),
            "--keep-guest-running".into(),
        ]
    }

    pub fn web(&self, name: &str, net: &str) -> String {
        self.docker(&["run", "-d", "--name", name, "--network", net, "dr-busybox", "sh", "-c", &httpd_cmd(name)]);
        self.dockerd.container_ip(name, net).unwrap()
    }
}

impl Drop for DockerRig {
    fn drop(&mut self) {
        if let Some(h) = self.controller.take() {
            let _ = self.rig.topo.kill(h, SIGTERM);
        }
    }
}

pub fn httpd_cmd(name: &str) -> String {
    format!("busybox mkdir -p /www && echo hello from {name} > /www/index.html && exec httpd -f -p 80 -h /www")
}

pub fn net_addr(cidr: &str) -> String {
    cidr.split('/').next().unwrap().to_string()
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn dockroute_controller_image() -> String {
    format!("dockroute-guest:{}", env!("CARGO_PKG_VERSION"))
}

pub fn helper_status(sock: &std::path::Path) -> Option<String> {
    let out = Command::new(bin("dockroute-helper")).args(["status", "--socket"]).arg(sock).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn wait_route(d: &DockerRig, net: &str, present: bool, what: &str) -> Duration {
    Topology::wait_until(what, Duration::from_secs(5), || d.route_present(net) == present)
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", d.rig.topo.routes(d.rig.topo.ns_mac()), d.logs()))
}
