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

/// What macOS 13 returns for a daemon that needs approval, as others have recorded it.
fn eperm() -> CallError {
    CallError { domain: "SMAppServiceErrorDomain".into(), code: 1, description: "Operation not permitted".into() }
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

fn failed(next: Next) -> String {
    match next {
        Next::Done(Outcome::Failed(m)) => m,
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
}

#[test]
fn enabling_starts_from_the_status() {
    for service in [Service::Helper, Service::LoginItem] {
        // Already on: no call at all (a register would fail with kSMErrorAlreadyRegistered).
        assert_eq!(Flow::enable(service).next(Status::Enabled), Next::Done(Outcome::Enabled));
        assert_eq!(Flow::enable(service).next(Status::NotRegistered), Next::Register);
        assert_eq!(Flow::enable(service).next(Status::NotFound), Next::Register);
        // Registered before, not yet approved: straight to System Settings, no register.
        let mut pending = Flow::enable(service);
        assert_eq!(pending.next(Status::RequiresApproval), Next::OpenLoginItems);
        assert_eq!(pending.next(Status::RequiresApproval), Next::Done(Outcome::NeedsApproval));
        let odd = failed(Flow::enable(service).next(Status::Unknown(7)));
        assert!(odd.contains("unknown state (7)"), "{odd}");
    }
}

#[test]
fn after_register_an_enabled_status_wins_over_any_error() {
    for result in all_results() {
        let mut flow = after_call(Flow::enable(Service::Helper), Status::NotRegistered, result.clone());
        assert_eq!(flow.next(Status::Enabled), Next::Done(Outcome::Enabled), "{result:?}");
    }
}

#[test]
fn after_register_a_pending_approval_opens_login_items_whatever_the_call_said() {
    for result in all_results() {
        let mut flow = after_call(Flow::enable(Service::Helper), Status::NotRegistered, result.clone());
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
            let mut flow = after_call(Flow::enable(Service::Helper), Status::NotRegistered, Err(sm(code)));
            let next = flow.next(status);
            if code.needs_approval() {
                // "Launch denied by user" / "job must be enabled": the switch in Login Items.
                assert_eq!(next, Next::OpenLoginItems, "{code:?} {status:?}");
                continue;
            }
            let m = failed(next);
            assert!(m.starts_with("Registering the helper failed: "), "{m}");
            assert!(m.contains(says), "{code:?}: {m}");
            assert!(m.contains(&format!("SMAppServiceErrorDomain {}", code as i64)), "the code is named: {m}");
        }
    }
}

#[test]
fn after_register_other_failures_and_silent_successes_are_said() {
    let m = failed(after_call(Flow::enable(Service::Helper), Status::NotFound, Err(eperm())).next(Status::NotFound));
    assert!(m.contains("macOS refused (Operation not permitted; SMAppServiceErrorDomain 1)"), "{m}");
    let m =
        failed(after_call(Flow::enable(Service::LoginItem), Status::NotRegistered, Ok(())).next(Status::NotRegistered));
    assert_eq!(m, "Cannot turn on launch at login: macOS reports it as not registered.");
    let m = failed(after_call(Flow::enable(Service::Helper), Status::NotRegistered, Ok(())).next(Status::Unknown(5)));
    assert!(m.contains("unknown state (5)"), "{m}");
}

#[test]
fn disabling_starts_from_the_status() {
    for service in [Service::Helper, Service::LoginItem] {
        // Already off: no call (an unregister would fail with kSMErrorJobNotFound).
        assert_eq!(Flow::disable(service).next(Status::NotRegistered), Next::Done(Outcome::Disabled));
        assert_eq!(Flow::disable(service).next(Status::NotFound), Next::Done(Outcome::Disabled));
        assert_eq!(Flow::disable(service).next(Status::Enabled), Next::Unregister);
        assert_eq!(Flow::disable(service).next(Status::RequiresApproval), Next::Unregister);
        assert!(failed(Flow::disable(service).next(Status::Unknown(8))).contains("unknown state (8)"));
    }
}

#[test]
fn after_unregister_the_status_decides() {
    for result in all_results() {
        for status in [Status::NotRegistered, Status::NotFound] {
            let mut flow = after_call(Flow::disable(Service::LoginItem), Status::Enabled, result.clone());
            assert_eq!(flow.next(status), Next::Done(Outcome::Disabled), "{result:?} {status:?}");
        }
        for status in [Status::Enabled, Status::RequiresApproval, Status::Unknown(9)] {
            let mut flow = after_call(Flow::disable(Service::LoginItem), Status::Enabled, result.clone());
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
        let mut flow = Flow::enable(Service::LoginItem);
        flow.called(Err(sm(SmCode::InternalFailure))); // nothing was asked yet: ignored
        let first = flow.next(Status::Enabled);
        assert_eq!(first, Next::Done(Outcome::Enabled));
        assert_eq!(flow.next(status), first, "after {status:?}");
    }
    // A register whose result was never reported: the status alone decides.
    let mut flow = Flow::enable(Service::Helper);
    assert_eq!(flow.next(Status::NotRegistered), Next::Register);
    assert_eq!(flow.next(Status::Enabled), Next::Done(Outcome::Enabled));
}

#[test]
fn approval_follows_the_status() {
    assert_eq!(approval(Status::RequiresApproval), Approval::Pending);
    assert_eq!(approval(Status::Enabled), Approval::Granted);
    for s in [Status::NotRegistered, Status::NotFound, Status::Unknown(4)] {
        assert_eq!(approval(s), Approval::NotNeeded, "{s:?}");
    }
    assert!(approval_message(Service::Helper).contains("Login Items"));
    assert!(approval_message(Service::LoginItem).contains("Login Items"));
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
    assert_eq!(run(&mac, Flow::enable(Service::Helper)), Outcome::NeedsApproval);
    assert_eq!(mac.calls(), ["status", "register", "status", "open", "status"]);
    // The same on macOS 13, which says "Operation not permitted".
    let ventura = Scripted { register: Err(eperm()), ..Scripted::new(&[Status::NotFound, Status::RequiresApproval]) };
    assert_eq!(run(&ventura, Flow::enable(Service::Helper)), Outcome::NeedsApproval);
}

#[test]
fn a_repeat_install_neither_registers_again_nor_fails() {
    let approved = Scripted::new(&[Status::Enabled]);
    assert_eq!(run(&approved, Flow::enable(Service::Helper)), Outcome::Enabled);
    assert_eq!(approved.calls(), ["status"]);
    let still_pending = Scripted::new(&[Status::RequiresApproval]);
    assert_eq!(run(&still_pending, Flow::enable(Service::Helper)), Outcome::NeedsApproval);
    assert_eq!(still_pending.calls(), ["status", "open", "status"]);
    // A status that lagged behind: register says "already registered", the next read "enabled".
    let lagging = Scripted {
        register: Err(sm(SmCode::AlreadyRegistered)),
        ..Scripted::new(&[Status::NotRegistered, Status::Enabled])
    };
    assert_eq!(run(&lagging, Flow::enable(Service::Helper)), Outcome::Enabled);
}

#[test]
fn a_flow_makes_at_most_one_call() {
    let stuck = Scripted { register: Err(sm(SmCode::InvalidSignature)), ..Scripted::new(&[Status::NotRegistered]) };
    let Outcome::Failed(m) = run(&stuck, Flow::enable(Service::Helper)) else { panic!("must fail") };
    assert!(m.contains("code signature"), "{m}");
    assert_eq!(stuck.calls(), ["status", "register", "status"]);
    let ignored = Scripted { unregister: Ok(()), ..Scripted::new(&[Status::Enabled]) };
    assert!(matches!(run(&ignored, Flow::disable(Service::LoginItem)), Outcome::Failed(_)));
    assert_eq!(ignored.calls(), ["status", "unregister", "status"]);
}

#[test]
fn switching_the_login_item_to_the_state_it_has_is_not_an_error() {
    let off = Scripted::new(&[Status::NotRegistered]);
    assert_eq!(run(&off, Flow::disable(Service::LoginItem)), Outcome::Disabled);
    assert_eq!(off.calls(), ["status"]);
    let on = Scripted::new(&[Status::Enabled]);
    assert_eq!(run(&on, Flow::enable(Service::LoginItem)), Outcome::Enabled);
    assert_eq!(on.calls(), ["status"]);
    // Turned off meanwhile by someone else: unregister says "job not found", and that is fine.
    let raced = Scripted {
        unregister: Err(sm(SmCode::JobNotFound)),
        ..Scripted::new(&[Status::Enabled, Status::NotRegistered])
    };
    assert_eq!(run(&raced, Flow::disable(Service::LoginItem)), Outcome::Disabled);
    // Switched off by the user in System Settings: only they can switch it on again.
    let revoked = Scripted::new(&[Status::RequiresApproval]);
    assert_eq!(run(&revoked, Flow::enable(Service::LoginItem)), Outcome::NeedsApproval);
    assert_eq!(revoked.calls(), ["status", "open", "status"]);
}

#[test]
fn outcomes_reach_the_user_as_the_app_reports_them() {
    assert!(matches!(helper_result(Outcome::Enabled), Ok(Installed::Running(_))));
    assert_eq!(
        helper_result(Outcome::NeedsApproval),
        Ok(Installed::AwaitingApproval(approval_message(Service::Helper).into()))
    );
    assert_eq!(helper_result(Outcome::Failed("no".into())), Err("no".into()));
    assert!(helper_result(Outcome::Disabled).is_err(), "enabling never ends disabled, but if it did it is no success");
    assert_eq!(login_item_result(Outcome::Enabled), Ok(()));
    assert_eq!(login_item_result(Outcome::Disabled), Ok(()));
    assert_eq!(login_item_result(Outcome::NeedsApproval), Err(approval_message(Service::LoginItem).into()));
    assert_eq!(login_item_result(Outcome::Failed("no".into())), Err("no".into()));
}
