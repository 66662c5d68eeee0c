//! macOS: which way the helper gets in, and what to do when the one in use goes wrong. Plain
//! logic over what `platform/macos.rs` gathers (SMAppService's status, whether
//! `dockroute-helper install`'s plist is there, what `launchctl print` says, the version the
//! running helper answered with); compiled and tested on every OS.
//!
//! Two ways in, one launchd label (`dockroute_api::launchd`):
//! - SMAppService registers the plist inside the bundle; the user allows it in Login Items.
//!   macOS refuses it for an ad-hoc signed app (a code-signing failure at `register`, or
//!   launchd's "spawn failed" / `last exit code = 78: EX_CONFIG` from a launch-constraint
//!   violation once it is enabled).
//! - The administrator's password: `dockroute-helper install --app-bundle <the app>` run through
//!   macOS's own prompt (`osascript … with administrator privileges`). It copies the helper to
//!   /Library/PrivilegedHelperTools and boots out an SMAppService registration holding the label.
//!
//! The plist in /Library/LaunchDaemons decides which one is in use: while it is there, the app
//! updates the helper that way and drops its own SMAppService registration, so the two never
//! run side by side (the helper's `install` does the same from its side).

use std::path::Path;

use dockroute_api::launchd::Job;

use crate::smappservice::Status;

/// What the app knows about the helper's installation.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// SMAppService's status of the bundle's daemon.
    pub sm: Status,
    /// `dockroute-helper install`'s plist is in /Library/LaunchDaemons.
    pub daemon_plist: bool,
    /// `launchctl print system/dev.dockroute.helper`, if launchd knows the label.
    pub job: Option<&'a Job>,
    /// The version the running helper answered with, if it answered.
    pub helper_version: Option<&'a str>,
}

/// What the dashboard says about the helper besides what the controller sees (it sees only a
/// socket nobody answers on): one of the view's inputs.
pub use dockroute_controller::view::derive::HelperNote as Note;

/// Which way the Install button takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    SmAppService,
    /// The administrator's password: the way already in use, or the only one left.
    Password,
}

pub fn install_way(seen: &Seen) -> Way {
    if seen.daemon_plist {
        Way::Password
    } else {
        Way::SmAppService
    }
}

/// What to do about the helper, besides what the controller already shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advice {
    /// Nothing to do from here.
    Nothing,
    /// Registered through SMAppService and allowed: connect.
    Ready,
    /// Registered through SMAppService, waiting for the user's switch in Login Items.
    Pending,
    /// SMAppService has it enabled, but launchd will not start it: the password way is left.
    Refused(String),
    /// The SMAppService helper answering is older than the app: unregister and register again
    /// (once per helper version).
    Reregister { helper: String },
    /// The password-installed helper is older than the app: install it again (a prompt).
    Update { helper: String },
    /// `dockroute-helper install` replaced the app's SMAppService registration: unregister it.
    DropRegistration,
}

/// `reregistered`: the helper version the app already re-registered for in this run.
pub fn advise(seen: &Seen, app_version: &str, reregistered: Option<&str>) -> Advice {
    let registered = matches!(seen.sm, Status::Enabled | Status::RequiresApproval);
    let outdated = seen.helper_version.filter(|h| older(h, app_version));
    if seen.daemon_plist {
        return match (registered, outdated) {
            (true, _) => Advice::DropRegistration,
            (false, Some(helper)) => Advice::Update { helper: helper.into() },
            (false, None) => Advice::Nothing,
        };
    }
    match seen.sm {
        Status::Enabled => {
            if seen.helper_version.is_none() {
                if let Some(why) = seen.job.and_then(Job::refusal) {
                    return Advice::Refused(why);
                }
            }
            match outdated {
                Some(helper) if reregistered != Some(helper) => Advice::Reregister { helper: helper.into() },
                _ => Advice::Ready,
            }
        }
        Status::RequiresApproval => Advice::Pending,
        Status::NotRegistered | Status::NotFound | Status::Unknown(_) => Advice::Nothing,
    }
}

/// Right after SMAppService enabled the helper: has launchd started it, refused it, or not yet
/// decided (ask again, a bounded number of times)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Running,
    Refused(String),
    NotYet,
}

pub fn started(job: Option<&Job>) -> Started {
    match job {
        Some(job) if job.running() => Started::Running,
        Some(job) => job.refusal().map_or(Started::NotYet, Started::Refused),
        None => Started::NotYet,
    }
}

/// Whether version `a` is older than `b` (dotted numbers; a pre-release or build suffix of a
/// part is ignored). Anything unreadable is not older: no action on a guess.
pub fn older(a: &str, b: &str) -> bool {
    fn parts(v: &str) -> Option<Vec<u64>> {
        v.trim().trim_start_matches('v').split('.').map(|p| p.split(['-', '+']).next()?.parse().ok()).collect()
    }
    match (parts(a), parts(b)) {
        (Some(a), Some(b)) => a < b,
        _ => false,
    }
}

/// The AppleScript that runs `helper install --app-bundle bundle` as root after macOS's own
/// administrator prompt (`do shell script … with administrator privileges`). Each path is one
/// shell word in single quotes, and the whole command one AppleScript string.
pub fn admin_script(helper: &Path, bundle: &Path) -> String {
    let word = |p: &Path| format!("'{}'", p.to_string_lossy().replace('\'', r"'\''"));
    let command = format!("{} install --app-bundle {}", word(helper), word(bundle));
    let applescript = |s: &str| s.replace('\\', r"\\").replace('"', r#"\""#);
    format!(
        "do shell script \"{}\" with prompt \"{}\" with administrator privileges",
        applescript(&command),
        applescript(PROMPT)
    )
}

/// What macOS's password dialog says above the fields.
pub const PROMPT: &str =
    "Dockroute installs its helper, the small system service that creates the tunnel and the routes.";

/// How `osascript` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordError {
    /// The user pressed Cancel: AppleScript error -128 "User canceled." (Apple's AppleScript
    /// Language Guide, "Error Numbers and Error Messages").
    Cancelled,
    /// The command failed: its message, as osascript prints it.
    Failed(String),
}

/// Judges osascript's exit and stderr: `0:179: execution error: <message> (<number>)`, where the
/// number is AppleScript's error (-128: cancelled) or the shell command's exit status.
pub fn password_outcome(success: bool, stderr: &str) -> Result<(), PasswordError> {
    if success {
        return Ok(());
    }
    let text = stderr.trim();
    if text.ends_with("(-128)") {
        return Err(PasswordError::Cancelled);
    }
    let message = text.split_once("execution error: ").map_or(text, |(_, m)| m);
    // Drop the trailing " (N)": the message is what the helper printed.
    let message = match message.rsplit_once(" (") {
        Some((m, n)) if n.trim_end_matches(')').parse::<i64>().is_ok() => m,
        _ => message,
    };
    Err(PasswordError::Failed(message.trim().to_string()))
}

#[cfg(test)]
#[path = "helper_way_tests.rs"]
mod tests;
