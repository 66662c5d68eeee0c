//! The Linux driver: batches on both sides.
//!
//! TUN → UDP: with TUN offload on, one read returns a TCP/UDP super-packet (up to 64 KiB) that
//! tun-rs splits into MTU-sized segments, each landing in its own buffer behind room for our
//! header, so framing happens in place. Further reads that are ready are taken too (packets
//! that come one per read, like UDP, batch up that way). Frames of equal size go out in one
//! `sendmsg` with UDP GSO (the kernel cuts them into datagrams).
//! UDP → TUN: `recvmmsg` with UDP GRO returns many datagrams per call; their packets are
//! written with tun-rs's GRO coalescing (many TCP segments become one write).
//! Without offloads (old kernel, or refused) the same loop runs with batches of one; the
//! portable driver stays available with `DOCKROUTE_PORTABLE_DRIVER=1` for comparison.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tun_rs::{GROTable, IDEAL_BATCH_SIZE, VIRTIO_NET_HDR_LEN};

use super::side_port::{next_injected, SidePort};
use super::{Control, DriverConfig};
use crate::proto::wire::DATA_HEADER_LEN;
use crate::proto::{Endpoint, Event};

/// Datagram buffers per `recvmmsg`; each holds up to 64 KiB of GRO-coalesced datagrams.
const RECV_BATCH: usize = 16;
const RECV_BUF: usize = 65535;
/// Room before a packet written to the TUN for the virtio header tun-rs prepends.
const TUN_WRITE_OFFSET: usize = VIRTIO_NET_HDR_LEN + 6;
/// Capacity of a packet buffer bound for the TUN. tun-rs coalesces the later segments of a TCP
/// flow into the flow's first buffer, in place, and silently does not when that buffer cannot
/// hold the result: with packet-sized buffers every segment went to the kernel on its own.
const TUN_WRITE_CAPACITY: usize = 2 * TUN_WRITE_OFFSET + 65535;
/// Segment buffers for TUN reads: the first read of a wake gets `IDEAL_BATCH_SIZE` like every
/// further one, since tun-rs drops a super-packet it cannot split into the buffers it has (a
/// small MSS makes up to 127 segments).
const SEGMENT_BUFFERS: usize = 2 * IDEAL_BATCH_SIZE;
/// After a TUN read, more reads are taken while they are ready and this many segment buffers
/// are still free: packets that arrive one per read (UDP, small TCP) then leave in one GSO
/// send instead of one each.
const MIN_FREE_SEGMENTS: usize = IDEAL_BATCH_SIZE;
/// And at most this many extra reads per wake, so timers and the UDP side are not starved.
const MAX_EXTRA_TUN_READS: usize = 64;
/// How long the driver keeps polling after traffic before it sleeps (see `spin`), unless
/// `DOCKROUTE_SPIN_US` says otherwise (`spin_budget`).
const SPIN: Duration = Duration::from_micros(100);
/// Packets per TUN write batch, checked after each received GRO batch (≤ 64 datagrams): at
/// most ~190 write buffers exist (≈ 12.5 MB with offload, which is only address space until a
/// coalesced write fills it), while whole GRO batches of several flows still coalesce.
const TUN_WRITE_BATCH: usize = IDEAL_BATCH_SIZE;
/// Socket buffers large enough for a burst of GSO/GRO batches.
const SOCKET_BUFFER: usize = 4 << 20;
/// The TUN write buffers kept for reuse (up to ~190 of 64 KiB, each filled as far as a
/// coalesced write went) are freed after this long without a TUN write: they were most of an
/// idle guest's RSS. The next burst allocates them again, a few µs against its first RTT.
const RELEASE_IDLE_BUFFERS: Duration = Duration::from_secs(1);

/// The busy-poll budget: `SPIN`, none on a single CPU (the spin would hold the very CPU the
/// reply has to be made on); `DOCKROUTE_SPIN_US` (µs, 0 = off) overrides it, so the wake-up
/// cost can be measured against the spin's CPU on a given machine (`scripts/bench/profile.sh`).
/// A value that is not a number is ignored.
fn spin_budget(cpus: usize, override_us: Option<&str>) -> Duration {
    match override_us.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(us) => Duration::from_micros(us.min(10_000)),
        None if cpus > 1 => SPIN,
        None => Duration::ZERO,
    }
}

