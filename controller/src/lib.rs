//! Dockroute's controller, the part of the app that needs no window: finds the Docker engine
//! the way the docker CLI does and connects to it (`endpoint`), turns its bridge networks into
//! routes (`discovery`), keeps the guest container right (`guest`; its image for the engine's
//! CPU: `guest_image`), and drives the helper through its API (`controller`). The menu-bar app
//! and its `--headless` mode both run it through `service`. `share` is what the dashboard's
//! Share section asks the helper (teammates over WireGuard, exposed networks).
//!
//! Decisions are cores without I/O, each with its own tests: when to repair the tunnel
//! (`repair`), what to send the helper and the guest again (`sync_policy`), when the guest may
//! sleep (`idle`), which Docker events matter and when to subscribe again (`docker_events`),
//! what the user sees (`view`, derived whole by `view::derive`), which DNS names the containers
//! have (`names`). Two modules hold a pure decision beside the I/O that carries it out:
//! `guest_image` (`pick_tarball` and `judge` decide which tarball suits the engine's CPU;
//! `ensure` lists and loads it) and `teardown` (`Report::into_result` decides whether anything
//! may be left; `run` and `detached` remove the guest and withdraw the routes).
//! `controller` is the thin loop that feeds the cores and carries their decisions out;
//! `helper_link` holds the helper connection.
//!
//! A crate of its own, not modules of `src-tauri/`: it builds and tests without Tauri's
//! dependencies (webkit and friends). The headless mode is the same Tauri binary with
//! `--headless` (no window, no tray), so that binary does link them.

pub mod ca_trust;
pub mod ca_volume;
pub mod controller;
pub mod discovery;
pub mod dns_view;
pub mod docker_events;
pub mod endpoint;
pub mod engines;
pub mod guest;
pub mod guest_image;
pub mod helper_link;
pub mod https_view;
pub mod idle;
pub mod names;
pub mod options;
pub mod repair;
pub mod service;
pub mod share;
pub mod sync_policy;
pub mod teardown;
pub mod view;

pub use controller::{Controller, Exit, Followed, ViewChannels};
pub use options::{validate_pairs, Options};
pub use service::{Choices, Service};

/// A fresh tunnel secret: 32 random bytes as 64 hex characters (what the helper and the guest
/// read from their secret files).
pub fn new_secret() -> anyhow::Result<Vec<u8>> {
    Ok(dockroute_api::Secret::generate()?.expose().to_vec())
}
