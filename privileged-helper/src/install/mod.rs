//! `dockroute-helper install` / `uninstall`: make the helper a boot-time service that restarts
//! on failure, and undo exactly that. The flow is the same everywhere; what a service manager
//! does differently lives behind [`ServiceManager`]: `systemd.rs` (Linux), `launchd.rs` (macOS).
//!
//! File paths are joined onto `InstallOptions::root` (production: "/") so tests can install into
//! a temp dir, for either platform on any OS; commands go through [`System`] so tests can record
//! them. Install writes a small key=value record of what it created (group, config,
//! directories) and uninstall removes only what the record names, so it never deletes an
//! admin's own group or directories.

mod launchd;
mod systemd;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use dockroute_stdx::process::Cmd;

use crate::default_config::DEFAULT_CONFIG;

pub use launchd::{render_launchd_plist, render_smappservice_plist, APP_BUNDLE_ID, BUNDLE_PROGRAM, LAUNCHD_LABEL};
pub use systemd::{
    render_packaged_systemd_unit, render_systemd_unit, GROUP, PACKAGED_CONFIG, PACKAGED_HELPER, SERVICE_NAME,
};

/// Both flavours build and test on any OS; the binary constructs only its own, hence the allow.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Linux,
    MacOs,
}

impl Platform {
    fn manager(self) -> &'static dyn ServiceManager {
        match self {
            Platform::Linux => &systemd::Systemd,
            Platform::MacOs => &launchd::Launchd,
        }
    }

    /// The systemd unit or launchd plist that install writes.
    pub fn service_file(self) -> &'static Path {
        Path::new(self.manager().files().service)
    }

    pub fn default_config_path(self) -> &'static Path {
        Path::new(self.manager().files().config)
    }
}

/// Where a platform keeps what install makes (paths as the live system sees them).
struct Files {
    service: &'static str,
    /// /var/lib does not exist on macOS.
    record: &'static str,
    config: &'static str,
    logs: Logs,
}

/// Where the service's logs end up; purge removes them.
enum Logs {
    /// A directory: removed if install created it, or if `ours_alone` (nothing else writes there).
    Dir { path: &'static str, ours_alone: bool },
    /// A file only the helper's service writes, in a directory that always exists.
    File(&'static str),
}

/// What differs between systemd and launchd; everything else is the shared flow below.
trait ServiceManager {
    fn files(&self) -> &'static Files;
    /// The service definition for `spec`.
    fn render(&self, spec: &ServiceSpec) -> String;
    /// Before the record is written: what the service needs besides its definition (the API
    /// group, a log directory, a boot link, the program), recorded in `cx.rec` when created.
    fn prepare(&self, cx: &mut Ctx, spec: &ServiceSpec) -> Result<()>;
    /// After the files are written: start the service (and enable it at boot), or restart it
    /// when its `definition` (or `cx.program`) changed.
    fn activate(&self, cx: &mut Ctx, definition: Change) -> Result<()>;
    /// Stops the service and removes its definition and what `prepare` created (per `rec`).
    fn deactivate(&self, cx: &mut Ctx, rec: &Record) -> Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Absolute path of the helper binary: the service manager runs it (Linux), or install
    /// copies it to where the service runs it from (macOS, `launchd::INSTALLED_HELPER`).
    pub helper_path: PathBuf,
    /// Absolute path of the config file, as the running helper sees it.
    pub config_path: PathBuf,
    /// macOS: the app whose code may use the API besides root (`run --app-bundle`).
    pub app_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct InstallOptions {
    pub root: PathBuf,
    pub platform: Platform,
    pub spec: ServiceSpec,
    pub purge: bool,
}

/// What install/uninstall did or skipped, one human-readable line each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.lines.iter().try_for_each(|l| writeln!(f, "{l}"))
    }
}

/// The live system: commands that change or query it, whether systemd manages it, and time.
pub trait System {
    /// Runs `program args...`; a spawn failure or non-zero exit is an error naming the command
    /// and carrying its stderr.
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String>;
    fn systemd_running(&self) -> bool;
    /// Waits before trying again (launchd letting go of a label); tests only record it.
    fn sleep(&mut self, d: std::time::Duration) {
        std::thread::sleep(d);
    }
}

pub struct RealSystem;

impl System for RealSystem {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String> {
        let cmd = Cmd::new(program).args(args.iter().copied());
        tracing::debug!("running `{}`", cmd.line());
        Ok(cmd.run()?)
    }

