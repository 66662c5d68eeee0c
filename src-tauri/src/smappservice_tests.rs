//! Every transition of `Flow` and every documented ServiceManagement error code, plus `run`
//! against a scripted SMAppService (the sequences a Mac shows).

use std::cell::RefCell;
use std::collections::VecDeque;

use super::*;

const STATUSES: [Status; 5] =
    [Status::NotRegistered, Status::Enabled, Status::RequiresApproval, Status::NotFound, Status::Unknown(9)];

fn sm(code: SmCode) -> CallError {
    CallError { domain: "SMAppServiceErrorDomain".into(), code: code as i64, description: format!("{code:?}") }
}

/// `Error Domain=SMAppServiceErrorDomain Code=1 "Operation not permitted"`, recorded from
/// `register` on macOS 13 (mhaeuser/Battery-Toolkit issue 4; internxt/drive-desktop-macos PR 262).
fn eperm() -> CallError {
    CallError { domain: "SMAppServiceErrorDomain".into(), code: 1, description: "Operation not permitted".into() }
}

/// `SMAppServiceErrorDomain code 3`, "Codesigning failure loading plist: … code: -67028",
/// recorded from `register` in an unsigned build (exelban/stats PR 3194).
fn codesigning_failure() -> CallError {
    CallError {
        domain: "SMAppServiceErrorDomain".into(),
        code: 3,
        description: "Codesigning failure loading plist: dev.dockroute.helper.plist code: -67028".into(),
    }
}

/// Every result a `register`/`unregister` can give: success, each documented code, and a code
/// the headers do not list.
fn all_results() -> Vec<Result<(), CallError>> {
    let mut out = vec![Ok(()), Err(eperm())];
    out.extend(SmCode::ALL.into_iter().map(|c| Err(sm(c))));
    out
}

/// A flow that asked for its call and got `result`.
fn after_call(mut flow: Flow, first: Status, result: Result<(), CallError>) -> Flow {
    let asked = flow.next(first);
    assert!(matches!(asked, Next::Register | Next::Unregister), "{asked:?}");
    flow.called(result);
    flow
}

