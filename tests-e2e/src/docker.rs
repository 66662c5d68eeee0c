//! A real dockerd inside a network namespace, for the Docker end-to-end tests (std only, root).
//!
//! The namespace stands for the Docker VM (normally `Topology::ns_vm()`). dockerd is started
//! with `nsenter --net=/run/netns/NS`, which switches the network namespace only: the mount
//! namespace stays the machine's, so /sys/fs/cgroup, overlay mounts and runc work as usual
//! (`ip netns exec` would remount /sys and hide the cgroup hierarchy).
//!
//! Everything of one daemon lives under the `dir` given to [`Dockerd::start`]: data root, exec
//! root (its managed containerd's socket and state), pidfile, API socket, daemon.json and
//! `dockerd.log`; its containers go to the cgroup parent `dockroute-<ns>`. So several daemons
//! (also Engine 20.10 next to 28) run at once in different namespaces, and Drop finds exactly
//! what belonged to one: processes naming `dir` on their command line or sitting in its cgroup,
//! mounts under `dir`. Addresses: the caller passes `--bip` and the address pool, which must lie
//! in 198.18.0.0/15 like every address of the tests.
//!
//! Engines: `scripts/docker-env/install-engines.sh` installs bookworm's docker.io (Engine 20.10,
//! `/usr/sbin/dockerd`) and extracts sid's docker.io (Engine 28, with the raw-table DROP rules
//! for direct access to container addresses) into `$DOCKROUTE_CACHE/docker28/`.
//! Images: nothing is pulled; [`Dockerd::import_busybox`] and [`Dockerd::import_base`]
//! (`scripts/docker-env/base-rootfs.sh`) make them locally.

use crate::netns::{describe, wait_bounded, SIGKILL, SIGTERM};
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

type Res<T> = Result<T, String>;

/// Bound for `docker version` answering after a start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dockerd gets to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Default bound for one docker CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Building the base rootfs (debootstrap) on a machine without the cache.
const BASE_BUILD_TIMEOUT: Duration = Duration::from_secs(900);
/// The longest socket path a sockaddr_un takes (108 with the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// The PATH dockerd and its children (containerd, runc, iptables) get.
const SYS_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Removed from every command: no proxy, no other Docker context or daemon.
const DROPPED_ENV: [&str; 12] = [
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_API_VERSION",
    "DOCKER_CONFIG",
];
/// busybox applets linked in the busybox image (all /bin/busybox).
const BUSYBOX_APPLETS: &str = "sh httpd ping ping6 nc wget sleep ip cat echo ls mkdir rm ps kill hostname ifconfig \
    route true false env id touch printf nslookup traceroute udhcpc sysctl grep timeout";

mod sys {
    // std links libc anyway; declaring the calls avoids a libc crate dependency.
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn umount2(target: *const std::ffi::c_char, flags: i32) -> i32;
    }
    pub const MNT_DETACH: i32 = 2;
}

/// The cache the docker-env scripts fill: DOCKROUTE_CACHE, else DOCKROUTE_CI_CACHE (.ci/run's
/// cache), else /var/tmp/dockroute-ci.
pub fn cache_dir() -> PathBuf {
    let var = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("DOCKROUTE_CACHE").or_else(|| var("DOCKROUTE_CI_CACHE")).unwrap_or_else(|| "/var/tmp/dockroute-ci".into())
}

/// `scripts/docker-env/` of this checkout.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-env")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Engine 20.10, bookworm's docker.io: /usr/sbin/dockerd.
    V20,
    /// Engine 28, sid's docker.io extracted into `$DOCKROUTE_CACHE/docker28/`.
    V28,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::V20, Engine::V28];

    pub fn dockerd_path(&self) -> PathBuf {
        match self {
            Engine::V20 => "/usr/sbin/dockerd".into(),
            Engine::V28 => cache_dir().join("docker28/usr/sbin/dockerd"),
        }
    }

    /// The engine's own docker-proxy (only used for published ports).
    pub fn proxy_path(&self) -> PathBuf {
        self.dockerd_path().with_file_name("docker-proxy")
    }

    /// True when its dockerd is an executable file (install-engines.sh has run).
    pub fn available(&self) -> bool {
        fs::metadata(self.dockerd_path()).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    pub fn name(&self) -> &str {
        match self {
            Engine::V20 => "engine20",
            Engine::V28 => "engine28",
        }
    }

    /// `dockerd --version`, e.g. "Docker version 28.5.2+dfsg4, build 3ef3c07".
    pub fn version(&self) -> Res<String> {
        let mut c = Command::new(self.dockerd_path());
        c.arg("--version");
        run_bounded(c, Duration::from_secs(10)).map(|s| s.trim().to_string())
    }

    /// True when the test may go on with this engine. A missing engine fails the test unless
    /// DOCKROUTE_SKIP_DOCKER=1 is set: then it prints why and the test returns early.
    pub fn require(&self) -> bool {
        if self.available() {
            return true;
        }
        let why = format!(
            "{} ({}) is not installed; run scripts/docker-env/install-engines.sh as root",
            self.name(),
            self.dockerd_path().display()
        );
        assert!(
            std::env::var("DOCKROUTE_SKIP_DOCKER").is_ok_and(|v| v == "1"),
            "{why} (or set DOCKROUTE_SKIP_DOCKER=1)"
        );
        eprintln!("SKIPPED (DOCKROUTE_SKIP_DOCKER=1): {why}");
        false
    }
}

