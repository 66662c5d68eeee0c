//! macOS's resolver directory (`/etc/resolver/<domain>`, see resolver(5)): one file per zone
//! naming our server, which every resolver on the Mac honours for that domain and below.
//!
//! We write only files that do not exist or that we wrote (they start with `MARKER`), record
//! which ones we own in a file beside the config, and remove exactly those that still carry
//! the marker: on stop, on every change of zones, and on uninstall (after a crash too). A file
//! someone else wrote is never touched; it is reported as a conflict. Portable code: the tests
//! run it on any OS against a temporary directory.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The first line of every file we write: how we know a file is ours.
pub const MARKER: &str = "# Written by dockroute-helper for its DNS server; removed when its tunnel stops.";
/// The record of our files, beside the helper's config file.
pub const RECORD_NAME: &str = "dockroute-resolver.list";
/// macOS's resolver directory (here, not in `macos.rs`: uninstall cleans it from any OS's build).
pub const MACOS_RESOLVER_DIR: &str = "/etc/resolver";

/// A zone's file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Missing,
    /// Ours, with this content.
    Ours(String),
    /// Someone else's (or unreadable): never touched.
    Foreign,
}

/// What to do, decided from what was found (pure).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Zones whose file to (re)write.
    pub write: Vec<String>,
    /// Zones whose file (ours) to remove.
    pub remove: Vec<String>,
    /// Zones wanted whose file belongs to someone else.
    pub conflicts: Vec<String>,
    /// The zones we own afterwards: the new record.
    pub owned: BTreeSet<String>,
}

/// What a sync or clear did, in words for the log and the status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub written: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    pub problems: Vec<String>,
}

/// The file's content for a server.
pub fn content(server: IpAddr) -> String {
    format!("{MARKER}\nnameserver {server}\n")
}

/// Zones `wanted` (with `text` each), given the files `found` for wanted and recorded zones
/// and the zones `recorded` as ours.
pub fn plan(
    wanted: &BTreeSet<String>,
    text: &str,
    found: &BTreeMap<String, Found>,
    recorded: &BTreeSet<String>,
) -> Plan {
    let mut p = Plan::default();
    let state = |z: &String| found.get(z).cloned().unwrap_or(Found::Missing);
    for z in wanted {
        match state(z) {
            Found::Missing => p.write.push(z.clone()),
            Found::Ours(c) if c != text => p.write.push(z.clone()),
            Found::Ours(_) => {}
            Found::Foreign => {
                p.conflicts.push(z.clone());
                continue;
            }
        }
        p.owned.insert(z.clone());
    }
    for z in recorded.difference(wanted) {
        // Gone already, or replaced by someone: forgotten either way; only ours is removed.
        if let Found::Ours(_) = state(z) {
            p.remove.push(z.clone());
        }
    }
    p
}

pub struct ResolverDir {
    dir: PathBuf,
    record: PathBuf,
}

impl ResolverDir {
    /// `dir`: /etc/resolver (a temporary directory in tests); `record`: where we note our files.
    pub fn new(dir: impl Into<PathBuf>, record: impl Into<PathBuf>) -> ResolverDir {
        ResolverDir { dir: dir.into(), record: record.into() }
    }

    pub fn path_of(&self, zone: &str) -> PathBuf {
        self.dir.join(zone)
    }

    /// Makes the directory hold our file for exactly `zones`, pointing at `server`.
    pub fn sync(&self, zones: &BTreeSet<String>, server: IpAddr) -> Report {
        let mut report = Report::default();
        let recorded = self.recorded(&mut report);
        let text = content(server);
        let found: BTreeMap<String, Found> = zones.union(&recorded).map(|z| (z.clone(), self.found(z))).collect();
        let plan = plan(zones, &text, &found, &recorded);
        if !plan.write.is_empty() {
            if let Err(e) = fs::create_dir_all(&self.dir) {
                report.problems.push(format!("cannot create {}: {e}", self.dir.display()));
            }
        }
        let mut owned = plan.owned.clone();
        for z in &plan.write {
            let path = self.path_of(z);
            match fs::write(&path, &text) {
                Ok(()) => report.written.push(path),
                Err(e) => {
                    report.problems.push(format!("cannot write {}: {e}", path.display()));
                    owned.remove(z);
                }
            }
        }
        for z in &plan.conflicts {
            let path = self.path_of(z).display().to_string();
            report.problems.push(format!(
                "{path} was not written by dockroute-helper: left alone, so .{z} names do not resolve here"
            ));
        }
        self.remove(&plan.remove, &mut report, &mut owned);
        self.save_record(&owned, &mut report);
        report
    }