/// When the spare TUN write buffers are to be freed: `RELEASE_IDLE_BUFFERS` after the last TUN
/// write, or never while there are none (an idle driver then has no extra wake-up).
fn release_spare_at(spare: usize, last_write: Instant) -> Option<Instant> {
    (spare > 0).then(|| last_write + RELEASE_IDLE_BUFFERS)
}

pub(super) async fn run<E: Endpoint>(
    core: E,
    cfg: DriverConfig,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    control: mpsc::UnboundedReceiver<Control<E>>,
    events: mpsc::UnboundedSender<Event>,
    side: Option<SidePort>,
) -> io::Result<E> {
    if super::portable_requested() {
        return super::portable::run(core, cfg, tun, udp, control, events, side).await;
    }
    let state = UdpSocketState::new(UdpSockRef::from(&*udp))?;
    for (what, r) in [
        ("send", state.set_send_buffer_size(UdpSockRef::from(&*udp), SOCKET_BUFFER)),
        ("receive", state.set_recv_buffer_size(UdpSockRef::from(&*udp), SOCKET_BUFFER)),
    ] {
        if let Err(e) = r {
            tracing::debug!("UDP {what} buffer stays at its default: {e}");
        }
    }
    tracing::debug!(
        gso_segments = state.max_gso_segments(),
        gro_segments = state.gro_segments(),
        tun_offload = tun.tcp_gso(),
        "batched driver"
    );
    Batched::new(core, cfg, tun, udp, state, side).run(control, events).await
}

struct Batched<E> {
    core: E,
    tun: Arc<tun_rs::AsyncDevice>,
    udp: Arc<UdpSocket>,
    state: UdpSocketState,
    /// The TUN's raw read (virtio header + unsplit packet).
    tun_raw: Vec<u8>,
    /// One segment each, at `DATA_HEADER_LEN`, so it is framed in place.
    segments: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    /// Frames laid end to end for one GSO send.
    gso: Vec<u8>,
    recv_bufs: Vec<Vec<u8>>,
    recv_meta: Vec<RecvMeta>,
    /// Packets for the TUN, each at `TUN_WRITE_OFFSET`.
    to_tun: Vec<Vec<u8>>,
    /// Packet buffers of earlier batches, reused so packets are not allocated per batch (the
    /// small list of `IoSliceMut`s over `recv_bufs` still is, once per `recvmmsg`); freed when
    /// the TUN writes stop (`release_spare_at`).
    spare: Vec<Vec<u8>>,
    /// When the TUN was last written.
    last_tun_write: Instant,
    /// `TUN_WRITE_CAPACITY` with offload; without it nothing is coalesced, a packet is all.
    write_capacity: usize,
    /// How long to busy-poll after traffic (`spin`; zero: not at all), from `spin_budget`.
    spin: Duration,
    gro: GROTable,
    /// The helper's share, when it runs one (see `SidePort`).
    side: Option<SidePort>,
}

impl<E: Endpoint> Batched<E> {
    fn new(
        core: E,
        cfg: DriverConfig,
        tun: Arc<tun_rs::AsyncDevice>,
        udp: Arc<UdpSocket>,
        state: UdpSocketState,
        side: Option<SidePort>,
    ) -> Self {
        // Without offload a read is one packet of at most the MTU; with it, segments are too.
        let segment = DATA_HEADER_LEN + usize::from(cfg.mtu).max(1500);
        let offload = tun.tcp_gso();
        Batched {
            core,
            tun,
            udp,
            state,
            tun_raw: vec![0; VIRTIO_NET_HDR_LEN + 65535],
            segments: (0..SEGMENT_BUFFERS).map(|_| vec![0; segment]).collect(),
            sizes: vec![0; SEGMENT_BUFFERS],
            gso: Vec::with_capacity(65535),
            recv_bufs: (0..RECV_BATCH).map(|_| vec![0; RECV_BUF]).collect(),
            recv_meta: vec![RecvMeta::default(); RECV_BATCH],
            to_tun: Vec::new(),
            spare: Vec::new(),
            last_tun_write: Instant::now(),
            write_capacity: if offload { TUN_WRITE_CAPACITY } else { TUN_WRITE_OFFSET + segment },
            spin: spin_budget(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                std::env::var("DOCKROUTE_SPIN_US").ok().as_deref(),
            ),
            gro: GROTable::default(),
            side,
        }
    }

