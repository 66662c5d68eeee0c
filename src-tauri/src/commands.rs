//! What the dashboard and the tray can ask for. `AppState` holds the logic (plain Rust, tested
//! without a window); the `#[tauri::command]` functions below only unwrap their arguments.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use dockroute_controller::ca_trust;
use dockroute_controller::share::{self, IssuedConfig};
use dockroute_controller::view::View;
use dockroute_controller::Service;
use tauri::{AppHandle, Runtime, State};
use tokio::sync::watch;

use crate::platform::{HelperInstall, Installed, LoginItem, Note};
use crate::prefs::PrefsStore;

pub struct AppState {
    pub service: Service,
    prefs: Mutex<PrefsStore>,
    login_item: Box<dyn LoginItem>,
    helper: Box<dyn HelperInstall>,
    /// macOS: what the dashboard says about the helper beyond the controller's view (waiting
    /// for approval, refused by macOS, outdated); the shell checks again while there is one.
    helper_note: watch::Sender<Option<Note>>,
    /// Bumped when something the view shows changes outside the service (launch at login).
    local_change: watch::Sender<u64>,
    /// The teammate config issued last, until the user saves it (the page gets only its QR code).
    issued: Mutex<Option<IssuedConfig>>,
}

/// Longest text the page may put on the clipboard (it copies addresses).
const MAX_COPY: usize = 1024;

impl AppState {
    pub fn new(
        service: Service,
        prefs: PrefsStore,
        login_item: Box<dyn LoginItem>,
        helper: Box<dyn HelperInstall>,
    ) -> AppState {
        service.show_autostart(prefs.get().launch_at_login);
        AppState {
            service,
            prefs: Mutex::new(prefs),
            login_item,
            helper,
            helper_note: watch::channel(None).0,
            local_change: watch::channel(0).0,
            issued: Mutex::new(None),
        }
    }

    /// The view, with what only the shell knows (launch at login, the note about the helper)
    /// among its inputs.
    pub fn view(&self) -> View {
        self.service.snapshot()
    }

    /// Installs or registers the helper; blocks (a password dialog, launchd). When it runs, the
    /// service connects at once; when macOS waits for the user, or refuses this way in, the
    /// dashboard says so.
    pub fn install_helper(&self) -> Result<String, String> {
        let installed = self.helper.install()?;
        self.installed(installed)
    }

    /// The other way in (macOS: the administrator's password when SMAppService refuses).
    pub fn install_helper_with_password(&self) -> Result<String, String> {
        let installed = self.helper.install_with_password()?;
        self.installed(installed)
    }

    /// What an install achieved, for the page: done or waiting (a message), or refused (an
    /// error; the dashboard then offers the other way in).
    fn installed(&self, installed: Installed) -> Result<String, String> {
        match installed {
            Installed::Running(message) => {
                self.set_helper_note(None);
                self.service.retry();
                Ok(message)
            }
            // `check_helper` follows until the user has allowed it.
            Installed::AwaitingApproval { message, settings } => {
                self.set_helper_note(Some(Note::Pending { settings }));
                Ok(message)
            }
            Installed::NeedsPassword(why) => {
                self.set_helper_note(Some(Note::Refused(why.clone())));
                Err(why)
            }
        }
    }

    /// Reads how the helper stands (at start, when the helper's version is known, and while
    /// the dashboard says something about it); once it may run, the service connects at once.
    /// Blocks (calls into launchd).
    pub fn check_helper(&self) {
        let version = self.service.snapshot().helper_version;
        let checked = self.helper.check(version.as_deref());
        self.set_helper_note(checked.note);
        if checked.ready {
            self.service.retry();
        }
    }

    /// Fires when the dashboard's note about the helper comes, changes or goes.
    pub fn helper_note_changes(&self) -> watch::Receiver<Option<Note>> {
        self.helper_note.subscribe()
    }

    pub fn open_login_items(&self) -> Result<(), String> {
        self.helper.open_approval_settings()
    }

