//! What makes the guest look at the VM's firewall, instead of spawning iptables every second:
//! the controller's files changing (`ConfigDirWatch`: the rules, or its "check now" poke after
//! Docker events) and the ruleset changing (`RulesetChanges`: nftables' notifications). Linux
//! has both (`linux.rs`); elsewhere (the workspace's macOS type-check) neither exists and the
//! agent's timer does the work.

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;
#[cfg(not(target_os = "linux"))]
#[path = "other.rs"]
mod imp;

pub use imp::{ConfigDirWatch, RulesetChanges};
