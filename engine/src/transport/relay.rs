//! The two directions every TCP relay runs, the same at both ends (`connector`, `listener`):
//! frames from the stream out as datagrams to the core, and the core's datagrams back into the
//! stream as frames. Each returns why it stopped, naming the other end (`peer`: "helper" or
//! "guest"); what an end does besides moving bytes it passes in as a closure.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;

use super::frame::{self, FrameDecoder};

/// A write the other end does not take within this is a dead connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Datagrams gathered into one TCP write.
const WRITE_BATCH: usize = 64;

/// Reads frames from `rd` and sends each message to `udp` (connected to the core) until the
/// stream ends or fails. After each read's messages have gone out, `after_read` is told how
/// many frames that read skipped for being oversized (usually 0).
pub async fn frames_to_udp<R: AsyncRead + Unpin>(
    mut rd: R,
    udp: &UdpSocket,
    peer: &str,
    mut after_read: impl FnMut(u64),
) -> String {
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => return format!("closed by the {peer}"),
            Ok(n) => n,
            Err(e) => return format!("read: {e}"),
        };
        decoder.push(&buf[..n]);
        let before = decoder.oversized();
        while let Some(msg) = decoder.next_message() {
            // Awaited: a full socket buffer slows the stream down instead of dropping.
            let _ = udp.send(msg).await;
        }
        after_read(decoder.oversized() - before);
    }
}

/// Sends what the core sends to `udp` into `wr` as frames, up to `WRITE_BATCH` datagrams per
/// write, until the socket fails or a write fails or is not taken within `WRITE_TIMEOUT`.
/// `each` sees every datagram before it is framed; `Err(why)` stops the relay before that
/// datagram goes out.
pub async fn udp_to_frames<W: AsyncWrite + Unpin>(
    mut wr: W,
    udp: &UdpSocket,
    peer: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), String>,
) -> String {
    let mut dgram = vec![0u8; 65535];
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        let n = match udp.recv(&mut dgram).await {
            Ok(n) => n,
            Err(e) => return format!("relay receive: {e}"),
        };
        out.clear();
        if let Err(why) = each(&dgram[..n]) {
            return why;
        }
        frame::encode(&dgram[..n], &mut out);
        for _ in 1..WRITE_BATCH {
            match udp.try_recv(&mut dgram) {
                Ok(n) => {
                    if let Err(why) = each(&dgram[..n]) {
                        return why;
                    }
                    frame::encode(&dgram[..n], &mut out);
                }
                Err(_) => break,
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
}
