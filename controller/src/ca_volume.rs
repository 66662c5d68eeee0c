//! The local CA's certificate for containers: a Docker volume, `dockroute-ca`, holding
//! `dockroute-ca.crt` (the certificate the helper reports, PEM). A container that should trust
//! `https://*.docker` mounts it where its tools look, e.g. `dockroute-ca:/usr/local/share/
//! ca-certificates/dockroute:ro`, and runs `update-ca-certificates` (or points
//! `NODE_EXTRA_CA_CERTS` / `SSL_CERT_FILE` / `REQUESTS_CA_BUNDLE` at the file). A volume, not a
//! bind mount of the host's file: on a Mac the certificate's directory is not shared with
//! Docker Desktop's VM, and a volume is there before the container's first process starts.
//!
//! The volume is filled through a container that is created and never started (the guest's
//! image, which the engine has; the archive API writes into a created container's volumes),
//! then removed. The certificate is public: nothing secret goes through here.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;

use crate::guest::LABEL_OURS;

pub const VOLUME: &str = "dockroute-ca";
pub const FILE: &str = "dockroute-ca.crt";
/// Where the filler container mounts the volume.
const MOUNT: &str = "/dockroute-ca";
const FILLER: &str = "dockroute-ca-filler";
/// Marks the filler container (with the CA's id): not `LABEL_OURS`, which would make the
/// guest's own clean-up take it for a stale guest while it works.
pub const LABEL_FILLER: &str = "dev.dockroute.ca-filler";

/// Whether the volume must be (re)written: the helper reports a CA that it does not hold.
pub fn needs_offer(offered: Option<&str>, reported: Option<&str>) -> bool {
    reported.is_some() && offered != reported
}

/// Whether Docker has a volume named `VOLUME` that Dockroute made (Some(false): someone
/// else's, never written into or removed).
async fn ours(docker: &Docker) -> anyhow::Result<Option<bool>> {
    match docker.inspect_volume(VOLUME).await {
        Ok(v) => Ok(Some(v.labels.contains_key(LABEL_OURS))),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `pem` (the CA `ca_id`) into the volume, making it if needed, through a created,
/// never-started container of `image`. Idempotent. A volume of that name Dockroute did not
/// make is refused, not written into.
pub async fn offer(docker: &Docker, image: &str, ca_id: &str, pem: &[u8]) -> anyhow::Result<()> {
    match ours(docker).await? {
        Some(false) => anyhow::bail!("a volume named {VOLUME} exists that Dockroute did not make"),
        Some(true) => {}
        None => {
            let labels = HashMap::from([(LABEL_OURS.to_string(), "1".to_string())]);
            let request = VolumeCreateRequest { name: Some(VOLUME.into()), labels: Some(labels), ..Default::default() };
            docker.create_volume(request).await?;
        }
    }
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(HashMap::from([(LABEL_FILLER.to_string(), ca_id.to_string())])),
        network_disabled: Some(true),
        host_config: Some(HostConfig { binds: Some(vec![format!("{VOLUME}:{MOUNT}")]), ..Default::default() }),
        ..Default::default()
    };
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    // One left by an interrupted earlier run goes first, if its label says it is ours.
    if let Ok(old) = docker.inspect_container(FILLER, None::<bollard::query_parameters::InspectContainerOptions>).await
    {
        if old.config.and_then(|c| c.labels).is_some_and(|l| l.contains_key(LABEL_FILLER)) {
            let _ = docker.remove_container(FILLER, Some(remove.clone())).await;
        }
    }
    let options = CreateContainerOptionsBuilder::default().name(FILLER).build();
    let created = docker.create_container(Some(options), body).await?;
    let archive = archive(pem)?;
    let options = UploadToContainerOptionsBuilder::default().path(MOUNT).build();
    let written = docker.upload_to_container(&created.id, Some(options), bollard::body_full(archive.into())).await;
    let removed = docker.remove_container(&created.id, Some(remove)).await;
    written?;
    removed?;
    tracing::info!("the local CA {ca_id} is in the volume {VOLUME} ({FILE}) for containers that mount it");
    Ok(())
}

/// Removes the volume if Dockroute made it; one a container still mounts is left (Docker
/// refuses) and said.
pub async fn remove(docker: &Docker) -> anyhow::Result<()> {
    if ours(docker).await? != Some(true) {
        return Ok(());
    }
    match docker.remove_volume(VOLUME, None::<bollard::query_parameters::RemoveVolumeOptions>).await {
        Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message }) => {
            tracing::warn!("the volume {VOLUME} is left: a container still mounts it ({message})");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `FILE` with `pem`, world-readable, as a tar archive.
fn archive(pem: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(pem.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append_data(&mut h, FILE, pem)?;
    builder.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_is_written_for_a_new_ca_only() {
        assert!(needs_offer(None, Some("ab12")), "first report");
        assert!(!needs_offer(Some("ab12"), Some("ab12")), "the same CA again");
        assert!(needs_offer(Some("ab12"), Some("cd34")), "a new CA replaces the file");
        assert!(!needs_offer(Some("ab12"), None), "no CA reported (HTTPS off in the config): left as it is");
    }

    #[test]
    fn the_archive_holds_the_certificate_alone_world_readable() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let bytes = archive(pem).unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        let entries: Vec<(String, u32, Vec<u8>)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut e, &mut data).unwrap();
                (e.path().unwrap().display().to_string(), e.header().mode().unwrap(), data)
            })
            .collect();
        assert_eq!(entries, [(FILE.to_string(), 0o644, pem.to_vec())]);
    }
}
