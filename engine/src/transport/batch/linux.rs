//! Linux: `recvmmsg` with UDP GRO and `sendmsg` with UDP GSO (quinn-udp, as the driver).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::{ends_batch, fit, Fit};

/// Buffers per `recvmmsg`; each takes up to 64 KiB of GRO-coalesced datagrams.
const RECV_BUFFERS: usize = 8;
const RECV_BUF: usize = 65535;
/// A burst of GSO batches from the core waits here rather than being dropped.
const SOCKET_BUFFER: usize = 4 << 20;

fn state(udp: &UdpSocket) -> io::Result<UdpSocketState> {
    let state = UdpSocketState::new(UdpSockRef::from(udp))?;
    let _ = state.set_recv_buffer_size(UdpSockRef::from(udp), SOCKET_BUFFER);
    let _ = state.set_send_buffer_size(UdpSockRef::from(udp), SOCKET_BUFFER);
    Ok(state)
}

/// Receives what the socket holds, many datagrams per call.
pub struct Receiver {
    state: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    filled: usize,
}

impl Receiver {
    pub fn new(udp: &UdpSocket) -> io::Result<Receiver> {
        Ok(Receiver {
            state: state(udp)?,
            bufs: (0..RECV_BUFFERS).map(|_| vec![0; RECV_BUF]).collect(),
            meta: vec![RecvMeta::default(); RECV_BUFFERS],
            filled: 0,
        })
    }

    /// Waits until at least one datagram is there and takes what one call returns.
    pub async fn recv(&mut self, udp: &UdpSocket) -> io::Result<()> {
        self.filled = 0;
        let n = udp
            .async_io(Interest::READABLE, || {
                let mut slices: Vec<IoSliceMut<'_>> = self.bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
                self.state.recv(UdpSockRef::from(udp), &mut slices, &mut self.meta)
            })
            .await?;
        self.filled = n;
        Ok(())
    }

    /// Takes more if it is there at once; false if nothing was.
    pub fn try_recv(&mut self, udp: &UdpSocket) -> bool {
        self.filled = 0;
        let r = udp.try_io(Interest::READABLE, || {
            let mut slices: Vec<IoSliceMut<'_>> = self.bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            self.state.recv(UdpSockRef::from(udp), &mut slices, &mut self.meta)
        });
        self.filled = r.unwrap_or(0);
        self.filled > 0
    }

    /// The datagrams of the last call, in order (a GRO buffer cut at its stride).
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs.iter().zip(&self.meta).take(self.filled).flat_map(|(buf, meta)| {
            let data = &buf[..meta.len];
            // An empty datagram has no stride to cut at; it is one (empty) message.
            let stride = meta.stride.max(1);
            let empty = data.is_empty().then_some(data);
            data.chunks(stride).chain(empty)
        })
    }
}

/// Sends messages to the socket's peer, runs of equal size in one `sendmsg`.
pub struct Sender {
    state: UdpSocketState,
    peer: SocketAddr,
    batch: Vec<u8>,
    size: usize,
    count: usize,
}

impl Sender {
    /// For a connected socket (`peer` is where it is connected to).
    pub fn new(udp: &UdpSocket) -> io::Result<Sender> {
        Ok(Sender { state: state(udp)?, peer: udp.peer_addr()?, batch: Vec::with_capacity(65535), size: 0, count: 0 })
    }

    /// Queues `msg`; sends the batch when it is full or `msg` ends it.
    pub async fn push(&mut self, udp: &UdpSocket, msg: &[u8]) -> io::Result<()> {
        let max = self.state.max_gso_segments().max(1);
        if fit(self.count, self.size, self.batch.len(), msg.len(), max) == Fit::FlushFirst {
            self.flush(udp).await?;
        }
        if self.count == 0 {
            self.size = msg.len();
        }
        self.batch.extend_from_slice(msg);
        self.count += 1;
        if ends_batch(self.size, msg.len()) {
            self.flush(udp).await?;
        }
        Ok(())
    }

    /// Sends what is queued.
    pub async fn flush(&mut self, udp: &UdpSocket) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let transmit = Transmit {
            destination: self.peer,
            ecn: None,
            contents: &self.batch,
            segment_size: (self.count > 1).then_some(self.size),
            src_ip: None,
        };
        let r = udp.async_io(Interest::WRITABLE, || self.state.try_send(UdpSockRef::from(udp), &transmit)).await;
        self.batch.clear();
        self.count = 0;
        r
    }
}
