//! The VM's firewall, as the guest agent needs it: traffic from the Mac arrives on the TUN device
//! and must reach containers through Docker's own rules.
//!
//! The decisions are cores without I/O, each with its tests: `plan` (the spec → the rules of our
//! chains), `save` (reading `*-save` output), `script` (state + plan → a `*-restore` script, and
//! teardown's), `backend` (legacy or nft, per family). This file is the driver: it runs the tools
//! and carries the decisions out.
//!
//! Why it looks like this:
//! - Engine 28 drops `-d <ctr> ! -i br-x` in raw PREROUTING, before any filter rule: our ACCEPT
//!   must be first there. `--internal` networks have no route back: MASQUERADE to the bridge.
//! - dockerd rebuilds its chains on restart: everything of ours lives in our own chains (teardown
//!   removes exactly that), and `ensure()` puts the jumps back at position 1.
//! - State is read with `*-save` without `-t`: it lists only the tables that exist, whereas
//!   `-S`/`-t <table>` on iptables-legacy instantiates the table as a side effect.
//! - Changes go through `*-restore --noflush`: one transaction per table, so a chain is never
//!   seen half-filled, and a concurrent change makes the restore fail (we then re-read and retry
//!   once).

mod backend;
mod plan;
mod save;
mod script;

#[cfg(test)]
mod fixtures;

use std::time::Duration;

use dockroute_stdx::process::Cmd;

pub use backend::Backend;
pub use plan::{Family, FirewallSpec, SpecError, CHAIN_FWD, CHAIN_POST, CHAIN_PRE};

/// The `*-save` reader and the decisions made from what it read, for the fuzz target
/// (`guest-image/fuzz`); not an API.
#[doc(hidden)]
pub mod fuzz_api {
    pub use super::backend::{choose, Probe};
    pub use super::plan::{plan, OUR_CHAINS};
    pub use super::save::{targets, Ruleset};
    pub use super::script::{sync_script, tables_to_drop, teardown_script};
}

use backend::{tool, Probe, Reason};
use plan::Plan;
use save::Ruleset;

/// Longer than `*-restore --wait=5` may wait for the xtables lock plus its own work on a large
/// ruleset; short enough that a hung tool does not stall the agent's loop for long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// Arguments of every restore: wait for the xtables lock, and change only what the script names.
const RESTORE_ARGS: [&str; 2] = ["--wait=5", "--noflush"];

/// A restore that failed because someone changed the rules between our read and our write is
/// tried once more on a fresh read.
const RESTORE_TRIES: usize = 2;

/// Runs a program and returns its stdout; Err says which command failed and why.
pub trait Runner {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String>;

    /// Runs with `input` on stdin (for `*-restore`). The default writes a temporary file and
    /// passes it as the last argument (iptables-restore reads a file argument the same way).
    fn run_input(&mut self, program: &str, args: &[&str], input: &str) -> Result<String, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "dockroute-fw-{}-{}.rules",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, input).map_err(|e| format!("{}: {e}", path.display()))?;
        let p = path.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.push(&p);
        let r = self.run(program, &all);
        let _ = std::fs::remove_file(&path);
        r
    }
}

/// Runs commands for real (bounded, `LC_ALL=C`), in the current network namespace or (tests)
/// through `ip netns exec NS`.
#[derive(Debug, Clone, Default)]
pub struct SystemRunner {
    pub netns: Option<String>,
}

impl SystemRunner {
    pub fn command(&self, program: &str, args: &[&str]) -> Cmd {
        let cmd = match &self.netns {
            Some(ns) => Cmd::new("ip").args(["netns", "exec", ns.as_str(), program]),
            None => Cmd::new(program),
        };
        cmd.args(args.iter().copied()).timeout(COMMAND_TIMEOUT)
    }
}

impl Runner for SystemRunner {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String, String> {
        self.command(program, args).run().map_err(|e| e.to_string())
    }

    fn run_input(&mut self, program: &str, args: &[&str], input: &str) -> Result<String, String> {
        self.command(program, args).stdin(input).run().map_err(|e| e.to_string())
    }
}

/// Our chains in the VM's iptables (both families, on the backend Docker uses): applies a spec,
/// repairs what others changed, removes exactly what is ours.
pub struct Iptables<R: Runner> {
    runner: R,
    v4: Backend,
    v6: Backend,
    plans: Vec<Plan>,
    /// nft tables that existed before we touched anything: the only empty ones teardown keeps.
    nft_tables_before: Vec<(Family, String)>,
}

impl<R: Runner> Iptables<R> {
    /// Chooses, per family, the backend that holds Docker's `DOCKER-USER` (see `backend`).
    /// Reads only; changes nothing.
    pub fn detect(mut runner: R) -> Result<Iptables<R>, String> {
        let probes = Family::BOTH.map(|f| probe(&mut runner, f));
        let choices = backend::choose_both(&probes[0], &probes[1])?;
        for (f, c) in Family::BOTH.into_iter().zip(choices) {
            match c.reason {
                Reason::NoDockerUser => tracing::warn!(
                    family = ?f,
                    backend = ?c.backend,
                    "no DOCKER-USER chain in either backend; using {}'s default",
                    backend::base_tool(f)
                ),
                Reason::Ipv6Unusable => {
                    tracing::debug!("ip6tables unusable; IPv6 rules will fail if asked for");
                    continue;
                }
                _ => {}
            }
            tracing::info!(family = ?f, backend = ?c.backend, reason = ?c.reason, "firewall backend chosen");
        }
        let nft_saves = probes.map(|p| p.nft_save);
        Ok(Self::new(runner, choices[0].backend, choices[1].backend, nft_saves))
    }

