//! macOS: a launchd daemon plist, loaded with `launchctl bootstrap`; the API group is the
//! existing `admin`. Also the plist the app bundle ships for SMAppService. Both use one label
//! (`dockroute_api::launchd`): install boots out the app's SMAppService registration when it
//! holds the label, and leaves it alone on uninstall (it is the app's).
//!
//! The helper runs from a root-owned copy in /Library/PrivilegedHelperTools, never from the app
//! bundle (which belongs to whoever dragged it in); a new copy (an update) restarts the daemon.
//!
//! Reloading is not instant: right after `launchctl bootout`, launchd still holds the label for
//! a moment and `bootstrap` fails with "Bootstrap failed: 5: Input/output error" (or 37,
//! "Operation already in progress"). So a reload waits (bounded) until `launchctl print` no
//! longer finds the label, and retries `bootstrap` on exactly those two errors.
//!
//! Logs: both plists send stdout and stderr to a file directly in /Library/Logs, which exists on
//! every Mac. launchd opens that file before it starts the helper, so a log *directory* of our
//! own would be one more thing that must exist first (SMAppService creates none); the helper
//! itself logs to stderr only.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use dockroute_api::launchd::{self as job, Job, Origin};
use dockroute_stdx::Backoff;

use super::{Change, Ctx, Files, Logs, Record, ServiceManager, ServiceSpec};

pub const LAUNCHD_LABEL: &str = job::LABEL;
pub const APP_BUNDLE_ID: &str = "dev.dockroute.app";
pub const BUNDLE_PROGRAM: &str = "Contents/MacOS/dockroute-helper";
const PLIST_PATH: &str = job::DAEMON_PLIST;
/// Where install puts the helper it runs (`job::INSTALLED_HELPER`).
pub const INSTALLED_HELPER: &str = job::INSTALLED_HELPER;
const LOG_FILE: &str = "/Library/Logs/dockroute-helper.log";
const CONFIG: &str = "/Library/Application Support/Dockroute/dockroute.conf";

static FILES: Files = Files {
    service: PLIST_PATH,
    record: "/Library/Application Support/Dockroute/install.state",
    config: CONFIG,
    logs: Logs::File(LOG_FILE),
};

/// How long a reload waits for launchd to let go of the label after `bootout`: polls of
/// `launchctl print`, 100 ms doubling to 1 s, about 12 s in all.
const GONE_POLLS: u32 = 15;
const GONE_POLL: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(1));
/// `bootstrap` tries on errors 5 and 37: 250 ms doubling to 2 s between them, about 10 s.
const BOOTSTRAP_TRIES: u32 = 7;
const BOOTSTRAP_RETRY: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(2));

pub(super) struct Launchd;

