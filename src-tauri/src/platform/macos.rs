//! macOS 13+: launch at login and the helper daemon both through SMAppService (the app's own
//! login item, and the LaunchDaemon plist shipped in the bundle), the administrator-password
//! install as the other way in, template tray icons, and no Dock icon (Accessory policy, plus
//! LSUIElement in Info.plist). What the calls' results mean is decided in `crate::smappservice`
//! and `crate::helper_way`; here are only the calls.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use dockroute_api::launchd::{self as job, Job};
use dockroute_stdx::process::Cmd;
use objc2::rc::Retained;
use objc2_foundation::{NSError, NSProcessInfo, NSString};
use objc2_service_management::SMAppService;
use tauri::{AppHandle, Runtime};

use super::{Checked, HelperInstall, Installed, LoginItem};
use crate::helper_way::{self, Advice, Note, PasswordError, Seen, Started, Way};
use crate::smappservice::{self, CallError, Calls, Flow, Service, Status};

/// Template images: the menu bar tints them for light and dark mode.
pub const TRAY_RGB: [u8; 3] = [0, 0, 0];
pub const TRAY_IS_TEMPLATE: bool = true;

/// How long launchd gets to start the helper after SMAppService enabled it, before the app
/// says it runs (1 s between looks).
const START_LOOKS: u32 = 5;
/// A human types a password in macOS's dialog: give them time, but not for ever.
const PASSWORD_TIME: Duration = Duration::from_secs(5 * 60);

pub fn add_plugins<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
}

pub fn login_item<R: Runtime>(_app: &AppHandle<R>) -> Box<dyn LoginItem> {
    Box::new(MainAppService)
}

pub fn helper_install() -> Box<dyn HelperInstall> {
    Box::new(LaunchDaemon { reregistered: Mutex::new(None) })
}

/// The major version of macOS, for the wording of System Settings.
fn macos() -> u32 {
    let version = NSProcessInfo::processInfo().operatingSystemVersion();
    u32::try_from(version.majorVersion).unwrap_or(13)
}

/// The app itself as a login item (`SMAppService.mainAppService`).
struct MainAppService;

impl LoginItem for MainAppService {
    fn is_enabled(&self) -> Result<bool, String> {
        Ok(main_app().status() == Status::Enabled)
    }

    fn set_enabled(&self, on: bool) -> Result<(), String> {
        let flow =
            if on { Flow::enable(Service::LoginItem, macos()) } else { Flow::disable(Service::LoginItem, macos()) };
        smappservice::login_item_result(smappservice::run(&main_app(), flow), macos())
    }
}

/// The helper's LaunchDaemon: registered from the plist inside the bundle (macOS runs it once
/// the user allows it in Login Items), or installed with the administrator's password.
struct LaunchDaemon {
    /// The outdated helper version already re-registered in this run (once is enough).
    reregistered: Mutex<Option<String>>,
}

impl HelperInstall for LaunchDaemon {
    fn install(&self) -> Result<Installed, String> {
        let sm = daemon();
        let (job, daemon_plist) = (launchd_job(), daemon_plist());
        let seen = Seen { sm: sm.status(), daemon_plist, job: job.as_ref(), helper_version: None };
        if helper_way::install_way(&seen) == Way::Password {
            return self.install_with_password();
        }
        let installed =
            smappservice::helper_result(smappservice::run(&sm, Flow::enable(Service::Helper, macos())), macos())?;
        if !matches!(installed, Installed::Running(_)) {
            return Ok(installed);
        }
        // Enabled: launchd may still refuse to start it (a launch-constraint violation).
        for _ in 0..START_LOOKS {
            match helper_way::started(launchd_job().as_ref()) {
                Started::Running => break,
                Started::Refused(why) => return Ok(Installed::NeedsPassword(why)),
                Started::NotYet => std::thread::sleep(Duration::from_secs(1)),
            }
        }
        Ok(installed)
    }

    fn install_with_password(&self) -> Result<Installed, String> {
        let (helper, bundle) = paths()?;
        let script = helper_way::admin_script(&helper, &bundle);
        let out = Cmd::new("/usr/bin/osascript")
            .arg("-e")
            .arg(script)
            .timeout(PASSWORD_TIME)
            .output()
            .map_err(|e| format!("cannot run osascript: {e}"))?;
        match helper_way::password_outcome(out.success(), &out.stderr) {
            Ok(()) => {
                // Ours now: the app's own registration must not hold the label as well.
                if matches!(daemon().status(), Status::Enabled | Status::RequiresApproval) {
                    let _ = daemon().unregister();
                }
                Ok(Installed::Running(
                    "Helper installed with the administrator's password: it runs as a system service now.".into(),
                ))
            }
            Err(PasswordError::Cancelled) => Err("Installing the helper was cancelled.".into()),
            Err(PasswordError::Failed(why)) => Err(format!("Installing the helper failed: {why}")),
        }
    }

