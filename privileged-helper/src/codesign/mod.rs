//! Checking the connecting process's code signature, on top of its credentials: on macOS an
//! admin's every process passes the group check, so the config can also require that the
//! caller is a build of the app signed by us (`require-signature`, a code requirement string,
//! e.g. `anchor apple generic and identifier "dev.dockroute.app" and certificate
//! leaf[subject.OU] = "TEAMID"`). A helper that belongs to an app bundle (it runs from inside
//! it under SMAppService, or `install --app-bundle` named it) defaults to that bundle's
//! designated requirement (`AppRequirement`; when it is re-read: `trust`; the rule is
//! `authz::signature_rule`). Elsewhere there is no such thing: the check refuses.

pub mod trust;

#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod os;
#[cfg(not(target_os = "macos"))]
#[path = "other.rs"]
mod os;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use trust::{AppTrust, Refreshed, Stamp};

/// Ok if the peer of the Unix socket `fd` satisfies `requirement`; the reason otherwise.
pub fn verify(fd: std::os::fd::RawFd, requirement: &str) -> Result<(), String> {
    os::verify(fd, requirement)
}

/// The app bundle the helper belongs to (macOS only): the one `--app-bundle` named, else the
/// one it runs from. None when there is none.
pub fn app_bundle(named: Option<PathBuf>) -> Option<PathBuf> {
    if !cfg!(target_os = "macos") {
        return None;
    }
    named.or_else(|| {
        let exe = std::env::current_exe().and_then(|e| e.canonicalize()).ok()?;
        crate::authz::app_bundle(&exe)
    })
}

/// The app's designated requirement, read when first asked and again whenever an ad-hoc
/// signed bundle changed on disk (`trust::AppTrust` decides).
pub struct AppRequirement {
    bundle: PathBuf,
    trust: Mutex<AppTrust>,
}

impl AppRequirement {
    pub fn new(bundle: PathBuf) -> AppRequirement {
        AppRequirement { bundle, trust: Mutex::new(AppTrust::default()) }
    }

    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The requirement a non-root caller must satisfy now, or why there is none.
    pub fn current(&self) -> Result<String, String> {
        let mut trust = self.trust.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stamp = stamp(&self.bundle);
        match trust.refresh(stamp, || os::designated_requirement(&self.bundle)) {
            Refreshed::Read(req) => {
                tracing::info!("{}: non-root callers must satisfy {req:?}", self.bundle.display())
            }
            Refreshed::Failed(why) => {
                tracing::warn!("cannot read the code requirement of {}: {why}", self.bundle.display())
            }
            Refreshed::Unchanged | Refreshed::Same => {}
        }
        trust.requirement().map(str::to_string).map_err(|why| format!("{}: {why}", self.bundle.display()))
    }
}

/// The bundle's on-disk state as far as a signing changes it; None if it cannot be read.
fn stamp(bundle: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    ["Contents/_CodeSignature/CodeResources", "Contents/Info.plist"]
        .iter()
        .map(|file| {
            let m = std::fs::metadata(bundle.join(file)).ok()?;
            Some((m.dev(), m.ino(), m.size(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ctime()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_follows_a_resigned_or_replaced_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("Dockroute.app");
        assert_eq!(stamp(&app), None, "no bundle");
        std::fs::create_dir_all(app.join("Contents/_CodeSignature")).unwrap();
        std::fs::write(app.join("Contents/Info.plist"), "plist").unwrap();
        assert_eq!(stamp(&app), None, "never signed");
        std::fs::write(app.join("Contents/_CodeSignature/CodeResources"), "seal 1").unwrap();
        let first = stamp(&app).unwrap();
        assert_eq!(stamp(&app), Some(first.clone()), "unchanged");
        // Re-signed: codesign writes a new seal (new inode through its rename, or new size).
        let tmp = app.join("Contents/_CodeSignature/.new");
        std::fs::write(&tmp, "seal 2, longer").unwrap();
        std::fs::rename(&tmp, app.join("Contents/_CodeSignature/CodeResources")).unwrap();
        assert_ne!(stamp(&app), Some(first.clone()));
        // Replaced by an update: a new directory altogether.
        let second = stamp(&app).unwrap();
        std::fs::rename(&app, dir.path().join("old.app")).unwrap();
        std::fs::create_dir_all(app.join("Contents/_CodeSignature")).unwrap();
        std::fs::write(app.join("Contents/Info.plist"), "plist").unwrap();
        std::fs::write(app.join("Contents/_CodeSignature/CodeResources"), "seal 2, longer").unwrap();
        assert_ne!(stamp(&app), Some(second));
    }

    #[test]
    fn without_a_mac_the_requirement_cannot_be_read_and_says_so() {
        if cfg!(target_os = "macos") {
            return;
        }
        let req = AppRequirement::new("/Applications/Dockroute.app".into());
        let e = req.current().unwrap_err();
        assert!(e.starts_with("/Applications/Dockroute.app: ") && e.contains("only on macOS"), "{e}");
        assert_eq!(app_bundle(Some("/Applications/Dockroute.app".into())), None, "no bundles off macOS");
    }
}
