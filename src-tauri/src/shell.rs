//! The Tauri shell: tray icon and menu, the dashboard window, and the wiring that forwards the
//! controller's `View` to both. Everything it decides comes from `tray_model`, `tray_icon` and
//! `commands::AppState`; this file only talks to Tauri.

use std::time::Duration;

use dockroute_controller::view::{Phase, View};
use dockroute_controller::{Choices, Options, Service};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager, Runtime, WindowEvent};

use crate::commands::{self, AppState};
use crate::tray_model::{self, Click, Entry};
use crate::{platform, prefs, secret_store, tray_icon};

pub const DASHBOARD: &str = "dashboard";
const TRAY_ID: &str = "dockroute";
/// The dashboard and the tray are redrawn at most this often, however fast the view changes.
const REDRAW_EVERY: Duration = Duration::from_millis(200);
/// How often the helper's installation is looked at again while the dashboard says something
/// about it (macOS: waiting for approval, refused, outdated).
const HELPER_CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct AppOptions {
    pub controller: Options,
    /// Open the dashboard at start (first run, tests); otherwise the app starts in the tray.
    pub show_dashboard: bool,
}

pub fn run(opts: AppOptions) -> anyhow::Result<()> {
    // Single instance first: a second launch only brings the first one's dashboard forward.
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| show_dashboard(app)))
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_positioner::init());
    let app = platform::add_plugins(builder)
        .invoke_handler(tauri::generate_handler![
            commands::view,
            commands::connect,
            commands::disconnect,
            commands::set_network_enabled,
            commands::set_autostart,
            commands::set_let_docker_sleep,
            commands::retry,
            commands::install_helper,
            commands::install_helper_with_password,
            commands::open_login_items,
            commands::copy_text,
            commands::open_container_url,
            commands::add_teammate,
            commands::save_teammate_config,
            commands::revoke_teammate,
            commands::set_network_exposed,
            commands::set_https,
            commands::trust_ca,
            commands::untrust_ca,
            commands::open_container_name,
            commands::set_engine,
        ])
        .setup(move |app| {
            setup(app, opts)?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the dashboard hides it: the app lives in the tray.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())?;
    app.run(|_, event| {
        // No window open is the normal state of a menu-bar app, not a reason to exit.
        if let tauri::RunEvent::ExitRequested { api, code: None, .. } = event {
            api.prevent_exit();
        }
    });
    Ok(())
}

fn setup<R: Runtime>(app: &mut tauri::App<R>, mut opts: AppOptions) -> anyhow::Result<()> {
    platform::become_menu_bar_app(app);
    let config_dir = app.path().app_config_dir()?;
    let (prefs, warning) = prefs::PrefsStore::load(&config_dir);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    opts.controller.secret = match secret_store::entry().and_then(|e| secret_store::load_or_create(&e)) {
        Ok((secret, origin)) => {
            tracing::info!("tunnel secret: {origin:?} in the keychain");
            Some(secret)
        }
        // Still usable: a secret for this run only (the guest is replaced at the next start).
        Err(e) => {
            tracing::warn!("{e:#}; using a secret for this run only");
            None
        }
    };
    // The bundle's resources hold the guest tarballs (one per CPU); looked at first.
    if let Ok(resources) = app.path().resource_dir() {
        opts.controller.guest_tarball_dirs.insert(0, resources);
    }
    // The preference, unless `--keep-guest-running` already said no.
    opts.controller.let_docker_sleep &= prefs.get().let_docker_sleep;
    let choices = Choices {
        connect: prefs.get().connect,
        disabled: prefs.get().disabled_networks.clone(),
        https: prefs.get().https,
        engine: prefs.get().engine.clone(),
    };
    let version = app.package_info().version.to_string();
    let service = tauri::async_runtime::block_on(async { Service::spawn(opts.controller, choices, &version) });
    let state = AppState::new(service, prefs, platform::login_item(app.handle()), platform::helper_install());
    state.sync_autostart();
    // macOS: registered at an earlier start and still not allowed, or refused? The dashboard
    // says so.
    state.check_helper();
    let first_view = state.view();
    app.manage(state);

    let menu = build_menu(app.handle(), &tray_model::entries(&first_view))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(first_view.phase()))
        .icon_as_template(platform::TRAY_IS_TEMPLATE)
        .tooltip(tray_model::status_line(&first_view))
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| on_menu(app, event.id().as_ref()))
        .on_tray_icon_event(|tray, event| {
            tauri_plugin_positioner::on_tray_event(tray.app_handle(), &event);
            if let TrayIconEvent::Click { button: MouseButton::Left, button_state: MouseButtonState::Up, .. } = event {
                toggle_dashboard(tray.app_handle());
            }
        })
        .build(app)?;
    tauri::async_runtime::spawn(forward_view(app.handle().clone()));
    tauri::async_runtime::spawn(follow_helper(app.handle().clone()));
    if opts.show_dashboard {
        show_dashboard(app.handle());
    }
    Ok(())
}