    /// Removes every file of ours (the record's, still marked) and the record.
    pub fn clear(&self) -> Report {
        self.sync(&BTreeSet::new(), IpAddr::from([0, 0, 0, 0]))
    }

    fn remove(&self, zones: &[String], report: &mut Report, owned: &mut BTreeSet<String>) {
        for z in zones {
            let path = self.path_of(z);
            match fs::remove_file(&path) {
                Ok(()) => report.removed.push(path),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    report.problems.push(format!("cannot remove {}: {e}", path.display()));
                    owned.insert(z.clone());
                }
            }
        }
    }

    fn found(&self, zone: &str) -> Found {
        match fs::read_to_string(self.path_of(zone)) {
            Ok(text) => found_in(text),
            Err(e) if e.kind() == ErrorKind::NotFound => Found::Missing,
            Err(_) => Found::Foreign,
        }
    }

    fn recorded(&self, report: &mut Report) -> BTreeSet<String> {
        match fs::read_to_string(&self.record) {
            Ok(text) => parse_record(&text),
            Err(e) if e.kind() == ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => {
                report.problems.push(format!("cannot read {}: {e}", self.record.display()));
                BTreeSet::new()
            }
        }
    }

    fn save_record(&self, owned: &BTreeSet<String>, report: &mut Report) {
        let result = if owned.is_empty() {
            match fs::remove_file(&self.record) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                other => other,
            }
        } else {
            let text = record_text(&self.dir, owned);
            if let Some(parent) = self.record.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = fs::create_dir_all(parent);
            }
            fs::write(&self.record, text)
        };
        if let Err(e) = result {
            report.problems.push(format!("cannot update {}: {e}", self.record.display()));
        }
    }
}

/// A zone's file, read: ours when its first line is `MARKER`.
pub fn found_in(text: String) -> Found {
    if text.lines().next() == Some(MARKER) {
        Found::Ours(text)
    } else {
        Found::Foreign
    }
}

/// The zones a record names; a line that is not a zone name is ignored (never a path).
pub fn parse_record(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| dockroute_api::dns_name::name_problem(l, false).is_none())
        .map(str::to_string)
        .collect()
}

/// The record for the files of `owned` in `dir`, as `parse_record` reads it.
pub fn record_text(dir: &Path, owned: &BTreeSet<String>) -> String {
    let mut text = format!("# Files dockroute-helper wrote in {}; it removes them.\n", dir.display());
    owned.iter().for_each(|z| text.push_str(&format!("{z}\n")));
    text
}

