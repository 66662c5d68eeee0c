//! The docker CLI against one daemon, and commands in its network namespace. Both go through
//! the harness's runner (scratch files, not pipes): a container's process or docker-proxy may
//! outlive the call holding its output open, which must not keep a test waiting.

use std::process::Command;
use std::time::Duration;

use super::{docker_cli, run_bounded, scrub_env, Dockerd, Res, SYS_PATH};

/// Default bound for one docker CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

impl Dockerd {
    /// Runs the docker CLI against this daemon (bounded, 60 s): Ok(stdout), or Err naming the
    /// command, its status and stderr.
    pub fn docker(&self, args: &[&str]) -> Res<String> {
        self.docker_timeout(args, CLI_TIMEOUT)
    }

    pub fn docker_timeout(&self, args: &[&str], timeout: Duration) -> Res<String> {
        let mut c = Command::new(docker_cli());
        c.args(args);
        scrub_env(&mut c);
        // Its own client config dir: no context or credential helper of this machine applies.
        c.env("DOCKER_HOST", format!("unix://{}", self.socket.display()));
        c.env("DOCKER_CONFIG", self.dir.join("cli"));
        run_bounded(c, timeout)
    }

    /// Runs `args` inside the daemon's network namespace (`nsenter --net`), bounded.
    pub fn in_ns(&self, args: &[&str], timeout: Duration) -> Res<String> {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns)).arg("--").args(args);
        scrub_env(&mut c);
        c.env("PATH", SYS_PATH);
        run_bounded(c, timeout)
    }

    /// GET `url` with busybox wget from the daemon's namespace: Ok(body).
    pub fn http_get(&self, url: &str, timeout: Duration) -> Res<String> {
        self.in_ns(&["busybox", "wget", "-q", "-Y", "off", "-O", "-", url], timeout)
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
}
