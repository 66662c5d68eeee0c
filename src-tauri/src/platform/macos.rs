//! macOS 13+: launch at login and the helper daemon both through SMAppService (the app's own
//! login item, and the LaunchDaemon plist shipped in the bundle), template tray icons, and no
//! Dock icon (Accessory policy, plus LSUIElement in Info.plist). Which SMAppService call to make
//! and what its status and errors mean is decided in `crate::smappservice`; here are only the calls.

use objc2::rc::Retained;
use objc2_foundation::{NSError, NSString};
use objc2_service_management::SMAppService;
use tauri::{AppHandle, Runtime};

use super::{Approval, HelperInstall, Installed, LoginItem};
use crate::smappservice::{self, CallError, Calls, Flow, Service, Status};

/// Template images: the menu bar tints them for light and dark mode.
pub const TRAY_RGB: [u8; 3] = [0, 0, 0];
pub const TRAY_IS_TEMPLATE: bool = true;

/// The LaunchDaemon plist inside the bundle (`Contents/Library/LaunchDaemons/`), as
/// `dockroute-helper` renders it for SMAppService.
const HELPER_PLIST: &str = "dev.dockroute.helper.plist";

pub fn add_plugins<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
}

pub fn login_item<R: Runtime>(_app: &AppHandle<R>) -> Box<dyn LoginItem> {
    Box::new(MainAppService)
}

pub fn helper_install() -> Box<dyn HelperInstall> {
    Box::new(LaunchDaemon)
}

/// The app itself as a login item (`SMAppService.mainAppService`).
struct MainAppService;

impl LoginItem for MainAppService {
    fn is_enabled(&self) -> Result<bool, String> {
        Ok(main_app().status() == Status::Enabled)
    }

    fn set_enabled(&self, on: bool) -> Result<(), String> {
        let flow = if on { Flow::enable(Service::LoginItem) } else { Flow::disable(Service::LoginItem) };
        smappservice::login_item_result(smappservice::run(&main_app(), flow))
    }
}

/// The helper's LaunchDaemon, registered from the plist inside the bundle; macOS runs it once
/// the user allows it in System Settings → Login Items.
struct LaunchDaemon;

impl HelperInstall for LaunchDaemon {
    fn install(&self) -> Result<Installed, String> {
        smappservice::helper_result(smappservice::run(&daemon(), Flow::enable(Service::Helper)))
    }

    fn approval(&self) -> Approval {
        smappservice::approval(daemon().status())
    }

    fn open_approval_settings(&self) -> Result<(), String> {
        daemon().open_login_items();
        Ok(())
    }
}

pub fn become_menu_bar_app<R: Runtime>(app: &mut tauri::App<R>) {
    app.set_activation_policy(tauri::ActivationPolicy::Accessory);
}

fn main_app() -> Sm {
    Sm(unsafe { SMAppService::mainAppService() })
}

fn daemon() -> Sm {
    Sm(unsafe { SMAppService::daemonServiceWithPlistName(&NSString::from_str(HELPER_PLIST)) })
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
