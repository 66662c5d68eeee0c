//! Connects, configures the TUN from the session the host assigns, forwards, and cleans up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dockroute_api::GuestArgs;
use dockroute_engine::driver::{self, Control};
use dockroute_engine::platform::{self, Forwarding, TunSpec};
use dockroute_engine::proto::{Event, Guest, GuestConfig, OsEntropy, SessionParams};
use dockroute_engine::secret;
use dockroute_stdx::Backoff;
use tokio::sync::mpsc;

use crate::keeper::FirewallKeeper;
use crate::path::Paths;
use crate::recheck::{Recheck, POLL_WITHOUT_WATCH, SAFETY_NET};
use crate::watch::{ConfigDirWatch, RulesetChanges};

/// The session's MTU is not known before the handshake: size buffers for the largest allowed.
const GUEST_DRIVER: driver::DriverConfig = driver::DriverConfig { mtu: 9000 };

/// Upper bound for one name lookup, so a hung resolver cannot stall reconnects.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn run(cli: GuestArgs) -> anyhow::Result<()> {
    let secret = secret::load(&cli.secret_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outcome = rt.block_on(serve(cli, secret));
    // A name lookup stuck in the resolver must not hold up the exit (docker stop's grace).
    rt.shutdown_timeout(Duration::from_secs(1));
    outcome
}