    fn systemd_running(&self) -> bool {
        Path::new("/run/systemd/system").is_dir()
    }
}

fn cmdline(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

/// What install created, one `created-KIND=VALUE` line each; paths as the live system sees them.
type Record = BTreeSet<String>;

fn created<'r>(rec: &'r Record, kind: &'r str) -> impl Iterator<Item = &'r str> + 'r {
    rec.iter().filter_map(move |l| l.strip_prefix("created-")?.strip_prefix(kind)?.strip_prefix('='))
}

/// Absolute, UTF-8 and free of control characters, since the paths go into unit, plist and
/// record lines.
fn validate(spec: &ServiceSpec) -> Result<()> {
    let app = spec.app_bundle.iter().map(|p| ("app bundle", p));
    for (what, p) in [("helper", &spec.helper_path), ("config", &spec.config_path)].into_iter().chain(app) {
        let s = p.to_str().with_context(|| format!("{what} path {} is not valid UTF-8", p.display()))?;
        if !p.is_absolute() || s.contains(char::is_control) {
            bail!("{what} path {s:?} must be absolute and free of control characters");
        }
    }
    Ok(())
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Same,
    Created,
    Updated,
}

/// One install or uninstall run: where files go, the system, and what to report.
struct Ctx<'a> {
    root: &'a Path,
    sys: &'a mut dyn System,
    rec: Record,
    done: Vec<String>,
    notes: Vec<String>,
    /// How the program the service runs changed, when install puts it in place (macOS copies
    /// it): a changed program needs a restart as much as a changed definition.
    program: Change,
}

