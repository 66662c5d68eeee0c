//! The commands through Tauri's mock runtime: the JSON the page sends, the JSON it gets back.
//! The service behind them is the real one, pointed at a helper socket that does not exist.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockroute_controller::view::{Phase, ProblemKind};
use dockroute_controller::{Choices, Options};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

use super::*;
use crate::platform::Checked;

/// Launch at login without an OS: remembers, or fails when told to.
struct FakeLoginItem {
    on: Arc<AtomicBool>,
    broken: bool,
}

impl LoginItem for FakeLoginItem {
    fn is_enabled(&self) -> Result<bool, String> {
        Ok(self.on.load(Ordering::SeqCst))
    }
    fn set_enabled(&self, on: bool) -> Result<(), String> {
        if self.broken {
            return Err("login items are not available".into());
        }
        self.on.store(on, Ordering::SeqCst);
        Ok(())
    }
}

/// The helper's installer without an OS: `install` and `install_with_password` give what the
/// test set, `check` says what the test set (macOS-like with a note or `ready`, Linux-like with
/// neither) and records the helper version it was asked about.
#[derive(Clone)]
struct FakeHelper(Arc<Mutex<HelperScript>>);

struct HelperScript {
    install: Result<Installed, String>,
    password: Result<Installed, String>,
    checked: Checked,
    /// macOS-like: there is a place to approve the helper.
    approvable: bool,
    installs: usize,
    password_installs: usize,
    opened: usize,
    asked_versions: Vec<Option<String>>,
}

impl FakeHelper {
    fn new(install: Result<Installed, String>, checked: Checked) -> FakeHelper {
        let approvable = checked.note.is_some() || checked.ready;
        FakeHelper(Arc::new(Mutex::new(HelperScript {
            install,
            password: Err("no password way here".into()),
            checked,
            approvable,
            installs: 0,
            password_installs: 0,
            opened: 0,
            asked_versions: vec![],
        })))
    }
    /// As on Linux: pkexec installs it, nothing waits for approval.
    fn linux() -> FakeHelper {
        FakeHelper::new(Ok(Installed::Running("Helper installed.".into())), Checked::default())
    }
    fn script(&self) -> std::sync::MutexGuard<'_, HelperScript> {
        self.0.lock().unwrap()
    }
}

impl HelperInstall for FakeHelper {
    fn install(&self) -> Result<Installed, String> {
        let mut s = self.script();
        s.installs += 1;
        s.install.clone()
    }
    fn install_with_password(&self) -> Result<Installed, String> {
        let mut s = self.script();
        s.password_installs += 1;
        s.password.clone()
    }
    fn check(&self, helper_version: Option<&str>) -> Checked {
        let mut s = self.script();
        s.asked_versions.push(helper_version.map(String::from));
        s.checked.clone()
    }
    fn open_approval_settings(&self) -> Result<(), String> {
        let mut s = self.script();
        if !s.approvable {
            return Err("no approval on this OS".into());
        }
        s.opened += 1;
        Ok(())
    }
}

const SETTINGS: &str = "System Settings → General → Login Items & Extensions";

fn pending() -> Checked {
    Checked { note: Some(Note::Pending { settings: SETTINGS.into() }), ready: false }
}

struct Harness {
    app: tauri::App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    dir: tempfile::TempDir,
    login: Arc<AtomicBool>,
}

fn harness(broken_login: bool) -> Harness {
    harness_with(broken_login, FakeHelper::linux())
}

