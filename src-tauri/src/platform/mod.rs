//! What differs between macOS and Linux, behind one narrow surface: launch at login, installing
//! the helper (and, on macOS, the user's approval of it), the tray icon's colour, and hiding
//! from the Dock. One file per platform.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "linux")]
pub use linux::*;
#[cfg(target_os = "macos")]
pub use macos::*;

pub use crate::smappservice::Approval;

/// Launch at login, as the OS keeps it.
pub trait LoginItem: Send + Sync {
    fn is_enabled(&self) -> Result<bool, String>;
    fn set_enabled(&self, on: bool) -> Result<(), String>;
}

/// The helper as a system service. The calls block (a password dialog, a call into launchd):
/// callers keep them off the async workers.
pub trait HelperInstall: Send + Sync {
    /// Installs (Linux) or registers (macOS) the helper.
    fn install(&self) -> Result<Installed, String>;
    /// Whether the OS waits for the user to allow the helper. Linux never does.
    fn approval(&self) -> Approval;
    /// Opens the OS's settings where the user allows the helper (macOS: Login Items).
    fn open_approval_settings(&self) -> Result<(), String>;
}

/// What `HelperInstall::install` achieved; the text is for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    /// The helper runs: connecting follows.
    Running(String),
    /// Registered, but the user has to allow it first (System Settings is open).
    AwaitingApproval(String),
}
