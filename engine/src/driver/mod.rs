//! The tokio driver: the only place where the protocol core meets a clock, a UDP socket and a
//! TUN device. One task owns the core; the outside talks to it through `Control`.

use std::io;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::proto::{Endpoint, Event, Fingerprint};

/// A request to the task that owns the core: run this closure on it, between packets.
pub use dockroute_stdx::control::Control;

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;
#[cfg(not(target_os = "linux"))]
#[path = "portable.rs"]
mod imp;
mod side_port;
pub use side_port::{Divert, SidePort, SIDE_QUEUE};

// The one-packet-per-call loop, kept on Linux as the reference the batched one is measured
// against (`DOCKROUTE_PORTABLE_DRIVER=1`) and as its fallback.
#[cfg(target_os = "linux")]
mod portable;

/// Whether the TUN device should be created with offloads: only for the batched Linux driver
/// (the portable one reads plain packets, without the virtio header offloads put in front).
pub fn wants_tun_offload() -> bool {
    cfg!(target_os = "linux") && !portable_requested()
}

/// `DOCKROUTE_PORTABLE_DRIVER=1`: run the one-packet-per-call loop on Linux too (baseline).
fn portable_requested() -> bool {
    std::env::var_os("DOCKROUTE_PORTABLE_DRIVER").is_some()
}

/// Tuning the caller knows and the driver needs.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    /// The tunnel MTU: the largest inner packet.
    pub mtu: u16,
}

/// Runs until `control` closes. Returns the core so the caller can read its final state.
/// Events go to `events` (dropped if nobody listens).
pub async fn run<E: Endpoint>(
    core: E,
    cfg: DriverConfig,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    control: mpsc::UnboundedReceiver<Control<E>>,
    events: mpsc::UnboundedSender<Event>,
) -> io::Result<E> {
    imp::run(core, cfg, tun, udp, control, events, None).await
}

/// `run`, with a side port (see `SidePort`): the helper's share injects and takes packets there.
pub async fn run_with_side_port<E: Endpoint>(
    core: E,
    cfg: DriverConfig,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    control: mpsc::UnboundedReceiver<Control<E>>,
    events: mpsc::UnboundedSender<Event>,
    side: SidePort,
) -> io::Result<E> {
    imp::run(core, cfg, tun, udp, control, events, Some(side)).await
}

/// On SIGUSR1, logs the core's counters (`kill -USR1 <pid>`: what a support request needs).
pub fn log_stats_on_sigusr1<E: Endpoint>(
    control: mpsc::UnboundedSender<Control<E>>,
    role: &'static str,
) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut usr1 = signal(SignalKind::user_defined1())?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            let sent = control.send(Box::new(move |core: &mut E, _| tracing::info!(role, "stats: {}", core.stats())));
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Logs an event the way both binaries report it.
pub fn log_event(role: &str, ev: &Event) {
    match ev {
        Event::SessionUp { params, peer, handshake, replaced } => tracing::info!(
            role,
            session = %Fingerprint(params.session_id),
            %peer,
            handshake_us = handshake.map(|d| d.as_micros() as u64),
            replaced,
            "session up: host {} guest {}/{} mtu {}",
            params.host_v4,
            params.guest_v4,
            params.prefix_v4,
            params.mtu
        ),
        Event::PeerDead { session_id, silent_for } => {
            tracing::warn!(
                role,
                session = %Fingerprint(*session_id),
                "peer silent for {silent_for:?}: declared dead"
            )
        }
        Event::PeerAlive { session_id } => {
            tracing::info!(role, session = %Fingerprint(*session_id), "peer alive again")
        }
        Event::HandshakeAttempt { attempt } => tracing::debug!(role, attempt, "hello sent"),
        Event::StaleSession { session_id } => {
            tracing::info!(
                role,
                session = %Fingerprint(*session_id),
                "host no longer knows our session: re-handshaking"
            )
        }
    }
}
