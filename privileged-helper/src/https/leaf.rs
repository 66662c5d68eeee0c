//! Which leaf certificate to serve for a name, and when to make a new one (sans-IO: the
//! caller passes `now` and does the signing).
//!
//! Leaves live `LEAF_LIFETIME` (7 days) and are replaced once two thirds of that has passed,
//! so a client never sees one about to expire, and a leaf key (kept only in memory) that leaked
//! anyway is useless within a week. A week, not a day: a machine that sleeps over a weekend
//! still serves a valid leaf on Monday, and the renewal margin (2⅓ days) outlasts any clock
//! skew between the Mac and a VM. The cache is bounded (`MAX_LEAVES`): names come from SNI,
//! which anyone who reaches the front chooses; the oldest leaf makes room.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub const LEAF_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// More than all the names one machine routes; small enough that a flood of made-up names
/// costs a bounded amount of memory.
pub const MAX_LEAVES: usize = 1024;

/// When a leaf issued at `issued` that expires at `not_after` is replaced: at two thirds of
/// its life.
pub fn renew_at(issued: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(issued).unwrap_or_default();
    issued + life * 2 / 3
}

/// What the cache says about a name.
#[derive(Debug, PartialEq, Eq)]
pub enum Need<'a, L> {
    /// Serve this one.
    Serve(&'a L),
    /// Make one (none yet, or the one held is due for renewal or its clock went back).
    Issue,
}

struct Entry<L> {
    leaf: L,
    issued: SystemTime,
    renew_at: SystemTime,
}

/// Leaves by name; `L` is whatever the driver serves (a rustls `CertifiedKey`).
pub struct LeafCache<L> {
    leaves: HashMap<String, Entry<L>>,
    max: usize,
}

impl<L> LeafCache<L> {
    pub fn new(max: usize) -> LeafCache<L> {
        LeafCache { leaves: HashMap::new(), max: max.max(1) }
    }

    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    pub fn need(&self, name: &str, now: SystemTime) -> Need<'_, L> {
        match self.leaves.get(name) {
            // A clock that jumped back before the issue time: the leaf may not be valid yet.
            Some(e) if now >= e.issued && now < e.renew_at => Need::Serve(&e.leaf),
            _ => Need::Issue,
        }
    }

    /// Keeps a leaf just issued at `now`, valid until `not_after`; the oldest leaf makes room.
    pub fn insert(&mut self, name: &str, leaf: L, now: SystemTime, not_after: SystemTime) {
        if !self.leaves.contains_key(name) && self.leaves.len() >= self.max {
            if let Some(oldest) = self.leaves.iter().min_by_key(|(_, e)| e.issued).map(|(n, _)| n.clone()) {
                self.leaves.remove(&oldest);
            }
        }
        self.leaves.insert(name.to_string(), Entry { leaf, issued: now, renew_at: renew_at(now, not_after) });
    }

    /// Forgets every leaf (the CA changed).
    pub fn clear(&mut self) {
        self.leaves.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn t(days_times_3: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + DAY * days_times_3 as u32 / 3
    }

    #[test]
    fn a_leaf_is_renewed_at_two_thirds_of_its_life_not_before() {
        let issued = t(0);
        assert_eq!(renew_at(issued, issued + LEAF_LIFETIME), issued + DAY * 14 / 3);
        let mut cache = LeafCache::new(8);
        assert_eq!(cache.need("web.docker", issued), Need::Issue, "none yet");
        cache.insert("web.docker", "leaf-1", issued, issued + LEAF_LIFETIME);
        assert_eq!(cache.need("web.docker", issued), Need::Serve(&"leaf-1"));
        assert_eq!(cache.need("web.docker", t(13)), Need::Serve(&"leaf-1"), "4⅓ days in");
        assert_eq!(cache.need("web.docker", t(14)), Need::Issue, "4⅔ days in: two thirds of 7");
        assert_eq!(cache.need("api.docker", issued), Need::Issue, "another name");
        cache.insert("web.docker", "leaf-2", t(14), t(14) + LEAF_LIFETIME);
        assert_eq!(cache.need("web.docker", t(15)), Need::Serve(&"leaf-2"));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_leaf_cut_short_by_the_cas_end_renews_at_two_thirds_of_what_it_has() {
        let issued = t(0);
        assert_eq!(renew_at(issued, issued + DAY * 3), issued + DAY * 2);
        assert_eq!(renew_at(issued, issued), issued, "already over: renew at once");
    }

    #[test]
    fn a_clock_that_went_back_gets_a_new_leaf() {
        let mut cache = LeafCache::new(8);
        cache.insert("web.docker", 1, t(3), t(3) + LEAF_LIFETIME);
        assert_eq!(cache.need("web.docker", t(2)), Need::Issue);
    }

    #[test]
    fn a_flood_of_made_up_names_keeps_the_cache_bounded_oldest_out() {
        let mut cache = LeafCache::new(3);
        for (i, name) in ["a.docker", "b.docker", "c.docker", "d.docker"].iter().enumerate() {
            cache.insert(name, i, t(i as u64), t(i as u64) + LEAF_LIFETIME);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.need("a.docker", t(4)), Need::Issue, "the oldest made room");
        assert_eq!(cache.need("d.docker", t(4)), Need::Serve(&3));
        cache.insert("d.docker", 9, t(5), t(5) + LEAF_LIFETIME);
        assert_eq!((cache.len(), cache.need("b.docker", t(5))), (3, Need::Serve(&1)), "a renewal evicts nothing");
    }
}
