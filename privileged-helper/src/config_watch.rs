//! Tells the daemon when its config file may have changed: a file-system watch on the file's
//! directory (editors write a new file and rename it over the old one, so the old inode is not
//! what to watch). Without a watch (unsupported file system, no inotify instances left) the
//! daemon polls as before; with one, an idle helper does not wake up four times a second.
//!
//! Backends (notify 8): Linux's inotify, and on macOS FSEvents. What each reports for the two
//! ways a config changes, from notify's `inotify.rs` and `fsevent.rs`:
//! - in-place write: inotify `Modify(Data)` then `Access(Close(Write))`; FSEvents
//!   `Modify(Data(Content))` (flags accumulate, so `Create(File)` may come along), all on the
//!   config's own path.
//! - rename over it: inotify `Modify(Name(To))` (and `Name(Both)`) naming the config; FSEvents
//!   `Modify(Name(Any))` on the temp file's path and on the config's.
//! - reading it (the daemon does after every event): inotify `Access(Open|Close(Read))`;
//!   FSEvents nothing.
//!
//! notify's kqueue backend is not used: watching the directory reports only that *some* entry
//! changed (it guesses which, and can name a neighbour), and in-place writes to the file are
//! not seen at all. A config that is a symlink is polled (a watch on its directory would not
//! see the target). Which events count is `is_config_change`, a plain function.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Whether the backend's events are trusted on this OS (see the module docs).
const WATCH_SUPPORTED: bool = cfg!(any(target_os = "linux", target_os = "macos"));

pub struct ConfigWatch {
    /// Kept alive for as long as events are wanted.
    watcher: Option<RecommendedWatcher>,
    events: mpsc::UnboundedReceiver<()>,
}

impl ConfigWatch {
    /// Never fails: a watch that cannot be set up is logged and reported by `is_watching`.
    pub fn new(config: &Path) -> ConfigWatch {
        let (tx, events) = mpsc::unbounded_channel();
        let is_link = config.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink());
        let watched = if !WATCH_SUPPORTED {
            Err(notify::Error::generic("file events are only trusted on Linux and macOS"))
        } else if is_link {
            Err(notify::Error::generic("the config is a symlink"))
        } else {
            watch(config, tx)
        };
        let watcher = match watched {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch {} for changes ({e}); polling it instead", config.display());
                None
            }
        };
        ConfigWatch { watcher, events }
    }

    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// Resolves when something happened to the config file (or the watch lost events); never
    /// when there is no watch.
    pub async fn changed(&mut self) {
        if self.watcher.is_none() || self.events.recv().await.is_none() {
            self.watcher = None;
            std::future::pending::<()>().await;
        }
        // One check covers a burst of events.
        while self.events.try_recv().is_ok() {}
    }
}

/// Whether one event from the watch on the config's directory may mean the config (named
/// `config_name`) changed. Reads are not changes (reacting to our own read would loop), nor
/// are metadata changes (a chmod changes no line of it); a lost-events notice or a watch error
/// is, since looking costs one read and missing a change costs up to 30 s.
pub fn is_config_change(event: &notify::Result<notify::Event>, config_name: &OsStr) -> bool {
    let Ok(ev) = event else { return true };
    if ev.need_rescan() {
        return true;
    }
    let relevant = match ev.kind {
        EventKind::Access(a) => a == AccessKind::Close(AccessMode::Write),
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        _ => true,
    };
    relevant && ev.paths.iter().any(|p| p.file_name() == Some(config_name))
}

