//! `dockroute --headless`: the app's supervisor (`controller::Service`, connected, every
//! network on) without a window. It retries as the app does while Docker or the helper is
//! missing; what the dashboard would show is logged instead, each change once; SIGTERM and
//! SIGINT do Disconnect's teardown (guest removed, routes withdrawn, tunnel down) before it
//! exits.

use dockroute_controller::view::{Phase, Problem, View};
use dockroute_controller::{Choices, Exit, Options, Service};

pub fn run(mut opts: Options) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // One secret for the whole run: a reconnect after a failure adopts the guest it started.
    if opts.secret.is_none() {
        opts.secret = Some(dockroute_controller::new_secret()?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        // Handlers first: a SIGTERM while connecting must still end in a clean teardown.
        let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
        let choices = Choices { connect: true, ..Default::default() };
        let service = Service::spawn(opts, choices, env!("CARGO_PKG_VERSION"));
        let mut view = service.view();
        let mut logged = Logged::default();
        loop {
            for news in logged.news(&view.borrow_and_update()) {
                news.log();
            }
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); break }
                changed = view.changed() => if changed.is_err() { break },
            }
        }
        service.stop(Exit::Teardown).await
    })
}

/// What was last logged of the view, so that each change is logged once (the view changes
/// every second with the throughput).
#[derive(Debug, Default)]
struct Logged {
    phase: Option<Phase>,
    problem: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum News {
    Phase(Phase),
    Problem(Problem),
    Solved(Problem),
}

impl Logged {
    fn news(&mut self, v: &View) -> Vec<News> {
        let mut out = Vec::new();
        if v.problem != self.problem {
            match (&v.problem, self.problem.take()) {
                (Some(p), _) => out.push(News::Problem(p.clone())),
                (None, Some(old)) => out.push(News::Solved(old)),
                (None, None) => {}
            }
            self.problem = v.problem.clone();
        }
        let phase = v.phase();
        if self.phase != Some(phase) {
            self.phase = Some(phase);
            out.push(News::Phase(phase));
        }
        out
    }
}

impl News {
    fn log(&self) {
        match self {
            News::Phase(p) => tracing::info!("tunnel: {}", phase_word(*p)),
            News::Problem(p) => tracing::warn!("{}: {}", p.title, p.detail),
            News::Solved(p) => tracing::info!("solved: {}", p.title),
        }
    }
}

fn phase_word(p: Phase) -> &'static str {
    match p {
        Phase::Disconnected => "disconnected",
        Phase::Connecting => "connecting",
        Phase::Connected => "connected",
        Phase::Error => "not working",
        Phase::Idle => "idle: no containers (the guest sleeps; the first container wakes it)",
    }
}

#[cfg(test)]
mod tests {
    use dockroute_api::StatsReport;
    use dockroute_controller::view::derive::Traffic;
    use dockroute_controller::view::docker_problem;

    use super::*;

    #[test]
    fn each_change_is_logged_once() {
        let mut logged = Logged::default();
        let mut v = View { want_connected: true, ..Default::default() };
        assert_eq!(logged.news(&v), [News::Phase(Phase::Connecting)]);
        assert_eq!(logged.news(&v), [], "nothing new");
        let docker = docker_problem("unix:///d.sock", &"connection refused");
        v.problem = Some(docker.clone());
        assert_eq!(logged.news(&v), [News::Problem(docker.clone()), News::Phase(Phase::Error)]);
        let mut traffic = Traffic::default();
        traffic.push(StatsReport::default(), 1_000);
        (v.stats, v.throughput) = (traffic.stats, traffic.throughput);
        assert_eq!(logged.news(&v), [], "throughput is not news");
        let other = docker_problem("unix:///d.sock", &"no such file");
        v.problem = Some(other.clone());
        assert_eq!(logged.news(&v), [News::Problem(other.clone())], "another reason is");
        v.problem = None;
        assert_eq!(logged.news(&v), [News::Solved(other), News::Phase(Phase::Connecting)]);
    }
}
