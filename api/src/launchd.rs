//! The helper under launchd on macOS, as both `dockroute-helper install` and the app see it.
//! There are two ways in, with one label: the app registers the LaunchDaemon plist of its bundle
//! through SMAppService, or `dockroute-helper install` (run as root, e.g. through macOS's
//! administrator prompt) writes a plist into /Library/LaunchDaemons. Each way looks for the
//! other through `launchctl print system/<label>` and the plist file, and replaces it.
//!
//! `launchctl print` is parsed here as plain text, from outputs recorded on real Macs (see the
//! tests for each source): only the job's own top-level `key = value` lines count.

/// The job's label, whichever way installed it.
pub const LABEL: &str = "dev.dockroute.helper";
/// `launchctl print`'s name for the job.
pub const TARGET: &str = "system/dev.dockroute.helper";
/// The plist in the app bundle (`Contents/Library/LaunchDaemons/`) SMAppService registers.
pub const BUNDLE_PLIST: &str = "dev.dockroute.helper.plist";
/// The plist `dockroute-helper install` writes.
pub const DAEMON_PLIST: &str = "/Library/LaunchDaemons/dev.dockroute.helper.plist";
/// Where `dockroute-helper install` copies the helper: root-owned, so the root daemon never runs
/// a file its user could replace (as the one inside a dragged-in app bundle is).
pub const INSTALLED_HELPER: &str = "/Library/PrivilegedHelperTools/dev.dockroute.helper";
/// The helper's argument naming the app whose signature it trusts when it runs outside it.
pub const APP_BUNDLE_ARG: &str = "--app-bundle";

/// Who gave launchd the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A plist file (`path = /Library/LaunchDaemons/x.plist`): `dockroute-helper install`.
    Plist(String),
    /// Submitted by ServiceManagement (`path = (submitted by smd.303)`, `type = Submitted`): the
    /// app's SMAppService registration.
    SmAppService,
    Unknown,
}

/// What `launchctl print system/<label>` says about the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub origin: Origin,
    /// `state`: `running`, `waiting`, `spawn scheduled`, `not running`, ...
    pub state: Option<String>,
    pub pid: Option<u32>,
    /// `last exit code`, e.g. `78: EX_CONFIG`, `0`, `(never exited)`.
    pub last_exit: Option<String>,
    /// `job state`, e.g. `spawn failed` (printed when launchd could not start it).
    pub job_state: Option<String>,
}

impl Job {
    /// Parses the output of `launchctl print system/<label>`; None when it names no job
    /// ("Could not find service ...").
    pub fn parse(text: &str) -> Option<Job> {
        let mut lines = text.lines();
        // `system/label = {` (macOS 11+) or `label = {` (10.10-10.15).
        lines.find(|l| l.trim_end().ends_with("= {"))?;
        let (mut path, mut submitted) = (None, false);
        let mut job = Job { origin: Origin::Unknown, state: None, pid: None, last_exit: None, job_state: None };
        let mut depth = 0usize;
        for line in lines {
            let line = line.trim();
            if line.ends_with('{') {
                depth += 1;
                continue;
            }
            if line == "}" {
                if depth == 0 {
                    break; // the job's own closing brace
                }
                depth -= 1;
                continue;
            }
            let Some((key, value)) = line.split_once(" = ") else { continue };
            if depth > 0 {
                continue; // inside environment, endpoints, ...
            }
            let value = value.trim().to_string();
            match key.trim() {
                "path" => path = Some(value),
                "type" => submitted |= value == "Submitted",
                "parent bundle identifier" => submitted = true,
                "state" => job.state = Some(value),
                "pid" => job.pid = value.parse().ok(),
                "last exit code" => job.last_exit = Some(value),
                "job state" => job.job_state = Some(value),
                _ => {}
            }
        }
        job.origin = match path {
            Some(p) if p.starts_with("(submitted by smd") => Origin::SmAppService,
            _ if submitted => Origin::SmAppService,
            Some(p) if p.starts_with('/') => Origin::Plist(p),
            _ => Origin::Unknown,
        };
        Some(job)
    }

    pub fn running(&self) -> bool {
        self.state.as_deref() == Some("running") && self.pid.is_some()
    }