impl<'a> Ctx<'a> {
    fn new(root: &'a Path, sys: &'a mut dyn System) -> Ctx<'a> {
        Ctx { root, sys, rec: Record::default(), done: Vec::new(), notes: Vec::new(), program: Change::Same }
    }

    fn real(&self, live: &Path) -> PathBuf {
        self.root.join(live.strip_prefix("/").unwrap_or(live))
    }

    /// A query: failure is an answer, not an error.
    fn ok(&mut self, program: &str, args: &[&str]) -> bool {
        self.sys.run(program, args).is_ok()
    }

    fn cmd(&mut self, program: &str, args: &[&str]) -> Result<()> {
        self.sys.run(program, args)?;
        self.done.push(format!("ran `{}`", cmdline(program, args)));
        Ok(())
    }

    /// Creates the missing ancestors of `live_dir` (0755), recording each one.
    fn ensure_dirs(&mut self, live_dir: &Path) -> Result<()> {
        let missing: Vec<PathBuf> = (live_dir.ancestors().filter(|a| a.parent().is_some()))
            .take_while(|a| !self.real(a).is_dir())
            .map(Path::to_path_buf)
            .collect();
        for dir in missing.into_iter().rev() {
            let real = self.real(&dir);
            fs::create_dir(&real).with_context(|| format!("cannot create directory {}", real.display()))?;
            fs::set_permissions(&real, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot chmod {}", real.display()))?;
            self.rec.insert(format!("created-dir={}", dir.display()));
        }
        Ok(())
    }

    /// Writes a 0644 file through a temp file and rename (`write_file`).
    fn write(&mut self, live: &Path, content: &str) -> Result<Change> {
        self.write_file(live, content.as_bytes(), 0o644)
    }

    /// Writes through a temp file and rename so a crash never leaves half a file; identical
    /// content is left alone so a repeated install keeps bytes and mtime.
    fn write_file(&mut self, live: &Path, content: &[u8], mode: u32) -> Result<Change> {
        let path = self.real(live);
        let change = match fs::read(&path) {
            Ok(old) if old == content => return Ok(Change::Same),
            Ok(_) => Change::Updated,
            Err(e) if e.kind() == ErrorKind::NotFound => Change::Created,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        self.ensure_dirs(parent(live))?;
        // launchd and systemd want root-owned definitions (root:wheel is 0:0 on macOS); a test
        // root may belong to an unprivileged user, so only the live system insists.
        let live_system = self.root == Path::new("/");
        let chown = |tmp: &Path| match std::os::unix::fs::chown(tmp, Some(0), Some(0)) {
            Err(e) if live_system => Err(std::io::Error::new(e.kind(), format!("cannot chown to root: {e}"))),
            _ => Ok(()),
        };
        dockroute_stdx::fs::write_atomic_then(&path, content, mode, chown)
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.done.push(format!("wrote {}", live.display()));
        Ok(change)
    }

    /// Removes a file or symlink; false if it was not there.
    fn remove(&mut self, live: &Path) -> Result<bool> {
        let path = self.real(live);
        match fs::remove_file(&path) {
            Ok(()) => self.done.push(format!("removed {}", live.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
        }
        Ok(true)
    }

    fn read_record(&mut self, live: &Path) -> Result<Option<Record>> {
        let path = self.real(live);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text.lines().filter(|l| l.starts_with("created-")).map(String::from).collect())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read install record {}", path.display())),
        }
    }

    fn report(mut self, nothing: String) -> Report {
        if self.done.is_empty() {
            self.done.push(nothing);
        }
        self.done.append(&mut self.notes);
        self.done.iter().for_each(|l| tracing::info!("{l}"));
        Report { lines: self.done }
    }
}

pub fn install(opts: &InstallOptions, sys: &mut dyn System) -> Result<Report> {
    validate(&opts.spec)?;
    let manager = opts.platform.manager();
    let rec_file = Path::new(manager.files().record);
    let mut cx = Ctx::new(&opts.root, sys);
    let old = cx.read_record(rec_file)?;
    cx.rec = old.clone().unwrap_or_default();
    let result = install_files(manager, &opts.spec, &mut cx);
    // Record what was created even when a later step failed, so uninstall can still undo it.
    cx.ensure_dirs(parent(rec_file))?;
    if old.as_ref() != Some(&cx.rec) {
        let text = "# What `dockroute-helper install` created; uninstall removes only these.\n".to_string()
            + &cx.rec.iter().map(|l| format!("{l}\n")).collect::<String>();
        cx.write(rec_file, &text)?;
    }
    manager.activate(&mut cx, result?)?;
    let service = manager.files().service;
    Ok(cx.report(format!("dockroute-helper is already installed ({service}); nothing changed")))
}

/// Everything install puts on disk; returns how the service definition changed.
fn install_files(manager: &dyn ServiceManager, spec: &ServiceSpec, cx: &mut Ctx) -> Result<Change> {
    manager.prepare(cx, spec)?;
    if !cx.real(&spec.config_path).exists() {
        cx.write(&spec.config_path, DEFAULT_CONFIG)?;
        cx.rec.insert(format!("created-config={}", spec.config_path.display()));
    }
    cx.write(Path::new(manager.files().service), &manager.render(spec))
}

pub fn uninstall(opts: &InstallOptions, sys: &mut dyn System) -> Result<Report> {
    validate(&opts.spec)?;
    let manager = opts.platform.manager();
    let files = manager.files();
    let rec_file = Path::new(files.record);
    let mut cx = Ctx::new(&opts.root, sys);
    let rec = cx.read_record(rec_file)?.unwrap_or_default();
    manager.deactivate(&mut cx, &rec)?;
    if opts.platform == Platform::MacOs {
        remove_resolver_files(&mut cx, &opts.spec.config_path);
    }
    let mut dirs: BTreeSet<PathBuf> = created(&rec, "dir").map(PathBuf::from).collect();
    // The local CA: out of every trust store it was added to, then its key and certificate
    // (a CA nobody trusts any more is worth nothing kept; a new install makes a new one).
    let ca = crate::https::ca::CaFiles::for_config(&cx.real(&opts.spec.config_path));
    if ca.trust_record.exists() || ca.key.exists() {
        for line in crate::https::cli::untrust_all(&ca)? {
            cx.done.push(line);
        }
        for file in [&ca.key, &ca.cert] {
            match fs::remove_file(file) {
                Ok(()) => cx.done.push(format!("removed {}", file.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow::anyhow!("cannot remove {}: {e}", file.display())),
            }
        }
    }
    if opts.purge {
        let conf = &opts.spec.config_path;
        // What the helper itself writes beside its config: the secret, and the share's keys.
        let written = [conf.with_file_name("dockroute.secret"), crate::share::state::path_for(conf)];
        for file in std::iter::once(conf.clone()).chain(written).chain(created(&rec, "config").map(PathBuf::from)) {
            cx.remove(&file)?;
        }
        match files.logs {
            // Logs are ours alone: a dir install created, or one nothing else writes to.
            Logs::Dir { path, ours_alone } => {
                let (logs, real) = (Path::new(path), cx.real(Path::new(path)));
                if (dirs.contains(logs) || ours_alone) && real.is_dir() {
                    fs::remove_dir_all(&real).with_context(|| format!("cannot remove {}", real.display()))?;
                    cx.done.push(format!("removed {path}"));
                }
            }
            Logs::File(path) => {
                cx.remove(Path::new(path))?;
            }
        }
        // Even after a plain uninstall dropped the record: our own config dir, once empty.
        if parent(conf).file_name().is_some_and(|n| n.eq_ignore_ascii_case("dockroute")) {
            dirs.insert(parent(conf).to_path_buf());
        }
    }
    cx.remove(rec_file)?;
    // Deepest first (a path sorts after its ancestors), and only when empty: a kept config or
    // log keeps its directory.
    for dir in dirs.iter().rev() {
        let real = cx.real(dir);
        match fs::remove_dir(&real) {
            Ok(()) => cx.done.push(format!("removed directory {}", dir.display())),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove directory {}", real.display())),
        }
    }
    Ok(cx.report("dockroute-helper is not installed; nothing to remove".into()))
}

/// The /etc/resolver files a helper that did not stop cleanly left (a stopped one removed its
/// own): exactly those its record names that still carry its marker.
fn remove_resolver_files(cx: &mut Ctx, config: &Path) {
    use crate::dns::resolver::files::{record_beside, ResolverDir, MACOS_RESOLVER_DIR};
    let dir = ResolverDir::new(cx.real(Path::new(MACOS_RESOLVER_DIR)), cx.real(&record_beside(config)));
    let report = dir.clear();
    for path in report.removed {
        let live = Path::new("/").join(path.strip_prefix(cx.root).unwrap_or(&path));
        cx.done.push(format!("removed {}", live.display()));
    }
    cx.notes.extend(report.problems);
}

#[cfg(test)]
mod fake;

#[cfg(test)]
mod tests {
    use super::fake::*;
    use super::*;

    #[test]
    fn bad_paths_are_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path(), Platform::Linux, false);
        o.spec.helper_path = "bin/dockroute-helper".into();
        let e = install(&o, &mut Fake::new(false, true)).unwrap_err().to_string();
        assert!(e.contains("\"bin/dockroute-helper\" must be absolute"), "{e}");
        o.spec.helper_path = "/bin/x\ny".into();
        assert!(uninstall(&o, &mut Fake::new(false, true)).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