fn harness_with(broken_login: bool, helper: FakeHelper) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        helper_socket: dir.path().join("no-helper.sock"),
        port: 2511,
        host_address: None,
        guest_image: "dockroute/guest:test".into(),
        guest_tarball: None,
        guest_tarball_dirs: vec![],
        pairs: vec![],
        secret: None,
        let_docker_sleep: true,
    };
    let service = tauri::async_runtime::block_on(async {
        Service::spawn(opts, Choices { connect: true, ..Default::default() }, "0.0.0")
    });
    let (prefs, _) = PrefsStore::load(dir.path());
    let login = Arc::new(AtomicBool::new(false));
    let login_item = Box::new(FakeLoginItem { on: login.clone(), broken: broken_login });
    let state = AppState::new(service, prefs, login_item, Box::new(helper));
    let app = mock_builder()
        .invoke_handler(tauri::generate_handler![
            view,
            connect,
            disconnect,
            set_network_enabled,
            set_autostart,
            set_let_docker_sleep,
            retry,
            open_container_url,
            install_helper,
            install_helper_with_password,
            open_login_items,
            add_teammate,
            revoke_teammate,
            set_network_exposed,
            set_https,
            trust_ca,
            untrust_ca,
            open_container_name,
            set_engine,
        ])
        .build(mock_context(noop_assets()))
        .unwrap();
    app.manage(state);
    let webview = WebviewWindowBuilder::new(&app, "dashboard", Default::default()).build().unwrap();
    Harness { app, webview, dir, login }
}

impl Harness {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.webview, request).map(|b| b.deserialize::<Value>().unwrap())
    }

    fn view_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.invoke("view", json!({})).unwrap();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "view never showed {what}: {v:#}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn state(&self) -> tauri::State<'_, AppState> {
        self.app.state::<AppState>()
    }

    fn problem_kind(v: &Value) -> ProblemKind {
        serde_json::from_value(v["problem"]["kind"].clone()).unwrap()
    }

    fn saved_prefs(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join(crate::prefs::FILE_NAME)).unwrap()).unwrap()
    }
}

#[test]
fn a_missing_helper_or_docker_is_shown_as_an_actionable_problem() {
    let h = harness(false);
    let v = h.view_until("a problem", |v| !v["problem"].is_null());
    assert_eq!(v["phase"], json!(Phase::Error));
    // The helper is looked for first: installing it is what the user has to do.
    let kind: ProblemKind = serde_json::from_value(v["problem"]["kind"].clone()).unwrap();
    assert_eq!(kind, ProblemKind::HelperNotInstalled, "{v:#}");
    assert_eq!(v["problem"]["action"], "install_helper");
}

#[test]
fn disconnect_is_followed_and_remembered() {
    let h = harness(false);
    assert_eq!(h.invoke("disconnect", json!({})), Ok(Value::Null));
    let v = h.view_until("disconnected", |v| v["phase"] == "disconnected");
    assert_eq!(v["want_connected"], false);
    assert!(v["problem"].is_null(), "a disconnected app has nothing to complain about");
    assert_eq!(h.saved_prefs()["connect"], false);
    assert_eq!(h.invoke("connect", json!({})), Ok(Value::Null));
    h.view_until("connecting again", |v| v["want_connected"] == true && v["phase"] != "disconnected");
    assert_eq!(h.saved_prefs()["connect"], true);
}

#[test]
fn bad_requests_get_errors_and_change_nothing() {
    let h = harness(false);
    let unknown = h.invoke("set_network_enabled", json!({"name": "nope", "enabled": false})).unwrap_err();
    assert!(unknown.as_str().unwrap().contains("no bridge network named \"nope\""), "{unknown}");
    let missing_arg = h.invoke("set_network_enabled", json!({"name": "nope"})).unwrap_err();
    assert!(missing_arg.as_str().unwrap().contains("enabled"), "{missing_arg}");
    let not_ip = h.invoke("open_container_url", json!({"ip": "example.com", "port": 80})).unwrap_err();
    assert!(not_ip.as_str().unwrap().contains("not an IP address"), "{not_ip}");
    let stranger = h.invoke("open_container_url", json!({"ip": "198.19.1.2", "port": 80})).unwrap_err();
    assert!(stranger.as_str().unwrap().contains("no running container"), "{stranger}");
    // The page may only name an engine the view lists: a made-up socket is refused, unsaved.
    let engine = h.invoke("set_engine", json!({"id": "unix:///tmp/attacker.sock"})).unwrap_err();
    assert!(engine.as_str().unwrap().contains("no engine at \"unix:///tmp/attacker.sock\""), "{engine}");
    let no_such = h.invoke("frobnicate", json!({})).unwrap_err();
    assert!(no_such.to_string().contains("frobnicate"), "{no_such}");
    // And the app still answers.
    assert!(h.invoke("view", json!({})).is_ok());
    assert!(!h.dir.path().join(crate::prefs::FILE_NAME).exists(), "nothing was saved");
}