impl ServiceManager for Launchd {
    fn files(&self) -> &'static Files {
        &FILES
    }

    fn render(&self, spec: &ServiceSpec) -> String {
        render_launchd_plist(spec)
    }

    /// The helper is copied to a root-owned place, so the daemon never runs a file that the
    /// user who dragged the app into /Applications could replace.
    fn prepare(&self, cx: &mut Ctx, spec: &ServiceSpec) -> Result<()> {
        cx.notes.push("API socket group: the existing `admin` group".into());
        let binary = std::fs::read(&spec.helper_path)
            .with_context(|| format!("cannot read the helper to install, {}", spec.helper_path.display()))?;
        let program = Path::new(INSTALLED_HELPER);
        let created = !cx.real(program).exists();
        cx.program = cx.write_file(program, &binary, 0o755)?;
        if created {
            cx.rec.insert(format!("created-file={INSTALLED_HELPER}"));
        }
        Ok(())
    }

    fn activate(&self, cx: &mut Ctx, plist: Change) -> Result<()> {
        let target = job::TARGET;
        let (loaded, job) = print(cx);
        // The other way in: the app's SMAppService registration holds the label. It cannot
        // run beside ours (one label), so it is booted out; the app, finding our plist, also
        // unregisters it (root cannot do that for the app).
        if job.as_ref().is_some_and(|j| j.origin == Origin::SmAppService) {
            cx.cmd("launchctl", &["bootout", target])?;
            cx.notes.push(
                "the app's SMAppService registration of the helper held the label: booted out (the app removes it)"
                    .into(),
            );
            if !wait_until_gone(cx, target) {
                cx.notes.push(format!("launchd still holds {target}; bootstrap retries"));
            }
        } else if loaded {
            if plist == Change::Same && cx.program == Change::Same {
                return Ok(());
            }
            // bootstrap refuses a loaded label, and a changed plist or program needs a fresh load.
            let booted_out = cx.cmd("launchctl", &["bootout", target]);
            // A failed bootout of a label that is gone anyway (it was on its way out) is fine.
            if !wait_until_gone(cx, target) {
                booted_out?;
                cx.notes.push(format!("launchd still holds {target}; bootstrap retries"));
            }
        }
        // A label once `launchctl disable`d stays disabled across bootstraps.
        cx.cmd("launchctl", &["enable", target])?;
        let plist = cx.real(Path::new(PLIST_PATH)).to_string_lossy().into_owned();
        bootstrap(cx, &plist)
    }

    fn deactivate(&self, cx: &mut Ctx, _rec: &Record) -> Result<()> {
        let target = job::TARGET;
        match print(cx) {
            // The app's own registration is the app's to remove (it unregisters through
            // SMAppService; System Settings → Login Items shows it).
            (_, Some(Job { origin: Origin::SmAppService, .. })) => cx.notes.push(
                "the helper runs through the app's SMAppService registration, which stays: remove it in the app or \
                 System Settings"
                    .into(),
            ),
            (true, _) => cx.cmd("launchctl", &["bootout", target])?,
            (false, _) => {}
        }
        cx.remove(Path::new(PLIST_PATH))?;
        cx.remove(Path::new(INSTALLED_HELPER))?;
        Ok(())
    }
}

/// `launchctl print system/<label>`: whether launchd knows the label, and what it says.
fn print(cx: &mut Ctx) -> (bool, Option<Job>) {
    match cx.sys.run("launchctl", &["print", job::TARGET]) {
        Ok(out) => (true, Job::parse(&out)),
        Err(_) => (false, None),
    }
}

/// Polls `launchctl print` until launchd no longer knows `target`; false if it still does
/// after `GONE_POLLS` polls.
fn wait_until_gone(cx: &mut Ctx, target: &str) -> bool {
    let backoff = Backoff::new(GONE_POLL.0, GONE_POLL.1);
    for attempt in 1..=GONE_POLLS {
        if !cx.ok("launchctl", &["print", target]) {
            return true;
        }
        cx.sys.sleep(backoff.delay_for(attempt));
    }
    !cx.ok("launchctl", &["print", target])
}

