//! What the repair and idle policies decided, carried out: the helper's status every second
//! into the repair policy; the guest stopped or woken.

use std::time::Instant;

use dockroute_api::Op;

use super::Controller;
use crate::guest;
use crate::idle::IdleDecision;
use crate::repair::Decision;
use crate::sync_policy::SyncPolicy;

impl Controller {
    /// Carries out what the idle policy decided: the guest sleeps or wakes.
    pub(super) async fn carry_out_idle(&mut self) {
        while let Some(decision) = self.idle.poll() {
            let now = Instant::now();
            match decision {
                IdleDecision::StopGuest => {
                    tracing::info!("idle: no containers; stopping the guest (the routes stay)");
                    self.repair.set_guest_idle(now, true);
                    if let Err(e) = guest::stop_all(&self.docker).await {
                        tracing::warn!("cannot stop the guest: {e:#}");
                    }
                }
                IdleDecision::StartGuest => {
                    tracing::info!("a container started: waking the guest");
                    self.repair.set_guest_idle(now, false);
                    if let Err(e) = self.sync().await {
                        tracing::warn!("waking the guest failed: {e:#}");
                    }
                }
            }
            self.publish();
        }
    }

    /// The guest's firewall backend for the view, read from its log once it is up: a few tries
    /// per connection (a guest without a firewall never says), then no more.
    async fn read_firewall_backend(&mut self) {
        const TRIES: u8 = 5;
        if self.runtime.firewall.is_some() || self.firewall_reads >= TRIES {
            return;
        }
        self.firewall_reads += 1;
        match guest::firewall_backend(&self.docker).await {
            Ok(Some(found)) => {
                tracing::info!("the guest's firewall: {found}");
                self.runtime.firewall = Some(found);
                self.publish();
            }
            Ok(None) => {}
            Err(e) => tracing::debug!("reading the guest's log: {e:#}"),
        }
    }

    /// Every second: the helper's status into the repair policy, its decisions carried out.
    pub(super) async fn check_liveness(&mut self) {
        let status = match self.helper().await {
            Ok(h) => h.status().await,
            Err(e) => {
                tracing::warn!("helper unavailable: {e:#}");
                return;
            }
        };
        let status = match status {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("helper status: {e}");
                return;
            }
        };
        let now = Instant::now();
        if SyncPolicy::sync_for_transport(self.spec.transport, status.transport) {
            tracing::info!("the helper's transport is now {}", status.transport);
            self.spec.transport = status.transport;
            if let Err(e) = self.sync().await {
                tracing::warn!("sync after a transport change failed: {e:#}");
            }
        }
        let alive = status.session.as_ref().is_some_and(|s| s.alive);
        self.repair.handle_status(now, &status);
        if alive {
            self.read_firewall_backend().await;
        }
        // Events come only on change (and a lagging receiver misses some): the second-by-second
        // status keeps the dashboard's handshake age and session state current.
        self.show_status(status);
        self.send_names().await;
        if self.sync.sync_for_rules(self.idle.is_idle(), &self.guest_rules()) {
            if let Err(e) = self.sync().await {
                tracing::warn!("updating the guest's rules failed: {e:#}");
            }
        }
        while let Some(decision) = self.repair.poll(now) {
            match decision {
                Decision::SendRoutes => {
                    if let Err(e) = self.sync().await {
                        tracing::warn!("sync after reconnecting to the helper failed: {e:#}");
                    }
                }
                Decision::AskHelperToConnect => {
                    if let Some(h) = self.helper.client() {
                        if let Err(e) = h.call(Op::Connect).await {
                            tracing::warn!("helper cannot connect the tunnel: {e}");
                        }
                    }
                }
                Decision::RecreateGuest { dead_for, next_after } => {
                    tracing::warn!(
                        "no live tunnel session for {dead_for:?}: recreating the guest (next try at the earliest in {next_after:?})"
                    );
                    let _ = guest::remove_all(&self.docker).await;
                    self.sync.guest_removed();
                    if let Err(e) = self.sync().await {
                        tracing::warn!("repair failed: {e:#}");
                    }
                }
            }
        }
    }
}
