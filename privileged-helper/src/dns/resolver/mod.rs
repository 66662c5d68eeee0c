//! Pointing the host's resolver at our DNS server for our zones, and nothing else: on macOS a
//! file per zone in /etc/resolver (`macos.rs`, around the portable `files.rs`); on Linux
//! systemd-resolved's per-link DNS and routing domains through `resolvectl` (`linux.rs`).
//! One small trait; the platform's implementation is chosen here, once.

pub mod files;
#[cfg(target_os = "linux")]
pub mod linux;
#[cfg(target_os = "macos")]
pub mod macos;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

/// What `apply` set up, for the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// What the host's resolver now does for our zones, or what the user has to add.
    pub description: String,
    pub problems: Vec<String>,
}

pub trait HostResolver: Send {
    /// Sends queries for `zones` (and below) to `server`, reached through `ifname`. Called
    /// again whenever the zones change.
    fn apply(&mut self, server: IpAddr, ifname: &str, zones: &BTreeSet<String>) -> Applied;
    /// Undoes everything `apply` did; returns what could not be undone.
    fn revert(&mut self) -> Vec<String>;
}

/// This OS's resolver; `config` is the helper's config file (macOS keeps its record beside it).
#[cfg(target_os = "linux")]
pub fn system(_config: &Path) -> Box<dyn HostResolver> {
    Box::new(linux::Resolvectl::default())
}

#[cfg(target_os = "macos")]
pub fn system(config: &Path) -> Box<dyn HostResolver> {
    Box::new(macos::ResolverFiles::new(config))
}