    async fn run(
        mut self,
        mut control: mpsc::UnboundedReceiver<Control<E>>,
        events: mpsc::UnboundedSender<Event>,
    ) -> io::Result<E> {
        loop {
            self.flush_control().await;
            while let Some(ev) = self.core.poll_event() {
                let _ = events.send(ev);
            }
            let deadline = self.core.poll_timeout();
            let release = release_spare_at(self.spare.len(), self.last_tun_write);
            let sleep = dockroute_stdx::time::sleep_until(dockroute_stdx::time::earliest(deadline, release));
            let tun = self.tun.clone();
            let udp = self.udp.clone();
            tokio::select! {
                r = udp.readable() => {
                    r?;
                    if self.forward_udp_datagrams().await > 0 {
                        self.spin().await;
                    }
                }
                r = tun.recv_multiple(&mut self.tun_raw, &mut self.segments, &mut self.sizes, DATA_HEADER_LEN) => {
                    match r {
                        Ok(n) => {
                            let n = self.read_more_tun(n);
                            self.forward_tun_read(n).await;
                            self.spin().await;
                        }
                        // A malformed offload header from the kernel: drop this read, keep going.
                        Err(e) if e.kind() == io::ErrorKind::Other || e.kind() == io::ErrorKind::InvalidInput => {
                            tracing::debug!("tun read dropped: {e}");
                        }
                        Err(e) => return Err(io::Error::new(e.kind(), format!("TUN device read failed: {e}"))),
                    }
                }
                packet = next_injected(&mut self.side) => self.forward_injected(packet).await,
                () = sleep => {
                    let now = Instant::now();
                    if deadline.is_some_and(|at| now >= at) {
                        self.core.handle_timeout(now);
                    }
                    if release.is_some_and(|at| now >= at) {
                        self.spare = Vec::new();
                        give_back_freed_memory();
                    }
                }
                c = control.recv() => match c {
                    Some(f) => f(&mut self.core, Instant::now()),
                    None => return Ok(self.core),
                },
            }
        }
    }

    async fn flush_control(&mut self) {
        while let Some(t) = self.core.poll_transmit() {
            let transmit =
                Transmit { destination: t.dst, ecn: None, contents: &t.bytes, segment_size: None, src_ip: None };
            if let Err(e) = send(&self.udp, &self.state, &transmit).await {
                tracing::debug!("send to {} failed: {e}", t.dst);
            }
        }
    }

    /// Takes further TUN reads that are ready, after the `n` segments one read gave; returns
    /// the new total.
    fn read_more_tun(&mut self, mut n: usize) -> usize {
        for _ in 0..MAX_EXTRA_TUN_READS {
            if self.segments.len() - n < MIN_FREE_SEGMENTS {
                break;
            }
            let (segments, sizes) = (&mut self.segments[n..], &mut self.sizes[n..]);
            match self.tun.try_recv_multiple(&mut self.tun_raw, segments, sizes, DATA_HEADER_LEN) {
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Malformed offload header or a read error: this read is lost, the next wake
                // reports a lasting error.
                Err(e) => {
                    tracing::debug!("tun read dropped: {e}");
                    break;
                }
            }
        }
        n
    }