    /// Why launchd does not start the job although it has it: the exit status a launch
    /// refusal leaves (EX_CONFIG, 78: a code-signing or launch-constraint refusal, or a plist
    /// launchd cannot use) or a failed spawn. None while nothing says so.
    pub fn refusal(&self) -> Option<String> {
        if self.running() {
            return None;
        }
        let ex_config = self.last_exit.as_deref().is_some_and(|e| e.split(':').next().map(str::trim) == Some("78"));
        let spawn_failed = self.job_state.as_deref() == Some("spawn failed");
        if !ex_config && !spawn_failed {
            return None;
        }
        let said: Vec<String> = [
            self.last_exit.as_ref().map(|e| format!("last exit code = {e}")),
            self.job_state.as_ref().map(|s| format!("job state = {s}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        Some(format!("launchd does not start the helper ({})", said.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SMAppService-registered daemon that launchd refuses to start, recorded with
    /// `launchctl print system/com.nsnolan.LockerRoomDaemon` (Stack Overflow question 78809259,
    /// "Launch Daemon Embedded in Application Will Not Launch - Launch Constraint Violation").
    const SMAPPSERVICE_REFUSED: &str = "system/com.nsnolan.LockerRoomDaemon = {
    active count = 0
    path = (submitted by smd.303)
    type = Submitted
    state = spawn scheduled

    program identifier = Contents/MacOS/LockerRoomDaemon (mode: 2)
    parent bundle identifier = com.nsnolan.LockerRoom
    parent bundle version = 1
    BTM uuid = <redacted>
    default environment = {
        PATH => /usr/bin:/bin:/usr/sbin:/sbin
    }

    environment = {
        XPC_SERVICE_NAME => com.nsnolan.LockerRoomDaemon
    }

    domain = system
    minimum runtime = 10
    exit timeout = 5
    runs = 83
    last exit code = 78: EX_CONFIG

    endpoints = {
        \"com.nsnolan.LockerRoomDaemon\" = {
            port = 0xfaaab
            active = 0
            managed = 1
            reset = 0
            hide = 0
            watching = 0
        }
    }

    spawn type = interactive (4)
    jetsam priority = 40
    submitted job. ignore execute allowed
    jetsam thread limit = 32
    cpumon = default
    job state = spawn failed
    probabilistic guard malloc policy = {
        activation rate = 1/1000
        sample rate = 1/0
    }

    properties = partial import | supports transactions | resolve program | needs LWCR update | has LWCR
}
";

    /// A daemon loaded from /Library/LaunchDaemons and running, recorded with `launchctl print
    /// system/com.wazuh.agent` (wazuh/wazuh-packages issue 2206, macOS Mojave; shortened).
    const PLIST_RUNNING: &str = "com.wazuh.agent = {
        active count = 1
        path = /Library/LaunchDaemons/com.wazuh.agent.plist
        state = running

        program = /Library/StartupItems/WAZUH/Wazuh-launcher
        arguments = {
                /Library/StartupItems/WAZUH/Wazuh-launcher
        }

        default environment = {
                PATH => /usr/bin:/bin:/usr/sbin:/sbin
        }

        domain = com.apple.xpc.launchd.domain.system
        minimum runtime = 10
        exit timeout = 5
        runs = 3
        successive crashes = 0
        pid = 1486
        immediate reason = one-shot
        last exit code = 0

        event triggers = {
        }
}
";

    /// What `launchctl print` prints (exit 113) for a label launchd does not know (recorded in
    /// nix-installer issue 960).
    const NOT_FOUND: &str = "Could not find service \"dev.dockroute.helper\" in domain for system";

    #[test]
    fn an_smappservice_job_that_launchd_refuses_is_told_apart() {
        let job = Job::parse(SMAPPSERVICE_REFUSED).unwrap();
        assert_eq!(job.origin, Origin::SmAppService);
        assert_eq!(job.state.as_deref(), Some("spawn scheduled"));
        assert_eq!((job.pid, job.running()), (None, false));
        // The nested `port = 0xfaaab` and `active = 0` of the endpoint are not the job's.
        assert_eq!(job.last_exit.as_deref(), Some("78: EX_CONFIG"));
        let why = job.refusal().expect("a refusal");
        assert_eq!(why, "launchd does not start the helper (last exit code = 78: EX_CONFIG, job state = spawn failed)");
    }

    #[test]
    fn a_plist_job_that_runs_is_no_refusal() {
        let job = Job::parse(PLIST_RUNNING).unwrap();
        assert_eq!(job.origin, Origin::Plist("/Library/LaunchDaemons/com.wazuh.agent.plist".into()));
        assert!(job.running());
        assert_eq!(job.pid, Some(1486));
        assert_eq!(job.refusal(), None);
    }

    #[test]
    fn an_unknown_label_is_no_job_and_partial_outputs_still_parse() {
        assert_eq!(Job::parse(NOT_FOUND), None);
        assert_eq!(Job::parse(""), None);
        // EX_CONFIG alone, or a failed spawn alone, is a refusal; an ordinary exit is not.
        let exit = |code: &str| {
            format!("system/{LABEL} = {{\n    path = {DAEMON_PLIST}\n    state = not running\n    last exit code = {code}\n}}\n")
        };
        assert!(Job::parse(&exit("78: EX_CONFIG")).unwrap().refusal().is_some());
        assert_eq!(Job::parse(&exit("78")).unwrap().origin, Origin::Plist(DAEMON_PLIST.into()));
        assert!(Job::parse(&exit("78")).unwrap().refusal().is_some());
        assert_eq!(Job::parse(&exit("1: Operation not permitted")).unwrap().refusal(), None);
        assert_eq!(Job::parse(&exit("(never exited)")).unwrap().refusal(), None);
        let spawn = format!("{LABEL} = {{\n    state = waiting\n    job state = spawn failed\n}}\n");
        assert_eq!(
            Job::parse(&spawn).unwrap().refusal().unwrap(),
            "launchd does not start the helper (job state = spawn failed)"
        );
    }
}
