//! macOS's SMAppService as plain logic: which call to make next, judged from the service's
//! `status` and the error the last call returned, and what to tell the user. It compiles and is
//! tested on every OS; `platform/macos.rs` only makes the calls (`Calls`).
//!
//! The values are Apple's, from the macOS 13 SDK's ServiceManagement headers:
//! - `SMAppService.h`: `SMAppServiceStatus` NotRegistered 0, Enabled 1, RequiresApproval 2,
//!   NotFound 3; errors come in `SMAppServiceErrorDomain`. `register` fails with
//!   kSMErrorAlreadyRegistered when already registered, kSMErrorLaunchDeniedByUser while the
//!   user has not approved the service, kSMErrorInvalidSignature for a badly signed bundle;
//!   `unregister` fails with kSMErrorJobNotFound when already unregistered.
//! - `SMErrors.h`: kSMErrorInternalFailure 2, kSMErrorInvalidSignature 3,
//!   kSMErrorAuthorizationFailure 4, kSMErrorToolNotValid 5, kSMErrorJobNotFound 6,
//!   kSMErrorServiceUnavailable 7, kSMErrorJobPlistNotFound 8, kSMErrorJobMustBeEnabled 9,
//!   kSMErrorInvalidPlist 10, kSMErrorLaunchDeniedByUser 11, kSMErrorAlreadyRegistered 12
//!   (the older domain constant `kSMErrorDomainFramework` carries the same codes).
//!
//! Because `register` fails both while approval is pending and on a repeat, a call's error never
//! decides alone: the status read after it does, and the error only explains a failure.

use crate::platform::Installed;

/// `SMAppServiceStatus`, as `status` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotRegistered,
    Enabled,
    RequiresApproval,
    NotFound,
    /// A value newer than the headers we know.
    Unknown(i64),
}

impl Status {
    pub fn from_raw(raw: i64) -> Status {
        match raw {
            0 => Status::NotRegistered,
            1 => Status::Enabled,
            2 => Status::RequiresApproval,
            3 => Status::NotFound,
            other => Status::Unknown(other),
        }
    }

    fn describe(self) -> String {
        match self {
            Status::NotRegistered => "not registered".into(),
            Status::Enabled => "enabled".into(),
            Status::RequiresApproval => "waiting for approval".into(),
            Status::NotFound => "not found".into(),
            Status::Unknown(n) => format!("in an unknown state ({n})"),
        }
    }

    fn absent(self) -> bool {
        matches!(self, Status::NotRegistered | Status::NotFound)
    }
}

/// The `kSMError*` codes of `SMErrors.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmCode {
    InternalFailure = 2,
    InvalidSignature = 3,
    AuthorizationFailure = 4,
    ToolNotValid = 5,
    JobNotFound = 6,
    ServiceUnavailable = 7,
    JobPlistNotFound = 8,
    JobMustBeEnabled = 9,
    InvalidPlist = 10,
    LaunchDeniedByUser = 11,
    AlreadyRegistered = 12,
}

impl SmCode {
    pub const ALL: [SmCode; 11] = [
        SmCode::InternalFailure,
        SmCode::InvalidSignature,
        SmCode::AuthorizationFailure,
        SmCode::ToolNotValid,
        SmCode::JobNotFound,
        SmCode::ServiceUnavailable,
        SmCode::JobPlistNotFound,
        SmCode::JobMustBeEnabled,
        SmCode::InvalidPlist,
        SmCode::LaunchDeniedByUser,
        SmCode::AlreadyRegistered,
    ];

    pub fn from_raw(raw: i64) -> Option<SmCode> {
        SmCode::ALL.into_iter().find(|c| *c as i64 == raw)
    }

    /// Whether the code means "the user has to switch it on in Login Items".
    fn needs_approval(self) -> bool {
        matches!(self, SmCode::LaunchDeniedByUser | SmCode::JobMustBeEnabled)
    }