    fn set_helper_note(&self, note: Option<Note>) {
        if self.helper_note.send_if_modified(|n| std::mem::replace(n, note.clone()) != note) {
            self.service.show_helper_note(note);
            self.touch();
        }
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

    /// The HTTPS switch: the helper serves container names over HTTPS (where its config
    /// allows), or not; applies at once and is remembered.
    pub fn set_https(&self, on: bool) -> Result<(), String> {
        self.service.set_https(on);
        self.prefs().update(|p| p.https = on).map_err(|e| format!("cannot save the choice: {e}"))
    }

    /// Trust (`trust`) or Remove the local CA: on macOS in the user's session (macOS asks for
    /// the password), on Linux through the helper (if this user may). The certificate is the
    /// one the helper's status names, never a path from the page.
    pub async fn set_ca_trusted(&self, trust: bool) -> Result<(), String> {
        let view = self.service.snapshot();
        let ca = view.https.and_then(|h| h.ca).ok_or("the helper has not reported a local CA (is HTTPS on?)")?;
        let steps = ca_trust::plan(ca_trust::TrustWay::here(), trust, std::path::Path::new(&ca.path));
        ca_trust::run(&steps, &self.helper_socket(), &run_security).await
    }

    /// Follow another engine (an endpoint the view lists): the routes and the guest move there,
    /// the old engine's guest is removed; remembered for the next start.
    pub fn set_engine(&self, id: &str) -> Result<(), String> {
        self.service.set_engine(id)?;
        let engine = self.service.engine();
        self.prefs().update(|p| p.engine = engine).map_err(|e| format!("cannot save the choice: {e}"))
    }

    pub fn set_autostart(&self, on: bool) -> Result<(), String> {
        self.login_item.set_enabled(on)?;
        let saved = self.prefs().update(|p| p.launch_at_login = on);
        self.service.show_autostart(self.prefs().get().launch_at_login);
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
                self.service.show_autostart(self.prefs().get().launch_at_login);
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }

    fn helper_socket(&self) -> std::path::PathBuf {
        self.service.snapshot().helper_socket.into()
    }

    /// A teammate's WireGuard config from the helper (new, or with `rotate` a new key): the
    /// page gets the QR code; the text waits here for "Save config".
    pub async fn add_teammate(&self, name: &str, rotate: bool) -> Result<IssuedConfig, String> {
        let issued = share::add_teammate(&self.helper_socket(), name, rotate).await?;
        *self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(issued.clone());
        Ok(issued)
    }

    /// Saves the config issued last for `name` into `dir`; returns the path.
    pub fn save_teammate_config(&self, dir: &std::path::Path, name: &str) -> Result<String, String> {
        let issued = self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let issued = issued.filter(|c| c.name == name).ok_or_else(|| format!("no new config for {name:?} to save"))?;
        share::save_config(dir, &issued).map(|p| p.display().to_string())
    }

    pub async fn revoke_teammate(&self, name: &str) -> Result<(), String> {
        share::revoke_teammate(&self.helper_socket(), name).await?;
        let mut issued = self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if issued.as_ref().is_some_and(|c| c.name == name) {
            *issued = None;
        }
        Ok(())
    }

    /// Lets teammates reach a network's containers (by the network's id), or no longer. A
    /// network a config line exposes cannot be taken back from here.
    pub async fn set_network_exposed(&self, name: &str, exposed: bool) -> Result<(), String> {
        let view = self.service.snapshot();
        let network = view.networks.iter().find(|n| n.name == name);
        let network = network.ok_or_else(|| format!("no bridge network named {name:?}"))?;
        if !exposed && network.exposed_by_config {
            return Err(format!("{name} is exposed by the helper's config file (`route … expose`): change it there"));
        }
        share::set_exposed(&self.helper_socket(), &network.id, exposed).await
    }

    /// `https://name/` for a running container's own name while the helper serves HTTPS
    /// (`name_url`).
    pub fn container_name_url(&self, name: &str) -> Result<String, String> {
        name_url(&self.service.snapshot(), name)
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

/// `https://name/` for a running container's own name (not a wildcard) while the helper serves
/// HTTPS; anything else is refused, so the page cannot make the app open arbitrary URLs.
pub fn name_url(view: &View, name: &str) -> Result<String, String> {
    if !view.https.as_ref().is_some_and(|h| h.serving) {
        return Err("HTTPS is not being served (switched off, or off in the helper's config)".into());
    }
    let known = view.containers.iter().any(|c| c.names.iter().any(|n| !n.wildcard && n.name == name));
    if !known {
        return Err(format!("{name:?} is not the name of a running container"));
    }
    Ok(format!("https://{name}/"))
}

/// macOS's `security` in the user's session: it waits while macOS asks for the password.
fn run_security(argv: &[String]) -> Result<(Option<i32>, String), String> {
    let cmd = dockroute_stdx::Cmd::new("/usr/bin/security").args(&argv[1..]).timeout(Duration::from_secs(300));
    cmd.output().map(|o| (o.code, o.stderr)).map_err(|e| format!("cannot run security: {e}"))
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
pub fn set_https(state: State<'_, AppState>, enabled: bool) -> Result<(), String> {
    state.set_https(enabled)
}

#[tauri::command]
pub async fn trust_ca(state: State<'_, AppState>) -> Result<(), String> {
    state.set_ca_trusted(true).await
}

#[tauri::command]
pub async fn untrust_ca(state: State<'_, AppState>) -> Result<(), String> {
    state.set_ca_trusted(false).await
}

#[tauri::command]
pub fn set_engine(state: State<'_, AppState>, id: String) -> Result<(), String> {
    state.set_engine(&id)
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
pub async fn install_helper<R: Runtime>(app: AppHandle<R>) -> Result<String, String> {
    use tauri::Manager;
    // It waits for a password dialog or launchd: off the async workers.
    tauri::async_runtime::spawn_blocking(move || app.state::<AppState>().install_helper())
        .await
        .map_err(|e| format!("installing the helper failed: {e}"))?
}

#[tauri::command]
pub async fn install_helper_with_password<R: Runtime>(app: AppHandle<R>) -> Result<String, String> {
    use tauri::Manager;
    // It waits for the password dialog: off the async workers.
    tauri::async_runtime::spawn_blocking(move || app.state::<AppState>().install_helper_with_password())
        .await
        .map_err(|e| format!("installing the helper failed: {e}"))?
}

#[tauri::command]
pub fn open_login_items(state: State<'_, AppState>) -> Result<(), String> {
    state.open_login_items()
}

#[tauri::command]
pub async fn add_teammate(
    state: State<'_, AppState>,
    name: String,
    rotate: Option<bool>,
) -> Result<IssuedConfig, String> {
    state.add_teammate(&name, rotate.unwrap_or(false)).await
}

/// Into the Downloads folder (the home folder without one): no file dialog to wire up, and the
/// path comes back to the page.
#[tauri::command]
pub fn save_teammate_config<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    name: String,
) -> Result<String, String> {
    use tauri::Manager;
    let dir = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|e| format!("no folder to save to: {e}"))?;
    state.save_teammate_config(&dir, &name)
}

#[tauri::command]
pub async fn revoke_teammate(state: State<'_, AppState>, name: String) -> Result<(), String> {
    state.revoke_teammate(&name).await
}

#[tauri::command]
pub async fn set_network_exposed(state: State<'_, AppState>, name: String, exposed: bool) -> Result<(), String> {
    state.set_network_exposed(&name, exposed).await
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

#[tauri::command]
pub fn open_container_name<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    name: String,
) -> Result<(), String> {
    use tauri_plugin_opener::OpenerExt;
    let url = state.container_name_url(&name)?;
    app.opener().open_url(url, None::<&str>).map_err(|e| format!("cannot open a browser: {e}"))
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
