//! Sliding anti-replay window over 64-bit frame counters (the scheme of RFC 6479).

const WORDS: usize = 32;
const BITS: u64 = (WORDS * 64) as u64;

/// Accepts each counter at most once, and nothing older than the window behind the newest.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    /// Highest counter accepted so far.
    top: Option<u64>,
    bitmap: [u64; WORDS],
}

impl ReplayWindow {
    /// Returns true and records `counter` if it was not seen and is inside the window.
    pub fn accept(&mut self, counter: u64) -> bool {
        match self.top {
            None => {
                self.bitmap = [0; WORDS];
                self.top = Some(counter);
            }
            Some(top) if counter > top => {
                // Clear the words the window slides over; they belonged to old counters.
                let (old_word, new_word) = (top / 64, counter / 64);
                for i in 1..=(new_word - old_word).min(WORDS as u64) {
                    self.bitmap[((old_word + i) % WORDS as u64) as usize] = 0;
                }
                self.top = Some(counter);
            }
            Some(top) => {
                // One word of slack keeps every accepted counter's word inside the bitmap.
                if top - counter >= BITS - 64 {
                    return false;
                }
            }
        }
        let word = ((counter / 64) % WORDS as u64) as usize;
        let bit = 1u64 << (counter % 64);
        if self.bitmap[word] & bit != 0 {
            return false;
        }
        self.bitmap[word] |= bit;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_is_accepted_once() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(0));
        assert!(!w.accept(0));
        assert!(w.accept(5));
        assert!(w.accept(3), "out of order inside the window is fine");
        assert!(!w.accept(3));
        assert!(!w.accept(5));
    }

    #[test]
    fn counters_too_far_behind_are_rejected() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(10_000));
        assert!(!w.accept(10_000 - BITS));
        assert!(w.accept(10_000 - 100));
    }

    #[test]
    fn a_big_jump_forgets_old_bits() {
        let mut w = ReplayWindow::default();
        for c in 0..200 {
            assert!(w.accept(c));
        }
        assert!(w.accept(1_000_000));
        // Same bitmap slot as counter 64 had, but a different counter: must be accepted.
        assert!(w.accept(1_000_000 - 64 * 3));
        assert!(!w.accept(1_000_000 - 64 * 3));
    }

    proptest::proptest! {
        #[test]
        fn matches_a_naive_model(counters in proptest::collection::vec(0u64..5000, 0..400)) {
            let mut w = ReplayWindow::default();
            let mut seen = std::collections::HashSet::new();
            let mut max: Option<u64> = None;
            for c in counters {
                let too_old = max.is_some_and(|m| m >= c && m - c >= BITS - 64);
                let expect = !too_old && !seen.contains(&c);
                proptest::prop_assert_eq!(w.accept(c), expect, "counter {}", c);
                if expect {
                    seen.insert(c);
                    max = Some(max.map_or(c, |m| m.max(c)));
                }
            }
        }
    }
}
