//! Elsewhere (macOS): one datagram per call, as tokio offers it.

use std::io;

use tokio::net::UdpSocket;

/// Receives one datagram per call.
pub struct Receiver {
    buf: Vec<u8>,
    len: Option<usize>,
}

impl Receiver {
    pub fn new(_udp: &UdpSocket) -> io::Result<Receiver> {
        Ok(Receiver { buf: vec![0; 65535], len: None })
    }

    /// Waits for a datagram.
    pub async fn recv(&mut self, udp: &UdpSocket) -> io::Result<()> {
        self.len = None;
        self.len = Some(udp.recv(&mut self.buf).await?);
        Ok(())
    }

    /// Takes one more if it is there at once; false if none was.
    pub fn try_recv(&mut self, udp: &UdpSocket) -> bool {
        self.len = udp.try_recv(&mut self.buf).ok();
        self.len.is_some()
    }

    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.len.map(|n| &self.buf[..n]).into_iter()
    }
}

/// Sends each message at once.
pub struct Sender;

impl Sender {
    pub fn new(_udp: &UdpSocket) -> io::Result<Sender> {
        Ok(Sender)
    }

    pub async fn push(&mut self, udp: &UdpSocket, msg: &[u8]) -> io::Result<()> {
        udp.send(msg).await.map(|_| ())
    }

    pub async fn flush(&mut self, _udp: &UdpSocket) -> io::Result<()> {
        Ok(())
    }
}
