//! HTTPS for container names: a local CA that can sign nothing but our names, and a TLS front
//! on port 443 of the link address that hands each connection to its container's web port.
//!
//! - `ca`: the CA (made on first use, name-constrained), its files, and what it may sign.
//! - `leaf`: which leaf to serve and when to renew it (sans-IO).
//! - `route`: which container and port a name goes to (pure).
//! - `limits`: what anyone who reaches the front may spend: connections per source, leaves for
//!   made-up names (pure).
//! - `front`: the tokio driver: TLS with leaves by SNI, then a byte splice to the container.
//! - `intercept`: this machine's connections to port 443 of a served container, sent to the
//!   front by the OS's packet filter (nftables on Linux, a pf anchor on macOS).
//! - `trust`: `ca trust` / `ca untrust`: the steps per trust store, and the record of where.
//! - `cli`: `dockroute-helper ca show|path|trust|untrust`.
//! - `service`: the CA and the front, started and stopped with the tunnel by the daemon.
//! - `app_trust`: `ca_trust` / `ca_untrust` / `ca_trusted` from the API (the app's buttons).

pub mod app_trust;
pub mod ca;
pub mod cli;
pub mod front;
pub mod intercept;
pub mod leaf;
pub mod limits;
pub mod route;
pub mod service;
pub mod trust;

/// The TLS crypto: ring, which the workspace already builds (boringtun uses it); aws-lc-rs
/// would add a C/CMake build to every target, the macOS type-check included. rustls 0.23.48
/// marks ring's provider deprecated for lacking post-quantum key exchange: acceptable for a
/// front whose clients are on this machine. The one place that says so.
#[allow(deprecated)]
pub fn crypto() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
