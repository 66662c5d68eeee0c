//! macOS 13+: launch at login and the helper daemon both through SMAppService (the app's own
//! login item, and the LaunchDaemon plist shipped in the bundle), template tray icons, and no
//! Dock icon (Accessory policy, plus LSUIElement in Info.plist).

use objc2_foundation::NSString;
use objc2_service_management::{SMAppService, SMAppServiceStatus};
use tauri::{AppHandle, Runtime};

use super::LoginItem;

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

struct MainAppService;

impl LoginItem for MainAppService {
    fn is_enabled(&self) -> Result<bool, String> {
        let status = unsafe { SMAppService::mainAppService().status() };
        Ok(status == SMAppServiceStatus::Enabled)
    }

    fn set_enabled(&self, on: bool) -> Result<(), String> {
        let service = unsafe { SMAppService::mainAppService() };
        let done = unsafe {
            if on {
                service.registerAndReturnError()
            } else {
                service.unregisterAndReturnError()
            }
        };
        done.map_err(|e| format!("cannot change the login item: {}", e.localizedDescription()))
    }
}

pub fn become_menu_bar_app<R: Runtime>(app: &mut tauri::App<R>) {
    app.set_activation_policy(tauri::ActivationPolicy::Accessory);
}

/// Registers the helper's LaunchDaemon. macOS asks the user to approve it in System Settings
/// the first time; we open that pane and say so.
pub async fn install_helper() -> Result<String, String> {
    let name = NSString::from_str(HELPER_PLIST);
    let service = unsafe { SMAppService::daemonServiceWithPlistName(&name) };
    if let Err(e) = unsafe { service.registerAndReturnError() } {
        return Err(format!("Registering the helper failed: {}", e.localizedDescription()));
    }
    match unsafe { service.status() } {
        SMAppServiceStatus::Enabled => Ok("Helper installed: it now runs in the background.".into()),
        SMAppServiceStatus::RequiresApproval => {
            unsafe { SMAppService::openSystemSettingsLoginItems() };
            Ok("Approve “Dockroute” under System Settings → General → Login Items; the app connects by itself then."
                .into())
        }
        other => Err(format!("The helper is registered but macOS reports status {}.", other.0)),
    }
}