/// `launchctl bootstrap system PLIST`, retried while launchd is still letting go of the label.
fn bootstrap(cx: &mut Ctx, plist: &str) -> Result<()> {
    let backoff = Backoff::new(BOOTSTRAP_RETRY.0, BOOTSTRAP_RETRY.1);
    for attempt in 1.. {
        match cx.cmd("launchctl", &["bootstrap", "system", plist]) {
            Ok(()) => break,
            Err(e) if attempt < BOOTSTRAP_TRIES && bootstrap_retryable(&format!("{e:#}")) => {
                cx.sys.sleep(backoff.delay_for(attempt));
            }
            Err(e) if attempt > 1 => return Err(e).context(format!("launchctl bootstrap failed {attempt} times")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether a failed `launchctl bootstrap` is launchd still busy with the label: it prints
/// "Bootstrap failed: <errno>: <strerror>", and errno 5 (EIO) or 37 (EALREADY) is that race.
/// Anything else (1: not root, 5 for good after the retries, ...) is reported as it is.
pub(super) fn bootstrap_retryable(error: &str) -> bool {
    let Some((_, rest)) = error.split_once("Bootstrap failed: ") else { return false };
    let code = rest.split(':').next().unwrap_or_default().trim();
    matches!(code.parse::<i32>(), Ok(5 | 37))
}

/// Plist for `launchctl bootstrap`: ProgramArguments[0] is the installed copy of the helper;
/// `--app-bundle` names the app whose code may use the API.
pub fn render_launchd_plist(spec: &ServiceSpec) -> String {
    let config = spec.config_path.to_string_lossy();
    let mut args = vec![INSTALLED_HELPER.to_string(), "run".into(), "--config".into(), config.into_owned()];
    if let Some(app) = &spec.app_bundle {
        args.extend([job::APP_BUNDLE_ARG.to_string(), app.to_string_lossy().into_owned()]);
    }
    launchd_plist("", &args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Plist shipped at `Contents/Library/LaunchDaemons/` in the app for SMAppService: the program
/// is bundle-relative (BundleProgram), so ProgramArguments[0] is only argv[0].
pub fn render_smappservice_plist() -> String {
    let program = format!(
        "  <key>BundleProgram</key>\n  <string>{BUNDLE_PROGRAM}</string>\n  \
         <key>AssociatedBundleIdentifiers</key>\n  <array>\n    <string>{APP_BUNDLE_ID}</string>\n  </array>\n"
    );
    launchd_plist(&program, &["dockroute-helper", "run", "--config", CONFIG])
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
  <string>{LOG_FILE}</string>
  <key>StandardErrorPath</key>
  <string>{LOG_FILE}</string>
</dict>
</plist>
"#
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    use super::super::fake::*;
    use super::super::{install, uninstall, InstallOptions, Platform};
    use super::*;

    const TARGET: &str = job::TARGET;
    /// What launchctl prints, recorded from reports of real Macs (nix-installer issue 1157 for
    /// 5, launchctl's same format with errno 37 = EALREADY from xnu `bsd/sys/errno.h`; print's
    /// "Could not find service" with exit 113 from nix-installer issue 960).
    const EIO: &str = "Bootstrap failed: 5: Input/output error\nTry re-running the command as root for richer errors.";
    const EALREADY: &str = "Bootstrap failed: 37: Operation already in progress";
    const EPERM: &str = "Bootstrap failed: 1: Operation not permitted";
    const GONE: &str = "Could not find service \"dev.dockroute.helper\" in domain for system";
    /// `launchctl print` of a job SMAppService submitted (its shape recorded in Stack Overflow
    /// question 78809259; our label and bundle id).
    const SMAPPSERVICE_JOB: &str = "system/dev.dockroute.helper = {
    active count = 0
    path = (submitted by smd.303)
    type = Submitted
    state = spawn scheduled
    program identifier = Contents/MacOS/dockroute-helper (mode: 2)
    parent bundle identifier = dev.dockroute.app
    last exit code = 78: EX_CONFIG
    job state = spawn failed
}
";
    /// `launchctl print` of the job our own plist loaded (shape of wazuh-packages issue 2206).
    const PLIST_JOB: &str = "system/dev.dockroute.helper = {
    active count = 1
    path = /Library/LaunchDaemons/dev.dockroute.helper.plist
    state = running
    program = /Library/PrivilegedHelperTools/dev.dockroute.helper
    pid = 412
    last exit code = (never exited)
}
";

    /// A root as on a Mac: /Library/Logs always exists there; plus the helper install copies.
    fn mac_root() -> tempfile::TempDir {
        let dir = root_dir();
        fs::create_dir_all(dir.path().join("Library/Logs")).unwrap();
        mac_helper(dir.path(), "helper v1");
        dir
    }

    fn bootstrap_call(root: &Path) -> String {
        format!("launchctl bootstrap system {}", root.join(&PLIST_PATH[1..]).display())
    }

    #[test]
    fn macos_installs_a_launch_daemon_and_reloads_it_in_order() {
        let dir = mac_root();
        let (root, before) = (dir.path(), paths(dir.path()));
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, false));
        sys.failing = vec!["launchctl print"]; // not loaded yet
        install(&o, &mut sys).unwrap();
        let plist = root.join(&PLIST_PATH[1..]);
        let bootstrap = bootstrap_call(root);
        let (print, enable) = (format!("launchctl print {TARGET}"), format!("launchctl enable {TARGET}"));
        assert_eq!(sys.calls, [print.as_str(), &enable, &bootstrap]);
        assert_eq!(fs::metadata(&plist).unwrap().permissions().mode() & 0o777, 0o644);
        assert!(read(root, CONFIG).contains("port 2511"));
        // No log directory of our own: launchd writes the log file into /Library/Logs.
        assert!(!read(root, FILES.record).contains("Logs"), "{}", read(root, FILES.record));
        assert!(read(root, PLIST_PATH).contains(&format!("<string>{LOG_FILE}</string>")));

        sys.failing.clear(); // loaded now
        sys.calls.clear();
        sys.outputs = vec![("launchctl print", PLIST_JOB)];
        assert!(has(&install(&o, &mut sys).unwrap(), "already installed"));
        assert_eq!(sys.calls, [print.as_str()]);
        // An updated helper (a new app version ran install): bootout, wait until launchd lets
        // go of the label, then load again, so the new program runs.
        mac_helper(root, "helper v2");
        sys.calls.clear();
        (sys.answers, sys.failing) = (vec![("launchctl print", None)], vec!["launchctl print"]);
        install(&o, &mut sys).unwrap();
        let bootout = format!("launchctl bootout {TARGET}");
        assert_eq!(sys.calls, [print.as_str(), &bootout, &print, &enable, &bootstrap]);
        assert_eq!(read(root, INSTALLED_HELPER), "helper v2");

        fs::write(root.join(&LOG_FILE[1..]), "log").unwrap();
        (sys.failing, _) = (vec![], sys.calls.clear());
        uninstall(&InstallOptions { purge: true, ..o }, &mut sys).unwrap();
        assert_eq!(sys.calls, [print, bootout]);
        assert_eq!(paths(root), before);
    }

    #[test]
    fn the_daemon_runs_a_root_owned_copy_of_the_helper_for_the_app_it_names() {
        let dir = mac_root();
        let root = dir.path();
        let (mut o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        o.spec.app_bundle = Some("/Applications/Dock & Route.app".into());
        sys.failing = vec!["launchctl print"];
        install(&o, &mut sys).unwrap();
        let copy = root.join(&INSTALLED_HELPER[1..]);
        assert_eq!(fs::read_to_string(&copy).unwrap(), "helper v1");
        assert_eq!(fs::metadata(&copy).unwrap().permissions().mode() & 0o777, 0o755);
        let plist = read(root, PLIST_PATH);
        let args = format!(
            "<string>{INSTALLED_HELPER}</string>\n    <string>run</string>\n    <string>--config</string>\n    \
             <string>{CONFIG}</string>\n    <string>--app-bundle</string>\n    <string>/Applications/Dock &amp; \
             Route.app</string>\n"
        );
        assert!(plist.contains(&args), "{plist}");
        assert!(!plist.contains(MAC_HELPER_BUILD), "never the build's own path: {plist}");
        assert!(read(root, FILES.record).contains(&format!("created-file={INSTALLED_HELPER}")));
        // The copy goes with uninstall, and so does /Library/PrivilegedHelperTools, which
        // install created here.
        uninstall(&o, &mut sys).unwrap();
        assert!(!copy.exists() && !copy.parent().unwrap().exists());
    }

    #[test]
    fn an_smappservice_registration_holding_the_label_is_booted_out_before_ours_loads() {
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        // The app registered the helper through SMAppService (launchd refuses to run it: an
        // ad-hoc build); then the admin-password install runs.
        sys.outputs = vec![("launchctl print", SMAPPSERVICE_JOB)];
        sys.answers = vec![("launchctl print", None), ("launchctl print", Some(GONE))];
        let report = install(&o, &mut sys).unwrap();
        let (print, bootout) = (format!("launchctl print {TARGET}"), format!("launchctl bootout {TARGET}"));
        let want = [&print, &bootout, &print, &format!("launchctl enable {TARGET}"), &bootstrap_call(root)];
        assert_eq!(sys.calls.iter().collect::<Vec<_>>(), want);
        assert!(has(&report, "SMAppService registration of the helper held the label: booted out"), "{report}");
        // Installed again with nothing changed, but the app registered SMAppService meanwhile:
        // still replaced, not "already installed".
        sys.calls.clear();
        sys.outputs = vec![("launchctl print", SMAPPSERVICE_JOB)];
        sys.answers = vec![("launchctl print", None), ("launchctl print", Some(GONE))];
        assert!(!has(&install(&o, &mut sys).unwrap(), "already installed"));
        assert!(sys.calls.contains(&bootout));
    }

    #[test]
    fn uninstall_leaves_the_apps_smappservice_registration_to_the_app() {
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        sys.failing = vec!["launchctl print"];
        install(&o, &mut sys).unwrap();
        (sys.failing, sys.calls) = (vec![], vec![]);
        sys.outputs = vec![("launchctl print", SMAPPSERVICE_JOB)];
        let report = uninstall(&o, &mut sys).unwrap();
        assert_eq!(sys.calls, [format!("launchctl print {TARGET}")], "no bootout of the app's job");
        assert!(has(&report, "SMAppService registration, which stays"), "{report}");
        assert!(has(&report, &format!("removed {PLIST_PATH}")) && has(&report, &format!("removed {INSTALLED_HELPER}")));
    }

    #[test]
    fn a_reload_waits_for_launchd_to_let_go_and_retries_bootstrap_on_5_and_37() {
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        sys.failing = vec!["launchctl print"];
        install(&o, &mut sys).unwrap();
        mac_helper(root, "helper v2");
        sys.calls.clear();
        // Loaded; still there twice after bootout; then gone, and bootstrap fails twice.
        sys.answers = vec![
            ("launchctl print", None),
            ("launchctl print", None),
            ("launchctl print", None),
            ("launchctl print", Some(GONE)),
            ("launchctl bootstrap", Some(EIO)),
            ("launchctl bootstrap", Some(EALREADY)),
        ];
        let report = install(&o, &mut sys).unwrap();
        let (print, bootstrap) = (format!("launchctl print {TARGET}"), bootstrap_call(root));
        let want = [
            &print,
            &format!("launchctl bootout {TARGET}"),
            &print,
            "sleep 100ms",
            &print,
            "sleep 200ms",
            &print,
            &format!("launchctl enable {TARGET}"),
            &bootstrap,
            "sleep 250ms",
            &bootstrap,
            "sleep 500ms",
            &bootstrap,
        ];
        assert_eq!(sys.calls, want);
        assert!(has(&report, &format!("ran `{bootstrap}`")), "{report}");
    }

    #[test]
    fn waiting_and_retrying_are_bounded_and_other_errors_are_not_retried() {
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        sys.failing = vec!["launchctl print"];
        install(&o, &mut sys).unwrap();
        // launchd never lets go and bootstrap keeps failing with 5: give up, saying so.
        mac_helper(root, "helper v2");
        sys.calls.clear();
        sys.failing.clear();
        sys.answers = (0..BOOTSTRAP_TRIES).map(|_| ("launchctl bootstrap", Some(EIO))).collect();
        let e = format!("{:#}", install(&o, &mut sys).unwrap_err());
        assert!(e.contains("launchctl bootstrap failed 7 times") && e.contains("Input/output error"), "{e}");
        let count = |calls: &[String], prefix: &str| calls.iter().filter(|c| c.starts_with(prefix)).count();
        let (prints, bootstraps) = (count(&sys.calls, "launchctl print"), count(&sys.calls, "launchctl bootstrap"));
        assert_eq!((prints, bootstraps), (1 + GONE_POLLS as usize + 1, 7));
        let slept: u64 =
            sys.calls.iter().filter_map(|c| c.strip_prefix("sleep ")?.strip_suffix("ms")?.parse::<u64>().ok()).sum();
        assert!((10_000..30_000).contains(&slept), "bounded but patient: {slept} ms");
        // Not root (EPERM): reported at once.
        mac_helper(root, "helper v3");
        (sys.calls, sys.failing) = (vec![], vec!["launchctl print"]);
        sys.answers = vec![("launchctl bootstrap", Some(EPERM))];
        let e = format!("{:#}", install(&o, &mut sys).unwrap_err());
        assert!(e.contains("Operation not permitted") && !e.contains("times"), "{e}");
        assert_eq!(count(&sys.calls, "launchctl bootstrap"), 1);
    }

    #[test]
    fn a_helper_that_cannot_be_read_is_said_before_anything_is_written() {
        let dir = mac_root();
        let root = dir.path();
        let (mut o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        o.spec.helper_path = root.join("no-such-helper");
        let e = format!("{:#}", install(&o, &mut sys).unwrap_err());
        assert!(e.contains("cannot read the helper to install"), "{e}");
        assert!(!root.join(&PLIST_PATH[1..]).exists() && sys.calls.is_empty(), "{:?}", sys.calls);
    }

    #[test]
    fn only_launchds_busy_errors_are_retried() {
        let failed = |msg: &str| {
            format!("`launchctl bootstrap system /Library/LaunchDaemons/x.plist` failed with exit code 5: {msg}")
        };
        assert!(bootstrap_retryable(&failed(EIO)));
        assert!(bootstrap_retryable(&failed(EALREADY)));
        assert!(!bootstrap_retryable(&failed(EPERM)));
        assert!(!bootstrap_retryable(&failed("Bootstrap failed: 125: Domain does not support specified action")));
        assert!(!bootstrap_retryable(&failed("Bootstrap failed: 53")));
        assert!(!bootstrap_retryable("cannot run `launchctl bootstrap system x`: No such file or directory"));
    }

    #[test]
    fn a_plain_uninstall_keeps_the_config_and_logs_and_says_so_on_the_second_run() {
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        let report = install(&o, &mut sys).unwrap();
        assert!(has(&report, "the existing `admin` group"), "{report}");
        assert!(!sys.calls.iter().any(|c| c.starts_with("groupadd") || c.starts_with("getent")), "{:?}", sys.calls);
        fs::write(root.join(&LOG_FILE[1..]), "log").unwrap();
        let report = uninstall(&o, &mut sys).unwrap();
        assert!(has(&report, &format!("removed {PLIST_PATH}")), "{report}");
        assert_eq!((read(root, LOG_FILE), read(root, CONFIG).contains("port 2511")), ("log".into(), true));
        sys.failing.push("launchctl print"); // booted out
        let again = uninstall(&o, &mut sys).unwrap();
        assert_eq!(again.lines, ["dockroute-helper is not installed; nothing to remove"]);
    }

    #[test]
    fn uninstall_removes_the_resolver_files_a_crashed_helper_left_and_only_those() {
        use crate::dns::resolver::files::{record_beside, ResolverDir};
        let dir = mac_root();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        install(&o, &mut sys).unwrap();
        // What a running helper wrote, as it would (record beside the config), then it crashed.
        let resolver = root.join("etc/resolver");
        let zones = ["docker", "shop.test"].map(String::from).into();
        let record = root.join(&record_beside(std::path::Path::new(CONFIG)).to_string_lossy()[1..]);
        ResolverDir::new(&resolver, &record).sync(&zones, "192.168.251.1".parse().unwrap());
        fs::write(resolver.join("corp.example"), "nameserver 10.0.0.53\n").unwrap();
        let report = uninstall(&o, &mut sys).unwrap();
        assert!(
            has(&report, "removed /etc/resolver/docker") && has(&report, "removed /etc/resolver/shop.test"),
            "{report}"
        );
        let left: Vec<_> = fs::read_dir(&resolver).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["corp.example"], "an admin's own file stays");
        assert!(!record.exists());
    }

    fn spec(config: &str, app: Option<&str>) -> ServiceSpec {
        ServiceSpec { helper_path: "/h".into(), config_path: config.into(), app_bundle: app.map(Into::into) }
    }

    #[test]
    fn plist_strings_are_xml_escaped() {
        assert_eq!(xml("/opt/a&b/<x>/h"), "/opt/a&amp;b/&lt;x&gt;/h");
        let plist = render_launchd_plist(&spec("/opt/a&b/dockroute.conf", None));
        assert!(plist.contains("<string>/opt/a&amp;b/dockroute.conf</string>\n  </array>"), "{plist}");
        assert!(!plist.contains("BundleProgram") && !plist.contains("--app-bundle"));
        assert!(render_smappservice_plist().contains(&format!("<string>{BUNDLE_PROGRAM}</string>")));
    }

    #[test]
    fn the_plist_in_the_app_bundle_is_the_rendered_one() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src-tauri/launchd/dev.dockroute.helper.plist");
        let shipped = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == render_smappservice_plist(),
            "{} is stale: regenerate it with `cargo run -q -p dockroute-helper -- print-smappservice-plist > {}`",
            path.display(),
            path.display()
        );
        assert_eq!(job::BUNDLE_PLIST, path.file_name().unwrap().to_str().unwrap(), "the name the app registers");
    }

    /// Both plists with awkward characters, for the linters below.
    fn plists() -> Vec<(String, String)> {
        let args = |helper, extra: &str| format!(r#"["{helper}", "run", "--config", "{CONFIG}"{extra}]"#);
        vec![
            (
                render_launchd_plist(&spec(CONFIG, Some("/Apps/<x>&y.app"))),
                format!("{}, null, null", args(INSTALLED_HELPER, r#", "--app-bundle", "/Apps/<x>&y.app""#)),
            ),
            (
                render_smappservice_plist(),
                format!(r#"{}, "{BUNDLE_PROGRAM}", ["{APP_BUNDLE_ID}"]"#, args("dockroute-helper", "")),
            ),
        ]
    }

    #[test]
    fn both_plists_parse_with_plistlib() {
        let dir = tempfile::tempdir().unwrap();
        let script = "import json,plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps([d[k] \
                      if k in d else None for k in sys.argv[2:]]))";
        let keys =
            ["Label", "KeepAlive", "RunAtLoad", "ProgramArguments", "BundleProgram", "AssociatedBundleIdentifiers"];
        for (i, (plist, program)) in plists().into_iter().enumerate() {
            let file = dir.path().join(format!("{i}.plist"));
            fs::write(&file, &plist).unwrap();
            let mut python = Command::new("python3");
            let out = python.args(["-c", script]).arg(&file).args(keys).arg("StandardErrorPath").output().unwrap();
            let got = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}\n{plist}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(got.trim(), format!(r#"["dev.dockroute.helper", true, true, {program}, "{LOG_FILE}"]"#));
        }
    }

    /// Apple's own checker, where it exists.
    #[cfg(target_os = "macos")]
    #[test]
    fn both_plists_pass_plutil_lint() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (plist, _)) in plists().into_iter().enumerate() {
            let file = dir.path().join(format!("{i}.plist"));
            fs::write(&file, &plist).unwrap();
            let out = Command::new("/usr/bin/plutil").arg("-lint").arg(&file).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.trim_end().ends_with(": OK"), "plutil -lint: {text}\n{plist}");
        }
    }
}
