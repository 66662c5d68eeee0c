//! The view, derived once (pure): `derive(&ViewInputs) -> View`. Whoever learns something
//! changes the inputs (the service the user's choices, the supervisor a failed start, the
//! controller what Docker and the helper said, the app shell its own facts); `ViewWriter` is
//! the one place a view is published, always derived from all of them.

use std::collections::{BTreeSet, VecDeque};

use dockroute_api::{StatsReport, Status};

use crate::discovery::BridgeNetwork;
use crate::dns_view::{self, NameView};
use crate::https_view::https_view;
use crate::names::{Claim, NameSet};
use crate::view::{self, ContainerView, Problem, Sample, View, THROUGHPUT_SAMPLES};

/// Everything the view is made from, each part set by whoever knows it.
#[derive(Debug, Clone, Default)]
pub struct ViewInputs {
    pub app_version: String,
    pub helper_socket: String,
    /// The user's Connect/Disconnect.
    pub want_connected: bool,
    /// The preference to let the guest sleep while no other container runs.
    pub let_docker_sleep: bool,
    /// The HTTPS switch (the app's preference).
    pub https_wanted: bool,
    /// Launch at login, as the app shell knows it (the controller does not own login items).
    pub autostart: bool,
    /// What the app shell knows about the helper's installation from the OS.
    pub helper_note: Option<HelperNote>,
    /// Why the last start of a controller failed; gone once a controller reports.
    pub start_problem: Option<Problem>,
    /// What the controller gathered from Docker and the helper.
    pub gathered: Gathered,
    /// The helper's stats pushes.
    pub traffic: Traffic,
    /// The engines the supervisor found last, the followed one marked.
    pub engines: Vec<crate::view::EngineView>,
}

/// What a controller reports: what Docker and the helper said, and what went wrong.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// A controller holds the connection. When none does (after Disconnect, or a start that
    /// failed), the tunnel, the helper's version, the networks, the containers and the
    /// controller's problems are not shown; the engine, the names and the share last seen are.
    pub live: bool,
    /// The Docker engine in use.
    pub engine: Option<String>,
    /// The helper's last status on this connection.
    pub status: Option<Status>,
    pub networks: Vec<BridgeNetwork>,
    /// The networks switched off, as the controller last applied them.
    pub disabled: BTreeSet<String>,
    /// Running containers on the bridge networks (their names not yet filled in).
    pub containers: Vec<ContainerView>,
    pub names: NameSet,
    /// The guest sleeps (no other container runs).
    pub idle: bool,
    /// The helper cannot be reached or refused us.
    pub helper_problem: Option<Problem>,
    pub docker_problem: Option<Problem>,
    /// The last sync failed for another reason (the guest image, a route the helper refused).
    pub sync_problem: Option<Problem>,
    /// The followed engine's facts (versions, how the guest reaches the host, its firewall).
    pub runtime: Option<crate::view::RuntimeView>,
}

/// What the dashboard says about the helper besides what the controller sees (it sees only a
/// socket nobody answers on): the app shell learns it from the OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperNote {
    /// Registered; waiting for the user's switch in `settings` (Login Items).
    Pending { settings: String },
    /// macOS will not run it this way: the reason; the password install is offered.
    Refused(String),
    /// The helper answers with an older version than the app's, and only the password brings
    /// the new one in.
    Outdated { helper: String, app: String },
}

/// The helper's counters and the throughput chart made from them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Traffic {
    pub stats: Option<StatsReport>,
    pub throughput: VecDeque<Sample>,
}

impl Traffic {
    /// Takes in a helper stats push: the counters, and a throughput sample from the change
    /// since the previous push. A counter that went down (the helper restarted) counts as 0.
    pub fn push(&mut self, stats: StatsReport, now_ms: u64) {
        match (&self.stats, self.throughput.back()) {
            (Some(prev), Some(last)) if now_ms > last.t_ms => {
                let seconds = (now_ms - last.t_ms) as f64 / 1000.0;
                let rate = |now: u64, before: u64| now.checked_sub(before).map_or(0.0, |d| d as f64 * 8.0 / seconds);
                let sample = Sample {
                    t_ms: now_ms,
                    tx_bps: rate(stats.tx_bytes, prev.tx_bytes),
                    rx_bps: rate(stats.rx_bytes, prev.rx_bytes),
                };
                self.throughput.push_back(sample);
            }
            // Nothing to measure from yet: a baseline point at zero.
            (None, _) | (_, None) => self.throughput.push_back(Sample { t_ms: now_ms, tx_bps: 0.0, rx_bps: 0.0 }),
            // The clock did not move (or went back): nothing to measure against; keep the
            // counters the last sample was taken from, so the next rate spans the right time.
            _ => return,
        }
        while self.throughput.len() > THROUGHPUT_SAMPLES {
            self.throughput.pop_front();
        }
        self.stats = Some(stats);
    }
}