fn watch(config: &Path, tx: mpsc::UnboundedSender<()>) -> notify::Result<RecommendedWatcher> {
    let name = config.file_name().map(ToOwned::to_owned).unwrap_or_default();
    let dir: PathBuf = match config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if is_config_change(&res, &name) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use notify::event::{CreateKind, DataChange, Flag, MetadataKind, RenameMode};
    use notify::Event;

    use super::*;

    const DIR: &str = "/Library/Application Support/Dockroute";

    fn ev(kind: EventKind, names: &[&str]) -> notify::Result<Event> {
        Ok(names.iter().fold(Event::new(kind), |e, n| e.add_path(Path::new(DIR).join(n))))
    }

    fn wakes(events: &[notify::Result<Event>]) -> bool {
        events.iter().any(|e| is_config_change(e, OsStr::new("dockroute.conf")))
    }

    const CONF: &str = "dockroute.conf";
    const TMP: &str = ".dockroute.conf.swp";

    #[test]
    fn inotify_edits_and_renames_over_the_config_wake_reads_and_neighbours_do_not() {
        let in_place = [
            ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &[CONF]),
            ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &[CONF]),
        ];
        assert!(wakes(&in_place));
        assert!(wakes(&in_place[1..]), "close-after-write alone is a change");
        let rename_over = [
            ev(EventKind::Create(CreateKind::File), &[TMP]),
            ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &[TMP]),
            ev(EventKind::Access(AccessKind::Close(AccessMode::Write)), &[TMP]),
            ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), &[TMP]),
            ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[CONF]),
        ];
        assert!(wakes(&rename_over));
        assert!(!wakes(&rename_over[..4]), "the temp file alone is not the config");
        assert!(wakes(&[ev(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), &[TMP, CONF])]));
        assert!(wakes(&[ev(EventKind::Remove(notify::event::RemoveKind::File), &[CONF])]));
        let read = [
            ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), &[CONF]),
            ev(EventKind::Access(AccessKind::Read), &[CONF]),
            ev(EventKind::Access(AccessKind::Close(AccessMode::Read)), &[CONF]),
        ];
        assert!(!wakes(&read), "our own read must not wake us");
        assert!(!wakes(&[ev(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)), &[CONF])]), "chmod");
        assert!(!wakes(&[ev(EventKind::Modify(ModifyKind::Data(DataChange::Any)), &["dockroute.secret"])]));
    }

    #[test]
    fn fsevents_edits_and_renames_over_the_config_wake_and_neighbours_do_not() {
        // FSEvents flags accumulate: a file created and then written reports both.
        let in_place = [
            ev(EventKind::Create(CreateKind::File), &[CONF]),
            ev(EventKind::Modify(ModifyKind::Data(DataChange::Content)), &[CONF]),
        ];
        assert!(wakes(&in_place[1..]) && wakes(&in_place));
        let rename_over = [
            ev(EventKind::Create(CreateKind::File), &[TMP]),
            ev(EventKind::Modify(ModifyKind::Name(RenameMode::Any)), &[TMP]),
            ev(EventKind::Modify(ModifyKind::Name(RenameMode::Any)), &[CONF]),
        ];
        assert!(wakes(&rename_over) && !wakes(&rename_over[..2]));
        let xattr = ev(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Extended)), &[CONF]);
        let owner = ev(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Ownership)), &[CONF]);
        assert!(!wakes(&[xattr, owner]));
        assert!(!wakes(&[ev(EventKind::Modify(ModifyKind::Data(DataChange::Content)), &["install.state"])]));
    }

    #[test]
    fn lost_events_and_watch_errors_wake_whatever_they_name() {
        let rescan = Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan));
        assert!(wakes(&[rescan]));
        assert!(wakes(&[Err(notify::Error::generic("inotify queue overflow"))]));
        assert!(!wakes(&[ev(EventKind::Other, &["other.txt"])]));
    }

    async fn seen(w: &mut ConfigWatch) -> bool {
        tokio::time::timeout(Duration::from_secs(5), w.changed()).await.is_ok()
    }

    /// The real backend of this OS: inotify on Linux, FSEvents on macOS.
    #[tokio::test]
    async fn edits_and_replacements_of_the_file_are_seen_and_neighbours_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("dockroute.conf");
        std::fs::write(&config, "port 2511\n").unwrap();
        let mut watch = ConfigWatch::new(&config);
        assert!(watch.is_watching());
        std::fs::write(dir.path().join("other.txt"), "x").unwrap();
        // Reading the config (as the daemon does after each event) must not look like a change.
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "port 2511\n");
        let quiet = tokio::time::timeout(Duration::from_millis(300), watch.changed()).await;
        assert!(quiet.is_err(), "a neighbouring file or a read woke the watch");
        std::fs::write(&config, "port 2512\n").unwrap();
        assert!(seen(&mut watch).await, "an in-place write was missed");
        // Let the write's trailing events arrive and forget them, so the next check is strict.
        tokio::time::sleep(Duration::from_millis(300)).await;
        while watch.events.try_recv().is_ok() {}
        // What editors do: write a new file, rename it over the config.
        let tmp = dir.path().join(".dockroute.conf.swp");
        std::fs::write(&tmp, "port 2513\n").unwrap();
        std::fs::rename(&tmp, &config).unwrap();
        assert!(seen(&mut watch).await, "a replacement by rename was missed");
    }
}
