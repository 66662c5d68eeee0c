//! Dockroute's privileged helper as a library: the daemon behind `dockroute-helper run`, and
//! install/uninstall. The API it serves (types, framing, client) is the `dockroute-api` crate.
//!
//! - `server`: the Unix socket, authorisation, version negotiation.
//! - `authz`: who may connect (root, allowed groups); `codesign`: on macOS, the caller's
//!   code signature too, if the config requires one.
//! - `daemon`: the state owner: tunnel, routes, config reload, pushed events.
//! - `install`: launchd / systemd service install and uninstall.

pub mod authz;
pub mod codesign;
pub mod config_watch;
pub mod daemon;
pub mod install;
pub mod run;
pub mod server;
