//! Tells the daemon when its config file may have changed: a file-system watch on the file's
//! directory (editors write a new file and rename it over the old one, so the old inode is not
//! what to watch). Without a watch (unsupported file system, no inotify instances left) the
//! daemon polls as before; with one, an idle helper does not wake up four times a second.
//! Only Linux's inotify is trusted here: notify's kqueue backend on macOS watches the directory
//! alone and misses in-place edits, so macOS keeps polling until that is verified on a Mac.
//! A config that is a symlink is polled too (a watch on its directory would not see the target).

use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

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
        let watched = if !cfg!(target_os = "linux") {
            Err(notify::Error::generic("file events are only trusted on Linux"))
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

fn watch(config: &Path, tx: mpsc::UnboundedSender<()>) -> notify::Result<RecommendedWatcher> {
    let name = config.file_name().map(ToOwned::to_owned);
    let dir: PathBuf = match config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let ours = match res {
            Ok(ev) => {
                use notify::event::{AccessKind, AccessMode, EventKind};
                // Reading the file (ours included) is no change: reacting to it would loop.
                let change = !matches!(ev.kind, EventKind::Access(a) if a != AccessKind::Close(AccessMode::Write));
                ev.need_rescan() || (change && ev.paths.iter().any(|p| p.file_name() == name.as_deref()))
            }
            // An error from the watch: look at the file rather than miss a change.
            Err(_) => true,
        };
        if ours {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn seen(w: &mut ConfigWatch) -> bool {
        tokio::time::timeout(Duration::from_secs(5), w.changed()).await.is_ok()
    }

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
