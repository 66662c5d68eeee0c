//! Which engine answered, from what its API said (`GET /info`, `GET /version`) and the socket
//! the answer came through, and what follows from it: how its VM reaches the Mac, and whether
//! Dockroute is needed there at all. Pure: the answers are passed in (`probe` fetches them).
//!
//! What the API says wins over the socket's path: a docker context may point anywhere, and
//! OrbStack also answers on `/var/run/docker.sock`.

use bollard::models::{SystemInfo, SystemVersion};
use serde::{Deserialize, Serialize};

/// The engines a Mac developer runs, and the two Linux ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    DockerDesktop,
    OrbStack,
    Colima,
    /// Lima's own docker template (not Colima, not Rancher Desktop).
    Lima,
    /// Rancher Desktop with its moby (dockerd) runtime.
    RancherDesktop,
    /// Podman in a `podman machine` VM (macOS, or Linux with a machine).
    PodmanMachine,
    /// Podman running on this Linux host.
    Podman,
    /// dockerd running on this Linux host (no VM).
    DockerEngine,
    Unknown,
}

/// The OS the app runs on: Podman there is always a machine on a Mac, and a native dockerd
/// only exists on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOs {
    Mac,
    Linux,
}

impl HostOs {
    pub fn current() -> HostOs {
        if cfg!(target_os = "macos") {
            HostOs::Mac
        } else {
            HostOs::Linux
        }
    }
}

impl EngineKind {
    /// How the user knows it.
    pub fn display_name(self) -> &'static str {
        match self {
            EngineKind::DockerDesktop => "Docker Desktop",
            EngineKind::OrbStack => "OrbStack",
            EngineKind::Colima => "Colima",
            EngineKind::Lima => "Lima",
            EngineKind::RancherDesktop => "Rancher Desktop",
            EngineKind::PodmanMachine => "Podman machine",
            EngineKind::Podman => "Podman",
            EngineKind::DockerEngine => "Docker Engine",
            EngineKind::Unknown => "Docker-compatible engine",
        }
    }

    /// OrbStack routes container IPs and names to the Mac itself: Dockroute starts nothing there.
    pub fn routes_containers_itself(self) -> bool {
        self == EngineKind::OrbStack
    }
}

/// What the user sees when the followed engine needs no Dockroute.
pub const ORBSTACK_NOTE: &str = "OrbStack already makes containers reachable; Dockroute is not needed for it";

/// Recognises the engine behind `socket` from its answers.
pub fn recognise(info: &SystemInfo, version: &SystemVersion, socket: &str, host: HostOs) -> EngineKind {
    let lower = |s: &Option<String>| s.as_deref().unwrap_or_default().to_ascii_lowercase();
    let (os, name, kernel) = (lower(&info.operating_system), lower(&info.name), lower(&info.kernel_version));
    let platform = version.platform.as_ref().map(|p| p.name.to_ascii_lowercase()).unwrap_or_default();
    let labels = info.labels.as_deref().unwrap_or_default();
    let path = socket.to_ascii_lowercase();
    let is_podman = version.components.iter().flatten().any(|c| c.name == "Podman Engine");
    if is_podman {
        // A machine's API socket is forwarded by gvproxy from the VM; Podman on a Mac is
        // always a machine.
        let machine_path = path.contains("/podman/machine/") || path.contains("podman-machine");
        return if machine_path || host == HostOs::Mac { EngineKind::PodmanMachine } else { EngineKind::Podman };
    }
    if kernel.contains("orbstack") || os.contains("orbstack") || name == "orbstack" {
        return EngineKind::OrbStack;
    }
    if os == "docker desktop"
        || platform.starts_with("docker desktop")
        || name == "docker-desktop"
        || labels.iter().any(|l| l.starts_with("com.docker.desktop."))
    {
        return EngineKind::DockerDesktop;
    }
    if name == "lima-rancher-desktop" || os.contains("rancher desktop") {
        return EngineKind::RancherDesktop;
    }
    if name == "colima" || name.starts_with("colima-") {
        return EngineKind::Colima;
    }
    if name.starts_with("lima-") {
        return EngineKind::Lima;
    }
    // The API said nothing telling: the socket's well-known path decides.
    if let Some(kind) = kind_of_socket(&path) {
        return kind;
    }
    match host {
        // Nothing of a VM said so: a dockerd on this host.
        HostOs::Linux if path.starts_with("unix://") => EngineKind::DockerEngine,
        _ => EngineKind::Unknown,
    }
}

/// The engines whose sockets live at a path of their own (see `endpoint::well_known_sockets`).
fn kind_of_socket(path: &str) -> Option<EngineKind> {
    let table = [
        ("/.orbstack/", EngineKind::OrbStack),
        ("/.colima/", EngineKind::Colima),
        ("/.rd/docker.sock", EngineKind::RancherDesktop),
        ("/.lima/", EngineKind::Lima),
        ("/.docker/run/docker.sock", EngineKind::DockerDesktop),
        ("/.docker/desktop/docker.sock", EngineKind::DockerDesktop),
    ];
    table.into_iter().find(|(needle, _)| path.contains(needle)).map(|(_, k)| k)
}

/// The engine's version as the user knows it: Podman's own, else the engine's.
pub fn engine_version(info: &SystemInfo, version: &SystemVersion) -> Option<String> {
    let podman = version.components.iter().flatten().find(|c| c.name == "Podman Engine");
    (podman.map(|c| c.version.clone()))
        .or_else(|| info.server_version.clone())
        .or_else(|| version.version.clone())
        .filter(|v| !v.is_empty())
}

/// The names the guest dials to reach the Mac: the first, then the fallback when the first
/// does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    pub primary: &'static str,
    pub fallback: &'static str,
}

/// How the engine's VM reaches the Mac. None: Dockroute starts nothing there (OrbStack).
/// Lima (Colima, Rancher Desktop) answers `host.lima.internal`, and Colima and Rancher Desktop
/// add `host.docker.internal`; gvproxy answers `host.containers.internal` in a Podman machine
/// (Podman 4.7+ also `host.docker.internal`). Linux engines have no VM and no such name: the
/// user pins one with `--host-address`, as before.
pub fn host_names(kind: EngineKind) -> Option<HostNames> {
    use dockroute_api::{GATEWAY_NAME_IN_VM, HOST_NAME_IN_VM};
    let names = |primary, fallback| Some(HostNames { primary, fallback });
    match kind {
        EngineKind::OrbStack => None,
        EngineKind::Colima | EngineKind::Lima | EngineKind::RancherDesktop => {
            names("host.lima.internal", HOST_NAME_IN_VM)
        }
        EngineKind::PodmanMachine => names("host.containers.internal", HOST_NAME_IN_VM),
        EngineKind::DockerDesktop | EngineKind::Podman | EngineKind::DockerEngine | EngineKind::Unknown => {
            names(HOST_NAME_IN_VM, GATEWAY_NAME_IN_VM)
        }
    }
}

#[cfg(test)]
#[path = "kind_tests.rs"]
mod tests;
