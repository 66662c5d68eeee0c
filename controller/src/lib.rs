//! Dockroute's controller, the part of the app that needs no window: finds the Docker engine
//! the way the docker CLI does (`endpoint`), turns its bridge networks into routes
//! (`discovery`), keeps the guest container right (`guest`; its image for the engine's CPU:
//! `guest_image`), and drives the helper through its API (`controller`). The menu-bar app and
//! `dockroute --headless` both run it through `service`. `share` is what the dashboard's Share
//! section asks the helper (teammates over WireGuard, exposed networks).
//!
//! Decisions are cores without I/O, each with its own tests: when to repair the tunnel
//! (`repair`), when the guest may sleep (`idle`), which Docker events matter and when to subscribe again (`docker_link`), what the
//! user sees (`view`), whether a teardown is complete (`teardown`), which guest tarball suits
//! the engine's CPU (`guest_image`), which DNS names the containers have (`names`).
//! `controller` is the thin loop that feeds them and carries their decisions out;
//! `helper_link` and `docker_link` hold the connections.
//!
//! A crate of its own, not modules of `src-tauri/`: it builds and tests without Tauri's
//! dependencies (webkit and friends), and the headless binary does not link them.

pub mod controller;
pub mod discovery;
pub mod dns_view;
pub mod docker_link;
pub mod endpoint;
pub mod guest;
pub mod guest_image;
pub mod helper_link;
pub mod idle;
pub mod names;
pub mod options;
pub mod repair;
pub mod service;
pub mod share;
pub mod sync_policy;
pub mod teardown;
pub mod view;

pub use controller::{Controller, Exit, ViewChannels};
pub use options::{validate_pairs, Options};
pub use service::{Choices, Service};

/// A fresh tunnel secret: 32 random bytes as 64 hex characters (what the helper and the guest
/// read from their secret files).
pub fn new_secret() -> anyhow::Result<Vec<u8>> {
    Ok(dockroute_api::Secret::generate()?.expose().to_vec())
}
