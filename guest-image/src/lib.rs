//! The guest agent as a library: what `dockroute-guest` runs, and what the tests drive.
//!
//! - `agent`: connect, configure the TUN from the session, forward, clean up (its command line
//!   is `dockroute_api::GuestArgs`, shared with the controller that renders it).
//! - `firewall`: our chains in the VM's iptables (legacy or nft, as Docker uses): decision
//!   cores (plan, save parsing, restore scripts, backend choice) and the driver that runs them.
//! - `rules`: the rules file the controller writes (internal networks, subnet pairs), and
//!   resolving pairs to the VM's bridges.
//! - `path`: UDP or the TCP fallback, as the engine's `PathPolicy` decides; `netdev` reads the
//!   tunnel device's packet counts it checks for traffic.
//! - `recheck` (when to look at the firewall: on change, plus a slow safety net) and `watch`
//!   (the change notifications: the controller's files, the nftables ruleset).
//! - `keeper`: `FirewallKeeper` applies `firewall` with `rules` as the session, the file and
//!   the VM's networks change.

pub mod agent;
pub mod firewall;
pub mod keeper;
pub mod netdev;
pub mod path;
pub mod recheck;
pub mod rules;
pub mod watch;
