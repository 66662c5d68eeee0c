//! The daemon's life: started in a namespace, restarted, stopped, and on drop every trace of
//! it removed.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::cleanup::{cleanup_dir, mounts_under, owned_processes};
use super::{podman, scrub_env, sys, Engine, Res, SYS_PATH};
use crate::netns::{describe, wait_bounded, SIGKILL, SIGTERM};

/// Bound for `docker version` answering after a start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long dockerd gets to stop after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest socket path a sockaddr_un takes (108 with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// A running dockerd in a network namespace. Drop stops it and removes every trace.
pub struct Dockerd {
    /// The API socket, `<dir>/docker.sock`.
    pub socket: PathBuf,
    /// The network namespace it runs in.
    pub ns: String,
    pub engine: Engine,
    pub(super) dir: PathBuf,
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
            Engine::Podman4 | Engine::Podman5 => String::new(),
        };
        match engine.is_podman() {
            true => podman::write_config(engine, &dir, bip, pool)?,
            false => fs::write(dir.join("daemon.json"), config).map_err(|e| format!("writing daemon.json: {e}"))?,
        }
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
        if self.engine.is_podman() {
            c.arg(format!("--mount={}", podman::mount_namespace(&self.dir)?.display()));
        }
        c.arg(format!("--net=/run/netns/{}", self.ns)).arg("--").arg(self.engine.dockerd_path());
        scrub_env(&mut c);
        if self.engine.is_podman() {
            podman::command(&mut c, &self.dir, &self.socket);
        } else {
            c.args(["--config-file", &p("daemon.json"), "--data-root", &p("data"), "--exec-root", &p("exec")]);
            c.args(["--pidfile", &p("dockerd.pid"), "-H", &format!("unix://{}", self.socket.display())]);
            c.args(["--bip", &self.bip, "--default-address-pool", &pool, "--ip6tables"]);
            if self.engine == Engine::V20 {
                c.arg("--experimental");
            }
            c.arg("--userland-proxy-path").arg(self.engine.proxy_path());
            c.args(["--cgroup-parent", &format!("/{}", self.cgroup_parent())]);
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

    /// `kill -9` of dockerd alone (its containerd and the containers' shims live on, as after a
    /// crash), then a start with the same directories and flags, as a supervisor would do;
    /// returns once it answers.
    pub fn kill_and_restart(&mut self) -> Res<()> {
        if let Some(mut child) = self.child.take() {
            unsafe { sys::kill(child.id() as i32, SIGKILL) };
            let _ = wait_bounded(&mut child, Duration::from_secs(5));
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
