//! Re-reading the config file: a change applies after two equal reads (`Settle`: an editor's
//! half-written file is never applied), and a file that is empty, unreadable or has a bad line
//! keeps the last good config, with the reason (and the line) for the log.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigDiff};
use dockroute_stdx::Settle;

/// What one read of the file means for the running config.
#[derive(Debug)]
pub enum Reload {
    /// Nothing to do: unchanged, or a change seen once that waits for a second equal read.
    Nothing,
    /// A settled, valid change: the new config and what it changes.
    Apply { config: Box<Config>, diff: ConfigDiff },
    /// A settled change (or a lost file) that is not applied; the last good config stays.
    /// The message names the file and, for a bad line, its number.
    Rejected(String),
}

pub struct ConfigReload {
    path: PathBuf,
    texts: Settle<String>,
}

impl ConfigReload {
    /// `current`: the text the running config was parsed from, if it could be read.
    pub fn new(path: &Path, current: Option<String>) -> ConfigReload {
        ConfigReload { path: path.to_path_buf(), texts: Settle::new(current) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A changed text was read once and waits for the next read.
    pub fn is_pending(&self) -> bool {
        self.texts.is_pending()
    }

    /// Reads the file and says what to do with it.
    pub fn check(&mut self, current: &Config) -> Reload {
        let read = std::fs::read_to_string(&self.path);
        self.offer(read, current)
    }

    /// The decision for one read, without the file system.
    pub fn offer(&mut self, read: io::Result<String>, current: &Config) -> Reload {
        let path = self.path.display();
        let text = match read {
            Ok(t) => t,
            // Said once: the next failures find nothing in force and stay quiet.
            Err(e) if self.texts.forget() => {
                return Reload::Rejected(format!("cannot read {path}: {e} (keeping the last good config)"))
            }
            Err(_) => return Reload::Nothing,
        };
        let Some(text) = self.texts.offer(text) else { return Reload::Nothing };
        if text.trim().is_empty() {
            return Reload::Rejected(format!("{path} is empty; not applied (keeping the last good config)"));
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        match Config::parse(&text, base) {
            Ok(new) => Reload::Apply { diff: config::diff(current, &new), config: Box::new(new) },
            Err(e) => Reload::Rejected(format!("{path}: {e} (keeping the last good config)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "port 2511\nroute 172.17.0.0/16\n";

    fn start() -> (ConfigReload, Config) {
        let config = Config::parse(GOOD, Path::new("/etc/dockroute")).unwrap();
        (ConfigReload::new(Path::new("/etc/dockroute/dockroute.conf"), Some(GOOD.into())), config)
    }

    fn read(text: &str) -> io::Result<String> {
        Ok(text.to_string())
    }

    fn rejected(r: Reload) -> String {
        match r {
            Reload::Rejected(why) => why,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn a_change_applies_after_two_equal_reads_with_its_route_diff() {
        let (mut r, current) = start();
        assert!(matches!(r.offer(read(GOOD), &current), Reload::Nothing));
        let changed = "port 2511\nroute 172.17.0.0/16\nroute 172.18.0.0/16\nmtu 1300\n";
        assert!(matches!(r.offer(read(changed), &current), Reload::Nothing), "seen once");
        assert!(r.is_pending());
        let Reload::Apply { config, diff } = r.offer(read(changed), &current) else { panic!("not applied") };
        assert_eq!(config.mtu, 1300);
        assert_eq!(diff.routes_added, ["172.18.0.0/16".parse::<ipnet::IpNet>().unwrap()]);
        assert_eq!(diff.restart_needed, ["mtu"]);
        assert!(!r.is_pending());
        assert!(matches!(r.offer(read(changed), &current), Reload::Nothing), "already in force");
    }

    #[test]
    fn a_half_written_read_between_two_others_is_never_applied() {
        let (mut r, current) = start();
        let whole = "port 2511\nroute 172.18.0.0/16\n";
        assert!(matches!(r.offer(read("port 2511\nroute 172.1"), &current), Reload::Nothing));
        assert!(matches!(r.offer(read(whole), &current), Reload::Nothing));
        assert!(matches!(r.offer(read(whole), &current), Reload::Apply { .. }));
    }

    #[test]
    fn a_bad_line_keeps_the_last_good_config_and_is_named_by_its_number() {
        let (mut r, current) = start();
        let bad = "port 2511\nroute 172.17.0.0/16\nroute 10.1.2.3/99\n";
        assert!(matches!(r.offer(read(bad), &current), Reload::Nothing));
        let why = rejected(r.offer(read(bad), &current));
        assert!(why.starts_with("/etc/dockroute/dockroute.conf: line 3:"), "{why}");
        assert!(why.ends_with("(keeping the last good config)"), "{why}");
        // Said once: the same bad text read again is not news.
        assert!(matches!(r.offer(read(bad), &current), Reload::Nothing));
        // Fixing it applies again (two reads).
        assert!(matches!(r.offer(read(GOOD), &current), Reload::Nothing));
        assert!(matches!(r.offer(read(GOOD), &current), Reload::Apply { .. }));
    }

    #[test]
    fn an_empty_file_is_not_applied() {
        let (mut r, current) = start();
        assert!(matches!(r.offer(read(" \n"), &current), Reload::Nothing));
        let why = rejected(r.offer(read(" \n"), &current));
        assert_eq!(why, "/etc/dockroute/dockroute.conf is empty; not applied (keeping the last good config)");
    }

    #[test]
    fn an_unreadable_file_is_reported_once_and_its_return_applies_again() {
        let (mut r, current) = start();
        let gone = || Err(io::Error::new(io::ErrorKind::NotFound, "No such file or directory"));
        let why = rejected(r.offer(gone(), &current));
        assert!(why.starts_with("cannot read /etc/dockroute/dockroute.conf: No such file"), "{why}");
        assert!(matches!(r.offer(gone(), &current), Reload::Nothing), "reported once");
        // Back with the same text: nothing was in force any more, so it is new again.
        assert!(matches!(r.offer(read(GOOD), &current), Reload::Nothing));
        assert!(matches!(r.offer(read(GOOD), &current), Reload::Apply { .. }));
    }

    #[test]
    fn check_reads_the_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dockroute.conf");
        std::fs::write(&path, GOOD).unwrap();
        let current = Config::parse(GOOD, dir.path()).unwrap();
        let mut r = ConfigReload::new(&path, Some(GOOD.into()));
        assert_eq!(r.path(), path);
        std::fs::write(&path, "route 172.20.0.0/16\n").unwrap();
        assert!(matches!(r.check(&current), Reload::Nothing));
        let Reload::Apply { diff, .. } = r.check(&current) else { panic!("not applied") };
        assert_eq!((diff.routes_added.len(), diff.routes_removed.len()), (1, 1));
    }
}
