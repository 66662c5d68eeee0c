//! macOS: a launchd daemon plist, loaded with `launchctl bootstrap`; the API group is the
//! existing `admin`. Also the plist the app bundle ships for SMAppService.

use std::path::Path;

use anyhow::Result;

use super::{Change, Ctx, Files, Record, ServiceManager, ServiceSpec};

pub const LAUNCHD_LABEL: &str = "dev.dockroute.helper";
pub const APP_BUNDLE_ID: &str = "dev.dockroute.app";
pub const BUNDLE_PROGRAM: &str = "Contents/MacOS/dockroute-helper";
const PLIST_PATH: &str = "/Library/LaunchDaemons/dev.dockroute.helper.plist";
const LOG_DIR: &str = "/Library/Logs/Dockroute";
const LOG_FILE: &str = "/Library/Logs/Dockroute/helper.log";
const CONFIG: &str = "/Library/Application Support/Dockroute/dockroute.conf";

static FILES: Files = Files {
    service: PLIST_PATH,
    record: "/Library/Application Support/Dockroute/install.state",
    config: CONFIG,
    logs: LOG_DIR,
    logs_ours_alone: true,
};

pub(super) struct Launchd;

impl ServiceManager for Launchd {
    fn files(&self) -> &'static Files {
        &FILES
    }

    fn render(&self, spec: &ServiceSpec) -> String {
        render_launchd_plist(spec)
    }

    fn prepare(&self, cx: &mut Ctx) -> Result<()> {
        cx.notes.push("API socket group: the existing `admin` group".into());
        // launchd opens the log file but does not create its directory.
        cx.ensure_dirs(Path::new(LOG_DIR))
    }

    fn activate(&self, cx: &mut Ctx, plist: Change) -> Result<()> {
        let target = format!("system/{LAUNCHD_LABEL}");
        let loaded = cx.ok("launchctl", &["print", &target]);
        if plist != Change::Same || !loaded {
            // bootstrap refuses a loaded label, and a changed plist needs a fresh load anyway.
            if loaded {
                cx.cmd("launchctl", &["bootout", &target])?;
            }
            // A label once `launchctl disable`d stays disabled across bootstraps.
            cx.cmd("launchctl", &["enable", &target])?;
            let plist = cx.real(Path::new(PLIST_PATH)).to_string_lossy().into_owned();
            cx.cmd("launchctl", &["bootstrap", "system", &plist])?;
        }
        Ok(())
    }

    fn deactivate(&self, cx: &mut Ctx, _rec: &Record) -> Result<()> {
        let target = format!("system/{LAUNCHD_LABEL}");
        if cx.ok("launchctl", &["print", &target]) {
            cx.cmd("launchctl", &["bootout", &target])?;
        }
        cx.remove(Path::new(PLIST_PATH))?;
        Ok(())
    }
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
        assert!(read(root, CONFIG).contains("port 2511"));
        assert!(read(root, FILES.record).contains("created-dir=/Library/Logs/Dockroute\n"));

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
    fn a_plain_uninstall_keeps_the_config_and_logs_and_says_so_on_the_second_run() {
        let dir = root_dir();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::MacOs, false), Fake::new(false, true));
        let report = install(&o, &mut sys).unwrap();
        assert!(has(&report, "the existing `admin` group"), "{report}");
        assert!(!sys.calls.iter().any(|c| c.starts_with("groupadd") || c.starts_with("getent")), "{:?}", sys.calls);
        fs::write(root.join("Library/Logs/Dockroute/helper.log"), "log").unwrap();
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
        let dir = root_dir();
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

    #[test]
    fn plist_strings_are_xml_escaped() {
        assert_eq!(xml("/opt/a&b/<x>/h"), "/opt/a&amp;b/&lt;x&gt;/h");
        let spec = ServiceSpec { helper_path: "/opt/a&b/helper".into(), config_path: CONFIG.into() };
        let plist = render_launchd_plist(&spec);
        assert!(plist.contains("<string>/opt/a&amp;b/helper</string>\n    <string>run</string>"), "{plist}");
        assert!(!plist.contains("BundleProgram"));
        assert!(render_smappservice_plist().contains(&format!("<string>{BUNDLE_PROGRAM}</string>")));
    }

    #[test]
    fn both_plists_parse_with_plistlib() {
        let dir = tempfile::tempdir().unwrap();
        let script = "import json,plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); print(json.dumps([d[k] \
                      if k in d else None for k in sys.argv[2:]]))";
        let keys =
            ["Label", "KeepAlive", "RunAtLoad", "ProgramArguments", "BundleProgram", "AssociatedBundleIdentifiers"];
        let spec = ServiceSpec { helper_path: "/opt/a&b/<x>/helper".into(), config_path: CONFIG.into() };
        let args = |helper| format!(r#"["{helper}", "run", "--config", "{CONFIG}"]"#);
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
            assert_eq!(got.trim(), format!(r#"["dev.dockroute.helper", true, true, {program}, "{LOG_FILE}"]"#));
        }
    }
}