/// The docker CLI: /usr/local/bin/docker (a 28.x client) if present, else bookworm's
/// /usr/bin/docker. Both talk to both engines (the API version is negotiated).
pub fn docker_cli() -> PathBuf {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| "docker".into())
}

/// A running dockerd in a network namespace. Drop stops it and removes every trace.
pub struct Dockerd {
    /// The API socket, `<dir>/docker.sock`.
    pub socket: PathBuf,
    /// The network namespace it runs in.
    pub ns: String,
    pub engine: Engine,
    dir: PathBuf,
    bip: String,
    pool: String,
    child: Option<Child>,
}

impl Dockerd {
    /// Starts dockerd in netns `ns` with everything under `dir` (created; any leftover of a
    /// crashed run there is cleaned up first; removed on drop): `--data-root <dir>/data`,
    /// `--exec-root <dir>/exec` (dockerd's own managed containerd keeps its socket and state
    /// there), `--pidfile`, `-H unix://<dir>/docker.sock`, `--config-file <dir>/daemon.json`,
    /// `--bip bip` (e.g. "198.18.201.1/24") and `--default-address-pool` (`pool`: a CIDR such
    /// as "198.18.228.0/22", split into /24s, or a full "base=...,size=..." spec),
    /// `--ip6tables` (Engine 20.10 also needs `--experimental` for it), containers in the cgroup
    /// parent `dockroute-<ns>`, log in `<dir>/dockerd.log`. Returns once `docker version`
    /// answers through the socket (at most 30 s).
    pub fn start(engine: Engine, ns: &str, dir: &Path, bip: &str, pool: &str) -> Res<Dockerd> {
        if !engine.available() {
            return Err(format!(
                "{}: {} not found (run install-engines.sh)",
                engine.name(),
                engine.dockerd_path().display()
            ));
        }
        check_namespace(ns)?;
        let dir = absolute(dir)?;
        let socket = dir.join("docker.sock");
        let containerd_sock = dir.join("exec/containerd/containerd.sock.ttrpc");
        if containerd_sock.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(format!("{}: too long for a Unix socket path; use a shorter dir", containerd_sock.display()));
        }
        cleanup_dir(&dir, ns);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // Engine 20.10 would otherwise create /etc/docker/key.json; 28 rejects the key.
        let config = match engine {
            Engine::V20 => format!("{{\"deprecated-key-path\": {:?}}}\n", dir.join("key.json").display().to_string()),
            Engine::V28 => "{}\n".to_string(),
        };
        fs::write(dir.join("daemon.json"), config).map_err(|e| format!("writing daemon.json: {e}"))?;
        let mut d =
            Dockerd { socket, ns: ns.to_string(), engine, dir, bip: bip.into(), pool: pool.into(), child: None };
        d.spawn()?;
        Ok(d)
    }

    fn spawn(&mut self) -> Res<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new().create(true).append(true).open(&log_path);
        let log = log.map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let pool = match self.pool.contains("base=") {
            true => self.pool.clone(),
            false => format!("base={},size=24", self.pool),
        };
        let p = |name: &str| self.dir.join(name).display().to_string();
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns)).arg("--").arg(self.engine.dockerd_path());
        c.args(["--config-file", &p("daemon.json"), "--data-root", &p("data"), "--exec-root", &p("exec")]);
        c.args(["--pidfile", &p("dockerd.pid"), "-H", &format!("unix://{}", self.socket.display())]);
        c.args(["--bip", &self.bip, "--default-address-pool", &pool, "--ip6tables"]);
        if self.engine == Engine::V20 {
            c.arg("--experimental");
        }
        c.arg("--userland-proxy-path").arg(self.engine.proxy_path());
        c.args(["--cgroup-parent", &format!("/{}", self.cgroup_parent())]);
        for v in DROPPED_ENV {
            c.env_remove(v);
        }
        c.env("PATH", SYS_PATH).current_dir(&self.dir);
        c.stdin(Stdio::null()).stdout(log).stderr(log2).process_group(0);
        // nsenter without --fork execs dockerd: the child's pid is dockerd's.
        let child = c.spawn().map_err(|e| format!("starting dockerd: `{}`: {e}", describe(&c)))?;
        self.child = Some(child);
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("{} exited during start ({status}); {}", self.what(), self.log_tail()));
            }
            match self.docker_timeout(&["version", "--format", "{{.Server.Version}}"], Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(e) => last = e,
            }
            sleep(Duration::from_millis(200));
        }
        self.stop();
        Err(format!("{} did not answer within {START_TIMEOUT:?}: {last}; {}", self.what(), self.log_tail()))
    }

    /// Runs the docker CLI against this daemon (bounded, 60 s): Ok(stdout), or Err naming the
    /// command, its status and stderr.
    pub fn docker(&self, args: &[&str]) -> Res<String> {
        self.docker_timeout(args, CLI_TIMEOUT)
    }

    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Res<String> {
        let mut c = Command::new(docker_cli());
        c.args(args);
        for v in DROPPED_ENV {
            c.env_remove(v);
        }
        // Its own client config dir: no context or credential helper of this machine applies.
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()));
        c.env("DOCKER_CONFIG", self.dir.join("cli"));
        run_bounded(c, timeout)
    }

    /// Runs `args` inside the daemon's network namespace (`nsenter --net`), bounded.
    pub fn in_ns(&self, args: &[&str], timeout: Duration) -> Res<String> {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns)).arg("--").args(args);
        for v in DROPPED_ENV {
            c.env_remove(v);
        }
        c.env("PATH", SYS_PATH);
        run_bounded(c, timeout)
    }

    /// GET `url` with busybox wget from the daemon's namespace: Ok(body).
    pub fn http_get(&self, url: &str, timeout: Duration) -> Res<String> {
        self.in_ns(&["busybox", "wget", "-q", "-Y", "off", "-O", "-", url], timeout)
    }

    /// Imports `tag`: an image holding only /bin/busybox (busybox-static) and symlinks for
    /// sh, httpd, ping, nc, wget, sleep, ip and a few more, /tmp and a minimal /etc;
    /// `CMD ["/bin/sh"]`.
    pub fn import_busybox(&self, tag: &str) -> Res<()> {
        let busybox = Path::new("/bin/busybox");
        let bytes =
            fs::read(busybox).map_err(|e| format!("{}: {e} (apt-get install busybox-static)", busybox.display()))?;
        if has_interpreter(&bytes) {
            return Err("/bin/busybox is dynamically linked: apt-get install busybox-static".into());
        }
        let root = self.dir.join("busybox-rootfs");
        let _ = fs::remove_dir_all(&root);
        let made = (|| -> std::io::Result<()> {
            for d in ["bin", "etc", "tmp", "www"] {
                fs::create_dir_all(root.join(d))?;
            }
            fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
            fs::write(root.join("bin/busybox"), &bytes)?;
            fs::set_permissions(root.join("bin/busybox"), fs::Permissions::from_mode(0o755))?;
            for a in BUSYBOX_APPLETS.split_whitespace() {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(a))?;
            }
            fs::write(
                root.join("etc/passwd"),
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            )?;
            fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
            Ok(())
        })();
        made.map_err(|e| format!("staging the busybox rootfs in {}: {e}", root.display()))?;
        let tar = self.dir.join("busybox.tar");
        let mut c = Command::new("tar");
        c.args(["--numeric-owner", "--owner=0", "--group=0", "-C"]).arg(&root).arg("-cf").arg(&tar).arg(".");
        run_bounded(c, Duration::from_secs(30))?;
        let tar_s = tar.display().to_string();
        let r = self.docker(&["import", "--change", r#"CMD ["/bin/sh"]"#, &tar_s, tag]);
        let _ = fs::remove_file(&tar);
        let _ = fs::remove_dir_all(&root);
        r.map(|_| ())
    }

    /// Imports `tag` from `$DOCKROUTE_CACHE/base-rootfs.tar` (the guest image's base: Debian
    /// bookworm minbase + iptables + iproute2), building it first with base-rootfs.sh if
    /// missing (debootstrap, about 30 s, bounded to 15 min).
    pub fn import_base(&self, tag: &str) -> Res<()> {
        let tar = ensure_base_rootfs()?;
        self.docker_timeout(&["import", &tar.display().to_string(), tag], Duration::from_secs(180)).map(|_| ())
    }

    /// Stops dockerd (SIGTERM, up to 15 s, then SIGKILL) and starts it again with the same
    /// directories and flags; returns once it answers. Containers come back as their restart
    /// policy says (dockerd stops them when it shuts down; run them with `--restart always`).
    /// dockerd waits for each container's stop timeout (10 s unless `docker run --stop-timeout`)
    /// when it ignores SIGTERM, as `busybox httpd` as PID 1 does: use `--stop-timeout 1` there.
    pub fn restart(&mut self) -> Res<()> {
        if !self.stop() {
            eprintln!("docker: {} ignored SIGTERM for {STOP_TIMEOUT:?}; it was SIGKILLed", self.what());
        }
        self.spawn()
    }

    /// dockerd's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// The directory everything of this daemon lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The last 40 lines of dockerd.log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("{} (last lines):\n{}", self.log_path().display(), lines[lines.len().saturating_sub(40)..].join("\n"))
    }

    /// The cgroup parent of its containers (relative to each hierarchy's root).
    pub fn cgroup_parent(&self) -> String {
        format!("dockroute-{}", self.ns)
    }

    /// A container's address on `network` (`docker inspect`).
    pub fn container_ip(&self, container: &str, network: &str) -> Res<String> {
        let f = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        let ip = self.docker(&["inspect", "--format", &f, container])?.trim().to_string();
        if ip.is_empty() {
            Err(format!("{container} has no address on {network}"))
        } else {
            Ok(ip)
        }
    }

    /// The Linux bridge of a bridge network: `com.docker.network.bridge.name` or `br-<id:12>`.
    pub fn bridge_name(&self, network: &str) -> Res<String> {
        let f = r#"{{.Id}} {{index .Options "com.docker.network.bridge.name"}}"#;
        let out = self.docker(&["network", "inspect", "--format", f, network])?;
        let mut it = out.split_whitespace();
        let id = it.next().ok_or(format!("network {network}: no id"))?;
        Ok(match it.next() {
            Some(name) if !name.starts_with('<') => name.to_string(),
            _ => format!("br-{}", &id[..12.min(id.len())]),
        })
    }

    /// Pids of every process belonging to this daemon: dockerd, its containerd, the shims,
    /// docker-proxy (they name `dir` on their command line) and the container processes (in
    /// its cgroup parent).
    pub fn processes(&self) -> Vec<u32> {
        owned_processes(&self.dir, &format!("dockroute-{}", self.ns))
    }

    /// Mount points under `dir` (overlays, netns files, shm, dockerd's bind of its data root).
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(&self.dir)
    }

    /// SIGTERM, wait up to 15 s, then SIGKILL the process group. True if it stopped by itself.
    fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let pid = child.id() as i32;
        if matches!(child.try_wait(), Ok(None)) {
            unsafe { sys::kill(pid, SIGTERM) };
        }
        if wait_bounded(&mut child, STOP_TIMEOUT).is_some() {
            return true;
        }
        if matches!(child.try_wait(), Ok(None)) {
            unsafe { sys::kill(-pid, SIGKILL) };
        }
        let _ = wait_bounded(&mut child, Duration::from_secs(5));
        false
    }

    fn what(&self) -> String {
        format!("{} ({}) in {}", self.engine.name(), self.engine.dockerd_path().display(), self.ns)
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
            let ids = self.docker_timeout(&["ps", "-aq"], Duration::from_secs(20)).unwrap_or_default();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(&ids);
                if let Err(e) = self.docker_timeout(&args, Duration::from_secs(30)) {
                    eprintln!("docker: removing containers: {e}");
                }
            }
        }
        self.stop();
        if std::thread::panicking() {
            // The dir goes (it holds a data root); keep the log beside it for a look.
            let keep = self.dir.with_extension("dockerd.log");
            if fs::copy(self.log_path(), &keep).is_ok() {
                eprintln!("docker: test failed; dockerd log kept in {}", keep.display());
            }
        }
        cleanup_dir(&self.dir, &self.ns);
    }
}