    /// Skips detection (tests, or an operator's override).
    pub fn with_backends(mut runner: R, v4: Backend, v6: Backend) -> Self {
        let nft_saves = Family::BOTH.map(|f| runner.run(&tool(f, Backend::Nft, "-save"), &[]).ok());
        Self::new(runner, v4, v6, nft_saves)
    }

    fn new(runner: R, v4: Backend, v6: Backend, nft_saves: [Option<String>; 2]) -> Self {
        let mut nft_tables_before = Vec::new();
        for (f, out) in Family::BOTH.into_iter().zip(nft_saves) {
            let tables = out.map(|o| Ruleset::parse(&o).tables).unwrap_or_default();
            nft_tables_before.extend(tables.into_iter().map(|t| (f, t.name)));
        }
        Iptables { runner, v4, v6, plans: Vec::new(), nft_tables_before }
    }

    pub fn backend(&self, f: Family) -> Backend {
        match f {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    /// Idempotent: creates our chains if missing, replaces their contents with exactly the rules
    /// for `spec` (a chain already equal is left alone: its counters survive), and makes sure each
    /// jump exists exactly once, at position 1. A family `spec` no longer uses is torn down.
    pub fn apply(&mut self, spec: &FirewallSpec) -> Result<(), String> {
        let plans = plan::plan(spec).map_err(|e| e.to_string())?;
        for f in Family::BOTH {
            if self.plans.iter().any(|p| p.family == f) && !plans.iter().any(|p| p.family == f) {
                self.teardown_backend(f, self.backend(f))?;
            }
        }
        self.plans = plans;
        self.sync().map(|_| ())
    }

    /// Repairs what dockerd's restart (or anyone) changed: jumps gone or no longer first, chains
    /// gone or altered. One `*-save` per family when nothing is wrong. True if it repaired.
    pub fn ensure(&mut self) -> Result<bool, String> {
        self.sync()
    }

    /// Removes our jumps and chains, nothing else, from both backends and both families (so that
    /// leftovers from an earlier run on another backend go too). Idempotent.
    pub fn teardown(&mut self) -> Result<(), String> {
        self.plans.clear();
        let mut errs = Vec::new();
        for f in Family::BOTH {
            for b in Backend::BOTH {
                if let Err(e) = self.teardown_backend(f, b) {
                    errs.push(e);
                }
            }
        }
        self.drop_tables_we_created();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    fn save(&mut self, f: Family, b: Backend) -> Result<Ruleset, String> {
        self.runner.run(&tool(f, b, "-save"), &[]).map(|s| Ruleset::parse(&s))
    }

    /// Builds a restore script from the current state and runs it; see `RESTORE_TRIES`.
    fn transact(&mut self, f: Family, b: Backend, script: impl Fn(&Ruleset) -> String) -> Result<bool, String> {
        let mut last = String::new();
        for _ in 0..RESTORE_TRIES {
            let s = script(&self.save(f, b)?);
            if s.is_empty() {
                return Ok(false);
            }
            tracing::debug!(family = ?f, backend = ?b, script = %s, "restore");
            match self.runner.run_input(&tool(f, b, "-restore"), &RESTORE_ARGS, &s) {
                Ok(_) => return Ok(true),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn sync(&mut self) -> Result<bool, String> {
        let mut changed = false;
        for plan in self.plans.clone() {
            let b = self.backend(plan.family);
            if self.transact(plan.family, b, |now| script::sync_script(now, &plan))? {
                tracing::info!(family = ?plan.family, backend = ?b, "firewall rules (re)installed");
                changed = true;
            }
        }
        Ok(changed)
    }

    fn drop_tables_we_created(&mut self) {
        for f in Family::BOTH {
            let Ok(now) = self.save(f, Backend::Nft) else { continue };
            let before: Vec<String> =
                self.nft_tables_before.iter().filter(|(ff, _)| *ff == f).map(|(_, n)| n.clone()).collect();
            let family = match f {
                Family::V4 => "ip",
                Family::V6 => "ip6",
            };
            for name in script::tables_to_drop(&now, &before) {
                if let Err(e) = self.runner.run("nft", &["delete", "table", family, name]) {
                    tracing::debug!("could not remove the empty {family} table {name} we created: {e}");
                }
            }
        }
    }

    fn teardown_backend(&mut self, f: Family, b: Backend) -> Result<(), String> {
        // A backend whose save tool does not run cannot hold rules of ours.
        if self.runner.run(&tool(f, b, "-save"), &[]).is_err() {
            return Ok(());
        }
        self.transact(f, b, script::teardown_script).map(|_| ())
    }
}

/// What `backend::choose` needs of one family: both saves and the plain tool's version.
fn probe<R: Runner>(r: &mut R, f: Family) -> Probe {
    Probe {
        legacy_save: r.run(&tool(f, Backend::Legacy, "-save"), &[]).ok(),
        nft_save: r.run(&tool(f, Backend::Nft, "-save"), &[]).ok(),
        version: r.run(backend::base_tool(f), &["--version"]).ok(),
    }
}

#[cfg(test)]
mod tests;