    /// What the code means for the user, and what they can do.
    fn explain(self) -> &'static str {
        match self {
            SmCode::InternalFailure => "macOS's Service Management failed internally; try again, or restart the Mac",
            SmCode::InvalidSignature => {
                "the app's code signature does not meet macOS's requirements; install the signed release of Dockroute in /Applications"
            }
            SmCode::AuthorizationFailure => "macOS did not authorise the change; an administrator has to allow it",
            SmCode::ToolNotValid | SmCode::JobPlistNotFound | SmCode::InvalidPlist => {
                "the app bundle is incomplete or damaged (the helper or its launchd plist); install Dockroute again"
            }
            SmCode::JobNotFound => "macOS cannot find the service; install Dockroute again",
            SmCode::ServiceUnavailable => "macOS's background-task service is not available right now; try again in a moment",
            SmCode::JobMustBeEnabled | SmCode::LaunchDeniedByUser => {
                "it is switched off under System Settings → General → Login Items; switch it on there"
            }
            SmCode::AlreadyRegistered => {
                "macOS says it is already registered but does not run it; remove Dockroute under System Settings → General → Login Items and try again"
            }
        }
    }
}

/// The error domains whose codes are the `kSMError*` ones.
pub const SM_DOMAINS: [&str; 2] = ["SMAppServiceErrorDomain", "kSMErrorDomainFramework"];

/// The `NSError` a `register`/`unregister` call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub domain: String,
    pub code: i64,
    /// `localizedDescription`, for the message.
    pub description: String,
}

impl CallError {
    /// The ServiceManagement code, if the error is one (a POSIX code in another domain is not).
    pub fn sm_code(&self) -> Option<SmCode> {
        SM_DOMAINS.contains(&self.domain.as_str()).then(|| SmCode::from_raw(self.code)).flatten()
    }
}

/// Which service: the helper's LaunchDaemon or the app's own login item. Only the wording differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Helper,
    LoginItem,
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Register,
    Unregister,
    /// `SMAppService.openSystemSettingsLoginItems()`, then ask again.
    OpenLoginItems,
    Done(Outcome),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Registered and allowed to run: the helper runs (connect now), the app launches at login.
    Enabled,
    /// Not registered.
    Disabled,
    /// Registered, but the user has to switch it on in System Settings → Login Items (opened).
    NeedsApproval,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    /// Asked for `register`/`unregister`; the result, once the caller reported it.
    Called(Option<Result<(), CallError>>),
    Opened,
    Finished(Outcome),
}

/// One attempt to bring a service to the state the user wants: read the status, call, read it
/// again. At most one `register` or `unregister` per flow, so it always ends.
#[derive(Debug, Clone)]
pub struct Flow {
    service: Service,
    want_on: bool,
    state: State,
}

impl Flow {
    pub fn enable(service: Service) -> Flow {
        Flow { service, want_on: true, state: State::Start }
    }

    pub fn disable(service: Service) -> Flow {
        Flow { service, want_on: false, state: State::Start }
    }

    /// The result of the `Register`/`Unregister` that `next` asked for.
    pub fn called(&mut self, result: Result<(), CallError>) {
        if let State::Called(slot) = &mut self.state {
            *slot = Some(result);
        }
    }

    /// The next step, given the status just read.
    pub fn next(&mut self, status: Status) -> Next {
        let step = match std::mem::replace(&mut self.state, State::Start) {
            State::Finished(outcome) => Next::Done(outcome),
            State::Opened => Next::Done(Outcome::NeedsApproval),
            State::Start if self.want_on => self.enable_first(status),
            State::Start => self.disable_first(status),
            // A caller that did not report the result: the status alone decides.
            State::Called(result) if self.want_on => self.enable_after(status, result.unwrap_or(Ok(()))),
            State::Called(result) => self.disable_after(status, result.unwrap_or(Ok(()))),
        };
        self.state = match &step {
            Next::Register | Next::Unregister => State::Called(None),
            Next::OpenLoginItems => State::Opened,
            Next::Done(outcome) => State::Finished(outcome.clone()),
        };
        step
    }

    fn enable_first(&self, status: Status) -> Next {
        match status {
            // Already what the user wants: registering again would only fail.
            Status::Enabled => Next::Done(Outcome::Enabled),
            Status::RequiresApproval => Next::OpenLoginItems,
            Status::NotRegistered | Status::NotFound => Next::Register,
            Status::Unknown(_) => Next::Done(self.unexpected(status)),
        }
    }

    fn enable_after(&self, status: Status, result: Result<(), CallError>) -> Next {
        match (status, result) {
            // Whatever the call said (kSMErrorAlreadyRegistered, say): it runs.
            (Status::Enabled, _) => Next::Done(Outcome::Enabled),
            // Registered, or kSMErrorLaunchDeniedByUser: approval is what is missing.
            (Status::RequiresApproval, _) => Next::OpenLoginItems,
            (_, Err(e)) if e.sm_code().is_some_and(SmCode::needs_approval) => Next::OpenLoginItems,
            (_, Err(e)) => Next::Done(Outcome::Failed(self.failure(&e))),
            (status, Ok(())) => Next::Done(self.unexpected(status)),
        }
    }