/// True for a dynamically linked ELF64 executable (it has a PT_INTERP program header): such a
/// busybox cannot run in an image that holds nothing else.
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| elf.get(o..o + 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| elf.get(o..o + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| elf.get(phoff + i * phentsize..phoff + i * phentsize + 4) == Some(&3u32.to_le_bytes()[..]))
}

/// Builds base-rootfs.tar with the script if missing; returns its path.
pub fn ensure_base_rootfs() -> Res<PathBuf> {
    let tar = cache_dir().join("base-rootfs.tar");
    if fs::metadata(&tar).is_ok_and(|m| m.len() > 0) {
        return Ok(tar);
    }
    let mut c = Command::new("bash");
    c.arg(scripts_dir().join("base-rootfs.sh")).env("DOCKROUTE_CACHE", cache_dir());
    run_bounded(c, BASE_BUILD_TIMEOUT)?;
    match tar.is_file() {
        true => Ok(tar),
        false => Err(format!("base-rootfs.sh ran but {} is missing", tar.display())),
    }
}

/// The namespace must exist and must not be this process's own (the root) namespace.
fn check_namespace(ns: &str) -> Res<()> {
    if ns.is_empty() || ns.contains('/') {
        return Err(format!("bad namespace name {ns:?}"));
    }
    let path = PathBuf::from(format!("/run/netns/{ns}"));
    let theirs = fs::metadata(&path).map_err(|e| format!("network namespace {ns}: {}: {e}", path.display()))?;
    let ours = fs::metadata("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Err(format!("{ns} is the root network namespace: dockerd runs only in a test namespace"));
    }
    Ok(())
}

