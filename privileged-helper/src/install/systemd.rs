//! Linux: a systemd unit, the `dockroute` group whose members may use the API, and
//! `systemctl` (or, where systemd is not running, the boot symlink `systemctl enable` makes).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::{Context, Result};

use super::{created, parent, Change, Ctx, Files, Logs, Record, ServiceManager, ServiceSpec};

pub const SERVICE_NAME: &str = "dockroute-helper.service";
pub const GROUP: &str = "dockroute";
const UNIT_PATH: &str = "/etc/systemd/system/dockroute-helper.service";
const WANTS_LINK: &str = "/etc/systemd/system/multi-user.target.wants/dockroute-helper.service";
const NO_SYSTEMD: &str = "systemd is not running: skipped systemctl";

static FILES: Files = Files {
    service: UNIT_PATH,
    record: "/var/lib/dockroute/install.state",
    config: "/etc/dockroute/dockroute.conf",
    logs: Logs::Dir { path: "/var/log/dockroute", ours_alone: false },
};

pub(super) struct Systemd;

impl ServiceManager for Systemd {
    fn files(&self) -> &'static Files {
        &FILES
    }

    fn render(&self, spec: &ServiceSpec) -> String {
        render_systemd_unit(spec)
    }

    fn prepare(&self, cx: &mut Ctx, _spec: &ServiceSpec) -> Result<()> {
        if !cx.ok("getent", &["group", GROUP]) {
            cx.cmd("groupadd", &["--system", GROUP])?;
            cx.rec.insert(format!("created-group={GROUP}"));
        }
        // Without a running systemd, make the symlink `systemctl enable` would, so it starts
        // at boot (here, before the record is written, since its directories may be new).
        let link = cx.real(Path::new(WANTS_LINK));
        if !cx.sys.systemd_running() && fs::symlink_metadata(&link).is_err() {
            cx.ensure_dirs(parent(Path::new(WANTS_LINK)))?;
            symlink(format!("../{SERVICE_NAME}"), &link)
                .with_context(|| format!("cannot create symlink {}", link.display()))?;
            cx.done.push(format!("enabled at boot with {WANTS_LINK}"));
        }
        Ok(())
    }

    fn activate(&self, cx: &mut Ctx, unit: Change) -> Result<()> {
        if !cx.sys.systemd_running() {
            cx.notes.push(format!("{NO_SYSTEMD}; the service starts at the next boot with systemd"));
            return Ok(());
        }
        match unit {
            Change::Same => {
                if !(cx.ok("systemctl", &["is-enabled", "--quiet", SERVICE_NAME])
                    && cx.ok("systemctl", &["is-active", "--quiet", SERVICE_NAME]))
                {
                    cx.cmd("systemctl", &["enable", "--now", SERVICE_NAME])?;
                }
            }
            Change::Created => {
                cx.cmd("systemctl", &["daemon-reload"])?;
                cx.cmd("systemctl", &["enable", "--now", SERVICE_NAME])?;
            }
            Change::Updated => {
                cx.cmd("systemctl", &["daemon-reload"])?;
                // `enable --now` would leave a running helper on the old definition.
                cx.cmd("systemctl", &["enable", SERVICE_NAME])?;
                cx.cmd("systemctl", &["restart", SERVICE_NAME])?;
            }
        }
        Ok(())
    }

    fn deactivate(&self, cx: &mut Ctx, rec: &Record) -> Result<()> {
        let (systemd, unit) = (cx.sys.systemd_running(), Path::new(UNIT_PATH));
        if systemd && cx.real(unit).exists() {
            cx.cmd("systemctl", &["disable", "--now", SERVICE_NAME])?;
        }
        if fs::symlink_metadata(cx.real(Path::new(WANTS_LINK))).is_ok_and(|m| m.is_symlink()) {
            cx.remove(Path::new(WANTS_LINK))?;
        }
        if cx.remove(unit)? && systemd {
            cx.cmd("systemctl", &["daemon-reload"])?;
        } else if !systemd && !cx.done.is_empty() {
            cx.notes.push(NO_SYSTEMD.into());
        }
        // Only a group install made: an admin's own `dockroute` group stays.
        if created(rec, "group").any(|g| g == GROUP) && cx.ok("getent", &["group", GROUP]) {
            cx.cmd("groupdel", &[GROUP])?;
        }
        Ok(())
    }
}

