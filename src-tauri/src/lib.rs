//! Dockroute's menu-bar app. The logic lives in plain modules that test without a window
//! (`prefs`, `secret_store`, `tray_model`, `tray_icon`, `commands::AppState`); `shell` is the
//! thin Tauri layer on top, and `platform` what differs between macOS and Linux.

pub mod commands;
pub mod platform;
pub mod prefs;
pub mod secret_store;
pub mod shell;
pub mod tray_icon;
pub mod tray_model;
