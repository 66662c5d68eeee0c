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
//!
//! Podman 4.3 and 5 run the same way as `podman system service` (`podman.rs`): the tests see
//! only its Docker-compatible API.
//!
//! Files: `engine.rs` (which engines, where: the cache, dockerd, the CLI), `daemon.rs` (start,
//! restart, stop, drop), `cli.rs` (the docker CLI and commands in the namespace), `images.rs`
//! (the busybox and base images), `cleanup.rs` (processes, mounts and cgroups left behind).
//! Commands that may leave a process holding their output (the docker CLI, anything in the
//! namespace) go through [`run_bounded`]; short tools that start nothing use the workspace's
//! `dockroute_stdx::process::Cmd`.

mod cleanup;
mod cli;
mod daemon;
mod engine;
mod images;
mod podman;

use std::process::Command;
use std::time::Duration;

pub use cleanup::{alive, cgroup_dirs};
pub use daemon::Dockerd;
pub use engine::{cache_dir, docker_cli, scripts_dir, Engine};
pub use images::ensure_base_rootfs;

type Res<T> = Result<T, String>;

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

mod sys {
    // std links libc anyway; declaring the calls avoids a libc crate dependency.
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn umount2(target: *const std::ffi::c_char, flags: i32) -> i32;
    }
    pub const MNT_DETACH: i32 = 2;
}

/// Removes the proxy and Docker variables of this machine from a command's environment.
fn scrub_env(c: &mut Command) {
    for v in DROPPED_ENV {
        c.env_remove(v);
    }
}

/// Runs `c` to completion, killed after `timeout` (scratch files in the temp dir); see
/// `netns::run_bounded`.
pub fn run_bounded(c: Command, timeout: Duration) -> Res<String> {
    crate::netns::run_bounded(c, timeout, &std::env::temp_dir())
}
