//! The way in, the hand-over between SMAppService and the password install, the update
//! re-registration, and osascript's outcomes, fed with what macOS prints (sources named at each
//! recording).

use std::path::Path;
use std::process::Command;

use super::*;

const APP: &str = "0.2.0";

/// `launchctl print` of an SMAppService job launchd refuses to start (the lines that matter,
/// from Stack Overflow question 78809259, "Launch Constraint Violation").
const REFUSED: &str = "system/dev.dockroute.helper = {
    path = (submitted by smd.303)
    type = Submitted
    state = spawn scheduled
    parent bundle identifier = dev.dockroute.app
    last exit code = 78: EX_CONFIG
    job state = spawn failed
}
";
/// `launchctl print` of a running job (the shape of wazuh/wazuh-packages issue 2206).
const RUNNING: &str = "system/dev.dockroute.helper = {
    path = (submitted by smd.303)
    type = Submitted
    state = running
    pid = 812
    last exit code = (never exited)
}
";
/// Launched once, not yet running, nothing refused (between launchd's tries).
const WAITING: &str = "system/dev.dockroute.helper = {
    path = (submitted by smd.303)
    state = spawn scheduled
    last exit code = (never exited)
}
";

fn job(text: &str) -> Job {
    Job::parse(text).unwrap()
}

fn seen<'a>(sm: Status, daemon_plist: bool, job: Option<&'a Job>, helper: Option<&'a str>) -> Seen<'a> {
    Seen { sm, daemon_plist, job, helper_version: helper }
}

#[test]
fn the_install_button_takes_the_way_already_in_use() {
    for sm in [Status::NotRegistered, Status::Enabled, Status::RequiresApproval, Status::NotFound] {
        assert_eq!(install_way(&seen(sm, false, None, None)), Way::SmAppService, "{sm:?}");
        assert_eq!(install_way(&seen(sm, true, None, None)), Way::Password, "{sm:?}");
    }
}

#[test]
fn an_enabled_helper_that_launchd_will_not_start_is_refused() {
    let refused = job(REFUSED);
    let advice = advise(&seen(Status::Enabled, false, Some(&refused), None), APP, None);
    let Advice::Refused(why) = advice else { panic!("{advice:?}") };
    assert!(why.contains("78: EX_CONFIG") && why.contains("spawn failed"), "{why}");
    // Running, or still being tried: nothing refused.
    let running = job(RUNNING);
    assert_eq!(advise(&seen(Status::Enabled, false, Some(&running), None), APP, None), Advice::Ready);
    let waiting = job(WAITING);
    assert_eq!(advise(&seen(Status::Enabled, false, Some(&waiting), None), APP, None), Advice::Ready);
    // A helper that answers is not refused, whatever an older line of launchd's says.
    assert_eq!(advise(&seen(Status::Enabled, false, Some(&refused), Some(APP)), APP, None), Advice::Ready);
}

#[test]
fn an_updated_app_reregisters_an_older_helper_once() {
    let old = seen(Status::Enabled, false, None, Some("0.1.9"));
    assert_eq!(advise(&old, APP, None), Advice::Reregister { helper: "0.1.9".into() });
    // Done once for that version: not again (launchd may take a moment to start the new one).
    assert_eq!(advise(&old, APP, Some("0.1.9")), Advice::Ready);
    // The same or a newer helper is fine; a version that cannot be read leads to nothing.
    for helper in [APP, "0.3.0", "garbage"] {
        assert_eq!(advise(&seen(Status::Enabled, false, None, Some(helper)), APP, None), Advice::Ready, "{helper}");
    }
}

#[test]
fn the_password_install_wins_and_the_registration_goes() {
    // Both ways installed (the cask's postflight ran after the app had registered): the
    // SMAppService registration is dropped, never run beside the plist.
    for sm in [Status::Enabled, Status::RequiresApproval] {
        assert_eq!(advise(&seen(sm, true, None, Some(APP)), APP, None), Advice::DropRegistration, "{sm:?}");
    }
    // Alone, an older password-installed helper needs the password again; a current one nothing.
    let old = seen(Status::NotRegistered, true, None, Some("0.1.0"));
    assert_eq!(advise(&old, APP, None), Advice::Update { helper: "0.1.0".into() });
    assert_eq!(advise(&old, APP, Some("0.1.0")), Advice::Update { helper: "0.1.0".into() }, "not a re-registration");
    assert_eq!(advise(&seen(Status::NotFound, true, None, Some(APP)), APP, None), Advice::Nothing);
    assert_eq!(advise(&seen(Status::NotRegistered, true, None, None), APP, None), Advice::Nothing);
}

