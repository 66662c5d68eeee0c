//! The controller, a thin driver: it gathers what Docker and the helper say, and carries out
//! what the cores decide — which events matter and when to subscribe again (`docker_events`),
//! what to send again (`sync_policy`), when to repair the tunnel (`repair`), when the guest
//! sleeps (`idle`), what the user sees (`view::derive`), how to take it all down (`teardown`).
//! By concern: `event_loop` (what woke it), `sync` (Docker listed, the helper and the guest
//! told), `liveness` (repair and idle decisions carried out); here the state, connecting and
//! reporting to the view.

mod event_loop;
mod liveness;
mod sync;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use bollard::models::ContainerSummary;
use bollard::Docker;
use dockroute_api::client::Client;
use dockroute_api::Status;
use tokio::sync::{watch, Notify};

use crate::ca_volume;
use crate::discovery::BridgeNetwork;
use crate::endpoint::{self, DockerEndpoint};
use crate::engines::{self, choice::Probed};
use crate::guest::{self, GuestSpec};
use crate::helper_link::{Connection, HelperLink};
use crate::idle::IdlePolicy;
use crate::names::NameSet;
use crate::options::{validate_pairs, Options};
use crate::repair::RepairPolicy;
use crate::sync_policy::SyncPolicy;
use crate::teardown;
use crate::view::derive::Gathered;
use crate::view::writer::ViewWriter;
use crate::view::{self, ContainerView, Problem, ProblemError, RuntimeView};

/// The controller's channels to whoever shows its state: it reports what it gathered to the
/// view's writer and follows the user's network toggles and Retry on the others.
pub struct ViewChannels {
    pub view: ViewWriter,
    /// Names of the networks the user switched off.
    pub disabled: watch::Receiver<BTreeSet<String>>,
    /// The user's Retry: reconnect to Docker now rather than at the end of the backoff.
    pub retry: Arc<Notify>,
    /// Whether the guest may sleep while no other container runs (the app's preference).
    pub sleep: watch::Receiver<bool>,
    /// The user's HTTPS switch: whether the helper should serve its HTTPS front.
    pub https: watch::Receiver<bool>,
}

/// The engine the supervisor chose to follow, as asked (`engines::probe`).
#[derive(Debug, Clone)]
pub struct Followed {
    pub endpoint: DockerEndpoint,
    pub probed: Probed,
}

/// What to do with the guest and the routes when the controller stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Disconnect: remove the guest container, withdraw the routes, take the tunnel down.
    Teardown,
    /// Quit the app but keep the containers reachable: the next start adopts everything.
    Leave,
}

pub struct Controller {
    opts: Options,
    helper: HelperLink,
    docker: Docker,
    endpoint: DockerEndpoint,
    secret: Vec<u8>,
    spec: GuestSpec,
    networks: Vec<BridgeNetwork>,
    /// What the helper and the guest have from us, and when to send again.
    sync: SyncPolicy,
    channels: ViewChannels,
    containers: Vec<ContainerView>,
    /// Docker's last container list, which the names are made from.
    listed: Vec<ContainerSummary>,
    names: NameSet,
    last_status: Option<Status>,
    docker_problem: Option<Problem>,
    /// The last sync failed for another reason (the guest image, the helper refusing a route).
    sync_problem: Option<Problem>,
    repair: RepairPolicy,
    /// The engine's CPU as `docker info` says it, asked once per connection.
    engine_arch: Option<String>,
    /// Whether the guest sleeps while no other container runs.
    idle: IdlePolicy,
    /// Pokes sent to the guest (each one a new file content, so its watch sees a change).
    pokes: u64,
    /// The engine's events do not announce new and removed networks (Podman before 5): list
    /// them every `docker_events::NETWORK_POLL`.
    poll_networks: bool,
    /// The followed engine's facts, for the view.
    runtime: RuntimeView,
    /// Times the guest's log was read for its firewall backend.
    firewall_reads: u8,
    /// The local CA whose certificate is in the `dockroute-ca` volume (set by the task that
    /// put it there, only once it did).
    ca_offered: Arc<std::sync::Mutex<Option<String>>>,
    /// The task filling the volume, awaited by Disconnect's teardown.
    ca_task: Option<tokio::task::JoinHandle<()>>,
}