#[test]
fn share_commands_say_what_is_missing_and_save_only_what_was_issued() {
    let h = harness(false);
    let e = h.invoke("add_teammate", json!({"name": "alice"})).unwrap_err();
    assert!(e.as_str().unwrap().contains("helper not running"), "{e}");
    let e = h.invoke("revoke_teammate", json!({"name": "alice"})).unwrap_err();
    assert!(e.as_str().unwrap().contains("helper not running"), "{e}");
    let e = h.invoke("set_network_exposed", json!({"name": "nope", "exposed": true})).unwrap_err();
    assert!(e.as_str().unwrap().contains("no bridge network named \"nope\""), "{e}");
    let state = h.webview.state::<AppState>();
    let e = state.save_teammate_config(h.dir.path(), "alice").unwrap_err();
    assert!(e.contains("no new config for \"alice\""), "{e}");
    *state.issued.lock().unwrap() = Some(dockroute_controller::share::IssuedConfig {
        name: "alice".into(),
        address: "198.18.5.3".into(),
        qr_svg: String::new(),
        text: "[Interface]\n".into(),
    });
    assert!(state.save_teammate_config(h.dir.path(), "bob").is_err(), "only the teammate it was issued for");
    let path = state.save_teammate_config(h.dir.path(), "alice").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[Interface]\n");
}

#[test]
fn letting_docker_sleep_is_shown_applied_and_remembered() {
    let h = harness(false);
    assert_eq!(h.invoke("view", json!({})).unwrap()["let_docker_sleep"], true, "on by default");
    assert_eq!(h.invoke("set_let_docker_sleep", json!({"enabled": false})), Ok(Value::Null));
    assert_eq!(h.invoke("view", json!({})).unwrap()["let_docker_sleep"], false);
    assert_eq!(h.saved_prefs()["let_docker_sleep"], false);
    assert!(h.invoke("set_let_docker_sleep", json!({})).is_err(), "the argument is required");
}

#[test]
fn launch_at_login_goes_to_the_os_and_is_shown() {
    let h = harness(false);
    assert_eq!(h.invoke("set_autostart", json!({"enabled": true})), Ok(Value::Null));
    assert!(h.login.load(Ordering::SeqCst));
    assert_eq!(h.invoke("view", json!({})).unwrap()["autostart"], true);
    assert_eq!(h.saved_prefs()["launch_at_login"], true);

    let broken = harness(true);
    let err = broken.invoke("set_autostart", json!({"enabled": true})).unwrap_err();
    assert!(err.as_str().unwrap().contains("not available"), "{err}");
    assert_eq!(broken.invoke("view", json!({})).unwrap()["autostart"], false, "a refused change is not shown as done");
}

#[test]
fn a_helper_waiting_for_approval_is_said_with_the_way_to_allow_it() {
    // macOS: register succeeded, the daemon waits for the switch in Login Items.
    let waiting = Installed::AwaitingApproval { message: "Allow it in Login Items.".into(), settings: SETTINGS.into() };
    let helper = FakeHelper::new(Ok(waiting), pending());
    let h = harness_with(false, helper.clone());
    let v = h.view_until("the helper problem", |v| !v["problem"].is_null());
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled, "nothing known about approval yet");
    assert_eq!(h.invoke("install_helper", json!({})), Ok(json!("Allow it in Login Items.")));
    assert_eq!(helper.script().installs, 1);
    let v = h.view_until("the approval", |v| v["problem"]["kind"] == "helper_needs_approval");
    assert_eq!(v["problem"]["action"], "open_login_items");
    assert_eq!(v["phase"], "error");
    assert!(v["problem"]["detail"].as_str().unwrap().contains(SETTINGS), "the place as this macOS names it: {v:#}");
    assert_eq!(h.invoke("open_login_items", json!({})), Ok(Value::Null));
    assert_eq!(helper.script().opened, 1);
    // Still waiting: the banner stays.
    h.state().check_helper();
    assert_eq!(h.invoke("view", json!({})).unwrap()["problem"]["kind"], "helper_needs_approval");
    // Allowed: the banner goes, and the controller's own finding shows again (here the helper
    // is not really there, so it is "not installed").
    helper.script().checked = Checked { note: None, ready: true };
    h.state().check_helper();
    let v = h.view_until("the banner gone", |v| v["problem"]["kind"] != "helper_needs_approval");
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled);
}

