//! The portable driver: one packet per system call. macOS (utun has no offloads) runs it; on
//! Linux it is the baseline the batched driver is measured against.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::side_port::{next_injected, SidePort};
use super::{Control, DriverConfig};
use crate::proto::wire::DATA_HEADER_LEN;
use crate::proto::{Endpoint, Event};

/// Largest packet a TUN may hand us (its MTU is far below; the core drops what exceeds it).
const TUN_BUF: usize = 65535;
const UDP_BUF: usize = 65535;

pub(super) async fn run<E: Endpoint>(
    mut core: E,
    _cfg: DriverConfig,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    mut control: mpsc::UnboundedReceiver<Control<E>>,
    events: mpsc::UnboundedSender<Event>,
    mut side: Option<SidePort>,
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
        let sleep = dockroute_stdx::time::sleep_until(deadline);
        tokio::select! {
            r = udp.recv_from(&mut net_buf) => {
                let (n, from) = match r {
                    Ok(v) => v,
                    // ICMP errors surface here on some systems; they are not fatal.
                    Err(e) => { tracing::debug!("udp receive: {e}"); continue; }
                };
                if let Some(range) = core.handle_datagram(Instant::now(), from, &net_buf[..n]) {
                    if side.as_ref().is_some_and(|s| s.offer(&net_buf[range.clone()])) {
                        continue;
                    }
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
            packet = next_injected(&mut side) => {
                // Framed like a TUN read; a packet too large for the buffer is one the core
                // would drop as oversized anyway.
                let n = packet.len();
                if DATA_HEADER_LEN + n <= tun_buf.len() {
                    tun_buf[DATA_HEADER_LEN..][..n].copy_from_slice(&packet);
                    if let Some((dst, len)) = core.encapsulate(Instant::now(), &mut tun_buf, n) {
                        if let Err(e) = udp.send_to(&tun_buf[..len], dst).await {
                            tracing::debug!("send to {dst} failed: {e}");
                        }
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
