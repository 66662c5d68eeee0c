//! `dockroute-helper install` / `uninstall`: make the helper a boot-time service that restarts
//! on failure (systemd on Linux, launchd on macOS), and undo exactly that.
//!
//! File paths are joined onto `InstallOptions::root` (production: "/") so tests can install into
//! a temp dir; commands go through [`System`] so tests can record them. Install writes a small
//! key=value record of what it created (group, config, directories) and uninstall removes only
//! what the record names, so it never deletes an admin's own group or directories.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub const SERVICE_NAME: &str = "dockroute-helper.service";
pub const LAUNCHD_LABEL: &str = "dev.dockroute.helper";
pub const GROUP: &str = "dockroute";
pub const APP_BUNDLE_ID: &str = "dev.dockroute.app";
pub const BUNDLE_PROGRAM: &str = "Contents/MacOS/dockroute-helper";
const UNIT_PATH: &str = "/etc/systemd/system/dockroute-helper.service";
const WANTS_LINK: &str = "/etc/systemd/system/multi-user.target.wants/dockroute-helper.service";
const PLIST_PATH: &str = "/Library/LaunchDaemons/dev.dockroute.helper.plist";
const MAC_LOG_DIR: &str = "/Library/Logs/Dockroute";
const MAC_LOG_FILE: &str = "/Library/Logs/Dockroute/helper.log";
const MAC_CONFIG: &str = "/Library/Application Support/Dockroute/dockroute.conf";
const MAC_RECORD: &str = "/Library/Application Support/Dockroute/install.state";
const NO_SYSTEMD: &str = "systemd is not running: skipped systemctl";
const DEFAULT_CONFIG: &str = "# Dockroute helper configuration, written by `dockroute-helper install`.
# One `key value` per line (mac-docker-connector's format). Added or removed `route` lines
# apply live; other changes need a helper restart. The shared secret is created beside this file.
addr 192.168.251.1/24
port 2511
mtu 1400
host 127.0.0.1
# route 172.17.0.0/16
";

/// Both flavours build and test on any OS; the binary constructs only its own, hence the allow.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Linux,
    MacOs,
}

impl Platform {
    /// The systemd unit or launchd plist that install writes.
    pub fn service_file(self) -> &'static Path {
        Path::new(if self == Platform::Linux { UNIT_PATH } else { PLIST_PATH })
    }

    /// Install's record of what it created (/var/lib does not exist on macOS).
    pub fn record_file(self) -> &'static Path {
        Path::new(if self == Platform::Linux { "/var/lib/dockroute/install.state" } else { MAC_RECORD })
    }

    pub fn default_config_path(self) -> &'static Path {
        Path::new(if self == Platform::Linux { "/etc/dockroute/dockroute.conf" } else { MAC_CONFIG })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Absolute path of the helper binary, as the service manager will run it.
    pub helper_path: PathBuf,
    /// Absolute path of the config file, as the running helper sees it.
    pub config_path: PathBuf,
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

/// The live system: commands that change or query it, and whether systemd manages it.
pub trait System {
    /// Runs `program args...`; a spawn failure or non-zero exit is an error naming the command.
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String>;
    fn systemd_running(&self) -> bool;
}

pub struct RealSystem;

