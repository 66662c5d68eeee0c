//! `dockroute-guest`: the tunnel end inside the Docker VM (or any Linux box behind the host).

mod agent;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "dockroute-guest",
    version,
    about = "Dockroute guest: connects to the helper and forwards between the tunnel and the VM's networks"
)]
pub struct Cli {
    /// The helper's UDP endpoint; the name is resolved again before every reconnect.
    #[arg(long, default_value = "host.docker.internal:2511")]
    server: String,
    /// Tried when `--server` does not resolve.
    #[arg(long, default_value = "gateway.docker.internal:2511")]
    fallback_server: String,
    /// The shared secret, as written by the helper (must not be readable by others).
    #[arg(long)]
    secret_file: PathBuf,
    /// Name of the TUN device to create.
    #[arg(long, default_value = "dockroute0")]
    tun_name: String,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_engine::logging::init(cli.log_json);
    match agent::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