fn icon(phase: Phase) -> Image<'static> {
    Image::new_owned(tray_icon::draw(phase, platform::TRAY_RGB), tray_icon::SIZE, tray_icon::SIZE)
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let menu = Menu::new(app)?;
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Label(text) => {
                menu.append(&MenuItem::with_id(app, format!("label-{i}"), text, false, None::<&str>)?)?
            }
            Entry::Item { id, text, enabled } => {
                menu.append(&MenuItem::with_id(app, id.as_str(), text, *enabled, None::<&str>)?)?
            }
            Entry::Check { id, text, checked, enabled } => {
                menu.append(&CheckMenuItem::with_id(app, id.as_str(), text, *enabled, *checked, None::<&str>)?)?
            }
            Entry::Separator => menu.append(&PredefinedMenuItem::separator(app)?)?,
        }
    }
    Ok(menu)
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let state = app.state::<AppState>();
    let view = state.view();
    let done = match tray_model::click(id, &view) {
        None => Ok(()),
        Some(Click::Connect(on)) => state.set_connected(on),
        Some(Click::Network(name)) => {
            let on = view.networks.iter().find(|n| n.name == name).is_some_and(|n| n.enabled);
            state.set_network_enabled(&name, !on)
        }
        Some(Click::Engine(id)) => state.set_engine(&id),
        Some(Click::Autostart) => state.set_autostart(!view.autostart),
        Some(Click::Dashboard) => {
            show_dashboard(app);
            Ok(())
        }
        Some(Click::Quit) => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                app.state::<AppState>().service.quit().await;
                app.exit(0);
            });
            Ok(())
        }
    };
    if let Err(message) = done {
        tracing::warn!("{message}");
        let _ = app.emit("notice", &message);
    }
    // The menu toolkit may have flipped a checkbox the click did not change: redraw from the view.
    state.touch();
}

/// While the dashboard says something about the helper's installation, asks the OS again every
/// few seconds (macOS does not tell when the switch in Login Items is flipped, or when the
/// password install ran); once it may run, the service connects at once. Also looks when the
/// running helper's version becomes known or changes (an update). Idle otherwise.
async fn follow_helper<R: Runtime>(app: AppHandle<R>) {
    let state = app.state::<AppState>();
    let (mut note, mut view) = (state.helper_note_changes(), state.service.view());
    let mut version = view.borrow().helper_version.clone();
    loop {
        let noted = note.borrow_and_update().is_some();
        tokio::select! {
            () = tokio::time::sleep(HELPER_CHECK_EVERY), if noted => {}
            r = note.changed(), if !noted => if r.is_err() { return } else { continue },
            r = view.changed() => {
                if r.is_err() {
                    return;
                }
                let now = view.borrow_and_update().helper_version.clone();
                if now == version || now.is_none() {
                    continue;
                }
                version = now;
            }
        }
        let app = app.clone();
        // Calls into launchd: off the async workers.
        let _ = tauri::async_runtime::spawn_blocking(move || app.state::<AppState>().check_helper()).await;
    }
}

/// Sends every change of the view to the dashboard (event `view`) and to the tray.
async fn forward_view<R: Runtime>(app: AppHandle<R>) {
    let state = app.state::<AppState>();
    let (mut changes, mut local) = (state.service.view(), state.local_changes());
    let mut shown: Option<(Vec<Entry>, Phase)> = None;
    let mut forced = false;
    loop {
        let view = state.view();
        if let Err(e) = app.emit("view", &view) {
            tracing::warn!("cannot send the view to the dashboard: {e}");
        }
        if let Some(tray) = app.tray_by_id(TRAY_ID) {
            shown = Some(redraw_tray(&app, &tray, &view, shown, forced));
        }
        tokio::time::sleep(REDRAW_EVERY).await;
        // A local change (a menu click) redraws the menu even when the model did not change.
        forced = tokio::select! {
            r = changes.changed() => if r.is_err() { return } else { false },
            r = local.changed() => if r.is_err() { return } else { true },
        };
    }
}

fn redraw_tray<R: Runtime>(
    app: &AppHandle<R>,
    tray: &TrayIcon<R>,
    view: &View,
    shown: Option<(Vec<Entry>, Phase)>,
    forced: bool,
) -> (Vec<Entry>, Phase) {
    let entries = tray_model::entries(view);
    let (old_entries, old_phase) = shown.map_or((None, None), |(e, p)| (Some(e), Some(p)));
    if forced || old_entries.as_ref() != Some(&entries) {
        match build_menu(app, &entries) {
            Ok(menu) => {
                let _ = tray.set_menu(Some(menu));
            }
            Err(e) => tracing::warn!("cannot build the tray menu: {e}"),
        }
        let _ = tray.set_tooltip(Some(tray_model::status_line(view)));
    }
    if old_phase != Some(view.phase()) {
        let _ = tray.set_icon(Some(icon(view.phase())));
        let _ = tray.set_icon_as_template(platform::TRAY_IS_TEMPLATE);
    }
    (entries, view.phase())
}

pub fn show_dashboard<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window(DASHBOARD) else { return };
    // Under the tray icon where the platform says where it is (macOS, Windows); Linux trays do
    // not, so there it is centred.
    use tauri_plugin_positioner::{Position, WindowExt};
    if window.as_ref().window().move_window_constrained(Position::TrayBottomCenter).is_err() {
        let _ = window.center();
    }
    let _ = window.show();
    let _ = window.unminimize();
    let _ = window.set_focus();
}

fn toggle_dashboard<R: Runtime>(app: &AppHandle<R>) {
    match app.get_webview_window(DASHBOARD) {
        Some(w) if w.is_visible().unwrap_or(false) => {
            let _ = w.hide();
        }
        _ => show_dashboard(app),
    }
}
