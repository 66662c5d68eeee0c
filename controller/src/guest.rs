//! The guest container: its image (loaded from the bundled tarball when missing or of another
//! version), and the container itself (host network, NET_ADMIN, /dev/net/tun, restart
//! unless-stopped, labelled as ours). The secret reaches it as a file copied in before it
//! starts: never an environment variable or an argument, so `docker inspect` never shows it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, DeviceMapping, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ImportImageOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
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
    /// Pin `host.docker.internal` to this address (tests; hosts without Docker Desktop's DNS).
    pub host_address: Option<IpAddr>,
    /// SHA-256 of the secret, so a new secret means a new container; reveals nothing usable.
    pub secret_fingerprint: String,
}

impl GuestSpec {
    pub fn hash(&self) -> String {
        let text = format!("{}|{}|{:?}|{}", self.image, self.port, self.host_address, self.secret_fingerprint);
        hex(&Sha256::digest(text.as_bytes())[..16])
    }
}

pub fn fingerprint(secret: &[u8]) -> String {
    hex(&Sha256::digest(secret)[..8])
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What `ensure` did, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    AlreadyRunning,
    Started,
    Created { replaced: usize },
}

/// Loads the image from `tarball` unless `image` is already present.
pub async fn ensure_image(docker: &Docker, image: &str, tarball: Option<&Path>) -> anyhow::Result<bool> {
    if docker.inspect_image(image).await.is_ok() {
        return Ok(false);
    }
    let Some(path) = tarball else {
        anyhow::bail!("the guest image {image} is not loaded and no image tarball was given");
    };
    let bytes = tokio::fs::read(path).await.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let mut stream =
        docker.import_image(ImportImageOptionsBuilder::default().build(), bollard::body_full(bytes.into()), None);
    while let Some(r) = stream.next().await {
        r.map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
    }
    docker
        .inspect_image(image)
        .await
        .map_err(|e| anyhow::anyhow!("{} did not contain {image}: {e}", path.display()))?;
    tracing::info!("loaded the guest image {image} from {}", path.display());
    Ok(true)
}

/// Our containers (by label), with their spec hash and whether they run.
async fn ours(docker: &Docker) -> anyhow::Result<Vec<(String, Option<String>, bool)>> {
    let filters = HashMap::from([("label", vec![LABEL_OURS])]);
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::default().all(true).filters(&filters).build()))
        .await?;
    Ok(list
        .into_iter()
        .map(|c| {
            let id = c.id.unwrap_or_default();
            let spec = c.labels.and_then(|l| l.get(LABEL_SPEC).cloned());
            let running = c.state.map(|s| s.to_string()) == Some("running".to_string());
            (id, spec, running)
        })
        .collect())
}

/// Makes exactly one guest container of `spec` run, with `secret` and `rules` inside.
pub async fn ensure(docker: &Docker, spec: &GuestSpec, secret: &[u8], rules: &str) -> anyhow::Result<Ensured> {
    let want = spec.hash();
    let mut replaced = 0;
    let mut keep = None;
    for (id, hash, running) in ours(docker).await? {
        if keep.is_none() && hash.as_deref() == Some(want.as_str()) {
            keep = Some((id, running));
        } else {
            remove_container(docker, &id).await?;
            replaced += 1;
        }
    }
    if let Some((id, running)) = keep {
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
    Ok(Ensured::Created { replaced })
}

async fn create(docker: &Docker, spec: &GuestSpec, hash: &str) -> anyhow::Result<String> {
    let mut cmd = vec![
        "--secret-file".to_string(),
        format!("{CONFIG_DIR}/secret"),
        "--rules-file".to_string(),
        format!("{CONFIG_DIR}/rules"),
        "--server".to_string(),
        format!("host.docker.internal:{}", spec.port),
        "--fallback-server".to_string(),
        format!("gateway.docker.internal:{}", spec.port),
    ];
    cmd.push("--log-json".into());
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
        extra_hosts: spec.host_address.map(|a| vec![format!("host.docker.internal:{a}")]),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(cmd),
        labels: Some(HashMap::from([
            (LABEL_OURS.to_string(), "1".to_string()),
            (LABEL_SPEC.to_string(), hash.to_string()),
        ])),
        stop_signal: Some("SIGTERM".into()),
        stop_timeout: Some(10),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(CONTAINER_NAME).build();
    let created = docker.create_container(Some(options), body).await.map_err(|e| {
        anyhow::anyhow!("creating {CONTAINER_NAME}: {e} (a container of that name that Dockroute did not make must be removed by hand)")
    })?;
    Ok(created.id)
}

/// Replaces the rules file in the running guest (it re-reads it when it changes).
pub async fn update_rules(docker: &Docker, rules: &str) -> anyhow::Result<()> {
    for (id, _, running) in ours(docker).await? {
        if running {
            upload(docker, &id, &[("rules", rules.as_bytes(), 0o644)]).await?;
        }
    }
    Ok(())
}

/// Removes every container of ours. Idempotent.
pub async fn remove_all(docker: &Docker) -> anyhow::Result<usize> {
    let list = ours(docker).await?;
    for (id, _, _) in &list {
        remove_container(docker, id).await?;
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
    let archive = builder.into_inner()?;
    let options = UploadToContainerOptionsBuilder::default().path("/").build();
    // As a stream: bollard logs whole request bodies at trace level, streams it does not, and
    // this archive holds the secret.
    let body = futures_util::stream::once(async move { bytes::Bytes::from(archive) });
    docker.upload_to_container(id, Some(options), bollard::body_stream(body)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_hash_changes_with_every_field_and_the_fingerprint_hides_the_secret() {
        let base = GuestSpec {
            image: "dockroute-guest:1".into(),
            port: 2511,
            host_address: None,
            secret_fingerprint: fingerprint(b"s"),
        };
        let h = base.hash();
        for other in [
            GuestSpec { image: "dockroute-guest:2".into(), ..base.clone() },
            GuestSpec { port: 2512, ..base.clone() },
            GuestSpec { host_address: Some("198.18.0.1".parse().unwrap()), ..base.clone() },
            GuestSpec { secret_fingerprint: fingerprint(b"t"), ..base.clone() },
        ] {
            assert_ne!(other.hash(), h, "{other:?}");
        }
        assert_eq!(base.hash(), h, "stable");
        assert_eq!(fingerprint(b"s").len(), 16);
        assert!(!fingerprint(b"super-secret").contains("super"));
    }
}
