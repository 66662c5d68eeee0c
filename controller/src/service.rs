//! The controller as the app runs it: the user's choices in (connect or not, which networks),
//! a `View` out, and in between a supervisor that keeps trying while Docker or the helper is
//! missing and says why in the view.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::controller::{teardown_detached, Controller, Exit, Links, Options, ProblemError};
use crate::view::{Problem, ProblemKind, View};

/// What the user chose last time (the app persists it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choices {
    pub connect: bool,
    /// Names of the networks switched off.
    pub disabled: BTreeSet<String>,
}

/// Retries of a failed start grow to this (Docker Desktop takes a while to boot).
const MAX_RETRY: Duration = Duration::from_secs(15);

pub struct Service {
    want: watch::Sender<bool>,
    disabled: watch::Sender<BTreeSet<String>>,
    retry: Arc<Notify>,
    quit: watch::Sender<bool>,
    view: watch::Receiver<View>,
    /// To show the user's choice at once, before the supervisor has acted on it.
    view_tx: watch::Sender<View>,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Service {
    /// Starts the supervisor on the current tokio runtime.
    pub fn spawn(opts: Options, choices: Choices, app_version: &str) -> Service {
        let initial = View {
            app_version: app_version.to_string(),
            want_connected: choices.connect,
            helper_socket: opts.helper_socket.display().to_string(),
            ..Default::default()
        };
        let (view_tx, view) = watch::channel(initial);
        let (want, want_rx) = watch::channel(choices.connect);
        let (disabled, disabled_rx) = watch::channel(choices.disabled);
        let (quit, quit_rx) = watch::channel(false);
        let retry = Arc::new(Notify::new());
        let task = tokio::spawn(supervise(opts, view_tx.clone(), want_rx, disabled_rx, quit_rx, retry.clone()));
        Service { want, disabled, retry, quit, view, view_tx, task: tokio::sync::Mutex::new(Some(task)) }
    }

    pub fn view(&self) -> watch::Receiver<View> {
        self.view.clone()
    }

    pub fn snapshot(&self) -> View {
        self.view.borrow().clone()
    }

    /// Connect (true) or Disconnect (false): the supervisor follows at once.
    pub fn set_connected(&self, on: bool) {
        self.want.send_replace(on);
        self.view_tx.send_modify(|v| v.want_connected = on);
    }

    /// Switches one network's route. Unknown names and networks whose route conflicts are
    /// refused with a message for the user; nothing changes then.
    pub fn set_network_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
        let known = self.view.borrow().networks.iter().find(|n| n.name == name).map(|n| n.checkable);
        match known {
            None => return Err(format!("no bridge network named {name:?}")),
            Some(false) if enabled => {
                return Err(format!("network {name:?} cannot be routed: its subnet conflicts with another route"))
            }
            Some(_) => {}
        }
        self.disabled.send_modify(|d| {
            if enabled {
                d.remove(name);
            } else {
                d.insert(name.to_string());
            }
        });
        Ok(())
    }

    pub fn disabled(&self) -> BTreeSet<String> {
        self.disabled.borrow().clone()
    }

    /// Try Docker and the helper again now instead of at the next retry.
    pub fn retry(&self) {
        // Only a wait in progress is cut short; no permit is kept for a later one.
        self.retry.notify_waiters();
    }

