//! Dockroute's privileged helper as a library: the daemon behind `dockroute-helper run`, and
//! install/uninstall. The API it serves (types, framing, client) is the `dockroute-api` crate.
//!
//! - `server`: the Unix socket, authorisation, version negotiation.
//! - `authz`: who may connect (root, allowed groups); `codesign`: on macOS, the caller's
//!   code signature too, if the config requires one.
//! - `daemon`: the state owner, a thin loop around its cores (`ops`: what each API operation
//!   does; `route_policy`: which routes to install; `config_reload`: when a re-read config
//!   applies) and `tunnel` (TUN, UDP, engine task).
//! - `install`: service install and uninstall, one flow; `systemd.rs` / `launchd.rs` per OS.
//! - `config`: the config file (mac-docker-connector's format and keys, plus ours); the engine
//!   gets only the tunnel's parameters from it (`HostConfig`, `TunSpec`, `DriverConfig`).
//! - `default_config`: the config written by install, or by `run` when there is none.
//! - `link`: the tunnel's IPv4 link (`Link {host, guest}`) and the guest-address rule.
//! - `log_file`: the log file a service manager hands the helper is made root's alone.
//! - `dns`: container names: the authoritative DNS server on the link address and the host
//!   resolver's pointer to it.
//! - `share`: teammates over WireGuard (`expose`, `route … expose`, `token`).

pub mod authz;
pub mod codesign;
pub mod config;
pub mod config_watch;
pub mod daemon;
pub mod default_config;
pub mod dns;
pub mod https;
pub mod install;
pub mod link;
pub mod log_file;
pub mod run;
pub mod server;
pub mod share;