    fn check(&self, helper_version: Option<&str>) -> Checked {
        let sm = daemon();
        let (job, daemon_plist) = (launchd_job(), daemon_plist());
        let seen = Seen { sm: sm.status(), daemon_plist, job: job.as_ref(), helper_version };
        let app = env!("CARGO_PKG_VERSION");
        let mut reregistered = self.reregistered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match helper_way::advise(&seen, app, reregistered.as_deref()) {
            Advice::Nothing => Checked::default(),
            Advice::Ready => Checked { note: None, ready: true },
            Advice::Pending => Checked {
                note: Some(Note::Pending { settings: smappservice::login_items(macos()).into() }),
                ready: false,
            },
            Advice::Refused(why) => Checked { note: Some(Note::Refused(why)), ready: false },
            Advice::Update { helper } => {
                Checked { note: Some(Note::Outdated { helper, app: app.into() }), ready: false }
            }
            Advice::DropRegistration => {
                if let Err(e) = sm.unregister() {
                    tracing::warn!("cannot drop the app's SMAppService registration of the helper: {e:?}");
                }
                Checked { note: None, ready: true }
            }
            Advice::Reregister { helper } => {
                tracing::info!("the helper answers as {helper}, the app is {app}: registering it again");
                *reregistered = Some(helper);
                match smappservice::run(&sm, Flow::reregister(Service::Helper, macos())) {
                    smappservice::Outcome::NeedsApproval => Checked {
                        note: Some(Note::Pending { settings: smappservice::login_items(macos()).into() }),
                        ready: false,
                    },
                    smappservice::Outcome::Refused(why) => Checked { note: Some(Note::Refused(why)), ready: false },
                    _ => Checked { note: None, ready: true },
                }
            }
        }
    }

    fn open_approval_settings(&self) -> Result<(), String> {
        daemon().open_login_items();
        Ok(())
    }
}

pub fn become_menu_bar_app<R: Runtime>(app: &mut tauri::App<R>) {
    app.set_activation_policy(tauri::ActivationPolicy::Accessory);
}

/// The helper inside this bundle and the bundle itself.
fn paths() -> Result<(PathBuf, PathBuf), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the app's own path: {e}"))?;
    let helper = exe.with_file_name("dockroute-helper");
    let bundle = exe.ancestors().find(|p| p.extension().is_some_and(|e| e == "app")).map(Path::to_path_buf);
    match bundle {
        Some(bundle) if helper.is_file() => Ok((helper, bundle)),
        _ => Err(format!("{} is not inside Dockroute.app with its helper; install the app again", exe.display())),
    }
}

fn daemon_plist() -> bool {
    Path::new(job::DAEMON_PLIST).exists()
}

/// `launchctl print system/dev.dockroute.helper` (readable without root).
fn launchd_job() -> Option<Job> {
    let out = Cmd::new("/bin/launchctl").arg("print").arg(job::TARGET).timeout(Duration::from_secs(5)).output().ok()?;
    Job::parse(&out.stdout)
}

fn main_app() -> Sm {
    Sm(unsafe { SMAppService::mainAppService() })
}

fn daemon() -> Sm {
    Sm(unsafe { SMAppService::daemonServiceWithPlistName(&NSString::from_str(job::BUNDLE_PLIST)) })
}

/// The only calls into ServiceManagement; every decision around them is in `smappservice`.
struct Sm(Retained<SMAppService>);

impl Calls for Sm {
    fn status(&self) -> Status {
        Status::from_raw(unsafe { self.0.status() }.0 as i64)
    }

    fn register(&self) -> Result<(), CallError> {
        unsafe { self.0.registerAndReturnError() }.map_err(|e| call_error(&e))
    }

    fn unregister(&self) -> Result<(), CallError> {
        unsafe { self.0.unregisterAndReturnError() }.map_err(|e| call_error(&e))
    }

    fn open_login_items(&self) {
        unsafe { SMAppService::openSystemSettingsLoginItems() }
    }
}

fn call_error(e: &NSError) -> CallError {
    CallError {
        domain: e.domain().to_string(),
        code: e.code() as i64,
        description: e.localizedDescription().to_string(),
    }
}
