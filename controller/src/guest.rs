//! The guest container (its image, for the engine's CPU, is `guest_image`'s): the container itself (host network, NET_ADMIN, /dev/net/tun, restart
//! unless-stopped, labelled as ours). The secret reaches it as a file copied in before it
//! starts: never an environment variable or an argument, so `docker inspect` never shows it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, ContainerSummary, DeviceMapping, HostConfig, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use dockroute_api::{GuestArgs, TransportMode};

use crate::engines::HostNames;
use dockroute_stdx::hex;
use sha2::{Digest, Sha256};

pub const CONTAINER_NAME: &str = "dockroute-guest";
/// Marks containers Dockroute made; we never touch one without it.
pub const LABEL_OURS: &str = "dev.dockroute.guest";
/// Hash of everything the container was created with; a different one means recreate.
pub const LABEL_SPEC: &str = "dev.dockroute.spec";
/// Where the secret and the rules file live inside the container.
pub const CONFIG_DIR: &str = "/etc/dockroute";

pub fn image_ref() -> String {
    format!("dockroute-guest:{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub image: String,
    /// The helper's port on the host.
    pub port: u16,
    /// Pin the engine's name for the host (`host_names.primary`) to this address (the user's
    /// override: tests, engines on Linux without such a name).
    pub host_address: Option<IpAddr>,
    /// How the engine's VM reaches the Mac (`engines::host_names`).
    pub host_names: HostNames,
    /// SHA-256 of the secret, so a new secret means a new container; reveals nothing usable.
    pub secret_fingerprint: String,
    /// The helper's `transport` setting, passed on to the guest.
    pub transport: TransportMode,
}

impl GuestSpec {
    pub fn hash(&self) -> String {
        let mut text = format!("{}|{}|{:?}|{}", self.image, self.port, self.host_address, self.secret_fingerprint);
        // Only when set: the default keeps the hashes (and so the guests) of earlier versions.
        if self.transport != TransportMode::Auto {
            text.push_str(&format!("|{}", self.transport));
        }
        if self.host_names != docker_host_names() {
            text.push_str(&format!("|{}|{}", self.host_names.primary, self.host_names.fallback));
        }
        hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }
}

/// Docker Desktop's names for the host, what every guest dialled before engines were told apart.
pub fn docker_host_names() -> HostNames {
    HostNames { primary: dockroute_api::HOST_NAME_IN_VM, fallback: dockroute_api::GATEWAY_NAME_IN_VM }
}

pub fn fingerprint(secret: &[u8]) -> String {
    hex::encode(&Sha256::digest(secret)[..8])
}

/// What `ensure` did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    AlreadyRunning,
    Started,
    Created { replaced: usize },
}

/// One of our containers (by label), as `ensure` judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ours {
    id: String,
    /// The `LABEL_SPEC` it was created with.
    spec: Option<String>,
    /// The image it runs (an id): the tag may have moved since (another CPU, a rebuild).
    image_id: Option<String>,
    running: bool,
}

impl Ours {
    fn from_summary(c: ContainerSummary) -> Ours {
        Ours {
            id: c.id.unwrap_or_default(),
            spec: c.labels.and_then(|mut l| l.remove(LABEL_SPEC)),
            image_id: c.image_id.filter(|i| !i.is_empty()),
            running: c.state.map(|s| s.to_string()).as_deref() == Some("running"),
        }
    }
}

async fn ours(docker: &Docker) -> anyhow::Result<Vec<Ours>> {
    let filters = HashMap::from([("label", vec![LABEL_OURS])]);
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await?;
    Ok(list.into_iter().map(Ours::from_summary).collect())
}

/// What `ensure` does with the containers it found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Ours, but of another spec (or a second one of the right spec).
    remove: Vec<String>,
    /// The one to keep (start it if it is stopped); None: create one.
    keep: Option<(String, bool)>,
}

/// Exactly one container of spec `want` running image `image_id` survives: the first that
/// has both. An id that is unknown on either side is not held against a container.
fn plan(found: Vec<Ours>, want: &str, image_id: &str) -> Plan {
    let mut p = Plan { remove: Vec::new(), keep: None };
    for c in found {
        let same_image = image_id.is_empty() || c.image_id.as_deref().is_none_or(|i| i == image_id);
        if p.keep.is_none() && c.spec.as_deref() == Some(want) && same_image {
            p.keep = Some((c.id, c.running));
        } else {
            p.remove.push(c.id);
        }
    }
    p
}