impl System for RealSystem {
    fn run(&mut self, program: &str, args: &[&str]) -> Result<String> {
        let line = cmdline(program, args);
        tracing::debug!("running `{line}`");
        let out = Command::new(program).args(args).output().with_context(|| format!("cannot run `{line}`"))?;
        if !out.status.success() {
            bail!("`{line}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn systemd_running(&self) -> bool {
        Path::new("/run/systemd/system").is_dir()
    }
}

fn cmdline(program: &str, args: &[&str]) -> String {
    std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ")
}

pub fn render_systemd_unit(spec: &ServiceSpec) -> String {
    let (helper, config) = (spec.helper_path.to_string_lossy(), spec.config_path.to_string_lossy());
    // The program path is never variable-expanded, its arguments are.
    let exec = format!("{} run --config {}", sd_word(&helper, false), sd_word(&config, true));
    let conf_dir = spec.config_path.parent().unwrap_or(Path::new("/")).to_string_lossy();
    let rw = sd_word(&format!("-{conf_dir}"), false);
    format!(
        "# Written by `dockroute-helper install`; `dockroute-helper uninstall` removes it.
[Unit]
Description=Dockroute privileged helper (TUN device and routes to Docker containers)
After=network-online.target
Wants=network-online.target
# Restart=always should mean always, not give up after five quick failures.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart={exec}
Restart=always
RestartSec=1
KillSignal=SIGTERM
TimeoutStopSec=10
RuntimeDirectory=dockroute
# Hardening that still allows the TUN device, routes and the API socket.
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE
ProtectSystem=full
ProtectHome=true
PrivateTmp=true
NoNewPrivileges=true
DeviceAllow=/dev/net/tun rw
# ProtectSystem=full makes /etc read-only, but the helper creates its secret beside the config.
ReadWritePaths={rw}

[Install]
WantedBy=multi-user.target
"
    )
}

/// One systemd word: `%` (specifiers) and, in ExecStart arguments, `$` (variables) are doubled;
/// backslash and quotes are escaped; whitespace needs double quotes.
fn sd_word(s: &str, dollar: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            '\\' | '"' => out.extend(['\\', c]),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    let quoted = s.is_empty() || s.contains(|c: char| c.is_whitespace() || "'\";".contains(c));
    let q = if quoted { "\"" } else { "" };
    format!("{q}{out}{q}")
}

/// Plist for `launchctl bootstrap`: ProgramArguments[0] is the helper's absolute path.
pub fn render_launchd_plist(spec: &ServiceSpec) -> String {
    let (helper, config) = (spec.helper_path.to_string_lossy(), spec.config_path.to_string_lossy());
    launchd_plist("", &[&helper, "run", "--config", &config])
}

/// Plist shipped at `Contents/Library/LaunchDaemons/` in the app for SMAppService: the program
/// is bundle-relative (BundleProgram), so ProgramArguments[0] is only argv[0].
pub fn render_smappservice_plist() -> String {
    let program = format!(
        "  <key>BundleProgram</key>\n  <string>{BUNDLE_PROGRAM}</string>\n  \
         <key>AssociatedBundleIdentifiers</key>\n  <array>\n    <string>{APP_BUNDLE_ID}</string>\n  </array>\n"
    );
    launchd_plist(&program, &["dockroute-helper", "run", "--config", MAC_CONFIG])
}

fn launchd_plist(program: &str, args: &[&str]) -> String {
    let args: String = args.iter().map(|a| format!("    <string>{}</string>\n", xml(a))).collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
{program}  <key>ProgramArguments</key>
  <array>
{args}  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
  <key>ProcessType</key>
  <string>Standard</string>
  <key>StandardOutPath</key>
  <string>{MAC_LOG_FILE}</string>
  <key>StandardErrorPath</key>
  <string>{MAC_LOG_FILE}</string>
</dict>
</plist>
"#
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What install created, one `created-KIND=VALUE` line each; paths as the live system sees them.
type Record = BTreeSet<String>;

fn created<'r>(rec: &'r Record, kind: &'r str) -> impl Iterator<Item = &'r str> + 'r {
    rec.iter().filter_map(move |l| l.strip_prefix("created-")?.strip_prefix(kind)?.strip_prefix('='))
}

/// Absolute, UTF-8 and free of control characters, since the paths go into unit, plist and
/// record lines.
fn validate(spec: &ServiceSpec) -> Result<()> {
    for (what, p) in [("helper", &spec.helper_path), ("config", &spec.config_path)] {
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
}

impl Ctx<'_> {
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

    /// Writes through a temp file and rename so a crash never leaves half a file; identical
    /// content is left alone so a repeated install keeps bytes and mtime.
    fn write(&mut self, live: &Path, content: &str) -> Result<Change> {
        let path = self.real(live);
        let change = match fs::read(&path) {
            Ok(old) if old == content.as_bytes() => return Ok(Change::Same),
            Ok(_) => Change::Updated,
            Err(e) if e.kind() == ErrorKind::NotFound => Change::Created,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        self.ensure_dirs(parent(live))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.tmp"));
        let ctx = || format!("cannot write {}", tmp.display());
        let mut f =
            fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp).with_context(ctx)?;
        f.write_all(content.as_bytes()).with_context(ctx)?;
        f.set_permissions(fs::Permissions::from_mode(0o644)).with_context(ctx)?;
        // launchd and systemd want root-owned definitions (root:wheel is 0:0 on macOS); a test
        // root may belong to an unprivileged user, so only the live system insists.
        if let Err(e) = std::os::unix::fs::chown(&tmp, Some(0), Some(0)) {
            if self.root == Path::new("/") {
                return Err(e).with_context(|| format!("cannot chown {} to root", tmp.display()));
            }
        }
        f.sync_all().with_context(ctx)?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
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
    let rec_file = opts.platform.record_file();
    let mut cx = Ctx { root: &opts.root, sys, rec: Record::default(), done: Vec::new(), notes: Vec::new() };
    let old = cx.read_record(rec_file)?;
    cx.rec = old.clone().unwrap_or_default();
    let result = install_files(opts, &mut cx);
    // Record what was created even when a later step failed, so uninstall can still undo it.
    cx.ensure_dirs(parent(rec_file))?;
    if old.as_ref() != Some(&cx.rec) {
        let text = "# What `dockroute-helper install` created; uninstall removes only these.\n".to_string()
            + &cx.rec.iter().map(|l| format!("{l}\n")).collect::<String>();
        cx.write(rec_file, &text)?;
    }
    activate(opts, &mut cx, result?)?;
    let service = opts.platform.service_file().display();
    Ok(cx.report(format!("dockroute-helper is already installed ({service}); nothing changed")))
}

fn install_files(opts: &InstallOptions, cx: &mut Ctx) -> Result<Change> {
    let (spec, linux) = (&opts.spec, opts.platform == Platform::Linux);
    if !linux {
        cx.notes.push("API socket group: the existing `admin` group".into());
    } else if !cx.ok("getent", &["group", GROUP]) {
        cx.cmd("groupadd", &["--system", GROUP])?;
        cx.rec.insert(format!("created-group={GROUP}"));
    }
    if !cx.real(&spec.config_path).exists() {
        cx.write(&spec.config_path, DEFAULT_CONFIG)?;
        cx.rec.insert(format!("created-config={}", spec.config_path.display()));
    }
    if !linux {
        cx.ensure_dirs(Path::new(MAC_LOG_DIR))?;
    }
    let text = if linux { render_systemd_unit(spec) } else { render_launchd_plist(spec) };
    let change = cx.write(opts.platform.service_file(), &text)?;
    // Without a running systemd, make the symlink `systemctl enable` would, so it starts at boot.
    let link = cx.real(Path::new(WANTS_LINK));
    if linux && !cx.sys.systemd_running() && fs::symlink_metadata(&link).is_err() {
        cx.ensure_dirs(parent(Path::new(WANTS_LINK)))?;
        symlink(format!("../{SERVICE_NAME}"), &link)
            .with_context(|| format!("cannot create symlink {}", link.display()))?;
        cx.done.push(format!("enabled at boot with {WANTS_LINK}"));
    }
    Ok(change)
}

/// Starts the service, or restarts it when its definition changed.
fn activate(opts: &InstallOptions, cx: &mut Ctx, service: Change) -> Result<()> {
    let unit = SERVICE_NAME;
    match opts.platform {
        Platform::Linux if !cx.sys.systemd_running() => {
            cx.notes.push(format!("{NO_SYSTEMD}; the service starts at the next boot with systemd"));
        }
        Platform::Linux if service == Change::Same => {
            if !(cx.ok("systemctl", &["is-enabled", "--quiet", unit])
                && cx.ok("systemctl", &["is-active", "--quiet", unit]))
            {
                cx.cmd("systemctl", &["enable", "--now", unit])?;
            }
        }
        Platform::Linux => {
            cx.cmd("systemctl", &["daemon-reload"])?;
            if service == Change::Created {
                cx.cmd("systemctl", &["enable", "--now", unit])?;
            } else {
                // `enable --now` would leave a running helper on the old definition.
                cx.cmd("systemctl", &["enable", unit])?;
                cx.cmd("systemctl", &["restart", unit])?;
            }
        }
        Platform::MacOs => {
            let target = format!("system/{LAUNCHD_LABEL}");
            let loaded = cx.ok("launchctl", &["print", &target]);
            if service != Change::Same || !loaded {
                // bootstrap refuses a loaded label, and a changed plist needs a fresh load anyway.
                if loaded {
                    cx.cmd("launchctl", &["bootout", &target])?;
                }
                // A label once `launchctl disable`d stays disabled across bootstraps.
                cx.cmd("launchctl", &["enable", &target])?;
                let plist = cx.real(Path::new(PLIST_PATH)).to_string_lossy().into_owned();
                cx.cmd("launchctl", &["bootstrap", "system", &plist])?;
            }
        }
    }
    Ok(())
}

pub fn uninstall(opts: &InstallOptions, sys: &mut dyn System) -> Result<Report> {
    validate(&opts.spec)?;
    let (linux, rec_file, service) =
        (opts.platform == Platform::Linux, opts.platform.record_file(), opts.platform.service_file());
    let mut cx = Ctx { root: &opts.root, sys, rec: Record::default(), done: Vec::new(), notes: Vec::new() };
    let rec = cx.read_record(rec_file)?.unwrap_or_default();
    let systemd = linux && cx.sys.systemd_running();
    if systemd && cx.real(service).exists() {
        cx.cmd("systemctl", &["disable", "--now", SERVICE_NAME])?;
    }
    let target = format!("system/{LAUNCHD_LABEL}");
    if !linux && cx.ok("launchctl", &["print", &target]) {
        cx.cmd("launchctl", &["bootout", &target])?;
    }
    if fs::symlink_metadata(cx.real(Path::new(WANTS_LINK))).is_ok_and(|m| m.is_symlink()) {
        cx.remove(Path::new(WANTS_LINK))?;
    }
    if cx.remove(service)? && systemd {
        cx.cmd("systemctl", &["daemon-reload"])?;
    } else if linux && !systemd && !cx.done.is_empty() {
        cx.notes.push(NO_SYSTEMD.into());
    }
    if created(&rec, "group").any(|g| g == GROUP) && cx.ok("getent", &["group", GROUP]) {
        cx.cmd("groupdel", &[GROUP])?;
    }
    let mut dirs: BTreeSet<PathBuf> = created(&rec, "dir").map(PathBuf::from).collect();
    if opts.purge {
        let conf = &opts.spec.config_path;
        for file in [conf.clone(), conf.with_file_name("dockroute.secret")]
            .into_iter()
            .chain(created(&rec, "config").map(PathBuf::from))
        {
            cx.remove(&file)?;
        }
        // Logs are ours alone: a dir install created, or macOS's /Library/Logs/Dockroute.
        let logs = Path::new(if linux { "/var/log/dockroute" } else { MAC_LOG_DIR });
        let real = cx.real(logs);
        if (dirs.contains(logs) || !linux) && real.is_dir() {
            fs::remove_dir_all(&real).with_context(|| format!("cannot remove {}", real.display()))?;
            cx.done.push(format!("removed {}", logs.display()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    /// Records commands; `failing` prefixes fail. groupadd/groupdel change what getent answers.
    struct Fake {
        calls: Vec<String>,
        systemd: bool,
        failing: Vec<&'static str>,
    }

    impl Fake {
        fn new(systemd: bool, group_exists: bool) -> Fake {
            Fake { calls: Vec::new(), systemd, failing: if group_exists { vec![] } else { vec!["getent"] } }
        }
    }

    impl System for Fake {
        fn run(&mut self, program: &str, args: &[&str]) -> Result<String> {
            let line = cmdline(program, args);
            self.calls.push(line.clone());
            if self.failing.iter().any(|f| line.starts_with(f)) {
                bail!("`{line}` failed");
            }
            match program {
                "groupadd" => self.failing.retain(|f| *f != "getent"),
                "groupdel" => self.failing.push("getent"),
                _ => {}
            }
            Ok(String::new())
        }
        fn systemd_running(&self) -> bool {
            self.systemd
        }
    }

    fn opts(root: &Path, platform: Platform, purge: bool) -> InstallOptions {
        let spec = ServiceSpec {
            helper_path: "/usr/local/bin/dockroute-helper".into(),
            config_path: platform.default_config_path().into(),
        };
        InstallOptions { root: root.into(), platform, spec, purge }
    }

    /// Every path under `root` (symlinks not followed) with its content or link target and mtime.
    fn tree(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
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

    fn paths(root: &Path) -> Vec<PathBuf> {
        tree(root).into_keys().collect()
    }

    fn read(root: &Path, live: &str) -> String {
        fs::read_to_string(root.join(&live[1..])).unwrap_or_else(|e| panic!("{live}: {e}"))
    }

    /// A root with an unrelated file, so the tests see install leave other things alone.
    fn root_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(dir.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        dir
    }

    fn has(report: &Report, text: &str) -> bool {
        report.lines.iter().any(|l| l.contains(text))
    }

    #[test]
    fn linux_install_is_idempotent_and_uninstall_keeps_the_config_unless_purged() {
        let dir = root_dir();
        let (root, before) = (dir.path(), paths(dir.path()));
        let (o, mut sys) = (opts(root, Platform::Linux, false), Fake::new(false, false));
        let first = install(&o, &mut sys).unwrap();
        let unit = read(root, UNIT_PATH);
        let exec = "\nExecStart=/usr/local/bin/dockroute-helper run --config /etc/dockroute/dockroute.conf\n";
        assert!(unit.contains(exec), "{unit}");
        let config = read(root, "/etc/dockroute/dockroute.conf");
        assert!(config.contains("\naddr 192.168.251.1/24\nport 2511\nmtu 1400\nhost 127.0.0.1\n"), "{config}");
        let rec = read(root, "/var/lib/dockroute/install.state");
        for want in ["group=dockroute", "config=/etc/dockroute/dockroute.conf", "dir=/etc/systemd/system\n"] {
            assert!(rec.contains(&format!("\ncreated-{want}")), "{want} missing in {rec}");
        }
        assert!(!rec.contains("created-dir=/etc\n") && !root.join("var/log/dockroute").exists(), "{rec}");
        assert_eq!(fs::read_link(root.join(&WANTS_LINK[1..])).unwrap(), Path::new("../dockroute-helper.service"));
        assert_eq!(sys.calls, ["getent group dockroute", "groupadd --system dockroute"]);
        assert!(
            has(&first, "wrote /etc/systemd/system/dockroute-helper.service") && has(&first, NO_SYSTEMD),
            "{first}"
        );

        let installed = tree(root);
        let again = install(&o, &mut sys).unwrap();
        assert!(has(&again, "already installed"), "{again}");
        assert_eq!(tree(root), installed, "a second install changed files");
        assert_eq!(sys.calls[2..], ["getent group dockroute"]);

        let removed = uninstall(&o, &mut sys).unwrap();
        assert!(!root.join(&UNIT_PATH[1..]).exists() && !root.join(&WANTS_LINK[1..]).exists(), "{removed}");
        assert!(!root.join("var/lib/dockroute").exists(), "{removed}");
        assert_eq!(read(root, "/etc/dockroute/dockroute.conf"), config);
        assert_eq!(sys.calls[3..], ["getent group dockroute", "groupdel dockroute"]);

        let twice = uninstall(&o, &mut sys).unwrap();
        assert_eq!(twice.lines, ["dockroute-helper is not installed; nothing to remove"]);
        assert_eq!(sys.calls.len(), 5, "{:?}", sys.calls);
        // --purge after a plain uninstall still finds the config, and its now empty directory.
        uninstall(&InstallOptions { purge: true, ..o }, &mut sys).unwrap();
        assert_eq!(paths(root), before);
    }

    #[test]
    fn purge_restores_the_tree_and_systemctl_runs_only_with_systemd() {
        let dir = root_dir();
        let (root, before) = (dir.path(), paths(dir.path()));
        let (mut o, mut sys) = (opts(root, Platform::Linux, true), Fake::new(true, true));
        install(&o, &mut sys).unwrap();
        let unit = SERVICE_NAME;
        let enable_now = format!("systemctl enable --now {unit}");
        assert_eq!(sys.calls, ["getent group dockroute", "systemctl daemon-reload", &enable_now]);
        assert!(!read(root, "/var/lib/dockroute/install.state").contains("group") && paths(root).len() > 3);
        assert!(fs::symlink_metadata(root.join(&WANTS_LINK[1..])).is_err(), "systemctl makes the link");
        sys.calls.clear();
        install(&o, &mut sys).unwrap();
        let queries = [format!("systemctl is-enabled --quiet {unit}"), format!("systemctl is-active --quiet {unit}")];
        assert_eq!(sys.calls[1..], queries);
        // A stopped service is started; a moved binary means a new unit and a restart.
        (sys.failing, _) = (vec!["systemctl is-active"], sys.calls.clear());
        install(&o, &mut sys).unwrap();
        assert_eq!(sys.calls[1..], [queries[0].as_str(), &queries[1], &enable_now]);
        (sys.failing, _, o.spec.helper_path) = (vec![], sys.calls.clear(), "/opt/dr/dockroute-helper".into());
        install(&o, &mut sys).unwrap();
        let restart =
            ["systemctl daemon-reload".into(), format!("systemctl enable {unit}"), format!("systemctl restart {unit}")];
        assert_eq!(sys.calls[1..], restart);
        assert!(read(root, UNIT_PATH).contains("ExecStart=/opt/dr/dockroute-helper run"));

        fs::write(root.join("etc/dockroute/dockroute.secret"), "00").unwrap(); // as the helper would
        sys.calls.clear();
        let report = uninstall(&o, &mut sys).unwrap();
        assert_eq!(sys.calls, [format!("systemctl disable --now {unit}"), "systemctl daemon-reload".into()]);
        assert!(has(&report, "removed /etc/dockroute/dockroute.secret"), "{report}");
        assert_eq!(paths(root), before, "{report}");
    }

    #[test]
    fn macos_installs_a_launch_daemon_and_reloads_it_in_order() {
        let dir = root_dir();
        let (root, before) = (dir.path(), paths(dir.path()));
        let (mut o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, false));
        sys.failing = vec!["launchctl print"]; // not loaded yet
        install(&o, &mut sys).unwrap();
        let plist = root.join(&PLIST_PATH[1..]);
        let (target, bootstrap) =
            ("system/dev.dockroute.helper", format!("launchctl bootstrap system {}", plist.display()));
        let (print, enable) = (format!("launchctl print {target}"), format!("launchctl enable {target}"));
        assert_eq!(sys.calls, [print.as_str(), &enable, &bootstrap]);
        assert_eq!(fs::metadata(&plist).unwrap().permissions().mode() & 0o777, 0o644);
        assert!(root.join("Library/Logs/Dockroute").is_dir());
        assert!(read(root, MAC_CONFIG).contains("port 2511"));
        assert!(read(root, MAC_RECORD).contains("created-dir=/Library/Logs/Dockroute\n"));

        sys.failing.clear(); // loaded now
        sys.calls.clear();
        assert!(has(&install(&o, &mut sys).unwrap(), "already installed"));
        assert_eq!(sys.calls, [print.as_str()]);
        o.spec.helper_path = "/Applications/Dockroute.app/Contents/MacOS/dockroute-helper".into();
        sys.calls.clear();
        install(&o, &mut sys).unwrap();
        assert_eq!(sys.calls, [print.clone(), format!("launchctl bootout {target}"), enable, bootstrap]);

        fs::write(root.join("Library/Logs/Dockroute/helper.log"), "log").unwrap();
        sys.calls.clear();
        uninstall(&InstallOptions { purge: true, ..o }, &mut sys).unwrap();
        assert_eq!(sys.calls, [print, format!("launchctl bootout {target}")]);
        assert_eq!(paths(root), before);
    }

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

    #[test]
    fn systemd_analyze_accepts_the_unit_even_with_awkward_paths() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("my dir $HOME %n");
        fs::create_dir(&odd).unwrap();
        fs::copy("/bin/true", odd.join("helper")).unwrap();
        for helper in [PathBuf::from("/bin/true"), odd.join("helper")] {
            let spec = ServiceSpec { helper_path: helper, config_path: odd.join("dockroute.conf") };
            let unit = dir.path().join(SERVICE_NAME);
            fs::write(&unit, render_systemd_unit(&spec)).unwrap();
            let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output();
            let out = out.expect("systemd-analyze is needed to verify the unit (apt-get install systemd)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && !text.contains("ignoring"), "systemd-analyze verify: {text}");
        }
    }

    #[test]
    fn both_plists_parse_with_plistlib() {
        let dir = tempfile::tempdir().unwrap();
        let script = "import json,plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps([d[k] \
                      if k in d else None for k in sys.argv[2:]]))";
        let keys =
            ["Label", "KeepAlive", "RunAtLoad", "ProgramArguments", "BundleProgram", "AssociatedBundleIdentifiers"];
        let spec = ServiceSpec { helper_path: "/opt/a&b/<x>/helper".into(), config_path: MAC_CONFIG.into() };
        let args = |helper| format!(r#"["{helper}", "run", "--config", "{MAC_CONFIG}"]"#);
        let cases = [
            (render_launchd_plist(&spec), format!("{}, null, null", args("/opt/a&b/<x>/helper"))),
            (
                render_smappservice_plist(),
                format!(r#"{}, "{BUNDLE_PROGRAM}", ["{APP_BUNDLE_ID}"]"#, args("dockroute-helper")),
            ),
        ];
        for (i, (plist, program)) in cases.into_iter().enumerate() {
            let file = dir.path().join(format!("{i}.plist"));
            fs::write(&file, &plist).unwrap();
            let mut python = Command::new("python3");
            let out = python.args(["-c", script]).arg(&file).args(keys).arg("StandardErrorPath").output().unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}\n{plist}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(got.trim(), format!(r#"["dev.dockroute.helper", true, true, {program}, "{MAC_LOG_FILE}"]"#));
        }
    }
}
