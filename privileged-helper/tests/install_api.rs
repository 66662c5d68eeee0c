//! Drives install/uninstall only through the public API, plus RealSystem against real commands.
use dockroute_helper::install::*;
use std::path::Path;

/// Records commands; launchd has the label loaded between bootstrap and bootout.
struct Rec(Vec<String>, bool);
impl System for Rec {
    fn run(&mut self, program: &str, args: &[&str]) -> anyhow::Result<String> {
        self.0.push(format!("{program} {}", args.join(" ")));
        match (program, args[0]) {
            ("launchctl", "print") if !self.1 => anyhow::bail!("not loaded"),
            ("launchctl", "bootstrap" | "bootout") => self.1 = args[0] == "bootstrap",
            _ => {} // getent: the group exists
        }
        Ok(String::new())
    }
    fn systemd_running(&self) -> bool {
        false
    }
}

#[test]
fn real_system_reports_output_and_names_failing_commands() {
    let mut sys = RealSystem;
    assert_eq!(sys.run("sh", &["-c", "echo hi"]).unwrap(), "hi\n");
    let e = sys.run("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err().to_string();
    assert!(e.contains("`sh -c echo oops >&2; exit 3` failed") && e.contains("oops"), "{e}");
    let e = sys.run("/nonexistent/groupadd", &["--system", "x"]).unwrap_err().to_string();
    assert!(e.contains("cannot run `/nonexistent/groupadd --system x`"), "{e}");
    assert_eq!(sys.systemd_running(), Path::new("/run/systemd/system").is_dir());
}

#[test]
fn public_api_round_trip_on_both_platforms() {
    for platform in [Platform::Linux, Platform::MacOs] {
        let (dir, build) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        // macOS installs a copy of the helper: it must exist (Linux runs it where it is).
        let helper = build.path().join("dockroute-helper");
        std::fs::write(&helper, "the helper").unwrap();
        let spec = ServiceSpec {
            helper_path: helper.clone(),
            config_path: platform.default_config_path().to_path_buf(),
            app_bundle: None,
        };
        let mut opts = InstallOptions { root: dir.path().into(), platform, spec, purge: false };
        let mut sys = Rec(Vec::new(), false);
        let report = install(&opts, &mut sys).unwrap();
        println!("{platform:?} install:\n{report}");
        let service = dir.path().join(platform.service_file().strip_prefix("/").unwrap());
        let text = std::fs::read_to_string(&service).unwrap();
        let runs = match platform {
            Platform::Linux => helper.to_string_lossy().into_owned(),
            Platform::MacOs => dockroute_api::launchd::INSTALLED_HELPER.to_string(),
        };
        assert!(text.contains(&format!(">{runs}<")) || text.contains(&format!("={runs} ")), "{text}");
        assert!(install(&opts, &mut sys).unwrap().lines[0].contains("already installed"));
        opts.purge = true;
        println!("{platform:?} uninstall:\n{}", uninstall(&opts, &mut sys).unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "purge left files behind");
        assert!(uninstall(&opts, &mut sys).unwrap().lines[0].contains("not installed"));
        assert!(!sys.0.iter().any(|c| c.starts_with("groupadd") || c.starts_with("systemctl")), "{:?}", sys.0);
    }
}