#[test]
fn an_approval_left_pending_at_the_last_start_is_shown_at_once() {
    let helper = FakeHelper::new(Err("unused".into()), pending());
    let h = harness_with(false, helper.clone());
    h.state().check_helper(); // what the shell does at start
    h.view_until("the approval", |v| v["problem"]["kind"] == "helper_needs_approval");
    let mut changes = h.state().helper_note_changes();
    assert!(changes.borrow_and_update().is_some(), "the shell's watcher sees there is something to follow");
    assert_eq!(helper.script().asked_versions, [None], "no helper answered yet");
}

#[test]
fn a_refused_registration_offers_the_password_and_it_brings_the_helper_in() {
    // macOS refused SMAppService for this (ad-hoc signed) build: the other way in is offered.
    let why = "Registering the helper failed: the app's code signature does not meet macOS's requirements \
               (Codesigning failure loading plist: dev.dockroute.helper.plist code: -67028; SMAppServiceErrorDomain 3).";
    let helper = FakeHelper::new(Ok(Installed::NeedsPassword(why.into())), Checked::default());
    let h = harness_with(false, helper.clone());
    h.view_until("the helper problem", |v| !v["problem"].is_null());
    assert_eq!(h.invoke("install_helper", json!({})), Err(json!(why)), "said as the error it is");
    let v = h.view_until("the refusal", |v| v["problem"]["kind"] == "helper_refused");
    assert_eq!(v["problem"]["action"], "install_helper_with_password");
    assert!(v["problem"]["detail"].as_str().unwrap().contains("-67028"), "{v:#}");
    // The user cancels the password dialog: said, and the offer stays.
    helper.script().password = Err("Installing the helper was cancelled.".into());
    let err = h.invoke("install_helper_with_password", json!({})).unwrap_err();
    assert_eq!(err, json!("Installing the helper was cancelled."));
    assert_eq!(h.invoke("view", json!({})).unwrap()["problem"]["kind"], "helper_refused");
    // Then types it: the offer goes, and the service tries to connect at once.
    helper.script().password = Ok(Installed::Running("Helper installed with the administrator's password.".into()));
    assert_eq!(
        h.invoke("install_helper_with_password", json!({})),
        Ok(json!("Helper installed with the administrator's password."))
    );
    assert_eq!(helper.script().password_installs, 2);
    let v = h.view_until("the offer gone", |v| v["problem"]["kind"] != "helper_refused");
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled, "the fake installed nothing real");
}

#[test]
fn a_helper_launchd_refuses_at_start_is_said_and_an_outdated_one_is_a_warning() {
    let refusal = "launchd does not start the helper (last exit code = 78: EX_CONFIG, job state = spawn failed)";
    let helper =
        FakeHelper::new(Err("unused".into()), Checked { note: Some(Note::Refused(refusal.into())), ready: false });
    let h = harness_with(false, helper.clone());
    h.state().check_helper();
    let v = h.view_until("the refusal", |v| v["problem"]["kind"] == "helper_refused");
    assert!(v["problem"]["detail"].as_str().unwrap().starts_with(refusal), "{v:#}");
    // Installed with the password by an older version of the app: a warning, with the way to
    // update (the helper here is not reachable, so the controller's error shows instead).
    helper.script().checked =
        Checked { note: Some(Note::Outdated { helper: "0.0.1".into(), app: "0.0.2".into() }), ready: false };
    h.state().check_helper();
    let v = h.view_until("no refusal", |v| v["problem"]["kind"] != "helper_refused");
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled, "an error is never hidden by the warning");
}

