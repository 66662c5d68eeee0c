//! Which engines there are and where: the cache the docker-env scripts fill, the two dockerd
//! binaries and the docker CLI.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dockroute_stdx::process::Cmd;

use super::Res;

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
    /// Podman 4.3, bookworm's podman (netavark 1.4 on iptables): /usr/bin/podman, run as
    /// `podman system service` and driven only through its Docker-compatible API.
    Podman4,
    /// Podman 5, sid's podman and netavark (nftables driver) extracted into
    /// `$DOCKROUTE_CACHE/podman5/` with sid's C library (install-engines.sh).
    Podman5,
}

impl Engine {
    pub const ALL: [Engine; 4] = [Engine::V20, Engine::V28, Engine::Podman4, Engine::Podman5];

    /// The daemon's binary: dockerd, or podman (which serves the API as `system service`).
    pub fn dockerd_path(&self) -> PathBuf {
        match self {
            Engine::V20 => "/usr/sbin/dockerd".into(),
            Engine::V28 => cache_dir().join("docker28/usr/sbin/dockerd"),
            Engine::Podman4 => "/usr/bin/podman".into(),
            Engine::Podman5 => cache_dir().join("podman5/usr/bin/podman"),
        }
    }

    pub fn is_podman(&self) -> bool {
        matches!(self, Engine::Podman4 | Engine::Podman5)
    }

    /// Where podman finds netavark and aardvark-dns (`helper_binaries_dir`).
    pub fn podman_helpers(&self) -> PathBuf {
        self.dockerd_path().parent().and_then(Path::parent).map(|usr| usr.join("lib/podman")).unwrap_or_default()
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
            Engine::Podman4 => "podman4",
            Engine::Podman5 => "podman5",
        }
    }

    /// `dockerd --version`, e.g. "Docker version 28.5.2+dfsg4, build 3ef3c07" (or "podman
    /// version 4.3.1").
    pub fn version(&self) -> Res<String> {
        // A short tool that starts nothing: the workspace's runner fits.
        let c = Cmd::new(self.dockerd_path().display().to_string()).arg("--version").timeout(Duration::from_secs(10));
        c.run().map(|s| s.trim().to_string()).map_err(|e| e.to_string())
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
