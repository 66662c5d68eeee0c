//! The guest agent as a library: what `dockroute-guest` runs, and what the tests drive.
//!
//! - `agent`: connect, configure the TUN from the session, forward, clean up.
//! - `firewall`: the VM's iptables rules (our own chains; legacy or nft, as Docker uses).
//! - `rules`: the rules file the controller writes (internal networks, subnet pairs).
//! - `keeper`: applies `firewall` with `rules` as the session and the file change.

pub mod agent;
pub mod firewall;
pub mod rules;
pub mod keeper;
