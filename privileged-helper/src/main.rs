//! `dockroute-helper`: the privileged end on the Mac (or Linux desktop).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dockroute_helper::https::cli::CaCommand;
use dockroute_helper::share::cli::{self as share_cli, ShareCommand};
use dockroute_helper::{install, run};

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
    /// Run the host end and the local API in the foreground until SIGTERM or SIGINT.
    Run {
        /// Config file (mac-docker-connector's format: addr, port, mtu, host, route, ...).
        #[arg(long, short)]
        config: PathBuf,
        /// TUN device name (Linux; macOS picks the next free utunN).
        #[arg(long)]
        tun_name: Option<String>,
        /// API socket path (overrides `api-socket` in the config).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// macOS: the app whose code may use the API besides root (default: the app bundle the
        /// helper runs from; `install` passes the one it was installed for).
        #[arg(long)]
        app_bundle: Option<PathBuf>,
    },
    /// Print the running helper's status. Exits 0 when the helper answered.
    Status {
        #[arg(long, default_value = dockroute_api::DEFAULT_API_SOCKET)]
        socket: PathBuf,
        /// Print the status as JSON (the API's own format).
        #[arg(long)]
        json: bool,
    },
    /// Share the exposed routes with teammates over WireGuard (needs `expose` in the config).
    Share {
        #[arg(long, global = true, default_value = dockroute_api::DEFAULT_API_SOCKET)]
        socket: PathBuf,
        #[command(subcommand)]
        op: ShareOp,
    },
    /// The local CA behind HTTPS for container names (it can sign only those names).
    Ca {
        /// The helper's config (the CA's files live beside it).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        op: CaOp,
    },
    /// Install the helper as a system service (launchd on macOS, systemd on Linux).
    Install {
        /// Config file the service runs with (created with defaults if missing);
        /// default /etc/dockroute/dockroute.conf, on macOS /Library/Application Support/Dockroute/.
        #[arg(long)]
        config: Option<PathBuf>,
        /// macOS: the app whose code may use the API besides root (default: the app bundle this
        /// helper is in). The helper itself is copied to /Library/PrivilegedHelperTools.
        #[arg(long)]
        app_bundle: Option<PathBuf>,
    },
    /// Print the launchd plist the app bundle ships for SMAppService registration
    /// (Contents/Library/LaunchDaemons/); used when packaging the app.
    #[command(hide = true)]
    PrintSmappservicePlist,
    /// Print the systemd unit the Linux package ships (packaging/linux/); used when packaging.
    #[command(hide = true)]
    PrintSystemdUnit,
    /// Stop and remove the service and everything install made.
    Uninstall {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also remove the config, the secret and the logs.
        #[arg(long)]
        purge: bool,
    },
}

#[derive(Subcommand)]
enum CaOp {
    /// Print the CA certificate (PEM); what it may sign and where it is trusted go to stderr.
    Show,
    /// Print where the CA certificate is.
    Path,
    /// Add the CA to the system's trust store (and, with --nss, a browser's NSS database).
    Trust {
        /// An NSS database directory (Chromium: ~/.pki/nssdb; Firefox: the profile directory).
        #[arg(long)]
        nss: Option<PathBuf>,
        /// Leave the system store alone (only --nss).
        #[arg(long)]
        no_system: bool,
    },
    /// Remove the CA from every store `trust` added it to.
    Untrust,
}

#[derive(Subcommand)]
enum ShareOp {
    /// Make a teammate's key pair and print their WireGuard config (wg-quick format) once.
    Add {
        name: String,
        /// Their address in the link subnet (default: the config's `token NAME IP`, else the next free).
        #[arg(long)]
        ip: Option<std::net::Ipv4Addr>,
        /// HOST:PORT your teammate reaches this machine at (default: the `expose` address).
        #[arg(long)]
        endpoint: Option<String>,
        /// Print a QR code for the WireGuard app instead of the text.
        #[arg(long)]
        qr: bool,
        /// Replace an existing teammate's key: their old config stops working at once.
        #[arg(long)]
        rotate: bool,
    },
    /// Teammates with address, last handshake and traffic.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Cut a teammate off and forget their key.
    Revoke { name: String },
    /// Let teammates reach the containers of a Docker network (by name or id, as the app
    /// reported it), or with --off no longer.
    Expose {
        network: String,
        #[arg(long)]
        off: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    dockroute_stdx::logging::init(cli.log_json);
    let result = match cli.command {
        Command::Run { config, tun_name, socket, app_bundle } => run::run(&config, tun_name, socket, app_bundle),
        Command::Status { socket, json } => status(&socket, json),
        Command::Share { socket, op } => share_cli::run(
            &socket,
            match op {
                ShareOp::Add { name, ip, endpoint, qr, rotate } => ShareCommand::Add { name, ip, endpoint, qr, rotate },
                ShareOp::List { json } => ShareCommand::List { json },
                ShareOp::Revoke { name } => ShareCommand::Revoke { name },
                ShareOp::Expose { network, off } => ShareCommand::Expose { network, exposed: !off },
            },
        ),
        Command::Ca { config, op } => {
            let platform = if cfg!(target_os = "macos") { install::Platform::MacOs } else { install::Platform::Linux };
            let config = config.unwrap_or_else(|| platform.default_config_path().to_path_buf());
            dockroute_helper::https::cli::run(
                &config,
                match op {
                    CaOp::Show => CaCommand::Show,
                    CaOp::Path => CaCommand::Path,
                    CaOp::Trust { nss, no_system } => CaCommand::Trust { nss, system: !no_system },
                    CaOp::Untrust => CaCommand::Untrust,
                },
            )
        }
        Command::Install { config, app_bundle } => service(config, app_bundle, false, install::install),
        Command::Uninstall { config, purge } => service(config, None, purge, install::uninstall),
        Command::PrintSmappservicePlist => {
            print!("{}", install::render_smappservice_plist());
            Ok(())
        }
        Command::PrintSystemdUnit => {
            print!("{}", install::render_packaged_systemd_unit());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dockroute-helper: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn status(socket: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let status = rt.block_on(async {
        let c = dockroute_api::Client::connect(socket, "dockroute-helper status").await?;
        c.status().await
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", dockroute_api::render_status(&status));
    }
    Ok(())
}

type ServiceOp = fn(&install::InstallOptions, &mut dyn install::System) -> anyhow::Result<install::Report>;

fn service(config: Option<PathBuf>, app_bundle: Option<PathBuf>, purge: bool, op: ServiceOp) -> anyhow::Result<()> {
    let helper_path = std::env::current_exe()?;
    let platform = if cfg!(target_os = "macos") { install::Platform::MacOs } else { install::Platform::Linux };
    // Only macOS has app bundles and code signatures (the same rule `run` applies).
    let app_bundle = dockroute_helper::codesign::app_bundle(app_bundle);
    let opts = install::InstallOptions {
        root: PathBuf::from("/"),
        platform,
        spec: install::ServiceSpec {
            helper_path,
            config_path: config.unwrap_or_else(|| platform.default_config_path().to_path_buf()),
            app_bundle,
        },
        purge,
    };
    let report = op(&opts, &mut install::RealSystem)?;
    for line in report.lines {
        println!("{line}");
    }
    Ok(())
}
