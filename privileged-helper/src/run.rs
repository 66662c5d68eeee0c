//! `dockroute-helper run`: serve the API and the tunnel until SIGTERM/SIGINT, then remove
//! exactly what we added (routes, TUN device, socket file). A missing config is written with
//! the defaults first. Logs go to stderr only (the service manager keeps them: the journal, or
//! the file a launchd plist names), so starting never depends on a log directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use dockroute_engine::secret;
use tokio::sync::{mpsc, watch};

use crate::codesign::AppRequirement;
use crate::daemon::Daemon;
use crate::server;

/// `app_bundle`: the app whose code may use the API besides root (`--app-bundle`; by default
/// the bundle the helper runs from, on macOS).
pub fn run(
    config_path: &Path,
    tun_name: Option<String>,
    socket: Option<PathBuf>,
    app_bundle: Option<PathBuf>,
) -> anyhow::Result<()> {
    // Before anything is logged that other local users need not read.
    for change in crate::log_file::restrict_std_streams() {
        tracing::info!("{change}");
    }
    // Started by a service manager before anything created the config (SMAppService): start
    // with the defaults instead of exiting into a restart loop.
    if crate::default_config::write_if_missing(config_path)? {
        tracing::info!("{} did not exist: wrote the default config there", config_path.display());
    }
    let cfg = Config::load(config_path)?;
    for w in &cfg.warnings {
        tracing::warn!("{}: {w}", config_path.display());
    }
    let (secret, created) = secret::load_or_create(&cfg.secret_file)?;
    if created {
        tracing::info!("created a new shared secret in {}", cfg.secret_file.display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let socket_path = socket.unwrap_or_else(|| cfg.api_socket.clone());
        let api = server::bind(&socket_path, cfg.api_socket_mode, &cfg.allow_groups).await?;
        tracing::info!("API on {} (mode {:o})", socket_path.display(), cfg.api_socket_mode);
        let app = crate::codesign::app_bundle(app_bundle).map(|b| Arc::new(AppRequirement::new(b)));
        if let Some(app) = &app {
            // Read now for the log; read again whenever a caller connects after it changed.
            match app.current() {
                Ok(_) => {}
                Err(e) => tracing::warn!("the app's code requirement is unreadable for now ({e})"),
            }
        }
        let stop = crate::daemon::StopSignals::install()?;
        tokio::task::block_in_place(crate::https::service::HttpsService::clear_leftovers);
        let mut daemon = Daemon::new(config_path, cfg, secret, tun_name).with_app(app.is_some());
        // A failure here (port taken, TUN unavailable) is reported in status; we keep serving
        // so the app can show it and retry, instead of a service manager restart loop.
        let _ = daemon.connect().await;
        let (commands, command_rx) = mpsc::channel(64);
        let (policy, policy_rx) = watch::channel(daemon.policy());
        let events = daemon.events.clone();
        tokio::select! {
            () = server::serve(&api, commands, events, policy_rx, app) => {}
            () = daemon.run(command_rx, policy, stop) => {}
        }
        drop(api);
        tracing::info!("stopped");
        Ok(())
    })
}
