//! The controller as the app and `dockroute --headless` run it: the user's choices in (connect
//! or not, which networks), a `View` out, and in between a supervisor that keeps trying while
//! Docker or the helper is missing and says why in the view.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dockroute_stdx::Backoff;
use tokio::sync::{watch, Notify};

use crate::controller::{Controller, Exit, Followed, ViewChannels};
use crate::endpoint::{DockerEndpoint, Env};
use crate::engines::{choice, HostOs};
use crate::options::Options;
use crate::view::derive::{HelperNote, ViewInputs};
use crate::view::writer::ViewWriter;
use crate::view::{Problem, ProblemError, ProblemKind, View};
use crate::{engines, teardown};

/// What the user chose last time (the app persists it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    pub connect: bool,
    /// Names of the networks switched off.
    pub disabled: BTreeSet<String>,
    /// The HTTPS switch: the helper serves its HTTPS front (where its config allows).
    pub https: bool,
    /// The engine to follow (an endpoint, `unix:///…`); None: the docker CLI's.
    pub engine: Option<String>,
}

/// Not connected; HTTPS served where the helper's config allows (`--headless` and an app
/// before the switch leave it on).
impl Default for Choices {
    fn default() -> Choices {
        Choices { connect: false, disabled: BTreeSet::new(), https: true, engine: None }
    }
}

/// Retries of a failed start: 1 s doubling to this (Docker Desktop takes a while to boot).
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(15);

pub struct Service {
    want: watch::Sender<bool>,
    disabled: watch::Sender<BTreeSet<String>>,
    sleep: watch::Sender<bool>,
    https: watch::Sender<bool>,
    /// The engine the user picked (None: the docker CLI's).
    engine: watch::Sender<Option<String>>,
    retry: Arc<Notify>,
    /// Set once: stop the supervisor, leaving or tearing down what it made.
    stop: watch::Sender<Option<Exit>>,
    view: watch::Receiver<View>,
    /// To show the user's choice at once, before the supervisor has acted on it.
    writer: ViewWriter,
    task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
}

impl Service {
    /// Starts the supervisor on the current tokio runtime.
    pub fn spawn(opts: Options, choices: Choices, app_version: &str) -> Service {
        let writer = ViewWriter::new(ViewInputs {
            app_version: app_version.to_string(),
            want_connected: choices.connect,
            helper_socket: opts.helper_socket.display().to_string(),
            let_docker_sleep: opts.let_docker_sleep,
            https_wanted: choices.https,
            ..Default::default()
        });
        let view = writer.subscribe();
        let (want, want_rx) = watch::channel(choices.connect);
        let (disabled, disabled_rx) = watch::channel(choices.disabled);
        let (sleep, sleep_rx) = watch::channel(opts.let_docker_sleep);
        let (https, https_rx) = watch::channel(choices.https);
        let (engine, engine_rx) = watch::channel(choices.engine);
        let (stop, stop_rx) = watch::channel(None);
        let retry = Arc::new(Notify::new());
        let channels = ViewChannels {
            view: writer.clone(),
            disabled: disabled_rx,
            retry: retry.clone(),
            sleep: sleep_rx,
            https: https_rx,
        };
        let wishes = Wishes { want: want_rx, engine: engine_rx, stop: stop_rx };
        let task = tokio::spawn(supervise(opts, channels, wishes));
        Service {
            want,
            disabled,
            sleep,
            https,
            engine,
            retry,
            stop,
            view,
            writer,
            task: tokio::sync::Mutex::new(Some(task)),
        }
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
        self.writer.update(|i| i.want_connected = on);
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

    /// Whether the guest may sleep while no other container runs; applies at once.
    pub fn set_let_docker_sleep(&self, on: bool) {
        self.sleep.send_replace(on);
        self.writer.update(|i| i.let_docker_sleep = on);
    }

    /// The HTTPS switch: the helper serves its HTTPS front (where its config allows) or not;
    /// applies at once (and on every new connection to the helper).
    pub fn set_https(&self, on: bool) {
        self.https.send_replace(on);
        self.writer.update(|i| i.https_wanted = on);
    }

    /// Follow the engine at `id` (an endpoint the view lists): the guest and the routes move
    /// there, and the old engine's guest is removed. An id not listed is refused.
    pub fn set_engine(&self, id: &str) -> Result<(), String> {
        if !self.view.borrow().engines.iter().any(|e| e.id == id) {
            return Err(format!("no engine at {id:?}"));
        }
        self.engine.send_if_modified(|e| e.replace(id.to_string()).as_deref() != Some(id));
        self.writer.update(|i| {
            for e in &mut i.engines {
                e.followed = e.id == id;
            }
        });
        Ok(())
    }

    /// The engine the user picked, if any.
    pub fn engine(&self) -> Option<String> {
        self.engine.borrow().clone()
    }

    /// Launch at login as the app shell keeps it, for the view (the controller does not own
    /// login items).
    pub fn show_autostart(&self, on: bool) {
        self.writer.update(|i| i.autostart = on);
    }

    /// What the app shell learnt from the OS about the helper's installation, for the view.
    pub fn show_helper_note(&self, note: Option<HelperNote>) {
        self.writer.update(|i| i.helper_note = note);
    }

    pub fn disabled(&self) -> BTreeSet<String> {
        self.disabled.borrow().clone()
    }

    /// Try Docker and the helper again now instead of at the next retry, and from then on at
    /// the first retry's pace again.
    pub fn retry(&self) {
        // Only a wait in progress is cut short; no permit is kept for a later one.
        self.retry.notify_waiters();
    }

    /// Stops the supervisor and leaves the tunnel as the user chose it: a connected tunnel stays
    /// up (the guest keeps running, the helper keeps the routes) for the next start to adopt.
    /// Idempotent.
    pub async fn quit(&self) {
        // Leaving tears nothing down, so nothing can fail.
        let _ = self.stop(Exit::Leave).await;
    }

    /// Stops the supervisor; with `Exit::Teardown` it first does Disconnect's teardown (guest
    /// removed, routes withdrawn, tunnel down), also after a connect that never finished. The
    /// error says what may be left. The first call decides; later ones return at once.
    pub async fn stop(&self, exit: Exit) -> anyhow::Result<()> {
        self.stop.send_if_modified(|s| first_stop(s, exit));
        match self.task.lock().await.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(anyhow::anyhow!("the supervisor failed: {e}"))),
            None => Ok(()),
        }
    }
}

