//! `dockroute-guest`: the tunnel end inside the Docker VM (or any Linux box behind the host).

use std::process::ExitCode;

use clap::Parser;
use dockroute_guest::agent::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_stdx::logging::init(cli.log_json);
    match agent::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