async fn serve(cli: GuestArgs, secret: dockroute_api::Secret) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // First: as a container's PID 1 we get no default SIGTERM handling, and a docker stop that
    // waits 10 s for nothing stalls the controller's repairs.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let servers = [cli.server.clone(), cli.fallback_server.clone()];
    let server = tokio::select! {
        s = resolve_until_found(&servers) => s,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    };
    // The device exists from the start; its addresses come with the first session.
    let tun = Arc::new(platform::create_tun(&TunSpec {
        name: Some(cli.tun_name.clone()),
        mtu: 1400,
        v4: None,
        v6: None,
        offload: driver::wants_tun_offload(),
    })?);
    let bind: SocketAddr = if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse()?;
    let udp = Arc::new(tokio::net::UdpSocket::bind(bind).await.context("cannot open a UDP socket")?);
    let forwarding = Forwarding::enable().context("cannot enable IP forwarding")?;
    // The firewall's backend detection and cleanup of a killed guest's leftovers run a dozen
    // iptables processes (hundreds of ms in a busy VM): they run while the handshake does, and
    // the session's link goes into the rules once both are there (`setup_done`).
    let mut firewall: Option<FirewallKeeper> = None;
    let mut firewall_setup = (!cli.no_firewall).then(|| {
        let rules = cli.rules_file.clone();
        tokio::task::spawn_blocking(move || FirewallKeeper::new(rules))
    });
    let (mut files, mut ruleset) = watches(&cli, !cli.no_firewall);
    // Without a watch on the rules file it is polled every second, as it always was.
    let every = if cli.rules_file.is_some() && files.is_none() { POLL_WITHOUT_WATCH } else { SAFETY_NET };
    let mut recheck = Recheck::new(Instant::now(), every);
    tracing::info!("tunnel device {}, connecting to {server}", cli.tun_name);

    let core_addr = udp.local_addr().context("the UDP socket has no address")?;
    let (mut paths, mut probes) = Paths::new(cli.transport, server, core_addr, &cli.tun_name, Instant::now()).await?;
    let guest = Guest::new(GuestConfig::new(secret), Box::new(OsEntropy), paths.target(), Instant::now());
    let (control_tx, control_rx) = mpsc::unbounded_channel::<Control<Guest>>();
    let (resolved_tx, mut resolved) = mpsc::unbounded_channel::<SocketAddr>();
    driver::log_stats_on_sigusr1(control_tx.clone(), "guest")?;
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let mut engine = tokio::spawn(driver::run(guest, GUEST_DRIVER, tun.clone(), udp, control_rx, event_tx));

    let mut applied: Option<SessionParams> = None;
    // A finished JoinHandle must not be awaited again.
    let mut engine_done = false;
    let outcome = loop {
        let path_wake = paths.next_wake();
        let path_timer = dockroute_stdx::time::sleep_until(path_wake);
        tokio::select! {
            () = path_timer => paths.handle_timeout(Instant::now(), &control_tx).await,
            r = setup_done(&mut firewall_setup) => {
                firewall_setup = None;
                match r {
                    Ok(Ok(mut fw)) => {
                        if let Some(params) = &applied {
                            fw.set_link(&cli.tun_name, params);
                        }
                        firewall = Some(fw);
                    }
                    Ok(Err(e)) => break Err(anyhow::anyhow!("VM firewall: {e}")),
                    Err(e) => break Err(anyhow::anyhow!("VM firewall setup failed: {e}")),
                }
            }
            Some(()) = probes.recv() => {
                paths.probe_answered(Instant::now());
                paths.act(&control_tx).await;
            }
            Some(addr) = resolved.recv() => paths.set_server(addr, &control_tx).await,
            () = tokio::time::sleep_until(recheck.poll_timeout().into()) => {
                if let (Some(check), Some(fw)) = (recheck.poll(Instant::now()), firewall.as_mut()) {
                    if check.reread_rules {
                        fw.poll_rules();
                    }
                    fw.ensure();
                }
            }
            r = changed(files.as_ref().map(ConfigDirWatch::changed)) => match r {
                Ok(()) => recheck.handle_files_changed(Instant::now()),
                Err(e) => {
                    tracing::warn!("watching the rules file failed ({e}); polling it every second");
                    files = None;
                    recheck = Recheck::new(Instant::now(), POLL_WITHOUT_WATCH);
                }
            },
            r = changed(ruleset.as_ref().map(RulesetChanges::changed)) => match r {
                Ok(()) => recheck.handle_ruleset_changed(Instant::now()),
                Err(e) => {
                    tracing::warn!("ruleset notifications failed ({e}); checking on the timer only");
                    ruleset = None;
                }
            },
            _ = term.recv() => break Ok(()),
            _ = int.recv() => break Ok(()),
            r = &mut engine => {
                engine_done = true;
                break match r {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(e) => Err(anyhow::anyhow!("engine task failed: {e}")),
                };
            }
            Some(ev) = event_rx.recv() => {
                driver::log_event("guest", &ev);
                paths.on_event(&ev, Instant::now());
                match ev {
                    // A new session with the same link needs no reconfiguration.
                    Event::SessionUp { params, .. } if applied.is_none_or(|a| !same_link(&a, &params)) => {
                        if let Err(e) = configure(&tun, &params) {
                            break Err(e.context("cannot configure the tunnel device"));
                        }
                        if let Some(fw) = firewall.as_mut() {
                            fw.set_link(&cli.tun_name, &params);
                        }
                        applied = Some(params);
                    }
                    // The host may have moved (VM restart, new address): look it up again.
                    Event::PeerDead { .. } | Event::StaleSession { .. } | Event::HandshakeAttempt { attempt: 2.. } => {
                        let tx = resolved_tx.clone();
                        let servers = servers.clone();
                        tokio::spawn(async move {
                            if let Ok(addr) = resolve_any(&servers).await {
                                let _ = tx.send(addr);
                            }
                        });
                    }
                    _ => {}
                }
            }
        }
    };
    // The engine stops first (no packet crosses while the rules go), then our firewall rules,
    // then the device (last reference), then the forwarding sysctls.
    if !engine_done {
        engine.abort();
        let _ = engine.await;
    }
    drop(control_tx);
    // A setup still running finishes first, so nothing it adds outlives us.
    if let Some(Ok(Ok(fw))) = match firewall_setup.take() {
        Some(setup) => Some(setup.await),
        None => None,
    } {
        firewall = Some(fw);
    }
    if let Some(fw) = firewall.as_mut() {
        fw.teardown();
    }
    drop(tun);
    drop(forwarding);
    tracing::info!("stopped; removed {} and restored forwarding settings", cli.tun_name);
    outcome
}

