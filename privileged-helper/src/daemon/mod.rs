//! The helper's one state owner, a thin loop: it gathers inputs (API commands, engine events,
//! config changes, routing-table changes, timers, signals), hands them to the cores and carries
//! out what they decide.
//!
//! - `ops`: the state and what each API operation does to it, the share's included (no I/O).
//! - `route_policy`: which routes to install, given the wishes and the OS table (pure).
//! - `config_reload`: when a re-read config file applies (two equal reads; bad keeps good).
//! - `tunnel`: building and tearing down TUN + UDP + engine, and asking the engine things.
//! - the DNS server (`crate::dns`) starts after the tunnel and stops before it.
//! - `sharing`: carrying out the share's effects, and when it follows a change (`crate::share`).

mod config_reload;
mod ops;
mod route_policy;
mod sharing;
mod tunnel;

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use dockroute_api::Secret;
use dockroute_api::{Answer, ApiError, ErrorCode, Event, Op, StatsReport, Status};
use dockroute_engine::driver;
use dockroute_engine::platform::{self, SystemRoutes};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::dns::{self, DnsService};
use crate::link::Link;
use config_reload::{ConfigReload, Reload};
pub use ops::ShareRight;
use ops::{Effect, State};
use tunnel::{EngineNews, Tunnel};

/// A request from an API connection, with where to send the answer.
pub struct Command {
    pub op: Op,
    /// Whether the caller may share (the server checked who it is).
    pub right: ShareRight,
    pub reply: oneshot::Sender<Result<Answer, ApiError>>,
}

pub struct Daemon {
    state: State,
    reload: ConfigReload,
    tun_name: Option<String>,
    tunnel: Option<Tunnel>,
    /// Runs while the tunnel does (unless the config says `dns off`).
    dns: Option<DnsService>,
    /// The HTTPS front and the local CA: runs while the tunnel does, unless `https off`.
    https: crate::https::service::HttpsService,
    pub events: broadcast::Sender<Event>,
    last_stats: Option<StatsReport>,
    /// The helper belongs to an app bundle: non-root callers must be that app.
    has_app: bool,
    /// The share's driver (its state file's content is `State::share`).
    share: crate::share::Share,
}

/// What woke the daemon up.
enum Wake {
    Command(Option<Command>),
    Engine(EngineNews),
    ConfigTick,
    /// The config file was touched: read it after `CONFIG_POLL` (reading at once could catch
    /// a write half done, twice).
    ConfigEvent,
    StatsTick,
    RoutesTick,
    /// The OS routing table changed.
    RouteChange,
    Stop(&'static str),
}

/// How often the config file is checked without a file-system watch, and how soon a changed
/// file is read again (a change applies after two identical reads).
const CONFIG_POLL: Duration = Duration::from_millis(250);
/// With a watch, the file is still read this often, in case an event was lost.
const CONFIG_POLL_WATCHED: Duration = Duration::from_secs(30);
/// How often subscribers get counters while traffic flows.
const STATS_PUSH: Duration = Duration::from_secs(1);
/// How often the routing table is compared with what we installed: routes others removed are
/// put back, conflicts that went away (VPN disconnected) are installed, failures retried.
const ROUTES_CHECK: Duration = Duration::from_secs(5);
/// With route-change notifications the table is read when it changes, and otherwise only this
/// often, as a safety net (an idle helper then spawns no `ip` every few seconds).
const ROUTES_CHECK_NOTIFIED: Duration = Duration::from_secs(60);
/// Route-change notifications trigger at most one check per this: another program that keeps
/// deleting our route (some VPN clients) must not make us spin.
const ROUTE_CHANGE_GAP: Duration = Duration::from_secs(1);

/// SIGTERM and SIGINT, caught from before the tunnel starts: a stop during start-up waits
/// for it and then tears down what it added (the firewall rules of the HTTPS redirect outlive
/// the process otherwise), instead of killing the helper mid-way.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    pub fn install() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }
}

impl Daemon {
    pub fn new(config_path: &Path, config: Config, secret: Secret, tun_name: Option<String>) -> Daemon {
        let (share, book) = crate::share::Share::load_or_unusable(config_path);
        Daemon {
            reload: ConfigReload::new(config_path, std::fs::read_to_string(config_path).ok()),
            state: State::new(config, secret, book),
            tun_name,
            tunnel: None,
            dns: None,
            https: crate::https::service::HttpsService::new(config_path),
            events: broadcast::channel(64).0,
            last_stats: None,
            has_app: false,
            share,
        }
    }