/// The record's path for a helper run with `config`.
pub fn record_beside(config: &Path) -> PathBuf {
    config.with_file_name(RECORD_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(z: &[&str]) -> BTreeSet<String> {
        z.iter().map(|s| s.to_string()).collect()
    }

    fn setup() -> (tempfile::TempDir, ResolverDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ResolverDir::new(tmp.path().join("etc/resolver"), tmp.path().join("conf/dockroute-resolver.list"));
        (tmp, dir)
    }

    fn listing(tmp: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(tmp.path().join("etc/resolver"))
            .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn the_plan_writes_missing_and_stale_files_and_removes_only_ours() {
        let text = content("192.168.251.1".parse().unwrap());
        let found = BTreeMap::from([
            ("docker".to_string(), Found::Ours(text.clone())),
            ("shop.test".to_string(), Found::Ours("old".into())),
            ("theirs.test".to_string(), Found::Foreign),
            ("old.test".to_string(), Found::Ours(text.clone())),
            ("replaced.test".to_string(), Found::Foreign),
        ]);
        let wanted = zones(&["docker", "shop.test", "new.test", "theirs.test"]);
        let recorded = zones(&["docker", "shop.test", "old.test", "replaced.test", "vanished.test"]);
        let p = plan(&wanted, &text, &found, &recorded);
        assert_eq!(p.write, ["new.test", "shop.test"], "missing or stale; docker is current");
        assert_eq!(p.remove, ["old.test"], "no longer wanted and still ours");
        assert_eq!(p.conflicts, ["theirs.test"]);
        assert_eq!(p.owned, zones(&["docker", "new.test", "shop.test"]));
    }

    #[test]
    fn sync_writes_our_files_and_clear_removes_exactly_them() {
        let (tmp, dir) = setup();
        let server: IpAddr = "192.168.251.1".parse().unwrap();
        let r = dir.sync(&zones(&["docker", "shop.test"]), server);
        assert_eq!((r.written.len(), r.problems.len()), (2, 0), "{r:?}");
        assert_eq!(listing(&tmp), ["docker", "shop.test"]);
        let text = fs::read_to_string(dir.path_of("docker")).unwrap();
        assert_eq!(text, format!("{MARKER}\nnameserver 192.168.251.1\n"));
        // The same again: nothing rewritten. A zone dropped: its file goes.
        assert_eq!(dir.sync(&zones(&["docker", "shop.test"]), server), Report::default());
        let r = dir.sync(&zones(&["docker"]), server);
        assert_eq!((r.written.len(), r.removed), (0, vec![dir.path_of("shop.test")]));
        // An admin's own file for another domain stays through all of it.
        fs::write(dir.path_of("corp.example"), "nameserver 10.0.0.53\n").unwrap();
        let r = dir.clear();
        assert_eq!(r.removed, [dir.path_of("docker")]);
        assert_eq!(listing(&tmp), ["corp.example"]);
        assert!(!tmp.path().join("conf/dockroute-resolver.list").exists(), "nothing owned: no record");
        assert_eq!(dir.clear(), Report::default(), "idempotent");
    }

    #[test]
    fn a_file_someone_else_wrote_is_never_overwritten_nor_removed() {
        let (tmp, dir) = setup();
        fs::create_dir_all(tmp.path().join("etc/resolver")).unwrap();
        fs::write(dir.path_of("docker"), "nameserver 127.0.0.1\nport 5353\n").unwrap();
        let r = dir.sync(&zones(&["docker", "shop.test"]), "192.168.251.1".parse().unwrap());
        assert_eq!(r.written, [dir.path_of("shop.test")]);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].contains("was not written by dockroute-helper: left alone"), "{r:?}");
        assert_eq!(fs::read_to_string(dir.path_of("docker")).unwrap(), "nameserver 127.0.0.1\nport 5353\n");
        dir.clear();
        assert_eq!(listing(&tmp), ["docker"], "theirs stays, ours went");
        // Ours, then replaced by someone: forgotten, not removed.
        dir.sync(&zones(&["shop.test"]), "192.168.251.1".parse().unwrap());
        fs::write(dir.path_of("shop.test"), "nameserver 10.1.1.1\n").unwrap();
        let r = dir.clear();
        assert!(r.removed.is_empty() && r.problems.is_empty(), "{r:?}");
        assert_eq!(fs::read_to_string(dir.path_of("shop.test")).unwrap(), "nameserver 10.1.1.1\n");
    }

    #[test]
    fn after_a_crash_the_record_still_says_what_to_remove_and_never_a_path() {
        let (tmp, dir) = setup();
        dir.sync(&zones(&["docker"]), "192.168.251.1".parse().unwrap());
        // A later run (or uninstall) knows only the record; a line that is not a zone is ignored.
        let record = tmp.path().join("conf/dockroute-resolver.list");
        fs::write(tmp.path().join("victim"), "keep").unwrap();
        let mut text = fs::read_to_string(&record).unwrap();
        text.push_str("../../victim\n/etc/hosts\n");
        fs::write(&record, text).unwrap();
        let again = ResolverDir::new(tmp.path().join("etc/resolver"), &record);
        assert_eq!(again.clear().removed, [dir.path_of("docker")]);
        assert!(tmp.path().join("victim").exists());
        assert_eq!(
            record_beside(Path::new("/etc/dockroute/dockroute.conf")),
            Path::new("/etc/dockroute/dockroute-resolver.list")
        );
    }
}
