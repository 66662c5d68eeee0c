//! `dockroute-helper`: the privileged end on the Mac (or Linux desktop).

mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dockroute-helper",
    version,
    about = "Dockroute privileged helper: TUN device, routes and the host end of the tunnel"
)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host end in the foreground until SIGTERM or SIGINT.
    Run {
        /// Config file (mac-docker-connector's format: addr, port, mtu, host, route, ...).
        #[arg(long, short)]
        config: PathBuf,
        /// TUN device name (Linux; macOS picks the next free utunN).
        #[arg(long)]
        tun_name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_engine::logging::init(cli.log_json);
    let result = match cli.command {
        Command::Run { config, tun_name } => run::run(&config, tun_name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
