//! `dockroute-helper run`: set up, forward, hot-reload routes, tear down exactly what we added.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dockroute_engine::config::{self, Config};
use dockroute_engine::driver::{self, Control};
use dockroute_engine::platform::{self, Routes, SystemRoutes, TunSpec};
use dockroute_engine::proto::{Host, HostConfig, OsEntropy};
use dockroute_engine::secret;
use ipnet::IpNet;
use tokio::sync::mpsc;

/// How often the config file is checked for changes. Polling survives editors that replace
/// the file and needs no platform watcher.
const CONFIG_POLL: Duration = Duration::from_millis(250);

pub fn run(config_path: &Path, tun_name: Option<String>) -> anyhow::Result<()> {
    let cfg = Config::load(config_path)?;
    for w in &cfg.warnings {
        tracing::warn!("{}: {w}", config_path.display());
    }
    let (secret, created) = secret::load_or_create(&cfg.secret_file)?;
    if created {
        tracing::info!("created a new shared secret in {}", cfg.secret_file.display());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve(config_path.to_path_buf(), cfg, secret, tun_name))
}

async fn serve(
    config_path: PathBuf,
    cfg: Config,
    secret: dockroute_engine::proto::Secret,
    tun_name: Option<String>,
) -> anyhow::Result<()> {
    let link4 = cfg.host_link_v4();
    let spec = TunSpec {
        name: tun_name.or_else(|| Some(platform::DEFAULT_TUN_NAME.to_string())).filter(|n| !n.is_empty()),
        mtu: cfg.mtu,
        v4: Some((link4.addr(), link4.prefix_len(), cfg.guest_link_v4())),
        v6: cfg.host_link_v6().map(|n| (n.addr(), n.prefix_len())),
    };
    let udp = tokio::net::UdpSocket::bind(cfg.listen_addr())
        .await
        .with_context(|| format!("cannot listen on udp {}", cfg.listen_addr()))?;
    let tun = Arc::new(platform::create_tun(&spec)?);
    let ifname = tun.name().context("TUN device has no name")?;
    tracing::info!("listening on udp {}, tunnel device {ifname} {link4}", cfg.listen_addr());

    let mut routes = Routes::new(SystemRoutes, ifname.clone());
    apply_routes(&mut routes, &cfg.route_nets());

    let host = Host::new(
        HostConfig {
            secret,
            mtu: cfg.mtu,
            keepalive: cfg.keepalive,
            host_v4: link4.addr(),
            guest_v4: cfg.guest_link_v4(),
            prefix_v4: link4.prefix_len(),
            v6: cfg.host_link_v6().zip(cfg.guest_link_v6()).map(|(h, g)| (h.addr(), g, h.prefix_len())),
        },
        Box::new(OsEntropy),
    );
    let (control_tx, control_rx) = mpsc::unbounded_channel::<Control<Host>>();
    driver::log_stats_on_sigusr1(control_tx.clone(), "host")?;
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let engine = tokio::spawn(driver::run(host, tun.clone(), Arc::new(udp), control_rx, event_tx));
    tokio::spawn(async move {
        while let Some(ev) = event_rx.recv().await {
            driver::log_event("host", &ev);
        }
    });

    let outcome = watch_until_signal(&config_path, cfg, &mut routes, engine).await;

    // Teardown: our routes first, then the device (dropping it deletes it).
    drop(control_tx);
    for (net, e) in routes.clear() {
        tracing::warn!("could not remove route {net}: {e}");
    }
    drop(tun);
    tracing::info!("stopped; removed routes and {ifname}");
    outcome
}

fn apply_routes(routes: &mut Routes<SystemRoutes>, wanted: &[IpNet]) {
    for (net, e) in routes.reconcile(wanted) {
        tracing::error!("route {net} not installed: {e}");
    }
    let now: Vec<String> = routes.installed().map(ToString::to_string).collect();
    tracing::info!("routes via tunnel: [{}]", now.join(", "));
}

/// Hot-reloads routes until SIGTERM/SIGINT, or until the engine stops on its own (an error).
async fn watch_until_signal(
    config_path: &Path,
    mut good: Config,
    routes: &mut Routes<SystemRoutes>,
    mut engine: tokio::task::JoinHandle<std::io::Result<Host>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut last_text = std::fs::read_to_string(config_path).ok();
    let mut tick = tokio::time::interval(CONFIG_POLL);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return Ok(()); }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); return Ok(()); }
            r = &mut engine => {
                return match r {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(anyhow::anyhow!("engine task failed: {e}")),
                };
            }
            _ = tick.tick() => {
                let text = match std::fs::read_to_string(config_path) {
                    Ok(t) => t,
                    Err(e) => {
                        if last_text.take().is_some() {
                            tracing::error!("cannot read {}: {e} (keeping the last good config)", config_path.display());
                        }
                        continue;
                    }
                };
                if last_text.as_deref() == Some(text.as_str()) {
                    continue;
                }
                last_text = Some(text.clone());
                reload(config_path, &text, &mut good, routes);
            }
        }
    }
}

fn reload(config_path: &Path, text: &str, good: &mut Config, routes: &mut Routes<SystemRoutes>) {
    let base = config_path.parent().unwrap_or(Path::new("."));
    let new = match Config::parse(text, base) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{}: {e} (keeping the last good config)", config_path.display());
            return;
        }
    };
    let diff = config::diff(good, &new);
    for w in &new.warnings {
        tracing::warn!("{}: {w}", config_path.display());
    }
    if !diff.restart_needed.is_empty() {
        tracing::warn!("changed {:?}: takes effect after a restart of the helper", diff.restart_needed);
    }
    if !diff.routes_added.is_empty() || !diff.routes_removed.is_empty() {
        tracing::info!("config reloaded: routes added {:?}, removed {:?}", diff.routes_added, diff.routes_removed);
        apply_routes(routes, &new.route_nets());
    }
    *good = new;
}