#[test]
fn without_an_approval_step_there_is_never_a_banner() {
    // Linux: pkexec installs the helper; there is nothing to allow.
    let helper = FakeHelper::linux();
    let h = harness_with(false, helper.clone());
    assert_eq!(h.invoke("install_helper", json!({})), Ok(json!("Helper installed.")));
    h.state().check_helper();
    let v = h.view_until("the helper problem", |v| !v["problem"].is_null());
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled);
    assert!(h.state().helper_note_changes().borrow().is_none());
    let err = h.invoke("open_login_items", json!({})).unwrap_err();
    assert!(err.as_str().unwrap().contains("no approval"), "{err}");
    assert_eq!(helper.script().opened, 0);
}

#[test]
fn a_failed_install_is_said_and_changes_nothing() {
    let helper = FakeHelper::new(Err("Registering the helper failed: damaged".into()), Checked::default());
    let h = harness_with(false, helper);
    let err = h.invoke("install_helper", json!({})).unwrap_err();
    assert_eq!(err, json!("Registering the helper failed: damaged"));
    let v = h.view_until("the helper problem", |v| !v["problem"].is_null());
    assert_eq!(Harness::problem_kind(&v), ProblemKind::HelperNotInstalled);
}

#[test]
fn the_https_switch_is_remembered_and_links_and_trust_need_a_helper_that_serves() {
    let h = harness(false);
    assert_eq!(h.invoke("set_https", json!({"enabled": false})), Ok(Value::Null));
    assert_eq!(h.saved_prefs()["https"], false);
    assert_eq!(h.invoke("set_https", json!({"enabled": true})), Ok(Value::Null));
    assert_eq!(h.saved_prefs()["https"], true);
    assert!(h.invoke("set_https", json!({})).is_err(), "the argument is required");
    // No helper: no HTTPS is served, so no name opens, whatever the page asks for.
    for name in ["web.docker", "https://evil.example/", "github.com"] {
        let e = h.invoke("open_container_name", json!({"name": name})).unwrap_err();
        assert!(e.as_str().unwrap().contains("not being served"), "{name}: {e}");
    }
    let e = h.invoke("trust_ca", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("has not reported a local CA"), "{e}");
    let e = h.invoke("untrust_ca", json!({})).unwrap_err();
    assert!(e.as_str().unwrap().contains("has not reported a local CA"), "{e}");
}

#[test]
fn only_a_running_containers_own_name_opens_as_an_https_link() {
    use dockroute_controller::dns_view::NameView;
    use dockroute_controller::view::{ContainerView, View};
    let name = |n: &str, wildcard: bool| NameView { name: n.into(), wildcard, clash: false };
    let https = dockroute_controller::https_view::https_view(
        Some(&dockroute_api::HttpsStatus {
            listen: Some("198.18.0.1:443".parse().unwrap()),
            ca: None,
            problems: vec![],
            off_by_app: false,
            redirected: 0,
        }),
        true,
    );
    let mut view = View {
        containers: vec![ContainerView {
            id: "id1".into(),
            name: "web".into(),
            addresses: vec![],
            ports: vec![],
            names: vec![name("web.docker", false), name("*.shop.test", true)],
        }],
        https: Some(https),
        ..Default::default()
    };
    assert_eq!(name_url(&view, "web.docker"), Ok("https://web.docker/".into()));
    for attack in ["*.shop.test", "evil.docker", "web.docker/@evil.example", "https://evil.example/", ""] {
        let e = name_url(&view, attack).unwrap_err();
        assert!(e.contains("not the name of a running container"), "{attack}: {e}");
    }
    view.https.as_mut().unwrap().serving = false;
    assert!(name_url(&view, "web.docker").unwrap_err().contains("not being served"));
}
