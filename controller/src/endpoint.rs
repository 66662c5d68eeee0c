//! Where the Docker daemon is, resolved the way the docker CLI does it, so Dockroute talks to
//! the engine the user's `docker` talks to (docker-mac-net-connect got this wrong: #46, #80),
//! and connecting to it (`connect`).
//!
//! Order: `DOCKER_HOST`; `DOCKER_CONTEXT`; `currentContext` in `~/.docker/config.json` (the
//! context's `meta.json` lives under `contexts/meta/<sha256 of its name>/`); then the sockets of
//! Docker Desktop, OrbStack, Colima, Rancher Desktop, and finally `/var/run/docker.sock`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Where the Docker engine listens (not the tunnel's endpoints: those are the engine crate's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// Why this one: shown in status and logs, so a wrong pick is easy to explain.
    pub source: String,
}

/// What the resolver may look at; the real one reads the process environment and `$HOME`.
pub struct Env {
    pub vars: HashMap<String, String>,
    pub home: Option<PathBuf>,
}

impl Env {
    pub fn from_process() -> Env {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let home = vars.get("HOME").map(PathBuf::from);
        Env { vars, home }
    }
}

/// The sockets tried when nothing is configured, in order.
pub fn well_known_sockets(home: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut v = Vec::new();
    if let Some(h) = home {
        v.push((h.join(".docker/run/docker.sock"), "Docker Desktop"));
        v.push((h.join(".orbstack/run/docker.sock"), "OrbStack"));
        v.push((h.join(".colima/default/docker.sock"), "Colima"));
        v.push((h.join(".colima/docker.sock"), "Colima"));
        v.push((h.join(".rd/docker.sock"), "Rancher Desktop"));
    }
    v.push((PathBuf::from("/var/run/docker.sock"), "the system socket"));
    v
}

pub fn resolve(env: &Env) -> Result<DockerEndpoint, String> {
    if let Some(host) = env.vars.get("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return Ok(DockerEndpoint { host: host.clone(), source: "DOCKER_HOST".into() });
    }
    let docker_dir = docker_dir(env);
    let context = match env.vars.get("DOCKER_CONTEXT").filter(|c| !c.is_empty()) {
        Some(c) => Some((c.clone(), "DOCKER_CONTEXT")),
        None => docker_dir.as_deref().and_then(current_context).map(|c| (c, "config.json currentContext")),
    };
    if let Some((name, why)) = context.filter(|(n, _)| n != "default") {
        let dir = docker_dir.as_deref().ok_or("no docker config directory (HOME unset)")?;
        let host = context_host(dir, &name)?;
        return Ok(DockerEndpoint { host, source: format!("context {name:?} ({why})") });
    }
    for (path, what) in well_known_sockets(env.home.as_deref()) {
        if path.exists() {
            return Ok(DockerEndpoint { host: format!("unix://{}", path.display()), source: what.to_string() });
        }
    }
    Err("no Docker engine found: set DOCKER_HOST or a docker context, or start Docker".into())
}

/// Every engine the user may mean, the docker CLI's pick (`resolve`) first: then every docker
/// context, then the well-known sockets that exist; each endpoint once. Someone running
/// Docker Desktop and Colima has both here, and the app lets them pick.
pub fn candidates(env: &Env) -> Vec<DockerEndpoint> {
    let mut found: Vec<DockerEndpoint> = resolve(env).into_iter().collect();
    let docker_dir = docker_dir(env);
    let contexts = docker_dir.as_deref().map(all_contexts).unwrap_or_default();
    let sockets = well_known_sockets(env.home.as_deref()).into_iter().filter(|(p, _)| p.exists());
    let sockets =
        sockets.map(|(p, what)| DockerEndpoint { host: format!("unix://{}", p.display()), source: what.to_string() });
    for e in contexts.into_iter().chain(sockets) {
        if !found.iter().any(|f| f.host == e.host) {
            found.push(e);
        }
    }
    found
}

