//! Dockroute's menu-bar app. The logic lives in plain modules that test without a window
//! (`prefs`, `secret_store`, `tray_model`, `tray_icon`, `smappservice`, `helper_way`,
//! `commands::AppState`);
//! `shell` is the thin Tauri layer on top, and `platform` what differs between macOS and Linux.
//! `headless` runs the same supervisor without a window.

pub mod commands;
pub mod headless;
pub mod helper_way;
pub mod platform;
pub mod prefs;
pub mod secret_store;
pub mod shell;
pub mod smappservice;
pub mod tray_icon;
pub mod tray_model;
