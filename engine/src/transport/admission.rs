//! Which TCP connections the helper keeps, without I/O. A connection costs a task and two
//! sockets, so there are at most `max`; one that has not carried a verified handshake (the
//! host's Welcome) within `deadline` is closed; and when all places are taken, the oldest
//! connection that is still unauthenticated makes room, so a flood of idle connections delays
//! the real guest by one deadline at most and never locks it out.

use std::time::{Duration, Instant};

/// What to do with a connection that just arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Serve it under this id.
    Accept { id: u64 },
    /// Serve it under `id`, after closing connection `evict`.
    AcceptEvicting { id: u64, evict: u64 },
    /// Close it: every place is held by an authenticated connection.
    Refuse,
}

#[derive(Debug, Clone)]
struct Conn {
    id: u64,
    since: Instant,
    authenticated: bool,
}

#[derive(Debug, Clone)]
pub struct Admission {
    max: usize,
    deadline: Duration,
    next_id: u64,
    conns: Vec<Conn>,
}

impl Admission {
    pub fn new(max: usize, deadline: Duration) -> Admission {
        Admission { max: max.max(1), deadline, next_id: 1, conns: Vec::new() }
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let mut evict = None;
        if self.conns.len() >= self.max {
            // Oldest first: `conns` is in arrival order.
            let Some(i) = self.conns.iter().position(|c| !c.authenticated) else { return Admit::Refuse };
            evict = Some(self.conns.remove(i).id);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.push(Conn { id, since: now, authenticated: false });
        match evict {
            Some(evict) => Admit::AcceptEvicting { id, evict },
            None => Admit::Accept { id },
        }
    }

    /// The host answered a verified Auth over connection `id`.
    pub fn authenticated(&mut self, id: u64) {
        if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
            c.authenticated = true;
        }
    }

    /// Connection `id` ended (either side closed it, or it was evicted or expired).
    pub fn closed(&mut self, id: u64) {
        self.conns.retain(|c| c.id != id);
    }

    /// Whether connection `id` is past its handshake deadline at `now` without a verified
    /// handshake (the caller closes it).
    pub fn expired(&self, id: u64, now: Instant) -> bool {
        self.conns
            .iter()
            .find(|c| c.id == id)
            .is_some_and(|c| !c.authenticated && now.saturating_duration_since(c.since) >= self.deadline)
    }

    /// When connection `id` expires unless it authenticates first.
    pub fn deadline_of(&self, id: u64) -> Option<Instant> {
        self.conns.iter().find(|c| c.id == id && !c.authenticated).map(|c| c.since + self.deadline)
    }

    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn connections_are_bounded_and_the_oldest_unauthenticated_makes_room() {
        let t0 = Instant::now();
        let mut a = Admission::new(3, S(5));
        assert_eq!(a.admit(t0), Admit::Accept { id: 1 });
        assert_eq!(a.admit(t0), Admit::Accept { id: 2 });
        assert_eq!(a.admit(t0), Admit::Accept { id: 3 });
        a.authenticated(1);
        assert_eq!(a.admit(t0), Admit::AcceptEvicting { id: 4, evict: 2 }, "1 is the guest: 2 goes");
        assert_eq!(a.admit(t0), Admit::AcceptEvicting { id: 5, evict: 3 });
        assert_eq!(a.len(), 3);
        a.authenticated(4);
        a.authenticated(5);
        assert_eq!(a.admit(t0), Admit::Refuse, "all places hold verified guests");
        a.closed(4);
        assert_eq!(a.admit(t0), Admit::Accept { id: 6 });
    }

    #[test]
    fn an_unauthenticated_connection_expires_at_its_deadline_an_authenticated_one_never() {
        let t0 = Instant::now();
        let mut a = Admission::new(8, S(5));
        let Admit::Accept { id: idle } = a.admit(t0) else { panic!() };
        let Admit::Accept { id: guest } = a.admit(t0 + S(1)) else { panic!() };
        a.authenticated(guest);
        assert_eq!(a.deadline_of(idle), Some(t0 + S(5)));
        assert_eq!(a.deadline_of(guest), None);
        assert!(!a.expired(idle, t0 + S(4)));
        assert!(a.expired(idle, t0 + S(5)));
        assert!(!a.expired(guest, t0 + S(3600)));
        a.closed(idle);
        assert!(!a.expired(idle, t0 + S(6)), "a closed connection is forgotten");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn a_flood_of_connections_cannot_keep_the_guest_out() {
        let t0 = Instant::now();
        let mut a = Admission::new(4, S(5));
        for i in 0..1000 {
            assert!(matches!(
                a.admit(t0 + Duration::from_millis(i)),
                Admit::Accept { .. } | Admit::AcceptEvicting { .. }
            ));
        }
        let Admit::AcceptEvicting { id: guest, .. } = a.admit(t0 + S(2)) else { panic!("the guest gets in") };
        a.authenticated(guest);
        for i in 0..1000 {
            let d = a.admit(t0 + S(3) + Duration::from_millis(i));
            assert!(!matches!(d, Admit::AcceptEvicting { evict, .. } if evict == guest), "the guest is never evicted");
        }
        assert_eq!(a.len(), 4);
    }
}
