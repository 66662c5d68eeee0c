//! Dockroute's tunnel engine.
//!
//! - `proto`: the wire protocol as a sans-IO state machine (no sockets, no clock).
//! - `secret`: the shared secret file.
//! - `platform`: everything that touches the OS network stack (TUN, routes), one file per OS.
//! - `driver`: the tokio loop that connects `proto` to a TUN device and a UDP socket.
//! - `transport`: the TCP fallback path (framing, relays, when the guest switches paths).

pub mod driver;
pub mod platform;
pub mod proto;
pub mod secret;
pub mod transport;