/// A Service dropped without `quit` stops its supervisor the same way (leaving the tunnel).
impl Drop for Service {
    fn drop(&mut self) {
        self.stop.send_if_modified(|s| first_stop(s, Exit::Leave));
    }
}

/// The first way of stopping asked for is the one that counts.
fn first_stop(stop: &mut Option<Exit>, exit: Exit) -> bool {
    if stop.is_some() {
        return false;
    }
    *stop = Some(exit);
    true
}

/// What the user wants of the supervisor: connected or not, which engine, and when to stop.
struct Wishes {
    want: watch::Receiver<bool>,
    engine: watch::Receiver<Option<String>>,
    stop: watch::Receiver<Option<Exit>>,
}

/// How long an engine that needs no Dockroute (OrbStack) is left before the engines are
/// asked again (another may have started).
const RESURVEY: Duration = Duration::from_secs(15);

/// Runs until told to stop; the result is that of the final teardown, if there was one.
async fn supervise(opts: Options, channels: ViewChannels, wishes: Wishes) -> anyhow::Result<()> {
    let ViewChannels { view, disabled, retry, sleep, https } = channels;
    let Wishes { mut want, mut engine, mut stop } = wishes;
    let mut delay = Backoff::new(FIRST_RETRY, MAX_RETRY);
    // Set once a connect was attempted and no controller's teardown followed: the helper may
    // have a tunnel up (or an earlier run's guest may still run) that Disconnect must remove.
    let mut unclean = false;
    // The engine a controller last ran on: a teardown after a failed one goes there.
    let mut last_engine: Option<DockerEndpoint> = None;
    loop {
        let stopping = *stop.borrow();
        match stopping {
            Some(Exit::Teardown) if unclean => {
                return teardown::detached(&opts.helper_socket, last_engine.as_ref(), &Env::from_process())
                    .await
                    .into_result()
            }
            Some(_) => return Ok(()),
            None => {}
        }
        if !*want.borrow_and_update() {
            if std::mem::take(&mut unclean) {
                let _ = teardown::detached(&opts.helper_socket, last_engine.as_ref(), &Env::from_process()).await;
            }
            view.update(ViewInputs::disconnected);
            tokio::select! {
                _ = want.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        view.update(|i| i.want_connected = true);
        let chosen = engine.borrow_and_update().clone();
        let found = engines::probe::survey(&Env::from_process(), HostOs::current()).await;
        let followed = choice::choose(&found, chosen.as_deref());
        view.update(|i| i.engines = choice::views(&found, followed));
        let target = followed.map(|i| found[i].clone());
        let not_needed =
            target.as_ref().and_then(|f| f.probed.as_ref().ok()).is_some_and(|p| p.kind.routes_containers_itself());
        if not_needed {
            // OrbStack: nothing to start. Whatever an earlier engine had is gone already (a
            // switch tears down first).
            let others = choice::alternatives(&found, followed);
            view.update(|i| i.start_failed(crate::view::engine_not_needed_problem(&others)));
            tokio::select! {
                _ = tokio::time::sleep(RESURVEY) => {}
                _ = retry.notified() => {}
                _ = engine.changed() => {}
                _ = want.changed() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        let channels = ViewChannels {
            view: view.clone(),
            disabled: disabled.clone(),
            retry: retry.clone(),
            sleep: sleep.clone(),
            https: https.clone(),
        };
        let followed = match target {
            None => Err(crate::view::docker_problem(
                "the configured endpoint",
                &"no Docker engine found: set DOCKER_HOST or a docker context, or start Docker",
            )),
            Some(f) => match f.probed {
                Ok(probed) => {
                    last_engine = Some(f.endpoint.clone());
                    Ok(Followed { endpoint: f.endpoint, probed })
                }
                Err(e) => Err(crate::view::docker_problem(&f.endpoint.host, &e)),
            },
        };
        unclean = true;
        let attempt = Controller::connect(opts.clone(), channels, followed);
        let attempt = tokio::select! {
            c = attempt => c,
            _ = want.wait_for(|w| !*w) => continue,
            _ = stop.wait_for(Option::is_some) => continue,
            _ = engine.changed() => continue,
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
                view.update(|i| i.start_failed(problem));
                tokio::select! {
                    _ = tokio::time::sleep(delay.next_delay()) => {}
                    // The user acted (Retry, the helper installed or allowed): what was missing
                    // may come up in a moment, so the quick retries start again.
                    _ = retry.notified() => delay.reset(),
                    _ = engine.changed() => delay.reset(),
                    _ = want.changed() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
        };
        delay.reset();
        let (mut want2, mut stop2, mut engine2) = (want.clone(), stop.clone(), engine.clone());
        let until = async move {
            tokio::select! {
                Ok(_) = want2.wait_for(|w| !*w) => Exit::Teardown,
                // Another engine picked: this one's guest goes and its routes are withdrawn;
                // the next round connects to the new one.
                Ok(_) = engine2.changed() => Exit::Teardown,
                // Quit (or the Service is gone: leave everything up), or stop with a teardown.
                s = stop2.wait_for(Option::is_some) => s.ok().and_then(|s| *s).unwrap_or(Exit::Leave),
            }
        };
        let result = controller.run(until).await;
        // A teardown that failed (Docker or the helper gone meanwhile) is tried again.
        unclean = result.is_err();
        if let Err(e) = result {
            tracing::warn!("controller stopped: {e:#}");
        }
    }
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
            guest_tarball_dirs: Vec::new(),
            pairs: Vec::new(),
            secret: None,
            let_docker_sleep: true,
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
        assert_eq!(now.problem, None, "and nothing is complained about while the start winds down");
        service.set_connected(true);
        until(&mut view, "the problem again", |v| v.want_connected && v.problem.is_some()).await;
    }

    #[tokio::test]
    async fn the_sleep_preference_shows_at_once_and_reaches_the_controller() {
        let dir = tempfile::tempdir().unwrap();
        let off = Options { let_docker_sleep: false, ..opts(dir.path()) };
        let service = Service::spawn(off, Choices::default(), "0");
        assert!(!service.snapshot().let_docker_sleep, "the option's value from the start");
        service.set_let_docker_sleep(true);
        assert!(service.snapshot().let_docker_sleep);
        assert!(*service.sleep.borrow(), "the channel the controller follows has it");
        service.quit().await;
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
    async fn stopping_with_a_teardown_while_retrying_ends_the_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices { connect: true, ..Default::default() }, "0");
        let mut view = service.view();
        until(&mut view, "a problem", |v| v.problem.is_some()).await;
        // The teardown reaches for Docker and the helper (at most 5 s each), then it ends.
        let stopped = tokio::time::timeout(Duration::from_secs(15), service.stop(Exit::Teardown)).await;
        assert!(stopped.is_ok(), "stop(Teardown) did not return: the supervisor still runs");
        let again = tokio::time::timeout(Duration::from_millis(100), service.stop(Exit::Teardown)).await;
        assert!(matches!(again, Ok(Ok(()))), "a second stop returns at once");
    }

    /// The next instant the view changes at, after `after`.
    async fn next_change_after(view: &mut watch::Receiver<View>, after: tokio::time::Instant) -> tokio::time::Instant {
        loop {
            view.changed().await.unwrap();
            let now = tokio::time::Instant::now();
            if now > after {
                return now;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_starts_the_quick_retries_again() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::spawn(opts(dir.path()), Choices { connect: true, ..Default::default() }, "0");
        let mut view = service.view();
        // Failed attempts, as the view shows them: 1 s apart, doubling to 15 s.
        view.changed().await.unwrap();
        let mut at = vec![tokio::time::Instant::now()];
        while at.len() < 6 {
            let last = *at.last().unwrap();
            at.push(next_change_after(&mut view, last).await);
        }
        let gaps: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(gaps, [1, 2, 4, 8, 15]);
        // The user acted (say, allowed the helper): an attempt now, the next one a second later.
        let acted = tokio::time::Instant::now();
        service.retry();
        view.changed().await.unwrap();
        assert_eq!(tokio::time::Instant::now(), acted, "tried again at once");
        let next = next_change_after(&mut view, acted).await;
        assert_eq!((next - acted).as_secs(), 1, "not 15 s later");
        service.quit().await;
    }

    #[test]
    fn the_first_way_of_stopping_counts() {
        let mut s = None;
        assert!(first_stop(&mut s, Exit::Teardown));
        assert!(!first_stop(&mut s, Exit::Leave), "a later quit does not cancel the teardown");
        assert_eq!(s, Some(Exit::Teardown));
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
