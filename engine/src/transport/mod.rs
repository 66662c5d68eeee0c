//! The TCP fallback path. The protocol core stays as it is: it sees datagrams from addresses.
//! A TCP connection carries the same messages as length-prefixed frames (`frame`), and each
//! end relays between its stream and a loopback UDP socket of its own, so to the core a TCP
//! peer is one more UDP address and the driver's loops are untouched:
//!
//! ```text
//! guest core ⇄ udp 127.0.0.1 ⇄ relay (connector) ⇄ TCP ⇄ relay (listener) ⇄ udp ⇄ host core
//! ```
//!
//! - `frame`: the framing (sans-IO).
//! - `relay`: the two directions both ends relay (frames → datagrams, datagrams → frames).
//! - `batch`: the relays' loopback UDP socket, many datagrams per call where the OS allows.
//! - `policy`: when the guest moves between UDP and TCP (sans-IO).
//! - `admission`: which connections the helper keeps (sans-IO).
//! - `listener`: the helper's end (TCP on the same address and port as UDP).
//! - `connector`: the guest's end.
//! - `probe`: the guest's UDP probe while it is on TCP.

pub mod admission;
mod batch;
pub mod connector;
pub mod frame;
pub mod listener;
pub mod policy;
pub mod probe;
pub mod relay;

pub use connector::Connector;
pub use listener::TcpListener;
pub use policy::{Action, PathPolicy};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where a relay reaches a UDP socket bound to `bound`: an unspecified address means "this
/// host", i.e. loopback of the same family.
pub fn reachable(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_bind_is_reached_over_loopback() {
        assert_eq!(reachable("0.0.0.0:7".parse().unwrap()), "127.0.0.1:7".parse().unwrap());
        assert_eq!(reachable("[::]:7".parse().unwrap()), "[::1]:7".parse().unwrap());
        assert_eq!(reachable("198.18.0.1:2511".parse().unwrap()), "198.18.0.1:2511".parse().unwrap());
    }
}
