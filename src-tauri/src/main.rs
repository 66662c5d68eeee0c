//! `dockroute`: the app. `--headless` runs the controller without a window (Linux and server
//! users, and the README demo); the menu-bar window comes with the Tauri shell.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dockroute_controller::{Controller, Options};

#[derive(Parser)]
#[command(name = "dockroute", version, about = "Reach every Docker container by its IP address")]
struct Cli {
    /// Run the controller without a window until SIGTERM/SIGINT. The Docker engine is found
    /// like the docker CLI finds it (DOCKER_HOST, DOCKER_CONTEXT, config.json, known sockets).
    #[arg(long)]
    headless: bool,
    /// The helper's API socket.
    #[arg(long, default_value = dockroute_engine::config::DEFAULT_API_SOCKET)]
    helper_socket: PathBuf,
    /// The helper's UDP port, as the guest should reach it.
    #[arg(long, default_value_t = 2511)]
    port: u16,
    /// Address the guest should use for host.docker.internal (for engines without Docker
    /// Desktop's name, e.g. a plain dockerd, and for tests).
    #[arg(long)]
    host_address: Option<IpAddr>,
    /// Guest image tarball (`docker save` output) loaded when the image is missing.
    #[arg(long)]
    guest_image_tar: Option<PathBuf>,
    /// Guest image reference.
    #[arg(long, default_value_t = dockroute_controller::guest::image_ref())]
    guest_image: String,
    /// Let two container subnets reach each other (seed syntax `A+B`, network addresses).
    #[arg(long = "iptables", value_name = "A+B")]
    pairs: Vec<String>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_engine::logging::init(cli.log_json);
    if !cli.headless {
        eprintln!("dockroute: the menu-bar app is not built yet; run with --headless");
        return ExitCode::from(2);
    }
    let opts = Options {
        helper_socket: cli.helper_socket,
        port: cli.port,
        host_address: cli.host_address,
        guest_image: cli.guest_image,
        guest_tarball: cli.guest_image_tar,
        pairs: cli.pairs,
    };
    match headless(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockroute: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn headless(opts: Options) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        // Handlers first: a SIGTERM while connecting must still end in a clean teardown.
        let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        };
        tokio::pin!(shutdown);
        let controller = tokio::select! {
            c = Controller::connect(opts) => c?,
            () = &mut shutdown => return Ok(()),
        };
        controller.run(shutdown).await
    })
}