impl ViewInputs {
    /// A controller reports what it gathered: its start worked.
    pub fn controller_reports(&mut self, gathered: Gathered) {
        self.gathered = gathered;
        self.start_problem = None;
    }

    /// Starting a controller failed: the problem says why; the helper's version is not shown
    /// (what answered before may be another build).
    pub fn start_failed(&mut self, problem: Problem) {
        self.start_problem = Some(problem);
        self.gathered.live = false;
    }

    /// The user chose Disconnect and no controller runs: nothing of the tunnel is shown.
    pub fn disconnected(&mut self) {
        self.want_connected = false;
        self.start_problem = None;
        self.gathered.live = false;
        self.traffic = Traffic::default();
    }
}

/// What the user sees, from everything gathered.
pub fn derive(inputs: &ViewInputs) -> View {
    let g = &inputs.gathered;
    let status = g.status.as_ref();
    let live_status = status.filter(|_| g.live);
    let dns = status.and_then(|s| s.dns.as_ref());
    let (networks, containers) = if g.live {
        let routes = status.map(|s| s.routes.as_slice()).unwrap_or_default();
        let mut networks = view::network_views(&g.networks, &g.disabled, routes, &g.containers);
        if let Some(s) = status {
            view::mark_exposed(&mut networks, &s.share.exposed);
        }
        let mut containers = g.containers.clone();
        with_names(&mut containers, &g.names, dns.map(|d| d.suffix.as_str()));
        (networks, containers)
    } else {
        (Vec::new(), Vec::new())
    };
    let mut v = View {
        app_version: inputs.app_version.clone(),
        want_connected: inputs.want_connected,
        problem: None,
        engine: g.engine.clone(),
        helper_socket: inputs.helper_socket.clone(),
        helper_version: live_status.map(|s| s.helper_version.clone()),
        tunnel: live_status.map(view::tunnel_view),
        networks,
        containers,
        stats: inputs.traffic.stats.clone(),
        throughput: inputs.traffic.throughput.clone(),
        autostart: inputs.autostart,
        dns: dns.map(|d| dns_view::dns_view(d, &g.names)),
        share: status.map(|s| s.share.clone()),
        idle: g.idle,
        let_docker_sleep: inputs.let_docker_sleep,
        https: live_status.map(|s| https_view(s.https.as_deref(), inputs.https_wanted)),
        engines: inputs.engines.clone(),
        runtime: g.runtime.clone().filter(|_| g.live),
    };
    let controllers = || {
        let problems = [&g.helper_problem, &g.docker_problem, &g.sync_problem];
        problems.into_iter().flatten().next().cloned().filter(|_| g.live)
    };
    // A disconnected app has nothing to complain about, even while the supervisor still
    // winds down a start that failed (its problem is cleared only after the teardown).
    let start = inputs.start_problem.clone().filter(|_| inputs.want_connected);
    v.problem = start.or_else(controllers).or_else(|| v.conflict_warning());
    match &inputs.helper_note {
        Some(HelperNote::Pending { settings }) => v.show_helper_approval(settings),
        Some(HelperNote::Refused(why)) => v.show_helper_refused(why),
        Some(HelperNote::Outdated { helper, app }) => v.show_helper_outdated(helper, app),
        None => {}
    }
    v
}

/// Fills in each container's names; with no DNS server (`suffix` None) they have none.
pub fn with_names(containers: &mut [ContainerView], names: &NameSet, suffix: Option<&str>) {
    for c in containers {
        c.names = match (suffix, names.claims.get(&c.id)) {
            (Some(suffix), Some(claims)) => claims.iter().map(|claim| name_view(claim, names, suffix)).collect(),
            _ => Vec::new(),
        };
    }
}

fn name_view(claim: &Claim, names: &NameSet, suffix: &str) -> NameView {
    let name = claim.full(suffix);
    NameView { wildcard: name.starts_with("*."), clash: names.clashes.iter().any(|c| &c.name == claim), name }
}

#[cfg(test)]
#[path = "derive_tests.rs"]
mod tests;
