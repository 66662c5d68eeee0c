//! Reaching a sans-IO core that one task owns: the other tasks send it closures (`Control`),
//! which it runs between inputs with its `now`; `ask` waits for the answer, within a deadline.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

/// A request to the task that owns the core: run this closure on it, between inputs.
pub type Control<C> = Box<dyn FnOnce(&mut C, Instant) + Send>;

/// Runs `f` on the core behind `control` and returns what it returned; None when the task is
/// gone or has not answered within `deadline` (a stuck task costs the caller no more).
pub async fn ask<C: 'static, T: Send + 'static>(
    control: &mpsc::UnboundedSender<Control<C>>,
    deadline: Duration,
    f: impl FnOnce(&mut C, Instant) -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    control.send(Box::new(move |core: &mut C, now| drop(tx.send(f(core, now))))).ok()?;
    tokio::time::timeout(deadline, rx).await.ok()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_owner_runs_the_closure_on_its_core_and_the_answer_comes_back() {
        let (tx, mut rx) = mpsc::unbounded_channel::<Control<u32>>();
        let owner = tokio::spawn(async move {
            let mut core = 41u32;
            while let Some(c) = rx.recv().await {
                c(&mut core, Instant::now());
            }
            core
        });
        let answer = ask(&tx, Duration::from_secs(5), |core: &mut u32, _| {
            *core += 1;
            *core * 2
        })
        .await;
        assert_eq!(answer, Some(84));
        drop(tx);
        assert_eq!(owner.await.unwrap(), 42);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_never_answers_or_is_gone_gives_none() {
        let (tx, rx) = mpsc::unbounded_channel::<Control<u32>>();
        // Held, never read: the request waits forever, the deadline ends the wait.
        let stuck = ask(&tx, Duration::from_secs(2), |_: &mut u32, _| 1).await;
        assert_eq!(stuck, None);
        drop(rx);
        assert_eq!(ask(&tx, Duration::from_secs(2), |_: &mut u32, _| 1).await, None);
    }
}