/// Makes exactly one guest container of `spec` run from the image `image_id` (what
/// `guest_image::ensure` returned), with `secret` and `rules` inside.
pub async fn ensure(
    docker: &Docker,
    spec: &GuestSpec,
    image_id: &str,
    secret: &[u8],
    rules: &str,
) -> anyhow::Result<Ensured> {
    let want = spec.hash();
    let plan = plan(ours(docker).await?, &want, image_id);
    for id in &plan.remove {
        remove_container(docker, id).await?;
    }
    if let Some((id, running)) = plan.keep {
        if running {
            return Ok(Ensured::AlreadyRunning);
        }
        match docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await {
            // 304: dockerd's restart policy got there first.
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Ensured::Started);
    }
    let id = create(docker, spec, &want).await?;
    upload(docker, &id, &[("secret", secret, 0o600), ("rules", rules.as_bytes(), 0o644)]).await?;
    docker.start_container(&id, None::<bollard::query_parameters::StartContainerOptions>).await?;
    Ok(Ensured::Created { replaced: plan.remove.len() })
}

/// The guest's command line: the secret and rules files where `upload` puts them, the helper
/// on `port` under the engine's names for the host, over the helper's transport, logs as JSON
/// (Docker keeps them).
fn guest_args(spec: &GuestSpec) -> GuestArgs {
    GuestArgs {
        rules_file: Some(format!("{CONFIG_DIR}/rules").into()),
        log_json: true,
        transport: spec.transport,
        server: format!("{}:{}", spec.host_names.primary, spec.port),
        fallback_server: format!("{}:{}", spec.host_names.fallback, spec.port),
        ..GuestArgs::new(format!("{CONFIG_DIR}/secret"))
    }
}

/// The container: host network, NET_ADMIN and the TUN device (it is the VM's tunnel end),
/// restarted unless we stop it, labelled as ours with its spec hash.
fn container_body(spec: &GuestSpec, hash: &str) -> ContainerCreateBody {
    let host_config = HostConfig {
        network_mode: Some("host".into()),
        cap_add: Some(vec!["NET_ADMIN".into()]),
        devices: Some(vec![DeviceMapping {
            path_on_host: Some("/dev/net/tun".into()),
            path_in_container: Some("/dev/net/tun".into()),
            cgroup_permissions: Some("rwm".into()),
        }]),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        extra_hosts: spec.host_address.map(|a| vec![format!("{}:{a}", spec.host_names.primary)]),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(guest_args(spec).to_args()),
        labels: Some(HashMap::from([
            (LABEL_OURS.to_string(), "1".to_string()),
            (LABEL_SPEC.to_string(), hash.to_string()),
        ])),
        stop_signal: Some("SIGTERM".into()),
        stop_timeout: Some(10),
        host_config: Some(host_config),
        ..Default::default()
    }
}

async fn create(docker: &Docker, spec: &GuestSpec, hash: &str) -> anyhow::Result<String> {
    let options = CreateContainerOptionsBuilder::default().name(CONTAINER_NAME).build();
    let created = docker.create_container(Some(options), container_body(spec, hash)).await.map_err(|e| {
        anyhow::anyhow!("creating {CONTAINER_NAME}: {e} (a container of that name that Dockroute did not make must be removed by hand)")
    })?;
    Ok(created.id)
}

/// Replaces the rules file in the running guest (it re-reads it when it changes).
pub async fn update_rules(docker: &Docker, rules: &str) -> anyhow::Result<()> {
    for c in ours(docker).await? {
        if c.running {
            upload(docker, &c.id, &[("rules", rules.as_bytes(), 0o644)]).await?;
        }
    }
    Ok(())
}

/// Tells the running guest to check its firewall now (dockerd may have rebuilt its chains):
/// a file beside the rules, whose change the guest watches for.
pub async fn poke(docker: &Docker, generation: u64) -> anyhow::Result<()> {
    let text = format!("{generation}\n");
    for c in ours(docker).await? {
        if c.running {
            upload(docker, &c.id, &[("check", text.as_bytes(), 0o644)]).await?;
        }
    }
    Ok(())
}

/// Stops every running container of ours, keeping it (the guest sleeps; `ensure` starts it).
/// Returns how many were stopped.
pub async fn stop_all(docker: &Docker) -> anyhow::Result<usize> {
    let mut stopped = 0;
    for c in ours(docker).await?.into_iter().filter(|c| c.running) {
        // SIGTERM: the guest removes its firewall rules and restores the sysctls on the way out.
        docker.stop_container(&c.id, None::<bollard::query_parameters::StopContainerOptions>).await?;
        stopped += 1;
    }
    Ok(stopped)
}

