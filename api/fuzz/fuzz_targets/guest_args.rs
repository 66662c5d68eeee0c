//! Any command line for `dockroute-guest` (the input split at NUL bytes into arguments, UTF-8
//! only: the controller renders them into Docker's JSON `Cmd`): whatever the guest's parser
//! accepts, `to_args()` renders into arguments that parse back to the same `GuestArgs`, and
//! rendering that again gives the same arguments. The controller builds the guest's command
//! with `to_args()`, so a value it cannot carry would silently start a different guest.
#![no_main]

use std::cell::RefCell;

use clap::{Command, CommandFactory, FromArgMatches};
use dockroute_api::GuestArgs;
use libfuzzer_sys::fuzz_target;

const PROGRAM: &str = "dockroute-guest";

/// The guest's parser, built once: `GuestArgs::parse()` is this command's matches, read into
/// the struct (building and checking the command per input would be most of the time spent).
thread_local! {
    static COMMAND: RefCell<Command> = RefCell::new(GuestArgs::command());
}

fn parse<I: Into<String>>(args: impl IntoIterator<Item = I>) -> Result<GuestArgs, clap::Error> {
    let args = std::iter::once(PROGRAM.to_string()).chain(args.into_iter().map(Into::into));
    let matches = COMMAND.with_borrow_mut(|c| c.try_get_matches_from_mut(args))?;
    GuestArgs::from_arg_matches(&matches)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse(text.split('\0')) else { return };
    let rendered = parsed.to_args();
    let back = parse(rendered.iter().cloned())
        .unwrap_or_else(|e| panic!("{parsed:?} rendered as {rendered:?} does not parse back: {e}"));
    assert_eq!(back, parsed, "rendered as {rendered:?}");
    assert_eq!(back.to_args(), rendered);
});
