//! The Docker-compatible engines on this machine: which one answered (`kind`: recognition and
//! how its VM reaches the Mac, pure), which one Dockroute follows (`choice`, pure), and asking
//! each candidate what it is (`probe`, the I/O).

pub mod choice;
pub mod kind;
pub mod probe;

pub use kind::{engine_version, host_names, recognise, EngineKind, HostNames, HostOs, ORBSTACK_NOTE};
