//! The two directions every TCP relay runs, the same at both ends (`connector`, `listener`):
//! frames from the stream out as datagrams to the core, and the core's datagrams back into the
//! stream as frames. Each returns why it stopped, naming the other end (`peer`: "helper" or
//! "guest"); what an end does besides moving bytes it passes in as a closure.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::batch::{Receiver, Sender};
use super::frame::{self, FrameDecoder};

/// A write the other end does not take within this is a dead connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of frames gathered into one TCP write (more receive calls are taken while they
/// return something at once and the write is smaller than this).
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Bytes one TCP read may bring.
const READ_BUF: usize = 256 * 1024;

/// Reads frames from `rd` and sends each message to `udp` (connected to the core) until the
/// stream ends or fails; runs of equal-size messages go out in one send where the platform
/// batches (`batch`). After each read's messages have gone out, `after_read` is told how
/// many frames that read skipped for being oversized (usually 0).
pub async fn frames_to_udp<R: AsyncRead + Unpin>(
    mut rd: R,
    udp: &UdpSocket,
    peer: &str,
    mut after_read: impl FnMut(u64),
) -> String {
    let mut sender = match Sender::new(udp) {
        Ok(s) => s,
        Err(e) => return format!("relay socket: {e}"),
    };
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return format!("closed by the {peer}"),
            Ok(n) => n,
            Err(e) => return format!("read: {e}"),
        };
        decoder.push(&buf[..n]);
        let before = decoder.oversized();
        while let Some(msg) = decoder.next_message() {
            // Awaited: a full socket buffer slows the stream down instead of dropping. An
            // error (the core gone) loses only this batch, as a lost datagram would.
            let _ = sender.push(udp, msg).await;
        }
        let _ = sender.flush(udp).await;
        after_read(decoder.oversized() - before);
    }
}

