//! The commands through Tauri's mock runtime: the JSON the page sends, the JSON it gets back.
//! The service behind them is the real one, pointed at a helper socket that does not exist.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockroute_controller::view::{Phase, ProblemKind};
use dockroute_controller::{Choices, Options};
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

use super::*;

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

struct Harness {
    _app: tauri::App<MockRuntime>,
    webview: WebviewWindow<MockRuntime>,
    dir: tempfile::TempDir,
    login: Arc<AtomicBool>,
}

fn harness(broken_login: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        helper_socket: dir.path().join("no-helper.sock"),
        port: 2511,
        host_address: None,
        guest_image: "dockroute/guest:test".into(),
        guest_tarball: None,
        pairs: vec![],
        secret: None,
        let_docker_sleep: true,
    };
    let service = tauri::async_runtime::block_on(async {
        Service::spawn(opts, Choices { connect: true, ..Default::default() }, "0.0.0")
    });
    let (prefs, _) = PrefsStore::load(dir.path());
    let login = Arc::new(AtomicBool::new(false));
    let state = AppState::new(service, prefs, Box::new(FakeLoginItem { on: login.clone(), broken: broken_login }));
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
        ])
        .build(mock_context(noop_assets()))
        .unwrap();
    app.manage(state);
    let webview = WebviewWindowBuilder::new(&app, "dashboard", Default::default()).build().unwrap();
    Harness { _app: app, webview, dir, login }
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
    let no_such = h.invoke("frobnicate", json!({})).unwrap_err();
    assert!(no_such.to_string().contains("frobnicate"), "{no_such}");
    // And the app still answers.
    assert!(h.invoke("view", json!({})).is_ok());
    assert!(!h.dir.path().join(crate::prefs::FILE_NAME).exists(), "nothing was saved");
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