    fn disable_first(&self, status: Status) -> Next {
        match status {
            Status::NotRegistered | Status::NotFound => Next::Done(Outcome::Disabled),
            Status::Enabled | Status::RequiresApproval => Next::Unregister,
            Status::Unknown(_) => Next::Done(self.unexpected(status)),
        }
    }

    fn disable_after(&self, status: Status, result: Result<(), CallError>) -> Next {
        match result {
            // Whatever the call said (kSMErrorJobNotFound, say): it is off.
            _ if status.absent() => Next::Done(Outcome::Disabled),
            Err(e) => Next::Done(Outcome::Failed(self.failure(&e))),
            Ok(()) => Next::Done(self.unexpected(status)),
        }
    }

    fn subject(&self) -> &'static str {
        match (self.service, self.want_on) {
            (Service::Helper, true) => "Registering the helper failed",
            (Service::Helper, false) => "Removing the helper failed",
            (Service::LoginItem, true) => "Cannot turn on launch at login",
            (Service::LoginItem, false) => "Cannot turn off launch at login",
        }
    }

    fn failure(&self, e: &CallError) -> String {
        let why = e.sm_code().map_or("macOS refused", SmCode::explain);
        format!("{}: {why} ({}; {} {}).", self.subject(), e.description, e.domain, e.code)
    }

    fn unexpected(&self, status: Status) -> Outcome {
        Outcome::Failed(format!("{}: macOS reports it as {}.", self.subject(), status.describe()))
    }
}

/// What the user reads when a flow ended in `NeedsApproval` (System Settings is open then).
pub fn approval_message(service: Service) -> &'static str {
    match service {
        Service::Helper => {
            "Allow “Dockroute” under System Settings → General → Login Items (now open); Dockroute connects by itself then."
        }
        Service::LoginItem => {
            "Dockroute is switched off under System Settings → General → Login Items (now open); switch it on there to launch at login."
        }
    }
}

/// The helper's flow as the app reports it: running (connect now), waiting for the user, or an
/// error for the user.
pub fn helper_result(outcome: Outcome) -> Result<Installed, String> {
    match outcome {
        Outcome::Enabled => Ok(Installed::Running("Helper enabled: it runs in the background now.".into())),
        Outcome::NeedsApproval => Ok(Installed::AwaitingApproval(approval_message(Service::Helper).into())),
        Outcome::Disabled => Err("The helper is not registered.".into()),
        Outcome::Failed(m) => Err(m),
    }
}

/// The login item's flow as `LoginItem::set_enabled` reports it: done, or why not.
pub fn login_item_result(outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Enabled | Outcome::Disabled => Ok(()),
        Outcome::NeedsApproval => Err(approval_message(Service::LoginItem).into()),
        Outcome::Failed(m) => Err(m),
    }
}

/// Whether the registered helper waits for the user, from its status alone (read while the
/// dashboard shows the approval banner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Nothing registered, or a platform without approval (Linux): installing is the way.
    NotNeeded,
    Pending,
    Granted,
}

pub fn approval(status: Status) -> Approval {
    match status {
        Status::RequiresApproval => Approval::Pending,
        Status::Enabled => Approval::Granted,
        Status::NotRegistered | Status::NotFound | Status::Unknown(_) => Approval::NotNeeded,
    }
}

/// The few calls into SMAppService, made by `platform/macos.rs` (and a fake in the tests).
pub trait Calls {
    fn status(&self) -> Status;
    fn register(&self) -> Result<(), CallError>;
    fn unregister(&self) -> Result<(), CallError>;
    fn open_login_items(&self);
}

/// Runs `flow` to its outcome: a status read before every step.
pub fn run(calls: &impl Calls, mut flow: Flow) -> Outcome {
    loop {
        match flow.next(calls.status()) {
            Next::Register => flow.called(calls.register()),
            Next::Unregister => flow.called(calls.unregister()),
            Next::OpenLoginItems => calls.open_login_items(),
            Next::Done(outcome) => return outcome,
        }
    }
}

#[cfg(test)]
#[path = "smappservice_tests.rs"]
mod tests;
