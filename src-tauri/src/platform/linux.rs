//! Linux: an XDG autostart entry (through tauri-plugin-autostart), the helper installed with
//! pkexec, a light tray icon for the usual dark panels.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dockroute_stdx::process::{Cmd, Failure};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt;

use super::{Checked, HelperInstall, Installed, LoginItem};

/// Panels (GNOME, KDE, XFCE defaults) are dark; the icon is not a template here.
pub const TRAY_RGB: [u8; 3] = [0xf2, 0xf2, 0xf2];
pub const TRAY_IS_TEMPLATE: bool = false;

pub fn add_plugins<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    // The autostart entry passes no arguments: the app starts in the tray, as always.
    builder.plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None))
}

pub fn login_item<R: Runtime>(app: &AppHandle<R>) -> Box<dyn LoginItem> {
    Box::new(XdgAutostart { app: app.clone() })
}

struct XdgAutostart<R: Runtime> {
    app: AppHandle<R>,
}

impl<R: Runtime> LoginItem for XdgAutostart<R> {
    fn is_enabled(&self) -> Result<bool, String> {
        self.app.autolaunch().is_enabled().map_err(|e| format!("cannot read the autostart entry: {e}"))
    }

    fn set_enabled(&self, on: bool) -> Result<(), String> {
        let manager = self.app.autolaunch();
        let done = if on { manager.enable() } else { manager.disable() };
        done.map_err(|e| format!("cannot change the autostart entry: {e}"))
    }
}

/// Nothing to do: Linux apps without a window list entry need no activation policy.
pub fn become_menu_bar_app<R: Runtime>(_app: &mut tauri::App<R>) {}

/// A human types a password in pkexec's dialog: give them time, but not for ever.
const PASSWORD_TIME: Duration = Duration::from_secs(5 * 60);

pub fn helper_install() -> Box<dyn HelperInstall> {
    Box::new(Pkexec)
}

/// `pkexec dockroute-helper install`: a systemd service, no approval step.
struct Pkexec;

impl HelperInstall for Pkexec {
    fn install(&self) -> Result<Installed, String> {
        install_helper().map(Installed::Running)
    }

    /// pkexec already asks for the password: there is no other way in.
    fn install_with_password(&self) -> Result<Installed, String> {
        self.install()
    }

    fn check(&self, _helper_version: Option<&str>) -> Checked {
        Checked::default()
    }

    fn open_approval_settings(&self) -> Result<(), String> {
        Err("Linux has no approval step for the helper; install it instead.".into())
    }
}

/// Installs the helper as a system service: `pkexec dockroute-helper install`, which asks for
/// an administrator's password in the desktop's own dialog. Returns what happened, for the user.
/// Blocks until the dialog is answered (at most `PASSWORD_TIME`).
fn install_helper() -> Result<String, String> {
    let helper = helper_binary().ok_or_else(|| {
        "dockroute-helper was not found next to the app or on PATH; install the package again".to_string()
    })?;
    let pkexec = which("pkexec").ok_or_else(|| {
        format!(
            "pkexec (polkit) is not installed, so the app cannot ask for an administrator password. Run this in a terminal instead: sudo {} install",
            helper.display()
        )
    })?;
    let install =
        Cmd::new(pkexec.to_string_lossy()).arg(helper.to_string_lossy()).arg("install").timeout(PASSWORD_TIME);
    let out = match install.output() {
        Ok(out) => out,
        Err(e) => match e.failure {
            Failure::Timeout(_) => return Err("Installing the helper was not confirmed in time; try again.".into()),
            _ => return Err(format!("cannot run pkexec: {e}")),
        },
    };
    if out.success() {
        Ok(format!("Helper installed from {}: it now runs as a system service.", helper.display()))
    } else {
        // 126/127: the user dismissed the password dialog or was not allowed.
        match out.code {
            Some(126 | 127) => Err("Installing the helper was cancelled or not authorised.".into()),
            _ => Err(format!("Installing the helper failed: {}", out.stderr.trim())),
        }
    }
}

/// The helper ships beside the app's binary (deb package, `cargo build`); else PATH.
fn helper_binary() -> Option<PathBuf> {
    let beside = std::env::current_exe().ok()?.parent()?.join("dockroute-helper");
    if beside.is_file() {
        return Some(beside);
    }
    which("dockroute-helper")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}