/// Sends what the core sends to `udp` into `wr` as frames, as many datagrams per write as
/// are there (up to `WRITE_BATCH_BYTES`), until the socket fails or a write fails or is not
/// taken within `WRITE_TIMEOUT`. `each` sees every datagram before it is framed; `Err(why)`
/// stops the relay before that datagram goes out.
pub async fn udp_to_frames<W: AsyncWrite + Unpin>(
    mut wr: W,
    udp: &UdpSocket,
    peer: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> String {
    let mut receiver = match Receiver::new(udp) {
        Ok(r) => r,
        Err(e) => return format!("relay socket: {e}"),
    };
    let mut out = Vec::with_capacity(WRITE_BATCH_BYTES + 64 * 1024);
    loop {
        if let Err(e) = receiver.recv(udp).await {
            return format!("relay receive: {e}");
        }
        out.clear();
        loop {
            for dgram in receiver.datagrams() {
                if let Err(why) = each(dgram) {
                    return why;
                }
                frame::encode(dgram, &mut out);
            }
            if out.len() >= WRITE_BATCH_BYTES || !receiver.try_recv(udp) {
                break;
            }
        }
        match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return format!("write: {e}"),
            Err(_) => return format!("the {peer} stopped reading"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UdpSocket;

    use super::*;
    use crate::transport::frame::MAX_MESSAGE;

    /// The relay's socket, connected to a stand-in core, and the core.
    async fn pair() -> (UdpSocket, UdpSocket) {
        let core = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        relay.connect(core.local_addr().unwrap()).await.unwrap();
        core.connect(relay.local_addr().unwrap()).await.unwrap();
        (relay, core)
    }

    async fn recv(sock: &UdpSocket) -> Vec<u8> {
        let mut buf = vec![0u8; 65535];
        let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await.unwrap().unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn frames_go_out_as_datagrams_oversized_ones_are_reported_and_the_end_is_named() {
        let (relay, core) = pair().await;
        let mut stream = Vec::new();
        frame::encode(&[1; 10], &mut stream);
        let big = MAX_MESSAGE + 1;
        stream.extend_from_slice(&(big as u16).to_be_bytes());
        stream.extend(std::iter::repeat_n(0xee, big));
        frame::encode(&[2; 1420], &mut stream);
        let (mut tx, rx) = tokio::io::duplex(256 * 1024);
        tx.write_all(&stream).await.unwrap();
        drop(tx);
        let mut reads = Vec::new();
        let why = frames_to_udp(rx, &relay, "guest", |over| reads.push(over)).await;
        assert_eq!(why, "closed by the guest");
        assert_eq!(reads.iter().sum::<u64>(), 1, "the oversized frame, once: {reads:?}");
        assert!(!reads.is_empty());
        assert_eq!(recv(&core).await, [1; 10]);
        assert_eq!(recv(&core).await, [2; 1420]);
    }

    #[tokio::test]
    async fn datagrams_go_into_the_stream_as_frames_each_one_seen() {
        let (relay, core) = pair().await;
        let (tx, mut rx) = tokio::io::duplex(256 * 1024);
        let sizes = [36usize, 0, 9020, 20];
        for (i, n) in sizes.iter().enumerate() {
            core.send(&vec![i as u8; *n]).await.unwrap();
        }
        let mut seen = Vec::new();
        let relaying = udp_to_frames(tx, &relay, "helper", |m| {
            seen.push(m.len());
            Ok(())
        });
        let want: usize = sizes.iter().map(|n| n + frame::LEN_PREFIX).sum();
        let mut got = vec![0u8; want];
        tokio::select! {
            why = relaying => panic!("stopped: {why}"),
            r = rx.read_exact(&mut got) => { r.unwrap(); }
        }
        let mut d = FrameDecoder::default();
        d.push(&got);
        let msgs: Vec<Vec<u8>> = std::iter::from_fn(|| d.next_message().map(<[u8]>::to_vec)).collect();
        let want: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8; *n]).collect();
        assert_eq!(msgs, want);
        assert_eq!(seen, sizes);
    }

    #[tokio::test]
    async fn a_closed_stream_ends_the_write_direction_with_the_error() {
        let (relay, core) = pair().await;
        let (tx, rx) = tokio::io::duplex(1024);
        drop(rx);
        core.send(&[1, 2, 3]).await.unwrap();
        let why = udp_to_frames(tx, &relay, "guest", |_| Ok(())).await;
        assert!(why.starts_with("write: "), "{why}");
    }

    #[tokio::test]
    async fn a_run_of_equal_frames_arrives_as_the_same_datagrams_in_order() {
        let (relay, core) = pair().await;
        let mut msgs: Vec<Vec<u8>> = (0..60u8).map(|i| vec![i; 1400]).collect();
        msgs.insert(40, Vec::new());
        msgs.insert(50, vec![0xaa; 17]);
        msgs.push(vec![0xbb; 9020]);
        let mut stream = Vec::new();
        for m in &msgs {
            frame::encode(m, &mut stream);
        }
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        tx.write_all(&stream).await.unwrap();
        drop(tx);
        // Read while it sends: the core's socket buffer is the default one.
        let reading = async {
            let mut got = Vec::new();
            for _ in 0..msgs.len() {
                got.push(recv(&core).await);
            }
            got
        };
        let (why, got) = tokio::join!(frames_to_udp(rx, &relay, "guest", |_| {}), reading);
        assert_eq!(why, "closed by the guest");
        for (i, want) in msgs.iter().enumerate() {
            assert_eq!(&got[i], want, "message {i}");
        }
    }

    /// The core sends like the driver does, a GSO batch: the relay still sees and frames each
    /// datagram alone.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_gso_batch_from_the_core_becomes_one_frame_per_datagram() {
        use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
        let (relay, core) = pair().await;
        let state = UdpSocketState::new(UdpSockRef::from(&core)).unwrap();
        let segments = state.max_gso_segments().clamp(1, 20);
        let mut contents = Vec::new();
        for i in 0..segments {
            contents.extend(std::iter::repeat_n(i as u8, 1000));
        }
        let t = Transmit {
            destination: relay.local_addr().unwrap(),
            ecn: None,
            contents: &contents,
            segment_size: (segments > 1).then_some(1000),
            src_ip: None,
        };
        let (tx, mut rx) = tokio::io::duplex(1 << 20);
        let mut seen = Vec::new();
        let mut got = vec![0u8; segments * (1000 + frame::LEN_PREFIX)];
        {
            let relaying = udp_to_frames(tx, &relay, "helper", |m| {
                seen.push(m.len());
                Ok(())
            });
            tokio::pin!(relaying);
            // Received only once the relay has set its socket up (GRO), as in the helper.
            tokio::select! {
                why = &mut relaying => panic!("stopped: {why}"),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            state.try_send(UdpSockRef::from(&core), &t).unwrap();
            tokio::select! {
                why = &mut relaying => panic!("stopped: {why}"),
                r = rx.read_exact(&mut got) => { r.unwrap(); }
                () = tokio::time::sleep(Duration::from_secs(5)) => panic!("not every datagram became a frame"),
            }
        }
        let mut d = FrameDecoder::default();
        d.push(&got);
        let msgs: Vec<Vec<u8>> = std::iter::from_fn(|| d.next_message().map(<[u8]>::to_vec)).collect();
        let want: Vec<Vec<u8>> = (0..segments).map(|i| vec![i as u8; 1000]).collect();
        assert_eq!(msgs, want);
        assert_eq!(seen, vec![1000; segments]);
    }
}
