//! What differs between macOS and Linux, behind one narrow surface: launch at login, installing
//! the helper (and, on macOS, the user's approval of it, the other way in, and updates), the
//! tray icon's colour, and hiding from the Dock. One file per platform.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "macos")]
pub use macos::*;

pub use crate::helper_way::Note;

/// Launch at login, as the OS keeps it.
pub trait LoginItem: Send + Sync {
    fn is_enabled(&self) -> Result<bool, String>;
    fn set_enabled(&self, on: bool) -> Result<(), String>;
}

/// The helper as a system service. The calls block (a password dialog, a call into launchd):
/// callers keep them off the async workers.
pub trait HelperInstall: Send + Sync {
    /// Installs (Linux) or registers (macOS) the helper, the way already in use.
    fn install(&self) -> Result<Installed, String>;
    /// The other way in: install it with an administrator's password, through the OS's own
    /// prompt (macOS: `dockroute-helper install` when SMAppService refuses; Linux: as `install`).
    fn install_with_password(&self) -> Result<Installed, String>;
    /// How the installed helper stands, given the version the running helper answered with (if
    /// it did); does what needs nobody's say (macOS: re-registers an outdated helper, drops a
    /// registration the other way in replaced). Linux has nothing to say.
    fn check(&self, helper_version: Option<&str>) -> Checked;
    /// Opens the OS's settings where the user allows the helper (macOS: Login Items).
    fn open_approval_settings(&self) -> Result<(), String>;
}

/// What `HelperInstall::check` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// What the dashboard must say about the helper, besides what the controller sees.
    pub note: Option<Note>,
    /// The OS lets the helper run now: connect without waiting for the next retry.
    pub ready: bool,
}

/// What `HelperInstall::install` achieved; the text is for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The helper runs: connecting follows.
    Running(String),
    /// Registered, but the user has to allow it first in `settings` (now open).
    AwaitingApproval { message: String, settings: String },
    /// The OS refused this way in; the administrator's password is the other (the reason).
    NeedsPassword(String),
}