fn absolute(dir: &Path) -> Res<PathBuf> {
    match dir.is_absolute() {
        true => Ok(dir.to_path_buf()),
        false => std::env::current_dir().map(|c| c.join(dir)).map_err(|e| e.to_string()),
    }
}

/// Stops whatever of a daemon in `dir` still runs, unmounts everything under `dir`, removes
/// its cgroup directories and `dir`. Bounded; never panics. Also used before a start, to clear
/// what a crashed run left.
fn cleanup_dir(dir: &Path, ns: &str) {
    let cgroup = format!("dockroute-{ns}");
    for sig in [SIGTERM, SIGKILL] {
        let pids = owned_processes(dir, &cgroup);
        if pids.is_empty() {
            break;
        }
        for &pid in &pids {
            unsafe { sys::kill(pid as i32, sig) };
        }
        let deadline = Instant::now() + Duration::from_secs(if sig == SIGTERM { 3 } else { 2 });
        while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
            sleep(Duration::from_millis(20));
        }
    }
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            if let Ok(c) = CString::new(m.as_os_str().as_bytes()) {
                unsafe { sys::umount2(c.as_ptr(), sys::MNT_DETACH) };
            }
        }
    }
    remove_cgroups(&cgroup);
    if dir.exists() && mounts_under(dir).is_empty() {
        if let Err(e) = fs::remove_dir_all(dir) {
            eprintln!("docker: removing {}: {e}", dir.display());
        }
    }
}

