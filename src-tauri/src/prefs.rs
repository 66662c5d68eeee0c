//! The user's choices, kept across restarts in the app's config dir: connect or not, which
//! networks are switched off, launch at login. A small JSON file, written atomically; a file
//! that cannot be read is set aside (never overwritten) and the defaults are used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "preferences.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prefs {
    /// Whether the tunnel should be up (the last Connect/Disconnect).
    pub connect: bool,
    /// Networks switched off, by name: a network recreated under the same name stays off.
    pub disabled_networks: BTreeSet<String>,
    pub launch_at_login: bool,
    /// Stop the guest while no other container runs, so Docker Desktop's VM can sleep.
    pub let_docker_sleep: bool,
    /// The HTTPS switch: the helper serves container names over HTTPS (where its config's
    /// `https on` allows it). Told to the helper on every connection.
    pub https: bool,
    /// The engine Dockroute follows (its endpoint), when the user picked one; None: the one
    /// the docker CLI uses.
    pub engine: Option<String>,
}

impl Default for Prefs {
    /// A new user installed the app to reach containers: connect from the first start.
    fn default() -> Prefs {
        Prefs {
            connect: true,
            disabled_networks: BTreeSet::new(),
            launch_at_login: false,
            let_docker_sleep: true,
            https: true,
            engine: None,
        }
    }
}

pub struct PrefsStore {
    path: PathBuf,
    current: Prefs,
}

impl PrefsStore {
    /// Loads `dir/preferences.json`. Missing: defaults. Unreadable or not valid: the file is
    /// renamed to `preferences.json.bad` so nothing the user had is lost, and the returned
    /// warning says so.
    pub fn load(dir: &Path) -> (PrefsStore, Option<String>) {
        let path = dir.join(FILE_NAME);
        let (current, warning) = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Prefs::default(), None),
            Err(e) => (Prefs::default(), Some(format!("cannot read {}: {e}; using defaults", path.display()))),
            Ok(bytes) => match serde_json::from_slice::<Prefs>(&bytes) {
                Ok(p) => (p, None),
                Err(e) => {
                    let aside = path.with_extension("json.bad");
                    let moved = std::fs::rename(&path, &aside);
                    let fate = match moved {
                        Ok(()) => format!("kept as {}", aside.display()),
                        Err(m) => format!("could not be set aside: {m}"),
                    };
                    (Prefs::default(), Some(format!("{} is not valid ({e}); {fate}; using defaults", path.display())))
                }
            },
        };
        (PrefsStore { path, current }, warning)
    }

    pub fn get(&self) -> &Prefs {
        &self.current
    }

    /// Applies `change` and writes the result; on a write error the old choices stay in force.
    pub fn update(&mut self, change: impl FnOnce(&mut Prefs)) -> std::io::Result<()> {
        let mut next = self.current.clone();
        change(&mut next);
        if next == self.current {
            return Ok(());
        }
        write_atomically(&self.path, &serde_json::to_vec_pretty(&next)?)?;
        self.current = next;
        Ok(())
    }
}

/// The user's own file (0644): a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    dockroute_stdx::fs::write_atomic(path, bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, warning) = PrefsStore::load(dir.path());
        assert_eq!((store.get(), warning), (&Prefs::default(), None));
        store
            .update(|p| {
                p.connect = false;
                p.disabled_networks.insert("mynet".into());
                p.launch_at_login = true;
                p.let_docker_sleep = false;
                p.https = false;
                p.engine = Some("unix:///Users/me/.colima/default/docker.sock".into());
            })
            .unwrap();
        let (again, _) = PrefsStore::load(dir.path());
        assert!(!again.get().https, "the HTTPS switch survives a restart");
        assert_eq!(again.get().engine.as_deref(), Some("unix:///Users/me/.colima/default/docker.sock"));
        assert!(!again.get().let_docker_sleep);
        assert!(!again.get().connect);
        assert!(again.get().launch_at_login);
        assert!(again.get().disabled_networks.contains("mynet"));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["preferences.json"], "no temporary file stays behind");
    }

    #[test]
    fn a_bad_file_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{\"connect\": tru").unwrap();
        let (store, warning) = PrefsStore::load(dir.path());
        assert_eq!(store.get(), &Prefs::default());
        let warning = warning.expect("a warning");
        assert!(warning.contains("not valid") && warning.contains("preferences.json.bad"), "{warning}");
        let kept = std::fs::read(dir.path().join("preferences.json.bad")).unwrap();
        assert_eq!(kept, b"{\"connect\": tru", "the user's file is kept as it was");
    }

    #[test]
    fn unknown_and_missing_keys_are_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), br#"{"connect": false, "from_a_newer_version": 1}"#).unwrap();
        let (store, warning) = PrefsStore::load(dir.path());
        assert_eq!(warning, None);
        assert!(!store.get().connect);
        assert!(store.get().disabled_networks.is_empty());
        assert!(store.get().let_docker_sleep, "a file from before the key: Docker may sleep");
        assert!(store.get().https, "a file from before the switch: HTTPS as the helper's config says");
        assert_eq!(store.get().engine, None, "a file from before engines were picked: the docker CLI's");
    }

    #[test]
    fn a_failed_write_keeps_the_old_choices() {
        let dir = tempfile::tempdir().unwrap();
        // The config "dir" is a file: nothing can be written below it.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let (mut store, _) = PrefsStore::load(&blocker);
        assert!(store.update(|p| p.connect = false).is_err());
        assert!(store.get().connect);
    }
}