pub fn render_systemd_unit(spec: &ServiceSpec) -> String {
    unit(spec, "# Written by `dockroute-helper install`; `dockroute-helper uninstall` removes it.")
}

/// Where the Linux package puts the helper and where its service keeps the config.
pub const PACKAGED_HELPER: &str = "/usr/bin/dockroute-helper";
pub const PACKAGED_CONFIG: &str = "/etc/dockroute/dockroute.conf";

/// The unit the .deb ships in /usr/lib/systemd/system (packaging/linux/dockroute-helper.service).
pub fn render_packaged_systemd_unit() -> String {
    let spec =
        ServiceSpec { helper_path: PACKAGED_HELPER.into(), config_path: PACKAGED_CONFIG.into(), app_bundle: None };
    unit(&spec, "# Shipped by the dockroute package (packaging/linux/); dpkg removes it with the package.")
}

fn unit(spec: &ServiceSpec, header: &str) -> String {
    let (helper, config) = (spec.helper_path.to_string_lossy(), spec.config_path.to_string_lossy());
    // The program path is never variable-expanded, its arguments are.
    let exec = format!("{} run --config {}", sd_word(&helper, false), sd_word(&config, true));
    let conf_dir = spec.config_path.parent().unwrap_or(Path::new("/")).to_string_lossy();
    let rw = sd_word(&format!("-{conf_dir}"), false);
    format!(
        "{header}
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

#[cfg(test)]
mod tests {
    use super::super::fake::*;
    use super::super::{install, uninstall, InstallOptions, Platform};
    use super::*;

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
        assert_eq!(config, crate::default_config::DEFAULT_CONFIG);
        assert!(config.contains("\nport 2511\nmtu 1400\nhost 127.0.0.1\n"), "{config}");
        assert!(!config.lines().any(|l| l.starts_with("addr")), "the default must not pin the link subnet: {config}");
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
    fn uninstall_removes_the_local_ca_key_and_certificate_but_keeps_the_config() {
        let dir = root_dir();
        let root = dir.path();
        let (o, mut sys) = (opts(root, Platform::Linux, false), Fake::new(false, false));
        install(&o, &mut sys).unwrap();
        let files = crate::https::ca::CaFiles::for_config(&root.join("etc/dockroute/dockroute.conf"));
        crate::https::ca::load_or_make(&files, "docker", std::time::SystemTime::now()).unwrap();
        let removed = uninstall(&o, &mut sys).unwrap();
        assert!(!files.key.exists() && !files.cert.exists(), "{removed}");
        assert!(has(&removed, "dockroute.ca.key"), "{removed}");
        assert!(root.join("etc/dockroute/dockroute.conf").exists(), "the config stays without --purge");
        let again = uninstall(&o, &mut sys).unwrap();
        assert!(!has(&again, "dockroute.ca"), "nothing left to remove: {again}");
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
        fs::write(root.join("etc/dockroute/dockroute.share.json"), "{}").unwrap(); // the share's keys
        sys.calls.clear();
        let report = uninstall(&o, &mut sys).unwrap();
        assert_eq!(sys.calls, [format!("systemctl disable --now {unit}"), "systemctl daemon-reload".into()]);
        assert!(has(&report, "removed /etc/dockroute/dockroute.secret"), "{report}");
        assert!(has(&report, "removed /etc/dockroute/dockroute.share.json"), "{report}");
        assert_eq!(paths(root), before, "{report}");
    }

    #[test]
    fn a_failed_start_still_records_what_was_created_so_uninstall_removes_it() {
        let dir = root_dir();
        let (root, before) = (dir.path(), paths(dir.path()));
        let (o, mut sys) = (opts(root, Platform::Linux, true), Fake::new(true, false));
        sys.failing.push("systemctl enable");
        let e = install(&o, &mut sys).unwrap_err().to_string();
        assert!(e.contains("`systemctl enable --now dockroute-helper.service` failed"), "{e}");
        let rec = read(root, "/var/lib/dockroute/install.state");
        assert!(rec.contains("created-group=dockroute\n") && rec.contains("created-config="), "{rec}");
        sys.failing.clear();
        uninstall(&o, &mut sys).unwrap();
        assert_eq!(paths(root), before);
        assert_eq!(sys.calls.last().map(String::as_str), Some("groupdel dockroute"), "{:?}", sys.calls);
    }

    #[test]
    fn an_admins_own_log_directory_survives_a_purge() {
        let dir = root_dir();
        let root = dir.path();
        fs::create_dir_all(root.join("var/log/dockroute")).unwrap();
        fs::write(root.join("var/log/dockroute/mine.log"), "kept").unwrap();
        let (o, mut sys) = (opts(root, Platform::Linux, true), Fake::new(false, true));
        install(&o, &mut sys).unwrap();
        uninstall(&o, &mut sys).unwrap();
        assert_eq!(read(root, "/var/log/dockroute/mine.log"), "kept");
        assert!(!sys.calls.iter().any(|c| c.starts_with("groupdel")), "the group was there before: {:?}", sys.calls);
    }

    #[test]
    fn unit_words_escape_specifiers_variables_quotes_and_controls() {
        assert_eq!(sd_word("/usr/bin/dockroute-helper", false), "/usr/bin/dockroute-helper");
        assert_eq!(sd_word("/opt/my dir/h", false), "\"/opt/my dir/h\"");
        assert_eq!(sd_word("/a/100%/$HOME", false), "/a/100%%/$HOME", "the program path is not expanded");
        assert_eq!(sd_word("/a/100%/$HOME", true), "/a/100%%/$$HOME");
        assert_eq!(sd_word("/a/\"q\"\\b", false), "\"/a/\\\"q\\\"\\\\b\"");
        assert_eq!(sd_word("/a\u{1}b", false), "/a\\x01b");
        assert_eq!(sd_word("", false), "\"\"");
        let spec = ServiceSpec {
            helper_path: "/h".into(),
            config_path: "/etc/my dir/dockroute.conf".into(),
            app_bundle: None,
        };
        let unit = render_systemd_unit(&spec);
        assert!(unit.contains("\nExecStart=/h run --config \"/etc/my dir/dockroute.conf\"\n"), "{unit}");
        assert!(unit.contains("\nReadWritePaths=\"-/etc/my dir\"\n"), "{unit}");
    }

    #[test]
    fn the_packaged_unit_is_the_rendered_one() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/linux/dockroute-helper.service");
        let shipped = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            shipped == render_packaged_systemd_unit(),
            "{} is stale: regenerate it with `cargo run -q -p dockroute-helper -- print-systemd-unit > {}`",
            path.display(),
            path.display()
        );
        assert!(shipped.contains("\nExecStart=/usr/bin/dockroute-helper run --config /etc/dockroute/dockroute.conf\n"));
    }

    /// Needs Linux's /bin/true and systemd-analyze (a Mac has neither; its plists get `plutil`).
    #[cfg(target_os = "linux")]
    #[test]
    fn systemd_analyze_accepts_the_unit_even_with_awkward_paths() {
        use std::path::PathBuf;
        use std::process::Command;

        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("my dir $HOME %n");
        fs::create_dir(&odd).unwrap();
        fs::copy("/bin/true", odd.join("helper")).unwrap();
        for helper in [PathBuf::from("/bin/true"), odd.join("helper")] {
            let spec = ServiceSpec { helper_path: helper, config_path: odd.join("dockroute.conf"), app_bundle: None };
            let unit = dir.path().join(SERVICE_NAME);
            fs::write(&unit, render_systemd_unit(&spec)).unwrap();
            let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output();
            let out = out.expect("systemd-analyze is needed to verify the unit (apt-get install systemd)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() && !text.contains("ignoring"), "systemd-analyze verify: {text}");
        }
    }
}