/// Processes naming `dir/` on their command line or living in cgroup `/<cgroup>/…`.
fn owned_processes(dir: &Path, cgroup: &str) -> Vec<u32> {
    let needle = format!("{}/", dir.display()).into_bytes();
    let cg = format!(":/{cgroup}/");
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me || pid <= 1 || !alive(pid) {
            continue;
        }
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let in_cmd = cmdline.windows(needle.len()).any(|w| w == needle.as_slice());
        let in_cg = fs::read_to_string(e.path().join("cgroup"))
            .is_ok_and(|s| s.lines().any(|l| l.contains(&cg) || l.ends_with(&cg[..cg.len() - 1])));
        if in_cmd || in_cg {
            pids.push(pid);
        }
    }
    pids
}

/// True while `pid` exists and is not a zombie (a zombie's parent has yet to reap it; it holds
/// nothing any more).
pub fn alive(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) S ...": the state follows the last ')', as comm may hold anything.
    let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
    matches!(state, Some(s) if s != "Z" && s != "X")
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.display().to_string();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .filter(|m| *m == d || m.starts_with(&format!("{d}/")))
        .map(PathBuf::from)
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v.dedup();
    v
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup directories `<hierarchy>/<name>` (v1 controllers and the v2 root), if any.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v = vec![root.join(name)];
    if let Ok(entries) = fs::read_dir(root) {
        v.extend(entries.flatten().map(|e| e.path().join(name)));
    }
    v.into_iter().filter(|p| p.is_dir()).collect()
}

/// rmdir of a cgroup and its children, deepest first (empty cgroups only; bounded depth).
fn remove_cgroups(name: &str) {
    fn rm(dir: &Path, depth: u32) {
        if depth > 8 {
            return;
        }
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path(), depth + 1);
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for d in cgroup_dirs(name) {
        rm(&d, 0);
    }
}

/// Runs `c` to completion, killed after `timeout` (scratch files in the temp dir); see
/// `netns::run_bounded`.
pub fn run_bounded(c: Command, timeout: Duration) -> Res<String> {
    crate::netns::run_bounded(c, timeout, &std::env::temp_dir())
}
