//! Container names from the host: a small authoritative DNS server on the tunnel's link
//! address, and the host's resolver pointed at it for our zones only.
//!
//! - `names`: the `set_names` operation's argument, checked and bounded (pure).
//! - `table`: the names as the server looks them up: zones, wildcards, parents (pure).
//! - `answer`: one query in, one reply out, on hickory-proto's message types (sans-IO).
//! - `server`: the tokio driver: UDP and TCP on port 53, counters.
//! - `resolver`: what the host's resolver is told: `/etc/resolver/<zone>` files on macOS,
//!   `resolvectl` on Linux when systemd-resolved runs (one small trait, one file per OS).
//! - `service`: the four together, started with the tunnel and stopped with it.
//!
//! The helper never reads Docker: the controller sends the names.

pub mod answer;
pub mod names;
pub mod resolver;
pub mod server;
pub mod service;
pub mod table;

pub use names::NameSpec;
pub use service::DnsService;