/// Removes every container of ours. Idempotent.
pub async fn remove_all(docker: &Docker) -> anyhow::Result<usize> {
    let list = ours(docker).await?;
    for c in &list {
        remove_container(docker, &c.id).await?;
    }
    Ok(list.len())
}

async fn remove_container(docker: &Docker, id: &str) -> anyhow::Result<()> {
    // Stop first (SIGTERM, so the guest removes its firewall rules), then remove.
    let _ = docker.stop_container(id, None::<bollard::query_parameters::StopContainerOptions>).await;
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Copies files into `CONFIG_DIR` of a container as a tar archive (the only way into a
/// container that leaves no trace in its configuration).
async fn upload(docker: &Docker, id: &str, files: &[(&str, &[u8], u32)]) -> anyhow::Result<()> {
    let archive = config_archive(files)?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    // As a stream: bollard logs whole request bodies at trace level, streams it does not, and
    // this archive holds the secret.
    let body = futures_util::stream::once(async move { bytes::Bytes::from(archive) });
    docker.upload_to_container(id, Some(options), bollard::body_stream(body)).await?;
    Ok(())
}

/// `CONFIG_DIR` with `files` (name, contents, mode) in it, as a tar archive to unpack at `/`.
fn config_archive(files: &[(&str, &[u8], u32)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    builder.append_data(&mut dir, CONFIG_DIR.trim_start_matches('/'), std::io::empty())?;
    for (name, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        let path: PathBuf = Path::new(CONFIG_DIR.trim_start_matches('/')).join(name);
        builder.append_data(&mut h, path, *data)?;
    }
    builder.into_inner()
}

/// The guest's firewall backend per family, from its JSON log ("firewall backend chosen"
/// lines): `IPv4 iptables-nft, IPv6 iptables-legacy`. None until the guest has said (or when it
/// runs without a firewall). The guest reports nothing to the controller otherwise: its log is
/// the one channel both already have.
pub fn firewall_from_log(log: &str) -> Option<String> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.trim()) else { continue };
        let fields = &v["fields"];
        if fields["message"] != "firewall backend chosen" {
            continue;
        }
        let (Some(family), Some(backend)) = (fields["family"].as_str(), fields["backend"].as_str()) else { continue };
        let family = match family {
            "V4" => "IPv4",
            "V6" => "IPv6",
            other => other,
        };
        let backend = match backend {
            "Nft" => "iptables-nft",
            "Legacy" => "iptables-legacy",
            other => other,
        };
        // A later choice (the guest restarted) replaces an earlier one for its family.
        found.retain(|(f, _)| f != family);
        found.push((family.to_string(), backend.to_string()));
    }
    found.sort();
    (!found.is_empty()).then(|| found.iter().map(|(f, b)| format!("{f} {b}")).collect::<Vec<_>>().join(", "))
}

