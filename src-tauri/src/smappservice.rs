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
//!
//! `SMAppServiceErrorDomain` carries POSIX error numbers as well as `kSMError*` codes, and the
//! two overlap (1-12): `Code=1 "Operation not permitted"` is EPERM (recorded in
//! mhaeuser/Battery-Toolkit issue 4 and internxt/drive-desktop-macos PR 262), while `Code=3
//! "Codesigning failure loading plist: … code: -67028"` is kSMErrorInvalidSignature (recorded in
//! exelban/stats PR 3194). An errno's description is its strerror text, which tells them apart
//! (`CallError::meaning`).
//!
//! The place in System Settings is "General → Login Items" on macOS 13 and 14 and "General →
//! Login Items & Extensions" from macOS 15 (Apple's macOS Sequoia User Guide, "Change Login
//! Items & Extensions settings"); `login_items(major)` words it for the Mac at hand.

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

    /// What the code means for the user, and what they can do; `settings` is where the user
    /// switches the service on (`login_items`).
    fn explain(self, settings: &str) -> String {
        let text = match self {
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
                return format!("it is switched off under {settings}; switch it on there");
            }
            SmCode::AlreadyRegistered => {
                return format!(
                    "macOS says it is already registered but does not run it; remove Dockroute under {settings} and try again"
                );
            }
        };
        text.to_string()
    }

    /// A failure that may pass by itself: trying again is the advice, not another way in.
    fn transient(self) -> bool {
        matches!(self, SmCode::InternalFailure | SmCode::ServiceUnavailable)
    }
}

/// Where the user allows background items, on macOS `major`.
pub fn login_items(major: u32) -> &'static str {
    if major >= 15 {
        "System Settings → General → Login Items & Extensions"
    } else {
        "System Settings → General → Login Items"
    }
}

/// A POSIX error number as macOS defines it (xnu `bsd/sys/errno.h`), with its strerror text
/// (Apple Libc `gen/errlst.c`, the BSD table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno {
    pub code: i64,
    pub name: &'static str,
    pub text: &'static str,
}

const fn errno(code: i64, name: &'static str, text: &'static str) -> Errno {
    Errno { code, name, text }
}

/// The errno values a ServiceManagement call can plausibly carry (1-13 overlap kSMError codes).
pub const ERRNOS: [Errno; 18] = [
    errno(1, "EPERM", "Operation not permitted"),
    errno(2, "ENOENT", "No such file or directory"),
    errno(3, "ESRCH", "No such process"),
    errno(4, "EINTR", "Interrupted system call"),
    errno(5, "EIO", "Input/output error"),
    errno(6, "ENXIO", "Device not configured"),
    errno(7, "E2BIG", "Argument list too long"),
    errno(8, "ENOEXEC", "Exec format error"),
    errno(9, "EBADF", "Bad file descriptor"),
    errno(10, "ECHILD", "No child processes"),
    errno(11, "EDEADLK", "Resource deadlock avoided"),
    errno(12, "ENOMEM", "Cannot allocate memory"),
    errno(13, "EACCES", "Permission denied"),
    errno(16, "EBUSY", "Resource busy"),
    errno(17, "EEXIST", "File exists"),
    errno(22, "EINVAL", "Invalid argument"),
    errno(37, "EALREADY", "Operation already in progress"),
    errno(78, "ENOSYS", "Function not implemented"),
];

/// What an error's code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    Sm(SmCode),
    Posix(Errno),
    Unknown,
}

/// The error domains whose codes are the `kSMError*` ones (and, in SMAppService's, errno values).
pub const SM_DOMAINS: [&str; 2] = ["SMAppServiceErrorDomain", "kSMErrorDomainFramework"];
pub const POSIX_DOMAIN: &str = "NSPOSIXErrorDomain";

/// The `NSError` a `register`/`unregister` call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub domain: String,
    pub code: i64,
    /// `localizedDescription`, for the message.
    pub description: String,
}

