//! The tokio driver: the only place where the protocol core meets a clock, a UDP socket and a
//! TUN device. One task owns the core; the outside talks to it through `Control`.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::proto::wire::DATA_HEADER_LEN;
use crate::proto::{Endpoint, Event};

/// A request to the task that owns the core: run this closure on it, between packets.
pub type Control<E> = Box<dyn FnOnce(&mut E, Instant) + Send>;

/// Largest packet a TUN may hand us (its MTU is far below; the core drops what exceeds it).
const TUN_BUF: usize = 65535;
const UDP_BUF: usize = 65535;

/// Runs until `control` closes. Returns the core so the caller can read its final state.
/// Events go to `events` (dropped if nobody listens).
pub async fn run<E: Endpoint>(
    mut core: E,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    mut control: mpsc::UnboundedReceiver<Control<E>>,
    events: mpsc::UnboundedSender<Event>,
) -> io::Result<E> {
    let mut net_buf = vec![0u8; UDP_BUF];
    let mut tun_buf = vec![0u8; DATA_HEADER_LEN + TUN_BUF];
    loop {
        while let Some(t) = core.poll_transmit() {
            if let Err(e) = udp.send_to(&t.bytes, t.dst).await {
                tracing::debug!("send to {} failed: {e}", t.dst);
            }
        }
        while let Some(ev) = core.poll_event() {
            let _ = events.send(ev);
        }
        let deadline = core.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = udp.recv_from(&mut net_buf) => {
                let (n, from) = match r {
                    Ok(v) => v,
                    // ICMP errors surface here on some systems; they are not fatal.
                    Err(e) => { tracing::debug!("udp receive: {e}"); continue; }
                };
                if let Some(range) = core.handle_datagram(Instant::now(), from, &net_buf[..n]) {
                    if let Err(e) = tun.send(&net_buf[range]).await {
                        tracing::debug!("tun write: {e}");
                    }
                }
            }
            r = tun.recv(&mut tun_buf[DATA_HEADER_LEN..]) => {
                let n = r.map_err(|e| io::Error::new(e.kind(), format!("TUN device read failed: {e}")))?;
                if let Some((dst, len)) = core.encapsulate(Instant::now(), &mut tun_buf, n) {
                    if let Err(e) = udp.send_to(&tun_buf[..len], dst).await {
                        tracing::debug!("send to {dst} failed: {e}");
                    }
                }
            }
            () = sleep => core.handle_timeout(Instant::now()),
            c = control.recv() => match c {
                Some(f) => f(&mut core, Instant::now()),
                None => return Ok(core),
            },
        }
    }
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
            session = format_args!("{:016x}", params.session_id),
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
                session = format_args!("{session_id:016x}"),
                "peer silent for {silent_for:?}: declared dead"
            )
        }
        Event::PeerAlive { session_id } => {
            tracing::info!(role, session = format_args!("{session_id:016x}"), "peer alive again")
        }
        Event::HandshakeAttempt { attempt } => tracing::debug!(role, attempt, "hello sent"),
        Event::StaleSession { session_id } => {
            tracing::info!(
                role,
                session = format_args!("{session_id:016x}"),
                "host no longer knows our session: re-handshaking"
            )
        }
    }
}