/// Reads the running guest's log (its last lines) for `firewall_from_log`.
pub async fn firewall_backend(docker: &Docker) -> anyhow::Result<Option<String>> {
    use futures_util::StreamExt;
    let Some(id) = ours(docker).await?.into_iter().find(|c| c.running).map(|c| c.id) else { return Ok(None) };
    let options =
        bollard::query_parameters::LogsOptionsBuilder::default().stdout(true).stderr(true).tail("400").build();
    let mut log = String::new();
    let mut stream = docker.logs(&id, Some(options));
    while let Some(chunk) = stream.next().await {
        log.push_str(&String::from_utf8_lossy(&chunk?.into_bytes()));
    }
    Ok(firewall_from_log(&log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::EngineKind;

    #[test]
    fn the_spec_hash_changes_with_every_field_and_the_fingerprint_hides_the_secret() {
        let base = GuestSpec {
            image: "dockroute-guest:1".into(),
            port: 2511,
            host_address: None,
            secret_fingerprint: fingerprint(b"s"),
            transport: TransportMode::Auto,
            host_names: docker_host_names(),
        };
        let h = base.hash();
        // The default transport adds nothing: guests made by earlier versions are kept.
        assert_eq!(h, {
            let text = format!("dockroute-guest:1|2511|None|{}", fingerprint(b"s"));
            hex::encode(&Sha256::digest(text.as_bytes())[..16])
        });
        for other in [
            GuestSpec { image: "dockroute-guest:2".into(), ..base.clone() },
            GuestSpec { port: 2512, ..base.clone() },
            GuestSpec { host_address: Some("198.18.0.1".parse().unwrap()), ..base.clone() },
            GuestSpec { secret_fingerprint: fingerprint(b"t"), ..base.clone() },
            GuestSpec { transport: TransportMode::Tcp, ..base.clone() },
            GuestSpec { transport: TransportMode::Udp, ..base.clone() },
            GuestSpec { host_names: crate::engines::host_names(EngineKind::Colima).unwrap(), ..base.clone() },
        ] {
            assert_ne!(other.hash(), h, "{other:?}");
        }
        assert_eq!(base.hash(), h, "stable");
        assert_eq!(fingerprint(b"s").len(), 16);
        assert!(!fingerprint(b"super-secret").contains("super"));
    }

    fn spec() -> GuestSpec {
        GuestSpec {
            image: "dockroute-guest:1".into(),
            port: 2600,
            host_address: Some("198.18.0.1".parse().unwrap()),
            secret_fingerprint: fingerprint(b"s"),
            transport: TransportMode::Auto,
            host_names: docker_host_names(),
        }
    }

    #[test]
    fn the_command_is_what_the_guest_parses() {
        let body = container_body(&spec(), "h");
        let cmd = body.cmd.unwrap();
        let parsed =
            <GuestArgs as clap::Parser>::try_parse_from(std::iter::once("dockroute-guest".to_string()).chain(cmd))
                .unwrap();
        assert_eq!(parsed, guest_args(&spec()));
        assert_eq!(parsed.transport, TransportMode::Auto);
        let tcp = container_body(&GuestSpec { transport: TransportMode::Tcp, ..spec() }, "h").cmd.unwrap();
        let tcp =
            <GuestArgs as clap::Parser>::try_parse_from(std::iter::once("dockroute-guest".to_string()).chain(tcp))
                .unwrap();
        assert_eq!(tcp.transport, TransportMode::Tcp, "the helper's setting reaches the guest");
        assert_eq!(parsed.secret_file, Path::new("/etc/dockroute/secret"));
        assert_eq!(parsed.rules_file.as_deref(), Some(Path::new("/etc/dockroute/rules")));
        assert_eq!(parsed.server, "host.docker.internal:2600");
        assert_eq!(parsed.fallback_server, "gateway.docker.internal:2600");
        assert!(parsed.log_json && !parsed.no_firewall);
    }

    #[test]
    fn the_container_is_the_vms_tunnel_end_and_ours() {
        let body = container_body(&spec(), "h1");
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("host"));
        assert_eq!(hc.cap_add, Some(vec!["NET_ADMIN".to_string()]));
        let tun = &hc.devices.unwrap()[0];
        assert_eq!(
            (tun.path_on_host.as_deref(), tun.path_in_container.as_deref()),
            (Some("/dev/net/tun"), Some("/dev/net/tun"))
        );
        assert_eq!(hc.restart_policy.unwrap().name, Some(RestartPolicyNameEnum::UNLESS_STOPPED));
        assert_eq!(hc.extra_hosts, Some(vec!["host.docker.internal:198.18.0.1".to_string()]));
        let labels = body.labels.unwrap();
        assert_eq!((labels[LABEL_OURS].as_str(), labels[LABEL_SPEC].as_str()), ("1", "h1"));
        assert_eq!(body.image.as_deref(), Some("dockroute-guest:1"));
        assert!(body.env.is_none(), "the secret never goes into the environment");
        let plain = container_body(&GuestSpec { host_address: None, ..spec() }, "h1");
        assert_eq!(plain.host_config.unwrap().extra_hosts, None, "Docker Desktop's own name is used");
    }

    /// Lines as the guest's `--log-json` writes them (tracing-subscriber's JSON format).
    #[test]
    fn the_firewall_backend_is_read_from_the_guests_log() {
        let log = r#"{"timestamp":"2026-12-06T21:40:00Z","level":"INFO","fields":{"message":"tunnel device up"},"target":"dockroute_guest"}
{"timestamp":"2026-12-06T21:40:00Z","level":"INFO","fields":{"message":"firewall backend chosen","family":"V4","backend":"Nft","reason":"DockerUser"},"target":"dockroute_guest::firewall"}
not json at all
{"timestamp":"2026-12-06T21:40:00Z","level":"INFO","fields":{"message":"firewall backend chosen","family":"V6","backend":"Legacy","reason":"DockerUser"},"target":"dockroute_guest::firewall"}"#;
        assert_eq!(firewall_from_log(log).as_deref(), Some("IPv4 iptables-nft, IPv6 iptables-legacy"));
        let restarted = format!(
            "{log}\n{}",
            r#"{"fields":{"message":"firewall backend chosen","family":"V4","backend":"Legacy"}}"#
        );
        assert_eq!(firewall_from_log(&restarted).as_deref(), Some("IPv4 iptables-legacy, IPv6 iptables-legacy"));
        assert_eq!(firewall_from_log("{\"fields\":{\"message\":\"tunnel device up\"}}"), None);
        assert_eq!(firewall_from_log(""), None);
    }

    #[test]
    fn the_guest_dials_the_engines_name_for_the_host_and_the_override_pins_that_name() {
        let lima = GuestSpec { host_names: crate::engines::host_names(EngineKind::RancherDesktop).unwrap(), ..spec() };
        let body = container_body(&lima, "h");
        let parsed = <GuestArgs as clap::Parser>::try_parse_from(
            std::iter::once("dockroute-guest".to_string()).chain(body.cmd.unwrap()),
        )
        .unwrap();
        assert_eq!(parsed.server, "host.lima.internal:2600");
        assert_eq!(parsed.fallback_server, "host.docker.internal:2600");
        assert_eq!(body.host_config.unwrap().extra_hosts, Some(vec!["host.lima.internal:198.18.0.1".to_string()]));
        let podman = GuestSpec { host_names: crate::engines::host_names(EngineKind::PodmanMachine).unwrap(), ..spec() };
        assert_eq!(guest_args(&podman).server, "host.containers.internal:2600");
    }

    fn found(id: &str, spec: Option<&str>, running: bool) -> Ours {
        Ours { id: id.into(), spec: spec.map(Into::into), image_id: Some("sha256:img".into()), running }
    }

    #[test]
    fn one_container_of_the_wanted_spec_survives() {
        let p = plan(
            vec![found("old", Some("a"), true), found("new", Some("b"), false), found("twin", Some("b"), true)],
            "b",
            "sha256:img",
        );
        assert_eq!(p, Plan { remove: vec!["old".into(), "twin".into()], keep: Some(("new".into(), false)) });
        let p = plan(vec![found("old", Some("a"), true), found("unlabelled", None, true)], "b", "sha256:img");
        assert_eq!(p, Plan { remove: vec!["old".into(), "unlabelled".into()], keep: None }, "none fits: create one");
        assert_eq!(plan(vec![], "b", "sha256:img"), Plan { remove: vec![], keep: None });
        let summary = ContainerSummary {
            id: Some("c1".into()),
            image_id: Some("sha256:img".into()),
            labels: Some(HashMap::from([(LABEL_SPEC.to_string(), "b".to_string())])),
            state: Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            ..Default::default()
        };
        assert_eq!(Ours::from_summary(summary), found("c1", Some("b"), true));
    }

    #[test]
    fn a_container_of_another_image_is_recreated() {
        // Same spec, but made from the image the tag named before (another CPU's, say).
        let stale = plan(vec![found("c1", Some("b"), true)], "b", "sha256:arm64");
        assert_eq!(stale, Plan { remove: vec!["c1".into()], keep: None });
        let mut unknown = found("c2", Some("b"), true);
        unknown.image_id = None;
        assert_eq!(plan(vec![unknown], "b", "sha256:arm64").keep, Some(("c2".into(), true)), "no id: kept");
        assert_eq!(
            plan(vec![found("c3", Some("b"), true)], "b", "").keep,
            Some(("c3".into(), true)),
            "nothing to compare"
        );
        let empty = ContainerSummary { image_id: Some(String::new()), ..Default::default() };
        assert_eq!(Ours::from_summary(empty).image_id, None);
    }

    #[test]
    fn the_config_archive_holds_the_files_with_their_modes() {
        let archive =
            config_archive(&[("secret", b"abc", 0o600), ("rules", b"internal 198.19.2.0/24\n", 0o644)]).unwrap();
        let mut seen = Vec::new();
        for entry in tar::Archive::new(archive.as_slice()).entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            seen.push((path, mode, text));
        }
        assert_eq!(
            seen,
            [
                ("etc/dockroute".to_string(), 0o755, String::new()),
                ("etc/dockroute/secret".to_string(), 0o600, "abc".to_string()),
                ("etc/dockroute/rules".to_string(), 0o644, "internal 198.19.2.0/24\n".to_string()),
            ]
        );
    }
}
