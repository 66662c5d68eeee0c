//! Dockroute's privileged helper as a library: the API types and client the app uses, and the
//! daemon behind `dockroute-helper run`.
//!
//! - `api`: request/response/event types, shared by both sides of the socket.
//! - `client`: async client for the app and the `status` subcommand.
//! - `codec`: length-prefixed frames that survive an oversized one.
//! - `server`: the Unix socket, authorisation, version negotiation.
//! - `authz`: who may connect (root, allowed groups); `codesign`: on macOS, the caller's
//!   code signature too, if the config requires one.
//! - `daemon`: the state owner: tunnel, routes, config reload, pushed events.
//! - `install`: launchd / systemd service install and uninstall.

pub mod api;
pub mod authz;
pub mod client;
pub mod codec;
pub mod codesign;
pub mod config_watch;
pub mod daemon;
pub mod install;
pub mod run;
pub mod server;