    /// Frames the `n` segments of one TUN read and sends them, equal sizes batched with GSO.
    async fn forward_tun_read(&mut self, n: usize) {
        let now = Instant::now();
        let max_segments = self.state.max_gso_segments().max(1);
        // The batch being built in `self.gso`: one destination, equal frame sizes; a shorter
        // frame may end it (the kernel allows only the last datagram to be short).
        let mut batch: Option<(SocketAddr, usize, usize)> = None;
        self.gso.clear();
        for i in 0..n {
            let len = self.sizes[i];
            let Some((dst, frame)) = self.core.encapsulate(now, &mut self.segments[i][..DATA_HEADER_LEN + len], len)
            else {
                continue;
            };
            if let Some((bdst, size, count)) = batch {
                let fits = bdst == dst && frame <= size && count < max_segments && self.gso.len() + frame <= 65000;
                if !fits {
                    self.send_gso(bdst, size, count).await;
                    batch = None;
                }
            }
            self.gso.extend_from_slice(&self.segments[i][..frame]);
            let (size, count) = batch.map_or((frame, 1), |(_, size, count)| (size, count + 1));
            if frame < size {
                self.send_gso(dst, size, count).await;
                batch = None;
            } else {
                batch = Some((dst, size, count));
            }
        }
        if let Some((dst, size, count)) = batch {
            self.send_gso(dst, size, count).await;
        }
    }

    async fn send_gso(&mut self, dst: SocketAddr, size: usize, count: usize) {
        let transmit = Transmit {
            destination: dst,
            ecn: None,
            contents: &self.gso,
            segment_size: (count > 1).then_some(size),
            src_ip: None,
        };
        if let Err(e) = send(&self.udp, &self.state, &transmit).await {
            tracing::debug!("send to {dst} failed: {e}");
        }
        self.gso.clear();
    }

    /// Drains the socket: every datagram through the core, the packets to the TUN in one go.
    /// Returns how many packets the core accepted (garbage counts for nothing, so a flood of it
    /// cannot make the driver spin).
    async fn forward_udp_datagrams(&mut self) -> usize {
        self.forward_udp_datagrams_from(false).await
    }

