//! The small pieces every Dockroute crate needs once, each in one place with its own tests
//! (rust-analyzer's `stdx`, wireguard-go's `ratelimiter/`):
//!
//! - `process`: run a command with a deadline, capture its output, name it in errors.
//! - `backoff`: doubling delays with a ceiling.
//! - `settle`: apply a value only after two equal reads (a file caught half-written).
//! - `control`: run a closure on a core another task owns, with a deadline (`Control`, `ask`).
//! - `fs`: write a file atomically (temporary beside it, synced, renamed).
//! - `hex`: lower-case hex.
//! - `logging`: the log format of every binary.
//! - `time`: sleep until a core's optional deadline (tokio's timer); the earlier of two; a UTC date.
//!
//! Architecture invariant: depends on nothing of ours; only `time` and `control` touch an async
//! runtime (tokio's).

pub mod backoff;
pub mod control;
pub mod fs;
pub mod hex;
pub mod logging;
pub mod process;
pub mod settle;
pub mod time;

pub use backoff::Backoff;
pub use process::{Cmd, CmdError};
pub use settle::Settle;