    /// A helper that belongs to an app bundle (`codesign::app_bundle`): only that app's code,
    /// besides root, may use the API unless the config says otherwise.
    pub fn with_app(mut self, has_app: bool) -> Daemon {
        self.has_app = has_app;
        self
    }

    pub fn policy(&self) -> crate::authz::Policy {
        let configured = self.state.config.require_signature.as_deref();
        crate::authz::Policy {
            groups: self.state.config.allow_groups.clone(),
            signature: crate::authz::signature_rule(configured, self.has_app),
            share_groups: self.state.config.share_groups.clone(),
        }
    }

    /// Runs until SIGTERM/SIGINT (caught since `stop` was installed, so one that came during
    /// start-up counts too), then tears down what it added.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        policy: tokio::sync::watch::Sender<crate::authz::Policy>,
        stop: StopSignals,
    ) {
        let StopSignals { mut term, mut int } = stop;
        let mut config_watch = crate::config_watch::ConfigWatch::new(self.reload.path());
        let config_every = if config_watch.is_watching() { CONFIG_POLL_WATCHED } else { CONFIG_POLL };
        let mut config_tick = tokio::time::interval(config_every);
        let mut stats_tick = tokio::time::interval(STATS_PUSH);
        let mut route_changes = match platform::RouteChanges::open() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("no route-change notifications ({e}); checking routes every {ROUTES_CHECK:?}");
                None
            }
        };
        let every = if route_changes.is_some() { ROUTES_CHECK_NOTIFIED } else { ROUTES_CHECK };
        let mut routes_tick = tokio::time::interval(every);
        let mut last_route_check = tokio::time::Instant::now();
        loop {
            let wake = tokio::select! {
                c = commands.recv() => Wake::Command(c),
                news = next_engine_news(&mut self.tunnel) => Wake::Engine(news),
                _ = config_tick.tick() => Wake::ConfigTick,
                () = config_watch.changed() => Wake::ConfigEvent,
                _ = stats_tick.tick() => Wake::StatsTick,
                _ = routes_tick.tick() => Wake::RoutesTick,
                r = next_route_change(&mut route_changes) => {
                    if let Err(e) = r {
                        tracing::warn!("route-change notifications failed ({e}); checking routes every {ROUTES_CHECK:?}");
                        route_changes = None;
                        routes_tick = tokio::time::interval(ROUTES_CHECK);
                    }
                    Wake::RouteChange
                }
                _ = term.recv() => Wake::Stop("SIGTERM"),
                _ = int.recv() => Wake::Stop("SIGINT"),
            };
            match wake {
                Wake::Command(Some(c)) => {
                    let answer = self.handle(c.op, &c.right).await;
                    let _ = c.reply.send(answer);
                }
                Wake::Command(None) | Wake::Engine(EngineNews::Event(None)) => {}
                Wake::Engine(EngineNews::Event(Some(ev))) => {
                    driver::log_event("host", &ev);
                    self.publish_status().await;
                }
                Wake::Engine(EngineNews::Exited(why)) => {
                    tracing::error!("tunnel stopped: {why}");
                    self.teardown_tunnel().await;
                    self.state.error = Some(why);
                    self.publish_status().await;
                }
                Wake::ConfigTick => {
                    if self.reload_config() {
                        self.sync_https().await;
                        self.sync_share().await;
                        let _ = policy.send(self.policy());
                        self.publish_status().await;
                    }
                    // A change seen once is read again soon, to be applied when it holds still.
                    if self.reload.is_pending() {
                        config_tick.reset_after(CONFIG_POLL);
                    }
                }
                Wake::ConfigEvent => config_tick.reset_after(CONFIG_POLL),
                Wake::StatsTick => self.publish_stats().await,
                Wake::RouteChange if last_route_check.elapsed() < ROUTE_CHANGE_GAP => {
                    routes_tick.reset_after(ROUTE_CHANGE_GAP - last_route_check.elapsed());
                }
                Wake::RoutesTick | Wake::RouteChange => {
                    last_route_check = tokio::time::Instant::now();
                    if self.tunnel.is_some() {
                        let checked = self.check_routes();
                        self.https_names();
                        if checked.changed {
                            // A route in conflict or refused exposes nothing: the share follows.
                            self.sync_share().await;
                            self.publish_status().await;
                        }
                        // Something to retry (a failed add, an unreadable table): not only at
                        // the next notification or in a minute.
                        if checked.retry_soon {
                            routes_tick.reset_after(ROUTES_CHECK);
                        }
                    }
                }
                Wake::Stop(sig) => {
                    tracing::info!("{sig}: shutting down");
                    break;
                }
            }
        }
        self.teardown_tunnel().await;
    }

    /// Carries out what `State::apply` decided for one API operation.
    pub async fn handle(&mut self, op: Op, right: &ShareRight) -> Result<Answer, ApiError> {
        let answer = match self.state.apply(op, right)? {
            Effect::Status => return Ok(Answer::Status(self.status().await)),
            Effect::Stats => return Ok(Answer::Stats(self.stats().await?)),
            Effect::ShareList => return Ok(Answer::Share(self.share_status().await)),
            Effect::Connect => {
                self.connect().await.map_err(|e| ApiError::new(ErrorCode::Failed, e))?;
                Answer::Done
            }
            Effect::Disconnect => {
                self.teardown_tunnel().await;
                Answer::Done
            }
            Effect::NewSecret => {
                if let Some(t) = &self.tunnel {
                    t.set_secret(self.state.secret.clone());
                }
                Answer::Done
            }
            Effect::Routes => {
                self.check_routes();
                self.sync_share().await;
                self.https_names();
                Answer::Done
            }
            Effect::Names => {
                if let Some(d) = &mut self.dns {
                    d.set_names(&self.state.names);
                }
                self.https_names();
                Answer::Done
            }
            Effect::Share => {
                self.sync_share().await;
                Answer::Done
            }
            Effect::MakeKey(plan) => Answer::ShareConfig(self.add_teammate(plan).await?),
            Effect::SaveShare(save) => {
                self.save_share(save).await?;
                Answer::Done
            }
            Effect::Https => {
                self.sync_https().await;
                Answer::Done
            }
            Effect::CaTrust(change) => {
                let suffix = self.state.config.dns.suffix.clone();
                let ca =
                    self.https.reload_ca(&suffix).ok_or_else(|| ApiError::new(ErrorCode::Failed, "no local CA"))?;
                let files = self.https.files();
                let macos = cfg!(target_os = "macos");
                let done =
                    tokio::task::block_in_place(|| crate::https::app_trust::carry_out(files, &ca, change, macos));
                for line in done.map_err(|e| ApiError::new(ErrorCode::Failed, e))? {
                    tracing::info!("https: {line}");
                }
                Answer::Done
            }
            Effect::Nothing => Answer::Done,
        };
        self.publish_status().await;
        Ok(answer)
    }

    /// Brings the tunnel up (idempotent). On failure nothing stays half-made.
    pub async fn connect(&mut self) -> Result<(), String> {
        if self.tunnel.is_some() {
            return Ok(());
        }
        self.state.requested = true;
        match Tunnel::build(&self.state.config, &self.state.secret, self.tun_name.as_deref()).await {
            Ok(t) => {
                tracing::info!("listening on udp {}, tunnel device {} {}", t.listen, t.ifname, t.link.host_v4);
                self.state.tunnel_link = Some(Link { host: t.link.host_v4, guest: t.link.guest_v4 });
                self.tunnel = Some(t);
                self.state.error = None;
                self.check_routes();
                if let Some(t) = &self.tunnel {
                    ops::log_installed(&t.routes);
                }
                self.start_dns().await;
                self.sync_https().await;
                self.sync_share().await;
                Ok(())
            }
            Err(e) => {
                tracing::error!("cannot connect: {e}");
                self.state.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Removes our routes, stops the engine, then deletes the device, so that when this
    /// returns nothing of the tunnel is left. Idempotent.
    pub async fn teardown_tunnel(&mut self) {
        if let Some(d) = self.dns.take() {
            d.stop().await;
        }
        self.https.stop().await;
        let Some(t) = self.tunnel.take() else { return };
        self.state.tunnel_link = None;
        let ifname = t.ifname.clone();
        self.share.stop().await;
        t.teardown().await;
        self.check_routes();
        tracing::info!("tunnel down; removed our routes and {ifname}");
    }

    /// Starts the DNS server on the tunnel's link address, unless the config says `dns off`.
    async fn start_dns(&mut self) {
        let (Some(t), true) = (&self.tunnel, self.state.config.dns.enabled) else { return };
        let resolver = dns::resolver::system(self.reload.path());
        let address = t.link.host_v4.addr().into();
        let suffix = self.state.config.dns.suffix.clone();
        self.dns = Some(DnsService::start(&suffix, address, &t.ifname, &self.state.names, resolver).await);
    }

    /// The routes installed on the tunnel's interface now: a wanted route that is disabled, in
    /// conflict or refused (public space from the app) carries nothing of ours, so nothing in
    /// it may be redirected.
    fn installed_routes(&self) -> Vec<ipnet::IpNet> {
        self.tunnel.as_ref().map(|t| t.routes.installed().copied().collect()).unwrap_or_default()
    }

    /// Tells the HTTPS front the names and the tunnel's installed routes (which bound its
    /// redirect). Cheap when nothing changed; called after every route check.
    fn https_names(&mut self) {
        let routed = self.installed_routes();
        let scope = crate::https::service::Scope { names: &self.state.names, routed: &routed };
        self.https.set_names(&self.state.config.dns.suffix, scope);
    }

    /// Runs the HTTPS front while the tunnel is up, the config says `https on` (the default)
    /// and the app has not switched it off (`set_https`); stops it otherwise. Called on
    /// connect, after every config reload and on `set_https`.
    async fn sync_https(&mut self) {
        let suffix = self.state.config.dns.suffix.clone();
        match (&self.tunnel, self.state.config.https, self.state.https_wanted) {
            (Some(t), true, true) => {
                let (address, ifname) = (t.link.host_v4.addr().into(), t.ifname.clone());
                let routed = self.installed_routes();
                let scope = crate::https::service::Scope { names: &self.state.names, routed: &routed };
                if self.https.is_running() {
                    // A config reload: the routes may have changed.
                    self.https.set_names(&suffix, scope);
                } else {
                    self.https.start(&suffix, address, &ifname, scope).await;
                }
            }
            // Off by the app's switch: the CA is still shown, and can be trusted.
            (Some(_), true, false) => {
                self.https.stop().await;
                self.https.reload_ca(&suffix);
            }
            _ => self.https.stop().await,
        }
    }

    /// Compares the routes with the policy and the OS table and fixes the difference. It runs
    /// `ip`/`route` commands: on a thread of their own, so the runtime's other tasks go on.
    fn check_routes(&mut self) -> ops::Checked {
        let routes = self.tunnel.as_mut().map(|t| &mut t.routes);
        tokio::task::block_in_place(|| self.state.check_routes::<SystemRoutes>(routes, platform::route_table))
    }

    /// Re-reads the config file if it changed; returns whether anything was applied.
    fn reload_config(&mut self) -> bool {
        let path = self.reload.path().display().to_string();
        match self.reload.check(&self.state.config) {
            Reload::Nothing => false,
            Reload::Rejected(why) => {
                tracing::error!("{why}");
                false
            }
            Reload::Apply { config, diff } => {
                for w in &config.warnings {
                    tracing::warn!("{path}: {w}");
                }
                if !diff.restart_needed.is_empty() {
                    tracing::warn!("changed {:?}: takes effect after a restart of the helper", diff.restart_needed);
                }
                tracing::info!(
                    "config reloaded: routes added {:?}, removed {:?}",
                    diff.routes_added,
                    diff.routes_removed
                );
                self.state.config = crate::config::applied_live(&self.state.config, *config);
                self.check_routes();
                true
            }
        }
    }

    pub async fn status(&self) -> Status {
        let facts = match &self.tunnel {
            Some(t) => Some(t.facts().await),
            None => None,
        };
        let mut status = self.state.status(facts);
        status.dns = self.dns.as_ref().map(|d| Box::new(d.status()));
        status.https = self.state.config.https.then(|| {
            let mut https = Box::new(self.https.status());
            https.off_by_app = !self.state.https_wanted;
            https
        });
        status.share = self.share_status().await;
        status
    }

    async fn stats(&self) -> Result<StatsReport, ApiError> {
        let mut report = match &self.tunnel {
            Some(t) => t.stats().await?,
            None => StatsReport::default(),
        };
        report.dns = self.dns.as_ref().and_then(DnsService::counters);
        report.teammates = self.share.counters().await;
        Ok(report)
    }

    async fn publish_status(&mut self) {
        if self.events.receiver_count() > 0 {
            let status = self.status().await;
            let _ = self.events.send(Event::Status(status));
        }
    }

    /// Pushes counters to subscribers when they changed since the last push.
    async fn publish_stats(&mut self) {
        if self.events.receiver_count() == 0 || self.tunnel.is_none() {
            return;
        }
        let Ok(stats) = self.stats().await else { return };
        if self.last_stats.as_ref() != Some(&stats) {
            self.last_stats = Some(stats.clone());
            let _ = self.events.send(Event::Stats(stats));
        }
    }
}

async fn next_route_change(changes: &mut Option<platform::RouteChanges>) -> std::io::Result<()> {
    match changes {
        Some(c) => c.changed().await,
        None => std::future::pending().await,
    }
}

async fn next_engine_news(tunnel: &mut Option<Tunnel>) -> EngineNews {
    match tunnel {
        Some(t) => t.next_news().await,
        None => std::future::pending().await,
    }
}
