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
/// The volume's label: the CA it holds (so a new CA replaces the file, the same one does not).
pub const LABEL_CA_ID: &str = "dev.dockroute.ca-id";

/// Whether the volume must be (re)written: the helper reports a CA that it does not hold.
pub fn needs_offer(offered: Option<&str>, reported: Option<&str>) -> bool {
    reported.is_some() && offered != reported
}

/// Writes `pem` (the CA `ca_id`) into the volume, making it if needed, through a created,
/// never-started container of `image`. Idempotent.
pub async fn offer(docker: &Docker, image: &str, ca_id: &str, pem: &[u8]) -> anyhow::Result<()> {
    let labels = HashMap::from([(LABEL_OURS.to_string(), "1".to_string())]);
    let request = VolumeCreateRequest { name: Some(VOLUME.into()), labels: Some(labels.clone()), ..Default::default() };
    docker.create_volume(request).await?;
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        labels: Some(HashMap::from([
            (LABEL_OURS.to_string(), "1".to_string()),
            (LABEL_CA_ID.to_string(), ca_id.to_string()),
        ])),
        network_disabled: Some(true),
        host_config: Some(HostConfig { binds: Some(vec![format!("{VOLUME}:{MOUNT}")]), ..Default::default() }),
        ..Default::default()
    };
    let name = "dockroute-ca-filler";
    let remove = RemoveContainerOptionsBuilder::default().force(true).build();
    // One left by an interrupted earlier run is ours (the label says so) and goes first.
    let _ = docker.remove_container(name, Some(remove.clone())).await;
    let created =
        docker.create_container(Some(CreateContainerOptionsBuilder::default().name(name).build()), body).await?;
    let archive = archive(pem)?;
    let options = UploadToContainerOptionsBuilder::default().path(MOUNT).build();
    let written = docker.upload_to_container(&created.id, Some(options), bollard::body_full(archive.into())).await;
    let removed = docker.remove_container(&created.id, Some(remove)).await;
    written?;
    removed?;
    tracing::info!("the local CA {ca_id} is in the volume {VOLUME} ({FILE}) for containers that mount it");
    Ok(())
}

/// Removes the volume; one a container still mounts is left (Docker refuses) and said.
pub async fn remove(docker: &Docker) -> anyhow::Result<()> {
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
