//! Dockroute's controller, the part of the app that needs no window: finds the Docker engine
//! the way the docker CLI does (`endpoint`), turns its bridge networks into routes
//! (`discovery`), keeps the guest container right (`guest`), and drives the helper through its
//! API (`controller`). The menu-bar app and `dockroute --headless` both run it.
//!
//! A crate of its own, not modules of `src-tauri/`: it builds and tests without Tauri's
//! dependencies (webkit and friends), and the headless binary does not link them.

pub mod controller;
pub mod discovery;
pub mod endpoint;
pub mod guest;

pub use controller::{Controller, Options};