/// Every context under `contexts/meta/` with a docker endpoint, by name.
fn all_contexts(docker_dir: &Path) -> Vec<DockerEndpoint> {
    #[derive(Deserialize)]
    struct Named {
        #[serde(rename = "Name")]
        name: String,
        #[serde(rename = "Endpoints", default)]
        endpoints: ContextEndpoints,
    }
    let Ok(dirs) = std::fs::read_dir(docker_dir.join("contexts/meta")) else { return Vec::new() };
    let mut out: Vec<DockerEndpoint> = dirs
        .flatten()
        .filter_map(|d| std::fs::read_to_string(d.path().join("meta.json")).ok())
        .filter_map(|text| serde_json::from_str::<Named>(&text).ok())
        .filter_map(|m| {
            let host = m.endpoints.docker.and_then(|d| d.host)?;
            Some(DockerEndpoint { host, source: format!("context {:?}", m.name) })
        })
        .collect();
    out.sort_by(|a, b| a.source.cmp(&b.source));
    out
}

fn docker_dir(env: &Env) -> Option<PathBuf> {
    env.vars.get("DOCKER_CONFIG").map(PathBuf::from).or_else(|| env.home.as_ref().map(|h| h.join(".docker")))
}

/// The docker CLI keeps a context's files under the SHA-256 of its name, in hex.
fn context_dir_name(name: &str) -> String {
    dockroute_stdx::hex::encode(&Sha256::digest(name.as_bytes()))
}

/// The part of the docker CLI's `config.json` we read.
#[derive(Deserialize)]
struct CliConfig {
    #[serde(rename = "currentContext")]
    current_context: Option<String>,
}

/// The part of a context's `meta.json` we read: `Endpoints.docker.Host`.
#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: ContextEndpoints,
}

#[derive(Deserialize, Default)]
struct ContextEndpoints {
    docker: Option<ContextEndpoint>,
}

#[derive(Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host")]
    host: Option<String>,
}

fn current_context(docker_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(docker_dir.join("config.json")).ok()?;
    let config: CliConfig = serde_json::from_str(&text).ok()?;
    config.current_context.filter(|s| !s.is_empty())
}

fn context_host(docker_dir: &Path, name: &str) -> Result<String, String> {
    let meta = docker_dir.join("contexts/meta").join(context_dir_name(name)).join("meta.json");
    let text =
        std::fs::read_to_string(&meta).map_err(|e| format!("docker context {name:?}: {}: {e}", meta.display()))?;
    let parsed: ContextMeta =
        serde_json::from_str(&text).map_err(|e| format!("docker context {name:?}: {}: {e}", meta.display()))?;
    (parsed.endpoints.docker.and_then(|d| d.host))
        .ok_or_else(|| format!("docker context {name:?} has no docker endpoint in {}", meta.display()))
}

