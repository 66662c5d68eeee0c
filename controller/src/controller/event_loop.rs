//! The loop: what woke it (a Docker event, the helper, a timer, the user), and which part of
//! the controller handles it. A lost Docker event stream is subscribed again after
//! `docker_events`'s backoff.

use std::time::{Duration, Instant, SystemTime};

use bollard::models::EventMessage;
use dockroute_api::Event;
use futures_util::StreamExt;

use super::{Controller, Exit};
use crate::docker_events::{self, EventEffect, Resubscribe};
use crate::view;

/// Full re-list, in case an event was missed.
const RESYNC: Duration = Duration::from_secs(30);
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// What woke the loop.
// One at a time, handled at once: boxing the helper's event would only add noise.
#[allow(clippy::large_enum_variant)]
enum Wake {
    Docker(Option<Result<EventMessage, bollard::errors::Error>>),
    Resync,
    /// Time to list the networks of an engine that does not announce them.
    NetworkPoll,
    Helper(Option<Event>),
    Liveness,
    Toggle,
    /// The guest may go idle now.
    IdleDue,
    /// The preference to let Docker sleep changed.
    SleepPreference,
    /// The user's HTTPS switch changed.
    HttpsSwitch,
    Stop(Exit),
}

impl Controller {
    /// Runs until `shutdown` resolves, then tears down or leaves everything as `Exit` says.
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = Exit>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let mut resync = tokio::time::interval(RESYNC);
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        let mut network_poll = tokio::time::interval(docker_events::NETWORK_POLL);
        network_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut resubscribe = Resubscribe::default();
        let mut disabled = self.channels.disabled.clone();
        let mut sleep = self.channels.sleep.clone();
        let mut https = self.channels.https.clone();
        let exit = 'outer: loop {
            // Subscribed before the listing in `sync`, so nothing falls between the two.
            let mut events = self.docker.events(Some(docker_events::subscription(SystemTime::now()))).boxed();
            let subscribed = Instant::now();
            let mut delivered = false;
            // A new stream may follow a dockerd restart, which rebuilds the chains.
            self.sync.docker_may_have_rebuilt_chains();
            if let Err(e) = self.sync().await {
                tracing::warn!("cannot sync with docker ({}): {e:#}", self.endpoint.host);
            } else {
                loop {
                    let idle_timer = dockroute_stdx::time::sleep_until(self.idle.poll_timeout());
                    let wake = tokio::select! {
                        ev = events.next() => Wake::Docker(ev),
                        _ = resync.tick() => Wake::Resync,
                        _ = network_poll.tick(), if self.poll_networks => Wake::NetworkPoll,
                        ev = self.helper.next_event() => Wake::Helper(ev),
                        _ = liveness.tick() => Wake::Liveness,
                        Ok(()) = disabled.changed() => Wake::Toggle,
                        () = idle_timer => Wake::IdleDue,
                        Ok(()) = sleep.changed() => Wake::SleepPreference,
                        Ok(()) = https.changed() => Wake::HttpsSwitch,
                        exit = &mut shutdown => Wake::Stop(exit),
                    };
                    match wake {
                        Wake::Docker(Some(Ok(ev))) => {
                            delivered = true;
                            if docker_events::other_container_started(&ev) {
                                // Before anything else: the container waits for the tunnel.
                                self.idle.handle_container_started(Instant::now());
                                self.carry_out_idle().await;
                            }
                            if docker_events::is_network_change(&ev) {
                                self.sync.docker_may_have_rebuilt_chains();
                            }
                            match docker_events::classify(&ev) {
                                EventEffect::Sync => {
                                    if let Err(e) = self.sync().await {
                                        tracing::warn!("sync after a docker event failed: {e:#}");
                                    }
                                }
                                EventEffect::RefreshContainers => self.refresh_containers().await,
                                EventEffect::Nothing => {}
                            }
                        }
                        Wake::Docker(Some(Err(e))) => {
                            tracing::warn!("docker event stream: {e}");
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &e)));
                            break;
                        }
                        Wake::Docker(None) => {
                            tracing::warn!("docker event stream ended (dockerd restarted?)");
                            let why = "the event stream ended (dockerd restarted?)";
                            self.set_docker_problem(Some(view::docker_problem(&self.endpoint.host, &why)));
                            break;
                        }
                        Wake::Resync => {
                            if let Err(e) = self.sync().await {
                                tracing::warn!("periodic sync failed: {e:#}");
                            }
                        }
                        Wake::NetworkPoll => self.poll_networks().await,
                        Wake::Helper(ev) => {
                            self.on_helper_event(ev);
                            if self.sync.sync_after_helper_event(&self.desired_routes()) {
                                if let Err(e) = self.sync().await {
                                    tracing::warn!("sync after the helper's routes changed failed: {e:#}");
                                }
                            }
                        }
                        Wake::Liveness => self.check_liveness().await,
                        Wake::Toggle => {
                            if let Err(e) = self.sync().await {
                                tracing::warn!("applying a network toggle failed: {e:#}");
                            }
                        }
                        Wake::IdleDue => self.idle.handle_timeout(Instant::now()),
                        Wake::SleepPreference => self.idle.set_enabled(*sleep.borrow_and_update()),
                        Wake::HttpsSwitch => {
                            let serve = *https.borrow_and_update();
                            // A new connection tells the helper itself (`HelperLink::connect`).
                            if let Some(c) = self.helper.client() {
                                match crate::helper_link::send_https(c, serve).await {
                                    Ok(()) => tracing::info!("https front: {}", if serve { "on" } else { "off" }),
                                    Err(e) => tracing::warn!("the helper refused the HTTPS switch: {e}"),
                                }
                            }
                        }
                        Wake::Stop(exit) => break 'outer exit,
                    }
                    self.carry_out_idle().await;
                }
            }
            let wait = resubscribe.stream_ended(delivered, subscribed.elapsed());
            tracing::info!("reconnecting to docker in {wait:?}");
            let retry = self.channels.retry.clone();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = retry.notified() => resubscribe.retried(),
                exit = &mut shutdown => break 'outer exit,
            }
        };
        match exit {
            Exit::Teardown => self.teardown().await,
            Exit::Leave => {
                tracing::info!("leaving the guest and the routes in place for the next start");
                Ok(())
            }
        }
    }

    pub(super) fn on_helper_event(&mut self, ev: Option<Event>) {
        match ev {
            Some(Event::Status(s)) => {
                self.repair.handle_status(Instant::now(), &s);
                self.show_status(s);
            }
            Some(Event::Stats(stats)) => {
                let now_ms = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or_default();
                self.channels.view.update(|inputs| inputs.traffic.push(stats, now_ms));
            }
            None => {}
        }
    }
}
