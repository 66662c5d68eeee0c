//! Logging setup shared by the binaries: `RUST_LOG`-style filter (default `info`), text or
//! JSON lines, to stderr; colours only on a terminal so log files stay greppable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Libraries that log request bodies at trace level (the secret travels in some): capped
/// whatever `RUST_LOG` says.
const CAPPED: [&str; 4] = ["bollard=debug", "hyper=debug", "hyper_util=debug", "h2=debug"];

pub fn init(json: bool) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in CAPPED {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
