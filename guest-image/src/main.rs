//! `dockroute-guest`: the tunnel end inside the Docker VM (or any Linux box behind the host).

use std::process::ExitCode;

use clap::Parser;
use dockroute_api::GuestArgs;
use dockroute_guest::agent;

fn main() -> ExitCode {
    let args = GuestArgs::parse();
    dockroute_stdx::logging::init(args.log_json);
    match agent::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
