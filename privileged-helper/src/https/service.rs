//! The CA and the front as one thing the daemon starts with the tunnel (unless `https off`)
//! and stops with it, or when the config switches HTTPS off. The CA is loaded, or made on the
//! first start; a failure is a problem in the status, never fatal (the tunnel and plain HTTP
//! work without it).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dockroute_api::{CaStatus, HttpsStatus};

use super::ca::{self, Ca, CaFiles};
use super::front::{HttpsFront, PORT};
use super::intercept::{Plan, PlatformRedirect, Redirect};
use super::route::Routes;
use super::trust::Record;
use crate::dns::NameSpec;

/// The redirect is written again at most this often when nothing changed (self-healing).
const REAPPLY: Duration = Duration::from_secs(60);

/// What the front serves: the names, and the tunnel's routes (only addresses inside them are
/// redirected to it).
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub names: &'a NameSpec,
    pub routed: &'a [ipnet::IpNet],
}

pub struct HttpsService {
    files: CaFiles,
    ca: Option<Arc<Ca>>,
    front: Option<HttpsFront>,
    /// Sends this machine's connections to port 443 of served containers to the front.
    redirect: Option<PlatformRedirect>,
    /// What the redirect holds now and when it was set (None: unknown, so the next plan is
    /// applied).
    applied: Option<(Plan, Instant)>,
    /// Why the redirect failed (the front still answers on the link address).
    redirect_problem: Option<String>,
    problems: Vec<String>,
}

impl HttpsService {
    pub fn new(config_path: &std::path::Path) -> HttpsService {
        HttpsService {
            files: CaFiles::for_config(config_path),
            ca: None,
            front: None,
            redirect: None,
            applied: None,
            redirect_problem: None,
            problems: Vec::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.front.is_some()
    }

    /// Serves `scope`'s names on `address`:443, and redirects this machine's connections to
    /// port 443 of their containers there, through the tunnel interface `ifname`. Does nothing
    /// while it runs (`set_names` changes what it serves).
    pub async fn start(&mut self, suffix: &str, address: IpAddr, ifname: &str, scope: Scope<'_>) {
        if self.front.is_some() {
            return;
        }
        self.problems.clear();
        let Some(ca) = self.reload_ca(suffix) else { return };
        let listen = SocketAddr::new(address, PORT);
        match HttpsFront::start(listen, ca, Routes::new(suffix, scope.names)).await {
            Ok(front) => {
                tracing::info!("https: serving container names on {listen}");
                self.front = Some(front);
                self.redirect = Some(PlatformRedirect::new(ifname));
                self.redirect_names(suffix, scope);
            }
            Err(e) => {
                let why = format!("cannot listen on {listen}: {e}");
                tracing::error!("https: {why}");
                self.problems.push(why);
            }
        }
    }

    /// Loads the CA (or makes it, the first time), also while the front is off, so the status
    /// can show it and the app can trust it; a failure is a problem in the status.
    pub fn reload_ca(&mut self, suffix: &str) -> Option<Arc<Ca>> {
        match tokio::task::block_in_place(|| ca::load_or_make(&self.files, suffix, SystemTime::now())) {
            Ok((ca, made)) => {
                if made {
                    tracing::info!("https: made the local CA {} ({})", ca.id, self.files.cert.display());
                }
                let ca = Arc::new(ca);
                self.ca = Some(ca.clone());
                Some(ca)
            }
            Err(e) => {
                let why = format!("no local CA: {e}");
                tracing::error!("https: {why}");
                self.problems.push(why);
                None
            }
        }
    }

    pub fn files(&self) -> &CaFiles {
        &self.files
    }

    /// The names (and the tunnel's routes, which bound the redirect) changed.
    pub fn set_names(&mut self, suffix: &str, scope: Scope<'_>) {
        if let Some(f) = &self.front {
            f.set_routes(Routes::new(suffix, scope.names));
            self.redirect_names(suffix, scope);
        }
    }

    /// Sets the redirect to the served addresses; a failure is a problem in the status.
    fn redirect_names(&mut self, suffix: &str, scope: Scope<'_>) {
        let (Some(front), Some(redirect)) = (&self.front, self.redirect.as_mut()) else { return };
        let plan = Plan::for_names(scope.names, suffix, front.listen, scope.routed);
        // Names and routes are sent often and mostly unchanged: the filter is touched only when
        // what it must hold changed, or once in `REAPPLY` (another program may have flushed the
        // ruleset: nftables.service's reload, firewalld, `pfctl -F`).
        if self.applied.as_ref().is_some_and(|(p, at)| *p == plan && at.elapsed() < REAPPLY) {
            return;
        }
        match tokio::task::block_in_place(|| redirect.apply(&plan)) {
            Ok(()) => {
                self.applied = Some((plan, Instant::now()));
                self.redirect_problem = None;
            }
            Err(e) => {
                let why =
                    format!("port 443 of containers is not sent to the front ({e}); it answers on {}", front.listen);
                tracing::error!("https: {why}");
                self.applied = None;
                self.redirect_problem = Some(why);
            }
        }
    }

    /// Removes a redirect an earlier run left (it was killed, or crashed): called once at
    /// start, before anything is added. Nothing there (or no packet filter tool) is fine.
    pub fn clear_leftovers() {
        if let Err(e) = PlatformRedirect::new("").remove() {
            tracing::debug!("https: no earlier redirect removed: {e}");
        }
    }

    /// Removes the redirect, then closes the listener and every connection.
    pub async fn stop(&mut self) {
        if let Some(mut redirect) = self.redirect.take() {
            if let Err(e) = tokio::task::block_in_place(|| redirect.remove()) {
                tracing::error!("https: cannot remove the redirect of port 443: {e}");
            }
        }
        self.applied = None;
        self.redirect_problem = None;
        if let Some(f) = self.front.take() {
            f.stop().await;
            tracing::info!("https: stopped");
        }
        self.problems.clear();
    }

    pub fn status(&self) -> HttpsStatus {
        let record = std::fs::read_to_string(&self.files.trust_record).map(|t| Record::parse(&t)).unwrap_or_default();
        HttpsStatus {
            listen: self.front.as_ref().map(|f| f.listen),
            ca: self.ca.as_ref().map(|ca| CaStatus {
                path: self.files.cert.display().to_string(),
                id: ca.id.clone(),
                not_after: ca.not_after.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                constraints: ca.constraints.in_words(),
                trusted_in: record.entries.iter().map(|e| e.describe()).collect(),
            }),
            problems: self.problems.iter().chain(&self.redirect_problem).cloned().collect(),
            // The daemon knows the app's wish.
            off_by_app: false,
            redirected: self.applied.as_ref().map_or(0, |(p, _)| p.addresses.len()),
        }
    }
}