    /// `direct`: ask the socket itself rather than tokio's readiness cache, which is only
    /// refreshed when the thread goes back to epoll (what `spin` must not wait for).
    async fn forward_udp_datagrams_from(&mut self, direct: bool) -> usize {
        let now = Instant::now();
        let (mut batches, mut accepted) = (0, 0);
        // Bounded: a flood cannot starve the TUN side or the timers.
        for _ in 0..8 {
            let received = {
                let mut slices: Vec<IoSliceMut<'_>> = self.recv_bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                let (state, meta, udp) = (&self.state, &mut self.recv_meta, &self.udp);
                let mut recv = || state.recv(UdpSockRef::from(&**udp), &mut slices, meta);
                if direct && batches == 0 {
                    recv()
                } else {
                    udp.try_io(Interest::READABLE, recv)
                }
            };
            let n = match received {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors surface here on some systems; they are not fatal.
                    tracing::debug!("udp receive: {e}");
                    break;
                }
            };
            batches += 1;
            for j in 0..n {
                let meta = self.recv_meta[j];
                let stride = meta.stride.max(1);
                for datagram in self.recv_bufs[j][..meta.len].chunks(stride) {
                    if let Some(range) = self.core.handle_datagram(now, meta.addr, datagram) {
                        accepted += 1;
                        if self.side.as_ref().is_some_and(|s| s.offer(&datagram[range.clone()])) {
                            continue;
                        }
                        let mut out = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(self.write_capacity));
                        // Room for the virtio header tun-rs writes in front of the packet.
                        out.clear();
                        out.resize(TUN_WRITE_OFFSET, 0);
                        out.extend_from_slice(&datagram[range]);
                        self.to_tun.push(out);
                    }
                }
                // One GRO'd datagram holds at most 64 segments: the batch stays near its bound.
                if self.to_tun.len() >= TUN_WRITE_BATCH {
                    self.write_tun().await;
                }
            }
        }
        self.write_tun().await;
        accepted
    }

    /// After traffic, polls both sides for up to `SPIN` before the thread sleeps in epoll: a
    /// reply that comes back within it (a request/response, the next burst) is handled without
    /// a wakeup, which costs tens of µs on a VM. Handles at most one more event, then returns
    /// to the main loop (timers, control). An idle tunnel spins only after keepalives.
    async fn spin(&mut self) {
        if self.spin.is_zero() {
            return;
        }
        let until = Instant::now() + self.spin;
        while Instant::now() < until {
            if self.forward_udp_datagrams_from(true).await > 0 {
                return;
            }
            // The device's own non-blocking read, not the async one (readiness cache, as above).
            let dev: &tun_rs::DeviceImpl = &self.tun;
            match dev.recv_multiple(&mut self.tun_raw, &mut self.segments, &mut self.sizes, DATA_HEADER_LEN) {
                Ok(n) => {
                    let n = self.read_more_tun(n);
                    self.forward_tun_read(n).await;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    tracing::debug!("tun read dropped: {e}");
                    return;
                }
            }
            std::hint::spin_loop();
        }
    }

    /// Frames packets from the side port (this one and those queued behind it) the way a TUN
    /// read is framed, and sends them.
    async fn forward_injected(&mut self, first: Vec<u8>) {
        let mut n = 0;
        let mut next = Some(first);
        while let Some(packet) = next.take() {
            let room = &mut self.segments[n];
            // Larger than a segment: the core would drop it as oversized anyway.
            if DATA_HEADER_LEN + packet.len() <= room.len() {
                room[DATA_HEADER_LEN..][..packet.len()].copy_from_slice(&packet);
                self.sizes[n] = packet.len();
                n += 1;
            }
            if n < self.segments.len() {
                next = self.side.as_mut().and_then(|s| s.inject.try_recv().ok());
            }
        }
        self.forward_tun_read(n).await;
    }

    /// Writes the packets gathered for the TUN, coalesced, and keeps their buffers for reuse.
    async fn write_tun(&mut self) {
        if self.to_tun.is_empty() {
            return;
        }
        if let Err(e) = self.tun.send_multiple(&mut self.gro, &mut self.to_tun, TUN_WRITE_OFFSET).await {
            tracing::debug!("tun write: {e}");
        }
        self.spare.append(&mut self.to_tun);
        self.last_tun_write = Instant::now();
    }
}

async fn send(udp: &UdpSocket, state: &UdpSocketState, t: &Transmit<'_>) -> io::Result<()> {
    udp.async_io(Interest::WRITABLE, || state.try_send(UdpSockRef::from(udp), t)).await
}

/// glibc keeps what was freed in its arenas, so the freed write buffers stayed in the RSS
/// (measured: an idle guest's RSS did not move). musl, the guest image's libc, has no
/// `malloc_trim` and needs none: its allocator gives whole free groups back (a musl guest:
/// 19.1 MB at the peak, 7.1 MB two seconds after the traffic).
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes no pointer and only walks glibc's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_write_buffers_are_freed_a_second_after_the_last_tun_write() {
        let last = Instant::now();
        assert_eq!(release_spare_at(190, last), Some(last + RELEASE_IDLE_BUFFERS));
        assert_eq!(release_spare_at(1, last), Some(last + Duration::from_secs(1)));
    }

    #[test]
    fn spins_by_default_only_with_more_than_one_cpu() {
        assert_eq!(spin_budget(2, None), SPIN);
        assert_eq!(spin_budget(1, None), Duration::ZERO);
    }

    #[test]
    fn dockroute_spin_us_overrides_the_budget_bounded_and_garbage_is_ignored() {
        assert_eq!(spin_budget(2, Some("0")), Duration::ZERO);
        assert_eq!(spin_budget(1, Some("250")), Duration::from_micros(250));
        assert_eq!(spin_budget(2, Some("99999999")), Duration::from_millis(10));
        assert_eq!(spin_budget(2, Some("fast")), SPIN);
        assert_eq!(spin_budget(2, Some("-1")), SPIN);
    }

    #[test]
    fn an_idle_driver_without_spare_buffers_gets_no_extra_wake_up() {
        assert_eq!(release_spare_at(0, Instant::now()), None);
    }
}
