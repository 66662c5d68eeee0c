//! "Apply after two equal reads": a file that an editor (or `docker cp`) is still writing may be
//! read half-done once, but not twice the same. Both the helper's config and the guest's rules
//! file go through this before anything is applied.

/// Remembers what was applied and what was read once since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle<T> {
    applied: Option<T>,
    candidate: Option<T>,
}

impl<T> Default for Settle<T> {
    fn default() -> Self {
        Settle { applied: None, candidate: None }
    }
}

impl<T: PartialEq + Clone> Settle<T> {
    /// Starts with `applied` as what is in force (e.g. the text read at start).
    pub fn new(applied: Option<T>) -> Settle<T> {
        Settle { applied, candidate: None }
    }

    /// A fresh read. Returns the value when it should be applied now: it differs from what is
    /// in force and equals the previous read.
    pub fn offer(&mut self, read: T) -> Option<T> {
        if self.applied.as_ref() == Some(&read) {
            self.candidate = None;
            return None;
        }
        if self.candidate.as_ref() != Some(&read) {
            self.candidate = Some(read);
            return None;
        }
        self.candidate = None;
        self.applied = Some(read.clone());
        Some(read)
    }

    /// A read failed (the file is gone): whatever comes back later is new again. Returns
    /// whether something had been in force.
    pub fn forget(&mut self) -> bool {
        self.candidate = None;
        self.applied.take().is_some()
    }

    /// A value was read once and waits for a second, equal read.
    pub fn is_pending(&self) -> bool {
        self.candidate.is_some()
    }

    pub fn applied(&self) -> Option<&T> {
        self.applied.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_applies_on_the_second_equal_read_only() {
        let mut s = Settle::new(Some("a"));
        assert_eq!(s.offer("a"), None, "unchanged");
        assert_eq!(s.offer("b"), None, "seen once");
        assert!(s.is_pending());
        assert_eq!(s.offer("b"), Some("b"));
        assert_eq!(s.applied(), Some(&"b"));
        assert_eq!(s.offer("b"), None, "already in force");
        assert!(!s.is_pending());
    }

    #[test]
    fn a_half_written_read_in_between_delays_the_change() {
        let mut s = Settle::new(Some(1));
        assert_eq!(s.offer(2), None);
        assert_eq!(s.offer(3), None, "differs from the candidate: becomes the candidate");
        assert_eq!(s.offer(3), Some(3));
        // Going back to the old value needs two reads too.
        assert_eq!(s.offer(1), None);
        assert_eq!(s.offer(1), Some(1));
    }

    #[test]
    fn reading_the_applied_value_again_cancels_a_candidate() {
        let mut s = Settle::new(Some(1));
        assert_eq!(s.offer(2), None);
        assert_eq!(s.offer(1), None);
        assert!(!s.is_pending());
        assert_eq!(s.offer(2), None, "a new candidate again, not applied");
    }

    #[test]
    fn after_forget_the_same_value_is_new_again() {
        let mut s = Settle::new(Some("x"));
        assert!(s.forget());
        assert!(!s.forget(), "nothing in force any more");
        assert_eq!(s.offer("x"), None);
        assert_eq!(s.offer("x"), Some("x"));
        let mut fresh: Settle<&str> = Settle::default();
        assert_eq!((fresh.offer("y"), fresh.offer("y")), (None, Some("y")));
    }
}