impl CallError {
    /// What the code means: an errno in the POSIX domain, or in ServiceManagement's when the
    /// description is that errno's text; a `kSMError*` code otherwise.
    pub fn meaning(&self) -> Meaning {
        let posix = ERRNOS.into_iter().find(|e| e.code == self.code);
        if self.domain == POSIX_DOMAIN {
            return posix.map_or(Meaning::Unknown, Meaning::Posix);
        }
        if !SM_DOMAINS.contains(&self.domain.as_str()) {
            return Meaning::Unknown;
        }
        match posix {
            Some(e) if self.description.contains(e.text) => Meaning::Posix(e),
            _ => SmCode::from_raw(self.code).map_or(Meaning::Unknown, Meaning::Sm),
        }
    }

    /// The ServiceManagement code, if the error is one.
    pub fn sm_code(&self) -> Option<SmCode> {
        match self.meaning() {
            Meaning::Sm(code) => Some(code),
            _ => None,
        }
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
    /// The helper's registration failed for good (its code signature, a launch constraint, an
    /// error macOS does not explain): the other way in (the administrator's password) remains.
    Refused(String),
    /// Failed; trying again, or something the message says, may help.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    /// Re-registering: `unregister` comes first ...
    Reregister,
    /// ... was asked for, and `register` follows whatever it said ("job not found" is as good).
    Unregistering,
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
    /// Where the user switches it on (`login_items`).
    settings: &'static str,
    state: State,
}

impl Flow {
    /// `macos`: the major version of macOS, for the wording.
    pub fn enable(service: Service, macos: u32) -> Flow {
        Flow { service, want_on: true, settings: login_items(macos), state: State::Start }
    }

    pub fn disable(service: Service, macos: u32) -> Flow {
        Flow { service, want_on: false, settings: login_items(macos), state: State::Start }
    }

    /// Unregister, then register again (whatever the status): an updated app's helper that
    /// launchd still runs from the old build. The outcome is then judged as for `enable`.
    pub fn reregister(service: Service, macos: u32) -> Flow {
        Flow { service, want_on: true, settings: login_items(macos), state: State::Reregister }
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
            State::Reregister => {
                self.state = State::Unregistering;
                return Next::Unregister;
            }
            State::Unregistering => Next::Register,
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
            (_, Err(e)) if self.service == Service::Helper && !e.sm_code().is_some_and(SmCode::transient) => {
                Next::Done(Outcome::Refused(self.failure(&e)))
            }
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
        let why = match e.meaning() {
            Meaning::Sm(code) => code.explain(self.settings),
            Meaning::Posix(errno) => format!("macOS refused: {} (POSIX {})", errno.text, errno.name),
            Meaning::Unknown => "macOS refused".into(),
        };
        format!("{}: {why} ({}; {} {}).", self.subject(), e.description, e.domain, e.code)
    }

    fn unexpected(&self, status: Status) -> Outcome {
        Outcome::Failed(format!("{}: macOS reports it as {}.", self.subject(), status.describe()))
    }
}

/// What the user reads when a flow ended in `NeedsApproval` (System Settings is open then).
pub fn approval_message(service: Service, macos: u32) -> String {
    let settings = login_items(macos);
    match service {
        Service::Helper => {
            format!("Allow “Dockroute” under {settings} (now open); Dockroute connects by itself then.")
        }
        Service::LoginItem => {
            format!("Dockroute is switched off under {settings} (now open); switch it on there to launch at login.")
        }
    }
}

/// The helper's flow as the app reports it: running (connect now), waiting for the user, the
/// other way in, or an error for the user.
pub fn helper_result(outcome: Outcome, macos: u32) -> Result<Installed, String> {
    match outcome {
        Outcome::Enabled => Ok(Installed::Running("Helper enabled: it runs in the background now.".into())),
        Outcome::NeedsApproval => Ok(Installed::AwaitingApproval {
            message: approval_message(Service::Helper, macos),
            settings: login_items(macos).into(),
        }),
        Outcome::Refused(m) => Ok(Installed::NeedsPassword(m)),
        Outcome::Disabled => Err("The helper is not registered.".into()),
        Outcome::Failed(m) => Err(m),
    }
}

/// The login item's flow as `LoginItem::set_enabled` reports it: done, or why not.
pub fn login_item_result(outcome: Outcome, macos: u32) -> Result<(), String> {
    match outcome {
        Outcome::Enabled | Outcome::Disabled => Ok(()),
        Outcome::NeedsApproval => Err(approval_message(Service::LoginItem, macos)),
        Outcome::Refused(m) | Outcome::Failed(m) => Err(m),
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