/// The change notifications the firewall keeper uses, where they can be had.
fn watches(cli: &GuestArgs, firewall: bool) -> (Option<ConfigDirWatch>, Option<RulesetChanges>) {
    let dir = cli.rules_file.as_deref().and_then(std::path::Path::parent);
    let files = dir
        .filter(|_| firewall)
        .and_then(|d| ConfigDirWatch::open(d).map_err(|e| tracing::warn!("cannot watch {} ({e})", d.display())).ok());
    let ruleset = firewall
        .then(|| RulesetChanges::open().map_err(|e| tracing::info!("no nftables notifications ({e})")).ok())
        .flatten();
    (files, ruleset)
}

/// The firewall's setup, once it finished; forever when there is none (or it was taken).
async fn setup_done(
    setup: &mut Option<tokio::task::JoinHandle<Result<FirewallKeeper, String>>>,
) -> Result<Result<FirewallKeeper, String>, tokio::task::JoinError> {
    match setup {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Waits for `watch`, or forever without one.
async fn changed(watch: Option<impl std::future::Future<Output = std::io::Result<()>>>) -> std::io::Result<()> {
    match watch {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

fn same_link(a: &SessionParams, b: &SessionParams) -> bool {
    (a.mtu, a.guest_v4, a.prefix_v4, a.host_v4, a.v6) == (b.mtu, b.guest_v4, b.prefix_v4, b.host_v4, b.v6)
}

/// Our link address (the connected route makes the host's end reachable through the TUN).
fn configure(tun: &tun_rs::AsyncDevice, p: &SessionParams) -> anyhow::Result<()> {
    let spec = TunSpec {
        name: None,
        mtu: p.mtu,
        v4: Some((p.guest_v4, p.prefix_v4, p.host_v4)),
        v6: p.v6.map(|(_, guest, prefix)| (guest, prefix)),
        offload: false,
    };
    platform::set_tun_addresses(tun, &spec)?;
    tracing::info!(
        "link {}/{} (host {}), v6 {:?}, mtu {}",
        p.guest_v4,
        p.prefix_v4,
        p.host_v4,
        p.v6.map(|v| v.1),
        p.mtu
    );
    Ok(())
}

/// Keeps trying (250 ms, doubling to 4 s) until a name resolves: at boot the VM's resolver or
/// the host may not be up yet, and giving up would leave the container restart-looping.
async fn resolve_until_found(names: &[String]) -> SocketAddr {
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
    loop {
        match resolve_any(names).await {
            Ok(a) => return a,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!("{e:#}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// First address of the first name that resolves, IPv4 preferred.
async fn resolve_any(names: &[String]) -> anyhow::Result<SocketAddr> {
    let mut errors = Vec::new();
    for name in names {
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(name.as_str())).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if let Some(a) = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()) {
                    return Ok(*a);
                }
                errors.push(format!("{name}: no addresses"));
            }
            Ok(Err(e)) => errors.push(format!("{name}: {e}")),
            Err(_) => errors.push(format!("{name}: lookup timed out")),
        }
    }
    anyhow::bail!("cannot resolve the helper's address ({})", errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_of_link_needs_the_device_reconfigured() {
        let a = SessionParams {
            session_id: 1,
            mtu: 1400,
            keepalive_ms: 2000,
            host_v4: "198.18.7.1".parse().unwrap(),
            guest_v4: "198.18.7.2".parse().unwrap(),
            prefix_v4: 24,
            v6: None,
        };
        assert!(same_link(&a, &SessionParams { session_id: 2, keepalive_ms: 5000, ..a }), "a new session alone");
        assert!(!same_link(&a, &SessionParams { mtu: 1280, ..a }));
        assert!(!same_link(&a, &SessionParams { guest_v4: "198.18.7.3".parse().unwrap(), ..a }));
        assert!(!same_link(&a, &SessionParams { host_v4: "198.18.8.1".parse().unwrap(), ..a }));
        assert!(!same_link(&a, &SessionParams { prefix_v4: 25, ..a }));
        let v6 = Some(("fd00:7::1".parse().unwrap(), "fd00:7::2".parse().unwrap(), 64));
        assert!(!same_link(&a, &SessionParams { v6, ..a }));
    }
}
