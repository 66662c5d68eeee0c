//! The relays' side of their loopback UDP socket, in batches: many datagrams per receive call
//! and runs of equal-size messages in one send, where the platform can (`linux.rs`: `recvmmsg`
//! with UDP GRO, `sendmsg` with UDP GSO through quinn-udp); elsewhere one datagram per call
//! (`portable.rs`). Either way each datagram is still seen alone, in order.
//!
//! Why: the core sends its frames to a relay as GSO batches and reads with GRO; a relay that
//! takes them one `recv` and one `send` each spent a syscall per packet on both ends of the
//! TCP path, on top of the TCP stream's own.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{Receiver, Sender};

#[cfg(not(target_os = "linux"))]
mod portable;
#[cfg(not(target_os = "linux"))]
pub use portable::{Receiver, Sender};

/// The largest run of messages one send carries (the kernel's GSO limit is 64 segments and
/// 64 KiB).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const MAX_SEND_BYTES: usize = 65000;

/// Where the next message goes in a send batch: the kernel cuts a GSO buffer into equal
/// segments, only the last may be shorter. Pure, so both platforms' rules are one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
enum Fit {
    /// Append it to the batch.
    Append,
    /// Send the batch first, then start a new one with it.
    FlushFirst,
}

/// Whether a message of `len` bytes joins a batch of `count` messages of `size` bytes
/// (`bytes` so far), given at most `max_segments` per send. An empty message never batches
/// (a zero-length segment means nothing to GSO): it goes alone.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn fit(count: usize, size: usize, bytes: usize, len: usize, max_segments: usize) -> Fit {
    if count == 0 {
        return Fit::Append;
    }
    if size == 0 || len == 0 || len > size || count >= max_segments || bytes + len > MAX_SEND_BYTES {
        Fit::FlushFirst
    } else {
        Fit::Append
    }
}

/// Whether a batch must go out right after appending a message of `len` to runs of `size`:
/// a shorter (or empty) one ends it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn ends_batch(size: usize, len: usize) -> bool {
    len < size || len == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sizes_batch_and_a_shorter_one_ends_the_run() {
        assert_eq!(fit(0, 0, 0, 1420, 64), Fit::Append);
        assert_eq!(fit(1, 1420, 1420, 1420, 64), Fit::Append);
        assert_eq!(fit(3, 1420, 4260, 100, 64), Fit::Append);
        assert!(ends_batch(1420, 100) && !ends_batch(1420, 1420));
        assert_eq!(fit(1, 100, 100, 1420, 64), Fit::FlushFirst, "a longer one cannot follow");
    }

    #[test]
    fn limits_of_count_bytes_and_empty_messages_start_a_new_batch() {
        assert_eq!(fit(64, 1000, 64_000, 1000, 64), Fit::FlushFirst);
        assert_eq!(fit(1, 1000, 1000, 1000, 1), Fit::FlushFirst, "no GSO: one per send");
        assert_eq!(fit(45, 1420, 63_900, 1420, 64), Fit::FlushFirst, "past 65000 bytes");
        assert_eq!(fit(1, 36, 36, 0, 64), Fit::FlushFirst, "an empty message goes alone");
        assert_eq!(fit(1, 0, 0, 36, 64), Fit::FlushFirst, "and nothing joins it");
        assert!(ends_batch(0, 0));
    }
}
