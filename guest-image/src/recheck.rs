//! When the guest looks at the VM's firewall, as a state machine without I/O: change
//! notifications (the controller's files, the nftables ruleset) go in with the time, a check
//! comes out after a short quiet spell (a `docker network create` changes many rules at once),
//! and a slow safety net checks anyway in case a change came without a notification (an
//! iptables-legacy ruleset sends none, and the controller's poke can be missed).

use std::time::{Duration, Instant};

/// A burst of notifications is checked once, this long after it began.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// With notifications, the safety net's period.
pub const SAFETY_NET: Duration = Duration::from_secs(60);
/// Without a watch on the rules file (inotify unavailable), as before: every second.
pub const POLL_WITHOUT_WATCH: Duration = Duration::from_secs(1);

/// What to do when a check is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Read the rules file again (it, or something beside it, changed; or the safety net).
    pub reread_rules: bool,
}

#[derive(Debug, Clone)]
pub struct Recheck {
    every: Duration,
    /// A notified change waits for its check until then.
    due: Option<Instant>,
    rules_changed: bool,
    /// The file changed at the last check: read it once more (a change applies on two equal
    /// reads, so a file still being written is never applied).
    confirm: bool,
    next_safety: Instant,
}

impl Recheck {
    /// `every`: the safety net's period (`SAFETY_NET`, or `POLL_WITHOUT_WATCH`).
    pub fn new(now: Instant, every: Duration) -> Recheck {
        Recheck { every, due: None, rules_changed: false, confirm: false, next_safety: now + every }
    }

    /// Something in the controller's directory changed (the rules, or its "check now").
    pub fn handle_files_changed(&mut self, now: Instant) {
        self.rules_changed = true;
        self.due.get_or_insert(now + DEBOUNCE);
    }

    /// The kernel said the ruleset changed (Docker rebuilt its chains, or we applied ours).
    pub fn handle_ruleset_changed(&mut self, now: Instant) {
        self.due.get_or_insert(now + DEBOUNCE);
    }

    pub fn poll_timeout(&self) -> Instant {
        self.due.map_or(self.next_safety, |d| d.min(self.next_safety))
    }

    /// The check due at `now`, if any; the safety net starts over after every check.
    pub fn poll(&mut self, now: Instant) -> Option<Check> {
        let notified = self.due.is_some_and(|d| now >= d);
        let safety = now >= self.next_safety;
        if !notified && !safety {
            return None;
        }
        let check = Check { reread_rules: self.rules_changed || self.confirm || safety };
        self.confirm = std::mem::take(&mut self.rules_changed);
        self.due = self.confirm.then(|| now + DEBOUNCE);
        self.next_safety = now + self.every;
        Some(check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Every check from `t0` to `t0 + to_ms`, in 10 ms steps, with its time.
    fn checks(r: &mut Recheck, t0: Instant, from_ms: u64, to_ms: u64) -> Vec<(u64, Check)> {
        (from_ms..=to_ms).step_by(10).filter_map(|t| r.poll(t0 + MS(t)).map(|c| (t, c))).collect()
    }

    #[test]
    fn an_idle_guest_checks_once_a_minute() {
        let t0 = Instant::now();
        let mut r = Recheck::new(t0, SAFETY_NET);
        assert_eq!(r.poll_timeout(), t0 + SAFETY_NET);
        let got = checks(&mut r, t0, 0, 180_000);
        let at: Vec<u64> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(at, [60_000, 120_000, 180_000]);
        assert!(got.iter().all(|(_, c)| c.reread_rules), "the safety net re-reads the file too");
    }

    #[test]
    fn a_burst_of_changes_is_checked_once_after_the_debounce() {
        let t0 = Instant::now();
        let mut r = Recheck::new(t0, SAFETY_NET);
        for t in [1000, 1050, 1100, 1150] {
            r.handle_ruleset_changed(t0 + MS(t));
        }
        assert_eq!(r.poll_timeout(), t0 + MS(1200));
        assert_eq!(checks(&mut r, t0, 1000, 5000), [(1200, Check { reread_rules: false })]);
        // The safety net counts from that check.
        assert_eq!(r.poll_timeout(), t0 + MS(1200) + SAFETY_NET);
    }

    #[test]
    fn a_file_change_re_reads_the_rules() {
        let t0 = Instant::now();
        let mut r = Recheck::new(t0, SAFETY_NET);
        r.handle_ruleset_changed(t0 + MS(100));
        r.handle_files_changed(t0 + MS(150));
        let read = Check { reread_rules: true };
        assert_eq!(checks(&mut r, t0, 0, 1000), [(300, read), (500, read)], "read twice, to confirm");
        r.handle_ruleset_changed(t0 + MS(2000));
        assert_eq!(checks(&mut r, t0, 1000, 3000), [(2200, Check { reread_rules: false })], "only that once");
    }

    #[test]
    fn without_a_watch_it_polls_every_second() {
        let t0 = Instant::now();
        let mut r = Recheck::new(t0, POLL_WITHOUT_WATCH);
        assert_eq!(checks(&mut r, t0, 0, 3000).len(), 3);
    }
}
