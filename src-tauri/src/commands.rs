//! What the dashboard and the tray can ask for. `AppState` holds the logic (plain Rust, tested
//! without a window); the `#[tauri::command]` functions below only unwrap their arguments.

use std::net::IpAddr;
use std::sync::Mutex;

use dockroute_controller::view::View;
use dockroute_controller::Service;
use tauri::{AppHandle, Runtime, State};
use tokio::sync::watch;

use crate::platform::LoginItem;
use crate::prefs::PrefsStore;

pub struct AppState {
    pub service: Service,
    prefs: Mutex<PrefsStore>,
    login_item: Box<dyn LoginItem>,
    /// Bumped when something the view shows changes outside the service (launch at login).
    local_change: watch::Sender<u64>,
}

/// Longest text the page may put on the clipboard (it copies addresses).
const MAX_COPY: usize = 1024;

impl AppState {
    pub fn new(service: Service, prefs: PrefsStore, login_item: Box<dyn LoginItem>) -> AppState {
        AppState { service, prefs: Mutex::new(prefs), login_item, local_change: watch::channel(0).0 }
    }

    pub fn view(&self) -> View {
        let mut v = self.service.snapshot();
        v.autostart = self.prefs().get().launch_at_login;
        v
    }

    /// Fires when `view()` may have changed for a reason the service does not know.
    pub fn local_changes(&self) -> watch::Receiver<u64> {
        self.local_change.subscribe()
    }

    fn prefs(&self) -> std::sync::MutexGuard<'_, PrefsStore> {
        // A panic while holding the lock cannot leave the prefs half-changed (update is
        // all-or-nothing), so a poisoned lock is still good to use.
        self.prefs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connect or Disconnect, remembered for the next start.
    pub fn set_connected(&self, on: bool) -> Result<(), String> {
        self.service.set_connected(on);
        self.prefs().update(|p| p.connect = on).map_err(|e| format!("cannot save the choice: {e}"))
    }

    pub fn set_network_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        self.service.set_network_enabled(name, enabled)?;
        let disabled = self.service.disabled();
        self.prefs().update(|p| p.disabled_networks = disabled).map_err(|e| format!("cannot save the choice: {e}"))
    }

    /// Stop the guest while no other container runs (so Docker Desktop's VM may sleep), or
    /// keep it running; applies at once and is remembered.
    pub fn set_let_docker_sleep(&self, on: bool) -> Result<(), String> {
        self.service.set_let_docker_sleep(on);
        self.prefs().update(|p| p.let_docker_sleep = on).map_err(|e| format!("cannot save the choice: {e}"))
    }

    pub fn set_autostart(&self, on: bool) -> Result<(), String> {
        self.login_item.set_enabled(on)?;
        let saved = self.prefs().update(|p| p.launch_at_login = on);
        self.touch();
        saved.map_err(|e| format!("cannot save the choice: {e}"))
    }

    /// Asks for a redraw of the dashboard and the tray menu.
    pub fn touch(&self) {
        self.local_change.send_modify(|n| *n += 1);
    }

    /// At start: the OS's login items are the truth (the user may have removed ours in
    /// System Settings).
    pub fn sync_autostart(&self) {
        match self.login_item.is_enabled() {
            Ok(on) => {
                if let Err(e) = self.prefs().update(|p| p.launch_at_login = on) {
                    tracing::warn!("cannot save the launch-at-login state: {e}");
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    /// `http://ip:port` for a port a running container exposes; anything else is refused, so
    /// the page cannot make the app open arbitrary addresses.
    pub fn container_url(&self, ip: &str, port: u16) -> Result<String, String> {
        let ip: IpAddr = ip.parse().map_err(|_| format!("{ip:?} is not an IP address"))?;
        let view = self.service.snapshot();
        let known = view
            .containers
            .iter()
            .any(|c| c.addresses.iter().any(|a| a.ip == ip) && c.ports.iter().any(|p| p.port == port));
        if !known {
            return Err(format!("no running container exposes {ip} port {port}"));
        }
        Ok(match ip {
            IpAddr::V4(v4) => format!("http://{v4}:{port}/"),
            IpAddr::V6(v6) => format!("http://[{v6}]:{port}/"),
        })
    }
}

#[tauri::command]
pub fn view(state: State<'_, AppState>) -> View {
    state.view()
}

#[tauri::command]
pub fn connect(state: State<'_, AppState>) -> Result<(), String> {
    state.set_connected(true)
}

#[tauri::command]
pub fn disconnect(state: State<'_, AppState>) -> Result<(), String> {
    state.set_connected(false)
}

#[tauri::command]
pub fn set_network_enabled(state: State<'_, AppState>, name: String, enabled: bool) -> Result<(), String> {
    state.set_network_enabled(&name, enabled)
}

#[tauri::command]
pub fn set_let_docker_sleep(state: State<'_, AppState>, enabled: bool) -> Result<(), String> {
    state.set_let_docker_sleep(enabled)
}

#[tauri::command]
pub fn set_autostart(state: State<'_, AppState>, enabled: bool) -> Result<(), String> {
    state.set_autostart(enabled)
}

#[tauri::command]
pub fn retry(state: State<'_, AppState>) {
    state.service.retry();
}

#[tauri::command]
pub async fn install_helper(state: State<'_, AppState>) -> Result<String, String> {
    let done = crate::platform::install_helper().await?;
    state.service.retry();
    Ok(done)
}

#[tauri::command]
pub fn copy_text<R: Runtime>(app: AppHandle<R>, text: String) -> Result<(), String> {
    use tauri_plugin_clipboard_manager::ClipboardExt;
    if text.len() > MAX_COPY {
        return Err(format!("refusing to copy {} bytes (at most {MAX_COPY})", text.len()));
    }
    app.clipboard().write_text(text).map_err(|e| format!("cannot use the clipboard: {e}"))
}

#[tauri::command]
pub fn open_container_url<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    ip: String,
    port: u16,
) -> Result<(), String> {
    use tauri_plugin_opener::OpenerExt;
    let url = state.container_url(&ip, port)?;
    app.opener().open_url(url, None::<&str>).map_err(|e| format!("cannot open a browser: {e}"))
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
