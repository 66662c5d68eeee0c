//! Disconnect's teardown: the guest container removed (stopping it makes it remove its firewall
//! rules), the app's routes and names withdrawn from the helper, the helper's tunnel taken down. One
//! sequence for both callers: a running controller, which has Docker and the helper at hand,
//! and the supervisor cleaning up after a connect that never finished, which has to reach them
//! first. Idempotent: what is already gone counts as done.

use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use dockroute_api::client::Client;
use dockroute_api::Op;

use crate::endpoint::{self, DockerEndpoint, Env};
use crate::{guest, helper_link};

/// Reaching Docker or the helper for a teardown takes at most this long.
const REACH_LIMIT: Duration = Duration::from_secs(5);
/// One step at most this long (removing the guest waits up to its 10 s stop timeout).
const STEP_LIMIT: Duration = Duration::from_secs(30);

/// How one side of the teardown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    Done(T),
    /// Could not be reached: nothing was done there.
    Unreachable(String),
    /// Reached, and it failed.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// How many guest containers were removed.
    pub guest: Step<usize>,
    /// Routes withdrawn and tunnel down.
    pub helper: Step<()>,
}

impl Report {
    /// Ok when nothing of ours can be left behind. An unreachable Docker may still run the
    /// guest, so it is an error (the supervisor tries again later); an unreachable helper is
    /// not: one that is not running has no tunnel, one that refuses us will refuse again.
    pub fn into_result(self) -> anyhow::Result<()> {
        let mut left = Vec::new();
        match self.guest {
            Step::Done(_) => {}
            Step::Unreachable(e) => left.push(format!("the guest container may still run (Docker: {e})")),
            Step::Failed(e) => left.push(format!("removing the guest container failed: {e}")),
        }
        if let Step::Failed(e) = self.helper {
            left.push(format!("withdrawing the routes from the helper failed: {e}"));
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{}", left.join("; ")))
        }
    }

    fn log(&self) {
        match &self.guest {
            Step::Done(n) => tracing::info!("guest containers removed: {n}"),
            Step::Unreachable(e) => tracing::warn!("docker unavailable at teardown: {e}"),
            Step::Failed(e) => tracing::warn!("removing the guest container failed: {e}"),
        }
        match &self.helper {
            Step::Done(()) => tracing::info!("helper: routes withdrawn, tunnel disconnected"),
            Step::Unreachable(e) => tracing::warn!("helper unavailable at teardown: {e}"),
            Step::Failed(e) => tracing::warn!("helper teardown failed: {e}"),
        }
    }
}

/// The guest containers, then the CA's volume (left, and said, while a container mounts it).
async fn remove_ours(docker: &Docker) -> anyhow::Result<usize> {
    let removed = guest::remove_all(docker).await?;
    crate::ca_volume::remove(docker).await?;
    Ok(removed)
}

/// Tears down through connections the caller has (or says why it has none).
pub async fn run(docker: Result<&Docker, String>, helper: Result<&Client, String>) -> Report {
    let guest = match docker {
        Ok(d) => match tokio::time::timeout(STEP_LIMIT, remove_ours(d)).await {
            Ok(Ok(n)) => Step::Done(n),
            Ok(Err(e)) => Step::Failed(format!("{e:#}")),
            Err(_) => Step::Failed(format!("no answer within {STEP_LIMIT:?}")),
        },
        Err(e) => Step::Unreachable(e),
    };
    let helper = match helper {
        Ok(h) => {
            let withdraw = async {
                h.call(Op::SetRoutes { routes: Vec::new() }).await?;
                h.call(Op::SetNames {
                    names: Default::default(),
                    domains: Default::default(),
                    name_ports: Default::default(),
                    domain_ports: Default::default(),
                })
                .await?;
                h.call(Op::Disconnect).await
            };
            match tokio::time::timeout(STEP_LIMIT, withdraw).await {
                Ok(Ok(_)) => Step::Done(()),
                Ok(Err(e)) => Step::Failed(e.to_string()),
                Err(_) => Step::Failed(format!("no answer within {STEP_LIMIT:?}")),
            }
        }
        Err(e) => Step::Unreachable(e),
    };
    let report = Report { guest, helper };
    report.log();
    report
}

/// Tears down what an earlier run (or a connect that never finished) may have left, without a
/// running controller: reaches Docker (the engine that was followed, else the one found
/// through `env`) and the helper at `socket` first.
pub async fn detached(socket: &Path, engine: Option<&DockerEndpoint>, env: &Env) -> Report {
    let docker = async {
        let endpoint = match engine {
            Some(e) => e.clone(),
            None => endpoint::resolve(env)?,
        };
        endpoint::connect(&endpoint).await.map_err(|e| format!("{} ({}): {e:#}", endpoint.host, endpoint.source))
    };
    let docker = tokio::time::timeout(REACH_LIMIT, docker).await.unwrap_or_else(|_| Err(too_slow()));
    let helper = tokio::time::timeout(REACH_LIMIT, helper_link::connect_plain(socket))
        .await
        .unwrap_or_else(|_| Err(dockroute_api::ClientError::Io(std::io::ErrorKind::TimedOut.into())))
        .map_err(|e| e.to_string());
    run(docker.as_ref().map_err(Clone::clone), helper.as_ref().map_err(Clone::clone)).await
}

fn too_slow() -> String {
    format!("no answer within {REACH_LIMIT:?}")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use super::*;

    fn report(guest: Step<usize>, helper: Step<()>) -> anyhow::Result<()> {
        Report { guest, helper }.into_result()
    }

    #[test]
    fn only_what_may_be_left_behind_is_an_error() {
        assert!(report(Step::Done(1), Step::Done(())).is_ok());
        assert!(report(Step::Done(0), Step::Unreachable("gone".into())).is_ok(), "no helper, no tunnel");
        let e = report(Step::Unreachable("refused".into()), Step::Done(())).unwrap_err().to_string();
        assert!(e.contains("may still run") && e.contains("refused"), "{e}");
        let e = report(Step::Failed("409".into()), Step::Failed("closed".into())).unwrap_err().to_string();
        assert!(e.contains("removing the guest container failed: 409"), "{e}");
        assert!(e.contains("withdrawing the routes from the helper failed: closed"), "{e}");
    }

    #[tokio::test]
    async fn with_nothing_reachable_it_says_so_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env {
            vars: HashMap::from([(
                "DOCKER_HOST".to_string(),
                format!("unix://{}", dir.path().join("no-docker.sock").display()),
            )]),
            home: None,
        };
        let started = Instant::now();
        let r = detached(&dir.path().join("no-helper.sock"), None, &env).await;
        assert!(started.elapsed() < REACH_LIMIT, "took {:?}", started.elapsed());
        assert!(matches!(&r.guest, Step::Unreachable(e) if e.contains("no-docker.sock")), "{r:?}");
        assert!(matches!(&r.helper, Step::Unreachable(e) if e.contains("no-helper.sock")), "{r:?}");
        assert!(r.into_result().is_err(), "the guest may still run: try again later");
    }
}