    /// Stops the supervisor and leaves the tunnel as the user chose it: a connected tunnel stays
    /// up (the guest keeps running, the helper keeps the routes) for the next start to adopt.
    /// Idempotent.
    pub async fn quit(&self) {
        self.quit.send_replace(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// A Service dropped without `quit` stops its supervisor the same way (leaving the tunnel).
impl Drop for Service {
    fn drop(&mut self) {
        self.quit.send_replace(true);
    }
}

async fn supervise(
    opts: Options,
    view: watch::Sender<View>,
    mut want: watch::Receiver<bool>,
    disabled: watch::Receiver<BTreeSet<String>>,
    mut quit: watch::Receiver<bool>,
    retry: Arc<Notify>,
) {
    let mut delay = Duration::from_secs(1);
    // Set once a connect was attempted and no controller's teardown followed: the helper may
    // have a tunnel up (or an earlier run's guest may still run) that Disconnect must remove.
    let mut unclean = false;
    while !*quit.borrow() {
        if !*want.borrow_and_update() {
            if std::mem::take(&mut unclean) {
                teardown_detached(&opts).await;
            }
            view.send_modify(show_disconnected);
            tokio::select! {
                _ = want.changed() => {}
                _ = quit.changed() => {}
            }
            continue;
        }
        view.send_modify(|v| v.want_connected = true);
        let links = Links { view: view.clone(), disabled: disabled.clone(), retry: retry.clone() };
        unclean = true;
        let attempt = tokio::select! {
            c = Controller::connect(opts.clone(), links) => c,
            _ = want.wait_for(|w| !*w) => continue,
            _ = quit.wait_for(|q| *q) => break,
        };
        let controller = match attempt {
            Ok(c) => c,
            Err(e) => {
                let problem = match e.downcast::<ProblemError>() {
                    Ok(p) => p.0,
                    Err(e) => Problem {
                        kind: ProblemKind::Other,
                        title: "Cannot start".into(),
                        detail: format!("{e:#}"),
                        action: Some(crate::view::Action::Retry),
                    },
                };
                tracing::warn!("cannot connect: {}: {}", problem.title, problem.detail);
                view.send_modify(|v| v.problem = Some(problem));
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = retry.notified() => {}
                    _ = want.changed() => {}
                    _ = quit.changed() => {}
                }
                delay = (delay * 2).min(MAX_RETRY);
                continue;
            }
        };
        delay = Duration::from_secs(1);
        let (mut want2, mut quit2) = (want.clone(), quit.clone());
        let stop = async move {
            tokio::select! {
                Ok(_) = want2.wait_for(|w| !*w) => Exit::Teardown,
                // Quit, or the Service is gone: leave everything up.
                _ = quit2.wait_for(|q| *q) => Exit::Leave,
            }
        };
        let result = controller.run(stop).await;
        // A teardown that failed (Docker or the helper gone meanwhile) is tried again.
        unclean = result.is_err();
        if let Err(e) = result {
            tracing::warn!("controller stopped: {e:#}");
        }
    }
}

/// What the dashboard shows while the user has chosen Disconnect.
fn show_disconnected(v: &mut View) {
    v.want_connected = false;
    v.problem = None;
    v.tunnel = None;
    v.networks.clear();
    v.containers.clear();
    v.stats = None;
    v.throughput.clear();
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::view::Phase;

    fn opts(dir: &Path) -> Options {
        Options {
            helper_socket: dir.join("no-helper.sock"),
            port: 2511,
            host_address: None,
            guest_image: "dockroute-guest:test".into(),
            guest_tarball: None,
            pairs: Vec::new(),
            secret: None,
        }
    }

    async fn until(view: &mut watch::Receiver<View>, what: &str, f: impl Fn(&View) -> bool) -> View {
        let seen = match tokio::time::timeout(Duration::from_secs(10), view.wait_for(|v| f(v))).await {
            Ok(Ok(v)) => Some(v.clone()),
            _ => None,
        };
        seen.unwrap_or_else(|| panic!("the view never showed {what}: {:?}", *view.borrow()))
    }

    #[tokio::test]
    async fn a_missing_helper_is_said_and_quit_ends_the_retries() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices { connect: true, ..Default::default() }, "0");
        let mut view = service.view();
        let v = until(&mut view, "a problem", |v| v.problem.is_some()).await;
        assert_eq!(v.phase(), Phase::Error);
        assert_eq!(v.problem.unwrap().kind, ProblemKind::HelperNotInstalled);
        tokio::time::timeout(Duration::from_secs(5), service.quit()).await.expect("quit returns while retrying");
        service.quit().await; // idempotent
    }

    #[tokio::test]
    async fn disconnect_shows_at_once_and_clears_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices { connect: true, ..Default::default() }, "0");
        let mut view = service.view();
        until(&mut view, "a problem", |v| v.problem.is_some()).await;
        service.set_connected(false);
        let now = service.snapshot();
        assert_eq!((now.want_connected, now.phase()), (false, Phase::Disconnected), "the choice shows before any work");
        until(&mut view, "no problem while disconnected", |v| v.problem.is_none()).await;
        service.set_connected(true);
        until(&mut view, "the problem again", |v| v.want_connected && v.problem.is_some()).await;
    }

    #[tokio::test]
    async fn unknown_networks_cannot_be_toggled() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices::default(), "0");
        let err = service.set_network_enabled("nope", false).unwrap_err();
        assert!(err.contains("no bridge network named \"nope\""), "{err}");
        assert!(service.disabled().is_empty());
    }

    #[tokio::test]
    async fn a_dropped_service_stops_its_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices::default(), "0");
        let mut view = service.view();
        drop(service);
        // Every sender of the view goes away only when the supervisor task has ended.
        let ended = tokio::time::timeout(Duration::from_secs(5), async { while view.changed().await.is_ok() {} }).await;
        assert!(ended.is_ok(), "the supervisor kept running after its Service was dropped");
    }
}
