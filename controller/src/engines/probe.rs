//! Asking each candidate engine what it is: the driver around `kind::recognise` and
//! `choice::choose`. Each question is bounded, so a hung socket delays the list by at most
//! `PROBE_LIMIT`.

use std::time::Duration;

use bollard::Docker;

use super::choice::{Found, Probed};
use super::kind::{engine_version, recognise, HostOs};
use crate::endpoint::{self, DockerEndpoint, Env};

/// One engine's answers take at most this long.
pub const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// Every candidate endpoint (`endpoint::candidates`), asked at once.
pub async fn survey(env: &Env, host: HostOs) -> Vec<Found> {
    let candidates = endpoint::candidates(env);
    let asked = candidates.iter().map(|e| async move {
        let probed = match tokio::time::timeout(PROBE_LIMIT, probe(e, host)).await {
            Ok(r) => r.map(|(p, _)| p),
            Err(_) => Err(format!("no answer within {PROBE_LIMIT:?}")),
        };
        Found { endpoint: e.clone(), probed }
    });
    futures_util::future::join_all(asked).await
}

/// Connects to `endpoint` and recognises the engine; the connection is returned for reuse.
pub async fn probe(endpoint: &DockerEndpoint, host: HostOs) -> Result<(Probed, Docker), String> {
    let docker = endpoint::connect(endpoint).await.map_err(|e| format!("{e:#}"))?;
    let info = docker.info().await.map_err(|e| e.to_string())?;
    let version = docker.version().await.map_err(|e| e.to_string())?;
    let probed = Probed {
        kind: recognise(&info, &version, &endpoint.host, host),
        version: engine_version(&info, &version),
        api_version: Some(docker.client_version().to_string()),
        announces_networks: crate::docker_events::announces_networks(&version),
    };
    Ok((probed, docker))
}