#[test]
fn smappservice_states_without_a_plist() {
    assert_eq!(advise(&seen(Status::RequiresApproval, false, None, None), APP, None), Advice::Pending);
    for sm in [Status::NotRegistered, Status::NotFound, Status::Unknown(7)] {
        assert_eq!(advise(&seen(sm, false, None, None), APP, None), Advice::Nothing, "{sm:?}");
    }
}

#[test]
fn after_enabling_launchd_starts_or_refuses() {
    assert_eq!(started(Some(&job(RUNNING))), Started::Running);
    assert!(matches!(started(Some(&job(REFUSED))), Started::Refused(_)));
    assert_eq!(started(Some(&job(WAITING))), Started::NotYet);
    assert_eq!(started(None), Started::NotYet);
}

#[test]
fn versions_compare_by_number() {
    assert!(older("0.1.0", "0.2.0"));
    assert!(older("0.9.0", "0.10.0"), "not as text");
    assert!(older("1.2", "1.2.1"));
    assert!(older("0.2.0-rc.1", "0.2.1"));
    assert!(!older("0.2.0", "0.2.0"));
    assert!(!older("0.3.0", "0.2.9"));
    assert!(!older("dev", "0.2.0") && !older("0.1.0", ""));
}

/// The script, run through a real /bin/sh the way `do shell script` runs the command: the
/// AppleScript string is unescaped as AppleScript would, then given to `sh -c`.
fn shell_words(script: &str) -> Vec<String> {
    let inner = script.strip_prefix("do shell script \"").unwrap();
    let end = inner.find("\" with prompt").unwrap();
    // AppleScript's string escapes: a backslash takes the next character as it is.
    let (mut command, mut chars) = (String::new(), inner[..end].chars());
    while let Some(c) = chars.next() {
        command.push(if c == '\\' { chars.next().unwrap() } else { c });
    }
    let out = Command::new("sh").arg("-c").arg(format!("printf '%s\\n' {command}")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect()
}

#[test]
fn the_admin_script_passes_odd_paths_through_as_single_words() {
    let helper = Path::new("/Applications/Dock Route's \"x\" $HOME\\n.app/Contents/MacOS/dockroute-helper");
    let bundle = Path::new("/Applications/Dock Route's \"x\" $HOME\\n.app");
    let script = admin_script(helper, bundle);
    assert!(script.ends_with("with administrator privileges"), "{script}");
    assert_eq!(
        shell_words(&script),
        [helper.to_str().unwrap(), "install", "--app-bundle", bundle.to_str().unwrap()],
        "{script}"
    );
    let plain = admin_script(
        Path::new("/Applications/Dockroute.app/Contents/MacOS/dockroute-helper"),
        Path::new("/Applications/Dockroute.app"),
    );
    assert_eq!(
        plain,
        format!(
            "do shell script \"'/Applications/Dockroute.app/Contents/MacOS/dockroute-helper' install --app-bundle \
             '/Applications/Dockroute.app'\" with prompt \"{PROMPT}\" with administrator privileges"
        )
    );
}

#[test]
fn osascript_says_cancelled_or_what_failed() {
    assert_eq!(password_outcome(true, ""), Ok(()));
    // osascript's stderr when the user cancels the password dialog.
    assert_eq!(
        password_outcome(false, "0:187: execution error: User canceled. (-128)\n"),
        Err(PasswordError::Cancelled)
    );
    // The helper failed: its own message, without osascript's position and exit status.
    let failed = "0:187: execution error: dockroute-helper: cannot read the helper to install, /x: No such file or directory (os error 2) (1)\n";
    assert_eq!(
        password_outcome(false, failed),
        Err(PasswordError::Failed(
            "dockroute-helper: cannot read the helper to install, /x: No such file or directory (os error 2)".into()
        ))
    );
    assert_eq!(password_outcome(false, "something else\n"), Err(PasswordError::Failed("something else".into())));
}