/// Connects to the engine at `endpoint`, speaking the API version it offers.
pub async fn connect(endpoint: &DockerEndpoint) -> anyhow::Result<Docker> {
    let docker = if let Some(path) = endpoint.host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, 60, bollard::API_DEFAULT_VERSION)?
    } else {
        Docker::connect_with_host(&endpoint.host)?
    };
    // The engine may be older than our default API version (docker-mac-net-connect #62).
    Ok(docker.negotiate_version().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], home: &Path) -> Env {
        Env { vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), home: Some(home.into()) }
    }

    fn write_context(home: &Path, name: &str, host: &str) {
        let dir = home.join(".docker/contexts/meta").join(context_dir_name(name));
        std::fs::create_dir_all(&dir).unwrap();
        let meta = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
    }

    #[test]
    fn context_directories_are_named_as_the_docker_cli_names_them() {
        // `docker context create colima ...` writes contexts/meta/<this>/meta.json.
        assert_eq!(context_dir_name("colima"), "f24fd3749c1368328e2b149bec149cb6795619f244c5b584e844961215dadd16");
    }

    #[test]
    fn docker_host_wins_over_everything() {
        let home = tempfile::tempdir().unwrap();
        write_context(home.path(), "colima", "unix:///x/colima.sock");
        let e = resolve(&env(&[("DOCKER_HOST", "tcp://198.18.0.1:2375"), ("DOCKER_CONTEXT", "colima")], home.path()))
            .unwrap();
        assert_eq!((e.host.as_str(), e.source.as_str()), ("tcp://198.18.0.1:2375", "DOCKER_HOST"));
    }

    #[test]
    fn docker_context_then_config_json_current_context() {
        let home = tempfile::tempdir().unwrap();
        write_context(home.path(), "colima", "unix:///x/colima.sock");
        write_context(home.path(), "orbstack", "unix:///x/orb.sock");
        std::fs::write(home.path().join(".docker/config.json"), r#"{"currentContext":"orbstack","auths":{}}"#).unwrap();
        let e = resolve(&env(&[("DOCKER_CONTEXT", "colima")], home.path())).unwrap();
        assert_eq!(e.host, "unix:///x/colima.sock");
        assert!(e.source.contains("DOCKER_CONTEXT"));
        let e = resolve(&env(&[], home.path())).unwrap();
        assert_eq!(e.host, "unix:///x/orb.sock");
        assert!(e.source.contains("currentContext"));
    }

    #[test]
    fn a_missing_context_is_an_error_that_names_it() {
        let home = tempfile::tempdir().unwrap();
        let e = resolve(&env(&[("DOCKER_CONTEXT", "ghost")], home.path())).unwrap_err();
        assert!(e.contains("ghost") && e.contains("meta.json"), "{e}");
    }

    #[test]
    fn every_context_and_existing_socket_is_a_candidate_the_clis_pick_first_each_once() {
        let home = tempfile::tempdir().unwrap();
        write_context(home.path(), "colima", "unix:///x/colima.sock");
        write_context(home.path(), "orbstack", "unix:///x/orb.sock");
        std::fs::write(home.path().join(".docker/config.json"), r#"{"currentContext":"orbstack"}"#).unwrap();
        std::fs::create_dir_all(home.path().join(".docker/run")).unwrap();
        std::fs::write(home.path().join(".docker/run/docker.sock"), "").unwrap();
        let c = candidates(&env(&[], home.path()));
        let hosts: Vec<&str> = c.iter().map(|e| e.host.as_str()).collect();
        let dd = format!("unix://{}", home.path().join(".docker/run/docker.sock").display());
        assert_eq!(&hosts[..3], ["unix:///x/orb.sock", "unix:///x/colima.sock", dd.as_str()]);
        assert!(c[0].source.contains("currentContext"), "the CLI's pick keeps its reason");
        assert_eq!(c[1].source, "context \"colima\"");
        assert_eq!(hosts.iter().filter(|h| **h == "unix:///x/orb.sock").count(), 1, "listed once");
        let with_host = candidates(&env(&[("DOCKER_HOST", "unix:///x/colima.sock")], home.path()));
        assert_eq!(with_host[0].source, "DOCKER_HOST");
        assert_eq!(with_host.iter().filter(|e| e.host == "unix:///x/colima.sock").count(), 1);
    }

    #[test]
    fn the_default_context_falls_through_to_the_known_sockets_in_order() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".docker/run")).unwrap();
        std::fs::create_dir_all(home.path().join(".orbstack/run")).unwrap();
        std::fs::write(home.path().join(".orbstack/run/docker.sock"), "").unwrap();
        let e = resolve(&env(&[("DOCKER_CONTEXT", "default")], home.path())).unwrap();
        assert_eq!(e.source, "OrbStack");
        std::fs::write(home.path().join(".docker/run/docker.sock"), "").unwrap();
        assert_eq!(resolve(&env(&[], home.path())).unwrap().source, "Docker Desktop");
    }
}