/// The message of a failure, refused (the other way in is offered) or not.
fn failed(next: Next) -> String {
    match next {
        Next::Done(Outcome::Failed(m) | Outcome::Refused(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn statuses_are_apples_values() {
    assert_eq!(Status::from_raw(0), Status::NotRegistered);
    assert_eq!(Status::from_raw(1), Status::Enabled);
    assert_eq!(Status::from_raw(2), Status::RequiresApproval);
    assert_eq!(Status::from_raw(3), Status::NotFound);
    assert_eq!(Status::from_raw(4), Status::Unknown(4));
    assert_eq!(Status::from_raw(-1), Status::Unknown(-1));
}

#[test]
fn error_codes_are_the_headers_and_only_in_service_managements_domains() {
    let raw: Vec<i64> = SmCode::ALL.iter().map(|c| *c as i64).collect();
    assert_eq!(raw, (2..=12).collect::<Vec<i64>>(), "kSMErrorInternalFailure = 2 … kSMErrorAlreadyRegistered = 12");
    assert_eq!(SmCode::from_raw(11), Some(SmCode::LaunchDeniedByUser));
    assert_eq!(SmCode::from_raw(12), Some(SmCode::AlreadyRegistered));
    assert_eq!((SmCode::from_raw(1), SmCode::from_raw(13)), (None, None));
    for domain in SM_DOMAINS {
        let e = CallError { domain: domain.into(), code: 11, description: String::new() };
        assert_eq!(e.sm_code(), Some(SmCode::LaunchDeniedByUser), "{domain}");
    }
    let posix = CallError { domain: "NSPOSIXErrorDomain".into(), code: 11, description: "EDEADLK".into() };
    assert_eq!(posix.sm_code(), None, "errno 11 is not kSMErrorLaunchDeniedByUser");
    assert_eq!(eperm().sm_code(), None);
    assert_eq!(codesigning_failure().sm_code(), Some(SmCode::InvalidSignature));
}

#[test]
fn enabling_starts_from_the_status() {
    for service in [Service::Helper, Service::LoginItem] {
        // Already on: no call at all (a register would fail with kSMErrorAlreadyRegistered).
        assert_eq!(Flow::enable(service, 14).next(Status::Enabled), Next::Done(Outcome::Enabled));
        assert_eq!(Flow::enable(service, 14).next(Status::NotRegistered), Next::Register);
        assert_eq!(Flow::enable(service, 14).next(Status::NotFound), Next::Register);
        // Registered before, not yet approved: straight to System Settings, no register.
        let mut pending = Flow::enable(service, 14);
        assert_eq!(pending.next(Status::RequiresApproval), Next::OpenLoginItems);
        assert_eq!(pending.next(Status::RequiresApproval), Next::Done(Outcome::NeedsApproval));
        let odd = failed(Flow::enable(service, 14).next(Status::Unknown(7)));
        assert!(odd.contains("unknown state (7)"), "{odd}");
    }
}

#[test]
fn after_register_an_enabled_status_wins_over_any_error() {
    for result in all_results() {
        let mut flow = after_call(Flow::enable(Service::Helper, 14), Status::NotRegistered, result.clone());
        assert_eq!(flow.next(Status::Enabled), Next::Done(Outcome::Enabled), "{result:?}");
    }
}

#[test]
fn after_register_a_pending_approval_opens_login_items_whatever_the_call_said() {
    for result in all_results() {
        let mut flow = after_call(Flow::enable(Service::Helper, 14), Status::NotRegistered, result.clone());
        assert_eq!(flow.next(Status::RequiresApproval), Next::OpenLoginItems, "{result:?}");
        assert_eq!(flow.next(Status::RequiresApproval), Next::Done(Outcome::NeedsApproval), "{result:?}");
    }
}

#[test]
fn after_register_without_a_registration_each_code_is_explained() {
    // The status still says not registered: the error is all there is to go by.
    let expect: [(SmCode, &str); 11] = [
        (SmCode::InternalFailure, "restart the Mac"),
        (SmCode::InvalidSignature, "code signature"),
        (SmCode::AuthorizationFailure, "administrator"),
        (SmCode::ToolNotValid, "install Dockroute again"),
        (SmCode::JobNotFound, "cannot find the service"),
        (SmCode::ServiceUnavailable, "try again in a moment"),
        (SmCode::JobPlistNotFound, "launchd plist"),
        (SmCode::JobMustBeEnabled, ""),
        (SmCode::InvalidPlist, "damaged"),
        (SmCode::LaunchDeniedByUser, ""),
        (SmCode::AlreadyRegistered, "already registered"),
    ];
    for (code, says) in expect {
        for status in [Status::NotRegistered, Status::NotFound, Status::Unknown(9)] {
            let mut flow = after_call(Flow::enable(Service::Helper, 14), Status::NotRegistered, Err(sm(code)));
            let next = flow.next(status);
            if code.needs_approval() {
                // "Launch denied by user" / "job must be enabled": the switch in Login Items.
                assert_eq!(next, Next::OpenLoginItems, "{code:?} {status:?}");
                continue;
            }
            // Only a passing failure is not offered the other way in.
            let refused = matches!(next, Next::Done(Outcome::Refused(_)));
            assert_eq!(refused, !code.transient(), "{code:?}: {next:?}");
            let m = failed(next);
            assert!(m.starts_with("Registering the helper failed: "), "{m}");
            assert!(m.contains(says), "{code:?}: {m}");
            assert!(m.contains(&format!("SMAppServiceErrorDomain {}", code as i64)), "the code is named: {m}");
        }
    }
}

#[test]
fn after_register_other_failures_and_silent_successes_are_said() {
    let m =
        failed(after_call(Flow::enable(Service::Helper, 14), Status::NotFound, Err(eperm())).next(Status::NotFound));
    assert!(
        m.contains(
            "macOS refused: Operation not permitted (POSIX EPERM) (Operation not permitted; SMAppServiceErrorDomain 1)"
        ),
        "{m}"
    );
    let m = failed(
        after_call(Flow::enable(Service::LoginItem, 14), Status::NotRegistered, Ok(())).next(Status::NotRegistered),
    );
    assert_eq!(m, "Cannot turn on launch at login: macOS reports it as not registered.");
    let m =
        failed(after_call(Flow::enable(Service::Helper, 14), Status::NotRegistered, Ok(())).next(Status::Unknown(5)));
    assert!(m.contains("unknown state (5)"), "{m}");
}

#[test]
fn disabling_starts_from_the_status() {
    for service in [Service::Helper, Service::LoginItem] {
        // Already off: no call (an unregister would fail with kSMErrorJobNotFound).
        assert_eq!(Flow::disable(service, 14).next(Status::NotRegistered), Next::Done(Outcome::Disabled));
        assert_eq!(Flow::disable(service, 14).next(Status::NotFound), Next::Done(Outcome::Disabled));
        assert_eq!(Flow::disable(service, 14).next(Status::Enabled), Next::Unregister);
        assert_eq!(Flow::disable(service, 14).next(Status::RequiresApproval), Next::Unregister);
        assert!(failed(Flow::disable(service, 14).next(Status::Unknown(8))).contains("unknown state (8)"));
    }
}

#[test]
fn after_unregister_the_status_decides() {
    for result in all_results() {
        for status in [Status::NotRegistered, Status::NotFound] {
            let mut flow = after_call(Flow::disable(Service::LoginItem, 14), Status::Enabled, result.clone());
            assert_eq!(flow.next(status), Next::Done(Outcome::Disabled), "{result:?} {status:?}");
        }
        for status in [Status::Enabled, Status::RequiresApproval, Status::Unknown(9)] {
            let mut flow = after_call(Flow::disable(Service::LoginItem, 14), Status::Enabled, result.clone());
            let m = failed(flow.next(status));
            assert!(m.starts_with("Cannot turn off launch at login: "), "{m}");
            match &result {
                Ok(()) => assert!(m.contains("macOS reports it as"), "{m}"),
                Err(e) => assert!(m.contains(&format!("{} {}", e.domain, e.code)), "{m}"),
            }
        }
    }
}

#[test]
fn a_finished_flow_stays_finished_and_stray_reports_change_nothing() {
    for status in STATUSES {
        let mut flow = Flow::enable(Service::LoginItem, 14);
        flow.called(Err(sm(SmCode::InternalFailure))); // nothing was asked yet: ignored
        let first = flow.next(Status::Enabled);
        assert_eq!(first, Next::Done(Outcome::Enabled));
        assert_eq!(flow.next(status), first, "after {status:?}");
    }
    // A register whose result was never reported: the status alone decides.
    let mut flow = Flow::enable(Service::Helper, 14);
    assert_eq!(flow.next(Status::NotRegistered), Next::Register);
    assert_eq!(flow.next(Status::Enabled), Next::Done(Outcome::Enabled));
}

#[test]
fn the_approval_message_names_the_place_on_each_macos() {
    assert!(approval_message(Service::Helper, 14).contains("General → Login Items (now open)"));
    assert!(approval_message(Service::LoginItem, 13).contains("General → Login Items (now open)"));
    assert!(approval_message(Service::Helper, 15).contains("General → Login Items & Extensions (now open)"));
}

/// SMAppService as a script: the statuses it reports in turn (the last one repeats) and what
/// its calls return; it records the calls made.
struct Scripted {
    statuses: RefCell<VecDeque<Status>>,
    register: Result<(), CallError>,
    unregister: Result<(), CallError>,
    log: RefCell<Vec<&'static str>>,
}

impl Scripted {
    fn new(statuses: &[Status]) -> Scripted {
        Scripted {
            statuses: RefCell::new(statuses.iter().copied().collect()),
            register: Ok(()),
            unregister: Ok(()),
            log: RefCell::new(Vec::new()),
        }
    }
    fn calls(&self) -> Vec<&'static str> {
        self.log.borrow().clone()
    }
}

impl Calls for Scripted {
    fn status(&self) -> Status {
        self.log.borrow_mut().push("status");
        let mut s = self.statuses.borrow_mut();
        if s.len() > 1 {
            s.pop_front().unwrap()
        } else {
            s[0]
        }
    }
    fn register(&self) -> Result<(), CallError> {
        self.log.borrow_mut().push("register");
        self.register.clone()
    }
    fn unregister(&self) -> Result<(), CallError> {
        self.log.borrow_mut().push("unregister");
        self.unregister.clone()
    }
    fn open_login_items(&self) {
        self.log.borrow_mut().push("open");
    }
}

#[test]
fn first_install_registers_then_opens_login_items_although_register_fails() {
    // The bug this replaces: register fails with "launch denied by user" while approval is
    // pending, and the old code gave up there.
    let mac = Scripted {
        register: Err(sm(SmCode::LaunchDeniedByUser)),
        ..Scripted::new(&[Status::NotRegistered, Status::RequiresApproval])
    };
    assert_eq!(run(&mac, Flow::enable(Service::Helper, 14)), Outcome::NeedsApproval);
    assert_eq!(mac.calls(), ["status", "register", "status", "open", "status"]);
    // The same on macOS 13, which says "Operation not permitted".
    let ventura = Scripted { register: Err(eperm()), ..Scripted::new(&[Status::NotFound, Status::RequiresApproval]) };
    assert_eq!(run(&ventura, Flow::enable(Service::Helper, 14)), Outcome::NeedsApproval);
}

#[test]
fn a_repeat_install_neither_registers_again_nor_fails() {
    let approved = Scripted::new(&[Status::Enabled]);
    assert_eq!(run(&approved, Flow::enable(Service::Helper, 14)), Outcome::Enabled);
    assert_eq!(approved.calls(), ["status"]);
    let still_pending = Scripted::new(&[Status::RequiresApproval]);
    assert_eq!(run(&still_pending, Flow::enable(Service::Helper, 14)), Outcome::NeedsApproval);
    assert_eq!(still_pending.calls(), ["status", "open", "status"]);
    // A status that lagged behind: register says "already registered", the next read "enabled".
    let lagging = Scripted {
        register: Err(sm(SmCode::AlreadyRegistered)),
        ..Scripted::new(&[Status::NotRegistered, Status::Enabled])
    };
    assert_eq!(run(&lagging, Flow::enable(Service::Helper, 14)), Outcome::Enabled);
}

#[test]
fn a_flow_makes_at_most_one_call() {
    let stuck = Scripted { register: Err(sm(SmCode::InvalidSignature)), ..Scripted::new(&[Status::NotRegistered]) };
    let Outcome::Refused(m) = run(&stuck, Flow::enable(Service::Helper, 14)) else { panic!("must fail") };
    assert!(m.contains("code signature"), "{m}");
    assert_eq!(stuck.calls(), ["status", "register", "status"]);
    let ignored = Scripted { unregister: Ok(()), ..Scripted::new(&[Status::Enabled]) };
    assert!(matches!(run(&ignored, Flow::disable(Service::LoginItem, 14)), Outcome::Failed(_)));
    assert_eq!(ignored.calls(), ["status", "unregister", "status"]);
}

#[test]
fn switching_the_login_item_to_the_state_it_has_is_not_an_error() {
    let off = Scripted::new(&[Status::NotRegistered]);
    assert_eq!(run(&off, Flow::disable(Service::LoginItem, 14)), Outcome::Disabled);
    assert_eq!(off.calls(), ["status"]);
    let on = Scripted::new(&[Status::Enabled]);
    assert_eq!(run(&on, Flow::enable(Service::LoginItem, 14)), Outcome::Enabled);
    assert_eq!(on.calls(), ["status"]);
    // Turned off meanwhile by someone else: unregister says "job not found", and that is fine.
    let raced = Scripted {
        unregister: Err(sm(SmCode::JobNotFound)),
        ..Scripted::new(&[Status::Enabled, Status::NotRegistered])
    };
    assert_eq!(run(&raced, Flow::disable(Service::LoginItem, 14)), Outcome::Disabled);
    // Switched off by the user in System Settings: only they can switch it on again.
    let revoked = Scripted::new(&[Status::RequiresApproval]);
    assert_eq!(run(&revoked, Flow::enable(Service::LoginItem, 14)), Outcome::NeedsApproval);
    assert_eq!(revoked.calls(), ["status", "open", "status"]);
}

#[test]
fn outcomes_reach_the_user_as_the_app_reports_them() {
    assert!(matches!(helper_result(Outcome::Enabled, 14), Ok(Installed::Running(_))));
    assert_eq!(
        helper_result(Outcome::NeedsApproval, 15),
        Ok(Installed::AwaitingApproval {
            message: approval_message(Service::Helper, 15),
            settings: "System Settings → General → Login Items & Extensions".into()
        })
    );
    assert_eq!(
        helper_result(Outcome::Refused("signature".into()), 14),
        Ok(Installed::NeedsPassword("signature".into()))
    );
    assert_eq!(helper_result(Outcome::Failed("no".into()), 14), Err("no".into()));
    assert!(
        helper_result(Outcome::Disabled, 14).is_err(),
        "enabling never ends disabled, but if it did it is no success"
    );
    assert_eq!(login_item_result(Outcome::Enabled, 14), Ok(()));
    assert_eq!(login_item_result(Outcome::Disabled, 14), Ok(()));
    assert_eq!(login_item_result(Outcome::NeedsApproval, 14), Err(approval_message(Service::LoginItem, 14)));
    assert_eq!(login_item_result(Outcome::Failed("no".into()), 14), Err("no".into()));
    assert_eq!(login_item_result(Outcome::Refused("no".into()), 14), Err("no".into()));
}

#[test]
fn posix_errors_are_decoded_as_posix_and_not_as_service_management_codes() {
    let call = |domain: &str, code: i64, description: &str| CallError {
        domain: domain.into(),
        code,
        description: description.into(),
    };
    let posix = |e: CallError| match e.meaning() {
        Meaning::Posix(errno) => errno.name,
        other => panic!("{e:?}: {other:?}"),
    };
    // In ServiceManagement's own domain: 1, 2, 3 and 5 are kSMError values too (none, internal
    // failure, invalid signature, tool not valid), but these carry their errno's text.
    assert_eq!(posix(eperm()), "EPERM");
    assert_eq!(posix(call("SMAppServiceErrorDomain", 2, "No such file or directory")), "ENOENT");
    assert_eq!(posix(call("SMAppServiceErrorDomain", 3, "No such process")), "ESRCH");
    assert_eq!(posix(call("SMAppServiceErrorDomain", 5, "Input/output error")), "EIO");
    // Foundation's wording around strerror's text counts as well.
    let wrapped = "The operation couldn’t be completed. Input/output error";
    assert_eq!(posix(call("SMAppServiceErrorDomain", 5, wrapped)), "EIO");
    assert_eq!(posix(call(POSIX_DOMAIN, 11, "whatever it says")), "EDEADLK");
    // The same numbers with ServiceManagement's own descriptions are its codes.
    assert_eq!(codesigning_failure().meaning(), Meaning::Sm(SmCode::InvalidSignature));
    assert_eq!(call("SMAppServiceErrorDomain", 5, "Invalid tool").meaning(), Meaning::Sm(SmCode::ToolNotValid));
    // An unknown code (macOS 15's "Unable to read plist", Code=108, recorded in
    // malpern/privileged_helper_help) and a foreign domain: said as they are.
    assert_eq!(call("SMAppServiceErrorDomain", 108, "Unable to read plist: x").meaning(), Meaning::Unknown);
    assert_eq!(call("NSCocoaErrorDomain", 3, "No such process").meaning(), Meaning::Unknown);
    assert_eq!(call(POSIX_DOMAIN, 99_999, "x").meaning(), Meaning::Unknown);
    // The message names the errno, not a kSMError explanation.
    let m = failed(
        after_call(
            Flow::enable(Service::LoginItem, 14),
            Status::NotRegistered,
            Err(call("SMAppServiceErrorDomain", 3, "No such process")),
        )
        .next(Status::NotRegistered),
    );
    assert!(m.contains("macOS refused: No such process (POSIX ESRCH)") && !m.contains("code signature"), "{m}");
}

#[test]
fn the_settings_are_named_as_each_macos_names_them() {
    assert_eq!(login_items(13), "System Settings → General → Login Items");
    assert_eq!(login_items(14), "System Settings → General → Login Items");
    assert_eq!(login_items(15), "System Settings → General → Login Items & Extensions");
    assert_eq!(login_items(26), "System Settings → General → Login Items & Extensions");
    let m = failed(
        after_call(Flow::enable(Service::Helper, 15), Status::NotRegistered, Err(sm(SmCode::AlreadyRegistered)))
            .next(Status::NotRegistered),
    );
    assert!(m.contains("under System Settings → General → Login Items & Extensions and try again"), "{m}");
}

#[test]
fn an_unsigned_build_is_refused_and_offered_the_other_way_in() {
    // exelban/stats PR 3194: register fails with a code-signing failure and nothing registers.
    let mac = Scripted { register: Err(codesigning_failure()), ..Scripted::new(&[Status::NotRegistered]) };
    let Outcome::Refused(m) = run(&mac, Flow::enable(Service::Helper, 15)) else { panic!("must be refused") };
    assert!(m.contains("code signature") && m.contains("-67028"), "{m}");
    assert!(matches!(helper_result(Outcome::Refused(m), 15), Ok(Installed::NeedsPassword(_))));
    // A passing failure is said, not turned into a password prompt.
    let busy = Scripted { register: Err(sm(SmCode::ServiceUnavailable)), ..Scripted::new(&[Status::NotRegistered]) };
    assert!(matches!(run(&busy, Flow::enable(Service::Helper, 15)), Outcome::Failed(_)));
    // The login item has no other way in.
    let login = Scripted { register: Err(codesigning_failure()), ..Scripted::new(&[Status::NotRegistered]) };
    assert!(matches!(run(&login, Flow::enable(Service::LoginItem, 15)), Outcome::Failed(_)));
}

#[test]
fn reregistering_unregisters_then_registers_whatever_the_first_call_said() {
    // The updated app's helper is enabled but still the old build: out, and in again.
    let mac = Scripted::new(&[Status::Enabled, Status::NotRegistered, Status::Enabled]);
    assert_eq!(run(&mac, Flow::reregister(Service::Helper, 14)), Outcome::Enabled);
    assert_eq!(mac.calls(), ["status", "unregister", "status", "register", "status"]);
    // "Job not found" on the way out is no reason to stop; approval asked again is shown.
    let again = Scripted {
        unregister: Err(sm(SmCode::JobNotFound)),
        ..Scripted::new(&[Status::Enabled, Status::NotRegistered, Status::RequiresApproval])
    };
    assert_eq!(run(&again, Flow::reregister(Service::Helper, 15)), Outcome::NeedsApproval);
    assert_eq!(again.calls(), ["status", "unregister", "status", "register", "status", "open", "status"]);
    // And a refusal on the way back in is a refusal.
    let refused =
        Scripted { register: Err(codesigning_failure()), ..Scripted::new(&[Status::Enabled, Status::NotRegistered]) };
    assert!(matches!(run(&refused, Flow::reregister(Service::Helper, 14)), Outcome::Refused(_)));
}
