//! Podman as the engine: `podman system service` in the namespace, its own storage, network
//! config and events file under the daemon's dir, and nothing of this machine's
//! /etc/containers but the image policy. Tests reach it only through the Docker-compatible API
//! (the docker CLI and the app's bollard with DOCKER_HOST), as a user's DOCKER_HOST would.
//!
//! Rootful Podman keeps netavark's state (IPAM, aardvark-dns' config, firewall state) in
//! /run/containers/networks, one directory for every Podman of the machine: two daemons (4.3
//! and 5, or a crashed run's leftovers) would hand out each other's addresses and start
//! aardvark-dns on each other's gateways. So each daemon runs in a mount namespace of its own,
//! kept in `<dir>/ns/mnt` across restarts, where `<dir>/netrun` is mounted over that directory
//! and `<dir>/netns` over /run/netns (its containers' `netns-*` files, which a stopped service
//! left behind in the machine's /run/netns).
//!
//! Test machine quirks paid for here, never by the product: runc rather than crun (crun fails on
//! this machine's hybrid cgroups) wrapped by `scripts/docker-env/runc-rlimits.sh` (root lacks
//! CAP_SYS_RESOURCE, so Podman's RLIMIT_NOFILE/NPROC of 1048576 cannot be set).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dockroute_stdx::process::Cmd;

use super::{scripts_dir, Engine, Res};

/// Writes `containers.conf`, `storage.conf` and an empty `registries.conf` into `dir`: the
/// default network on `bip`'s /24 (dockerd's `--bip`), new networks from `pool` (a CIDR split
/// into /24s, or "base=…,size=…"), cgroupfs, the file events backend, netavark with nftables
/// for Podman 5 (iptables, its only choice, for 4.3).
pub(super) fn write_config(engine: Engine, dir: &Path, bip: &str, pool: &str) -> Res<()> {
    let p = |name: &str| dir.join(name).display().to_string();
    let default_subnet = bridge_subnet(bip)?;
    let (base, size) = pool_parts(pool)?;
    let firewall = match engine {
        Engine::Podman5 => "firewall_driver = \"nftables\"\n",
        _ => "",
    };
    let runtime = scripts_dir().join("runc-rlimits.sh");
    let conf = format!(
        "[containers]\n\
         [network]\n\
         network_backend = \"netavark\"\n\
         network_config_dir = {net:?}\n\
         default_subnet = {default_subnet:?}\n\
         default_subnet_pools = [{{\"base\" = {base:?}, \"size\" = {size}}}]\n\
         {firewall}\
         [engine]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         events_logfile_path = {events:?}\n\
         runtime = \"runc-rlimits\"\n\
         conmon_path = [\"/usr/bin/conmon\"]\n\
         helper_binaries_dir = [{helpers:?}]\n\
         tmp_dir = {tmp:?}\n\
         volume_path = {volumes:?}\n\
         static_dir = {libpod:?}\n\
         [engine.runtimes]\n\
         runc-rlimits = [{runtime:?}]\n",
        net = p("net"),
        events = p("events.log"),
        helpers = engine.podman_helpers().display().to_string(),
        tmp = p("exec/tmp"),
        volumes = p("data/volumes"),
        libpod = p("data/libpod"),
        runtime = runtime.display().to_string(),
    );
    let storage = format!("[storage]\ndriver = \"overlay\"\ngraphroot = {:?}\nrunroot = {:?}\n", p("data"), p("exec"));
    for (name, text) in [("containers.conf", conf), ("storage.conf", storage), ("registries.conf", String::new())] {
        fs::write(dir.join(name), text).map_err(|e| format!("writing {name}: {e}"))?;
    }
    Ok(())
}

/// The mount namespace the daemon runs in (see the module's doc), made once per `dir`:
/// `nsenter --mount=` this path.
pub(super) fn mount_namespace(dir: &Path) -> Res<PathBuf> {
    let ns = dir.join("ns/mnt");
    if fs::metadata(&ns).is_ok_and(|m| m.len() == 0) && super::cleanup::mounts_under(&dir.join("ns")).contains(&ns) {
        return Ok(ns);
    }
    const SCRIPT: &str = r#"set -eu
d=$1
mkdir -p "$d/ns" "$d/netrun" "$d/netns" /run/containers/networks /run/netns
# unshare --mount=FILE wants FILE on a private mount.
mount --bind "$d/ns" "$d/ns"
mount --make-private "$d/ns"
touch "$d/ns/mnt"
unshare --mount="$d/ns/mnt" --propagation slave sh -c \
  'mount --bind "$1/netrun" /run/containers/networks && mount --bind "$1/netns" /run/netns' sh "$d"
"#;
    let c = Cmd::new("sh").args(["-c", SCRIPT, "sh"]).arg(dir.display().to_string());
    c.timeout(Duration::from_secs(10)).run().map_err(|e| format!("podman's mount namespace: {e}"))?;
    Ok(ns)
}

/// The arguments after the podman binary, and its environment.
pub(super) fn command(c: &mut Command, dir: &Path, socket: &Path) {
    let p = |name: &str| dir.join(name).display().to_string();
    c.env("CONTAINERS_CONF", p("containers.conf"));
    c.env("CONTAINERS_STORAGE_CONF", p("storage.conf"));
    c.env("CONTAINERS_REGISTRIES_CONF", p("registries.conf"));
    c.args(["--root", &p("data"), "--runroot", &p("exec"), "--network-config-dir", &p("net")]);
    c.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
    c.args(["system", "service", "--time=0", &format!("unix://{}", socket.display())]);
}

/// "198.18.191.1/24" → "198.18.191.0/24" (the default network's subnet; Podman takes .1).
fn bridge_subnet(bip: &str) -> Res<String> {
    let (addr, len) = bip.split_once('/').ok_or(format!("bip {bip:?}: no prefix length"))?;
    if len != "24" {
        return Err(format!("bip {bip:?}: only a /24 is supported for Podman"));
    }
    let (net, _) = addr.rsplit_once('.').ok_or(format!("bip {bip:?}: not IPv4"))?;
    Ok(format!("{net}.0/24"))
}

/// "198.18.228.0/22" → ("198.18.228.0/22", 24); "base=X,size=N" → (X, N).
fn pool_parts(pool: &str) -> Res<(String, u8)> {
    if !pool.contains("base=") {
        return Ok((pool.to_string(), 24));
    }
    let (mut base, mut size) = (None, None);
    for part in pool.split(',') {
        match part.split_once('=') {
            Some(("base", v)) => base = Some(v.to_string()),
            Some(("size", v)) => size = v.parse().ok(),
            _ => return Err(format!("pool {pool:?}: unknown part {part:?}")),
        }
    }
    base.zip(size).ok_or(format!("pool {pool:?}: wants base= and size="))
}

#[cfg(test)]
mod tests {
    use super::{bridge_subnet, pool_parts};

    #[test]
    fn dockerd_address_flags_become_podman_subnets() {
        assert_eq!(bridge_subnet("198.18.191.1/24").unwrap(), "198.18.191.0/24");
        assert!(bridge_subnet("198.18.191.1/16").is_err());
        assert!(bridge_subnet("198.18.191.1").is_err());
        assert_eq!(pool_parts("198.18.228.0/22").unwrap(), ("198.18.228.0/22".into(), 24));
        assert_eq!(pool_parts("base=198.18.0.0/20,size=26").unwrap(), ("198.18.0.0/20".into(), 26));
        assert!(pool_parts("base=198.18.0.0/20,colour=red").is_err());
    }
}
