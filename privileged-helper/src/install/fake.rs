//! What the install tests of both platforms share: a recording `System`, options, and views
//! of the temp root.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Result};

use super::{cmdline, InstallOptions, Platform, Report, ServiceSpec, System};

/// Records commands and sleeps; `failing` prefixes fail. groupadd/groupdel change what getent
/// answers. `answers` are scripted outcomes, each used once by the first call it prefixes
/// (None: success; Some: failure with that stderr), before `failing` is looked at. `outputs`
/// are what succeeding calls print, by prefix (each used once).
pub struct Fake {
    pub calls: Vec<String>,
    pub systemd: bool,
    pub failing: Vec<&'static str>,
    pub answers: Vec<(&'static str, Option<&'static str>)>,
    pub outputs: Vec<(&'static str, &'static str)>,
}

impl Fake {
    pub fn new(systemd: bool, group_exists: bool) -> Fake {
        let failing = if group_exists { vec![] } else { vec!["getent"] };
        Fake { calls: Vec::new(), systemd, failing, answers: Vec::new(), outputs: Vec::new() }
    }
}

impl System for Fake {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String> {
        let line = cmdline(program, args);
        self.calls.push(line.clone());
        let answer = self.answers.iter().position(|(prefix, _)| line.starts_with(prefix));
        match answer.map(|i| self.answers.remove(i).1) {
            Some(Some(stderr)) => bail!("`{line}` failed with exit code 5: {stderr}"),
            Some(None) => {}
            None if self.failing.iter().any(|f| line.starts_with(f)) => bail!("`{line}` failed"),
            None => {}
        }
        match program {
            "groupadd" => self.failing.retain(|f| *f != "getent"),
            "groupdel" => self.failing.push("getent"),
            _ => {}
        }
        match self.outputs.iter().position(|(prefix, _)| line.starts_with(prefix)) {
            Some(i) => Ok(self.outputs.remove(i).1.to_string()),
            None => Ok(String::new()),
        }
    }
    fn systemd_running(&self) -> bool {
        self.systemd
    }
    fn sleep(&mut self, d: std::time::Duration) {
        self.calls.push(format!("sleep {}ms", d.as_millis()));
    }
}

/// Where a macOS test root keeps the helper binary install copies (`mac_helper`).
pub const MAC_HELPER_BUILD: &str = "build/dockroute-helper";

/// Options for `root`; on macOS the helper to copy is `MAC_HELPER_BUILD` in the root, which
/// `mac_helper` writes.
pub fn opts(root: &Path, platform: Platform, purge: bool) -> InstallOptions {
    let helper_path = match platform {
        Platform::MacOs => root.join(MAC_HELPER_BUILD),
        Platform::Linux => "/usr/local/bin/dockroute-helper".into(),
    };
    let spec = ServiceSpec { helper_path, config_path: platform.default_config_path().into(), app_bundle: None };
    InstallOptions { root: root.into(), platform, spec, purge }
}

/// Every path under `root` (symlinks not followed) with its content or link target and mtime.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let body = if meta.is_symlink() {
                fs::read_link(&path).unwrap().into_os_string().into_encoded_bytes()
            } else if meta.is_file() {
                fs::read(&path).unwrap()
            } else {
                todo.push(path.clone());
                Vec::new()
            };
            out.insert(path.strip_prefix(root).unwrap().into(), (body, meta.modified().unwrap()));
        }
    }
    out
}

pub fn paths(root: &Path) -> Vec<PathBuf> {
    tree(root).into_keys().collect()
}

pub fn read(root: &Path, live: &str) -> String {
    fs::read_to_string(root.join(&live[1..])).unwrap_or_else(|e| panic!("{live}: {e}"))
}

/// Writes the helper binary a macOS install copies (`opts`), with `content`.
pub fn mac_helper(root: &Path, content: &str) {
    fs::create_dir_all(root.join("build")).unwrap();
    fs::write(root.join(MAC_HELPER_BUILD), content).unwrap();
}

/// A root with an unrelated file, so the tests see install leave other things alone.
pub fn root_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    dir
}

pub fn has(report: &Report, text: &str) -> bool {
    report.lines.iter().any(|l| l.contains(text))
}