impl Controller {
    /// Connects to the helper (handing it the secret) and to the engine the supervisor chose
    /// (or says why there is none).
    pub async fn connect(
        opts: Options,
        channels: ViewChannels,
        followed: Result<Followed, Problem>,
    ) -> anyhow::Result<Controller> {
        validate_pairs(&opts.pairs)?;
        let secret = match &opts.secret {
            Some(s) => s.clone(),
            // A fresh secret: it only ever exists in memory here, in the helper's memory and as
            // a file inside the guest container.
            None => crate::new_secret()?,
        };
        // The helper first: without it nothing works, and installing it is the user's job,
        // while Docker Desktop usually just needs a moment.
        let mut helper = HelperLink::new(opts.helper_socket.clone(), secret.clone(), channels.https.clone());
        helper.connect().await.map_err(ProblemError)?;
        let Followed { endpoint, probed } = followed.map_err(ProblemError)?;
        let docker = endpoint::connect(&endpoint)
            .await
            .map_err(|e| ProblemError(view::docker_problem(&endpoint.host, &format!("{e:#}"))))?;
        // The guest takes the helper's transport setting.
        let transport = match helper.client() {
            Some(c) => c.status().await.map(|s| s.transport).unwrap_or_default(),
            None => Default::default(),
        };
        let host_names = engines::host_names(probed.kind).unwrap_or_else(guest::docker_host_names);
        let runtime = RuntimeView {
            engine: probed.kind.display_name().to_string(),
            engine_version: probed.version.clone(),
            api_version: Some(docker.client_version().to_string()),
            host_name: match opts.host_address {
                Some(a) => format!("{} → {a} (--host-address)", host_names.primary),
                None => host_names.primary.to_string(),
            },
            firewall: None,
        };
        let spec = GuestSpec {
            image: opts.guest_image.clone(),
            port: opts.port,
            host_address: opts.host_address,
            host_names,
            secret_fingerprint: guest::fingerprint(&secret),
            transport,
        };
        tracing::info!(
            "docker engine: {} (from {}): {} {}, API {}, the guest reaches the host as {}",
            endpoint.host,
            endpoint.source,
            runtime.engine,
            runtime.engine_version.as_deref().unwrap_or("(version unknown)"),
            runtime.api_version.as_deref().unwrap_or("?"),
            runtime.host_name
        );
        // From the `/version` the engine was recognised by (`engines::probe`).
        let poll_networks = !probed.announces_networks;
        if poll_networks {
            tracing::info!(
                "the engine's events do not announce networks: listing them every {:?}",
                crate::docker_events::NETWORK_POLL
            );
        }
        let idle = IdlePolicy::new(*channels.sleep.borrow());
        let me = Controller {
            opts,
            helper,
            docker,
            endpoint,
            secret,
            spec,
            networks: Vec::new(),
            sync: SyncPolicy::default(),
            channels,
            containers: Vec::new(),
            listed: Vec::new(),
            names: NameSet::default(),
            last_status: None,
            ca_offered: Arc::default(),
            ca_task: None,
            docker_problem: None,
            sync_problem: None,
            repair: RepairPolicy::new(Instant::now()),
            engine_arch: None,
            idle,
            pokes: 0,
            poll_networks,
            runtime,
            firewall_reads: 0,
        };
        me.publish();
        Ok(me)
    }

    /// The helper connection, made again if it was lost; a change in whether the helper can
    /// be reached shows in the view.
    async fn helper(&mut self) -> anyhow::Result<&Client> {
        let shown = self.helper.problem().cloned();
        let connected = self.helper.connect().await;
        if self.helper.problem() != shown.as_ref() {
            self.publish();
        }
        match connected {
            Ok(Connection::Kept) => {}
            Ok(Connection::Made) => {
                self.sync.helper_reconnected();
                self.repair.helper_reconnected(Instant::now());
            }
            Err(problem) => return Err(ProblemError(problem).into()),
        }
        self.helper.client().ok_or_else(|| anyhow::anyhow!("the helper closed the connection"))
    }

    /// Reports what the controller knows to the view (the dashboard and the tray), which is
    /// derived from it.
    fn publish(&self) {
        let gathered = Gathered {
            live: true,
            engine: Some(self.endpoint.host.clone()),
            status: self.last_status.clone(),
            networks: self.networks.clone(),
            disabled: self.channels.disabled.borrow().clone(),
            containers: self.containers.clone(),
            names: self.names.clone(),
            idle: self.idle.is_idle(),
            helper_problem: self.helper.problem().cloned(),
            docker_problem: self.docker_problem.clone(),
            sync_problem: self.sync_problem.clone(),
            runtime: Some(self.runtime.clone()),
        };
        self.channels.view.update(|inputs| inputs.controller_reports(gathered));
    }

    fn set_docker_problem(&mut self, problem: Option<Problem>) {
        if self.docker_problem != problem {
            self.docker_problem = problem;
            self.publish();
        }
    }

    fn show_status(&mut self, status: Status) {
        if self.last_status.as_ref() != Some(&status) {
            self.last_status = Some(status);
            // Route conflicts and the DNS suffix change which names there are (sent on the
            // next liveness check).
            self.make_names();
            self.offer_ca();
            self.publish();
        }
    }

    /// Puts a CA the helper reports, and the volume does not hold yet, into the `dockroute-ca`
    /// volume, in the background; one task at a time. A failure (the guest image not loaded
    /// yet, Docker busy) is logged and tried again at the next status change.
    fn offer_ca(&mut self) {
        let ca = self.last_status.as_ref().and_then(|s| s.https.as_ref()).and_then(|h| h.ca.as_ref());
        let offered = self.ca_offered.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let (id, path) = match ca {
            Some(ca) if ca_volume::needs_offer(offered.as_deref(), Some(&ca.id)) => (ca.id.clone(), ca.path.clone()),
            _ => return,
        };
        if self.ca_task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let (docker, image, done) = (self.docker.clone(), self.spec.image.clone(), self.ca_offered.clone());
        self.ca_task = Some(tokio::spawn(async move {
            let offered = match std::fs::read(&path) {
                Ok(pem) => ca_volume::offer(&docker, &image, &id, &pem).await,
                Err(e) => Err(anyhow::anyhow!("cannot read {path}: {e}")),
            };
            match offered {
                Ok(()) => *done.lock().unwrap_or_else(|e| e.into_inner()) = Some(id),
                Err(e) => {
                    tracing::warn!("the local CA is not offered to containers yet ({}): {e:#}", ca_volume::VOLUME)
                }
            }
        }));
    }

    /// Disconnect: removes the guest container and withdraws everything from the helper.
    /// An error says something may be left (the supervisor tries again).
    async fn teardown(mut self) -> anyhow::Result<()> {
        // A volume being filled now would race its removal (or leave the filler container).
        if let Some(task) = self.ca_task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
        }
        let reached = self.helper().await.map(|_| ()).map_err(|e| format!("{e:#}"));
        let helper = reached.and_then(|()| self.helper.client().ok_or_else(|| "the connection closed".to_string()));
        teardown::run(Ok(&self.docker), helper).await.into_result()
    }
}
