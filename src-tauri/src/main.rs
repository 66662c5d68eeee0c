//! `dockroute`: the menu-bar app. `--headless` runs the same supervisor without a window
//! (servers, the README demo).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dockroute_api::Pair;
use dockroute_controller::Options;

#[derive(Parser)]
#[command(name = "dockroute", version, about = "Reach every Docker container by its IP address")]
struct Cli {
    /// Run the controller without a window until SIGTERM/SIGINT. The Docker engine is found
    /// like the docker CLI finds it (DOCKER_HOST, DOCKER_CONTEXT, config.json, known sockets).
    #[arg(long)]
    headless: bool,
    /// The helper's API socket.
    #[arg(long, default_value = dockroute_api::DEFAULT_API_SOCKET)]
    helper_socket: PathBuf,
    /// The helper's UDP port, as the guest should reach it.
    #[arg(long, default_value_t = dockroute_api::DEFAULT_PORT)]
    port: u16,
    /// Address the guest should use for host.docker.internal (for engines without Docker
    /// Desktop's name, e.g. a plain dockerd, and for tests).
    #[arg(long)]
    host_address: Option<IpAddr>,
    /// Guest image tarball (`docker save` output) loaded when the image is missing or of another
    /// CPU. Without it, `dockroute-guest-<version>-<amd64|arm64>.tar` for the engine's CPU is
    /// looked for in the app's resources and beside this binary.
    #[arg(long)]
    guest_image_tar: Option<PathBuf>,
    /// Guest image reference.
    #[arg(long, default_value_t = dockroute_controller::guest::image_ref())]
    guest_image: String,
    /// Let two container subnets reach each other (seed syntax `A+B`, IPv4 network addresses).
    #[arg(long = "iptables", value_name = "A+B")]
    pairs: Vec<Pair>,
    /// Open the dashboard at start instead of starting in the tray only.
    #[arg(long)]
    show_dashboard: bool,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Keep the guest container running while no other container runs (servers). By default
    /// it stops then, so Docker Desktop's VM can sleep, and the first container wakes it.
    #[arg(long)]
    keep_guest_running: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_stdx::logging::init(cli.log_json);
    if let Err(e) = dockroute_controller::validate_pairs(&cli.pairs) {
        eprintln!("dockroute: {e:#}");
        return ExitCode::from(2);
    }
    let opts = Options {
        helper_socket: cli.helper_socket,
        port: cli.port,
        host_address: cli.host_address,
        guest_image: cli.guest_image,
        guest_tarball: cli.guest_image_tar,
        // The app adds its resources (shell.rs); packages put the tarballs beside the binary.
        guest_tarball_dirs: std::env::current_exe().ok().and_then(|e| e.parent().map(Into::into)).into_iter().collect(),
        pairs: cli.pairs,
        secret: None,
        let_docker_sleep: !cli.keep_guest_running,
    };
    let result = if cli.headless {
        dockroute_app::headless::run(opts)
    } else {
        dockroute_app::shell::run(dockroute_app::shell::AppOptions {
            controller: opts,
            show_dashboard: cli.show_dashboard,
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}
