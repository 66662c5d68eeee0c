//! `dockroute-helper install` / `uninstall` for real, on this machine's root file system: the
//! unit it writes passes `systemd-analyze verify`, and uninstall --purge leaves the machine as
//! it found it. (Where systemd runs, install also starts the service; here PID 1 may not be
//! systemd, which install reports.) Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use dockroute_e2e::netns::require_root;
use dockroute_e2e::rig::bin;

const UNIT: &str = "/etc/systemd/system/dockroute-helper.service";

/// Every path under the directories install may touch, to compare before and after.
fn snapshot() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for root in ["/etc/systemd/system", "/var/lib/dockroute", "/etc/dockroute"] {
        walk(Path::new(root), &mut out);
    }
    out.sort();
    out
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if std::fs::symlink_metadata(p).is_err() {
        return;
    }
    out.push(p.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            walk(&e.path(), out);
        }
    }
}

fn group_exists(name: &str) -> bool {
    Command::new("getent").args(["group", name]).output().is_ok_and(|o| o.status.success())
}

fn helper(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("dockroute-helper")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn install_writes_a_valid_service_and_uninstall_purge_removes_everything_it_made() {
    if !require_root() {
        return;
    }
    assert!(!Path::new(UNIT).exists(), "a dockroute unit is already installed on this machine; not touching it");
    let group_before = group_exists("dockroute");
    let before = snapshot();
    let config = "/etc/dockroute/dockroute.conf";

    let (ok, report) = helper(&["install", "--config", config]);
    assert!(ok, "install failed:\n{report}");
    let unit = std::fs::read_to_string(UNIT).expect("unit written");
    let exe = bin("dockroute-helper");
    assert!(unit.contains(&format!("ExecStart={} run --config {config}", exe.display())), "{unit}");
    assert!(unit.contains("Restart=always"), "{unit}");
    let verify = Command::new("systemd-analyze").args(["verify", UNIT]).output().unwrap();
    assert!(verify.status.success(), "systemd-analyze verify: {}", String::from_utf8_lossy(&verify.stderr));
    assert!(Path::new(config).exists(), "a default config was written");
    assert!(group_exists("dockroute"), "the API group exists after install");
    if !Path::new("/run/systemd/system").is_dir() {
        assert!(report.contains("systemd is not running"), "install says it skipped systemctl:\n{report}");
    }
    let (ok, again) = helper(&["install", "--config", config]);
    assert!(ok && again.contains("already installed"), "second install:\n{again}");

    let (ok, report) = helper(&["uninstall", "--config", config, "--purge"]);
    assert!(ok, "uninstall failed:\n{report}");
    assert_eq!(snapshot(), before, "uninstall --purge leaves exactly what was there before install");
    assert_eq!(group_exists("dockroute"), group_before, "the group is removed only if install created it");
    let (ok, again) = helper(&["uninstall", "--config", config, "--purge"]);
    assert!(ok && again.contains("not installed"), "second uninstall:\n{again}");
}

#[test]
fn the_smappservice_plist_for_the_app_bundle_parses_and_names_the_bundled_helper() {
    if !require_root() {
        return;
    }
    let (ok, plist) = helper(&["print-smappservice-plist"]);
    assert!(ok, "{plist}");
    let dir = std::env::temp_dir().join(format!("dockroute-plist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dev.dockroute.helper.plist");
    std::fs::write(&file, &plist).unwrap();
    let check = "import plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); \
        assert d['Label']=='dev.dockroute.helper', d; assert d['KeepAlive'] is True; \
        assert d['BundleProgram']=='Contents/MacOS/dockroute-helper', d; print('ok')";
    let out = Command::new("python3").args(["-c", check]).arg(&file).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
