//! The guest's command line, one struct for both sides: the controller renders it into the
//! container's `Cmd`, `dockroute-guest` parses it. A flag renamed on one side cannot silently
//! stop matching the other.

use std::path::PathBuf;

use clap::Parser;

use crate::{TransportMode, DEFAULT_PORT, GATEWAY_NAME_IN_VM, HOST_NAME_IN_VM};

/// `dockroute-guest`: the tunnel end inside the Docker VM.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "dockroute-guest",
    version,
    about = "Dockroute guest: connects to the helper and forwards between the tunnel and the VM's networks"
)]
pub struct GuestArgs {
    /// The helper's UDP endpoint; the name is resolved again before every reconnect.
    #[arg(long, default_value_t = format!("{HOST_NAME_IN_VM}:{DEFAULT_PORT}"))]
    pub server: String,
    /// Tried when `--server` does not resolve.
    #[arg(long, default_value_t = format!("{GATEWAY_NAME_IN_VM}:{DEFAULT_PORT}"))]
    pub fallback_server: String,
    /// The shared secret, as written by the helper (must not be readable by others).
    #[arg(long)]
    pub secret_file: PathBuf,
    /// Name of the TUN device to create.
    #[arg(long, default_value = "dockroute0")]
    pub tun_name: String,
    /// Internal networks, subnet pairs and the routes teammates may reach, written by the
    /// controller (`internal CIDR`, `iptables A+B`, `expose CIDR` lines); re-read when it changes.
    #[arg(long)]
    pub rules_file: Option<PathBuf>,
    /// Leave the VM's firewall alone (a VM without Docker, or rules managed by hand).
    #[arg(long)]
    pub no_firewall: bool,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// UDP, TCP, or UDP with TCP when UDP handshakes go unanswered (the helper's `transport`).
    #[arg(long, value_enum, default_value_t = TransportMode::Auto)]
    pub transport: TransportMode,
}

impl GuestArgs {
    /// Defaults for everything but the secret file, as the guest would parse them.
    pub fn new(secret_file: impl Into<PathBuf>) -> GuestArgs {
        let secret_file = secret_file.into();
        GuestArgs::parse_from([
            "dockroute-guest".to_string(),
            format!("--secret-file={}", secret_file.to_string_lossy()),
        ])
    }

    /// The helper on `port` under Docker Desktop's names for the host.
    pub fn with_port(mut self, port: u16) -> GuestArgs {
        self.server = format!("{HOST_NAME_IN_VM}:{port}");
        self.fallback_server = format!("{GATEWAY_NAME_IN_VM}:{port}");
        self
    }

    /// The arguments (without the program name) that parse back to `self`. Each value is
    /// joined to its option (`--tun-name=X`): a separate value that starts with `-` would be
    /// read as an option of its own.
    pub fn to_args(&self) -> Vec<String> {
        let mut a = vec![format!("--server={}", self.server), format!("--fallback-server={}", self.fallback_server)];
        a.push(format!("--secret-file={}", self.secret_file.to_string_lossy()));
        a.push(format!("--tun-name={}", self.tun_name));
        if let Some(r) = &self.rules_file {
            a.push(format!("--rules-file={}", r.to_string_lossy()));
        }
        if self.no_firewall {
            a.push("--no-firewall".into());
        }
        if self.log_json {
            a.push("--log-json".into());
        }
        if self.transport != TransportMode::Auto {
            a.push(format!("--transport={}", self.transport));
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[String]) -> GuestArgs {
        GuestArgs::try_parse_from(std::iter::once("dockroute-guest".to_string()).chain(args.iter().cloned())).unwrap()
    }

    #[test]
    fn rendered_arguments_parse_back_to_the_same_struct() {
        let plain = GuestArgs::new("/etc/dockroute/secret");
        assert_eq!(plain.server, "host.docker.internal:2511");
        assert_eq!(plain.fallback_server, "gateway.docker.internal:2511");
        assert_eq!(parse(&plain.to_args()), plain);
        let full = GuestArgs {
            rules_file: Some("/etc/dockroute/rules".into()),
            no_firewall: true,
            log_json: true,
            tun_name: "dr1".into(),
            transport: TransportMode::Tcp,
            ..GuestArgs::new("/x y/secret").with_port(2600)
        };
        assert_eq!(full.server, "host.docker.internal:2600");
        assert_eq!(parse(&full.to_args()), full);
        assert_eq!(plain.transport, TransportMode::Auto, "auto unless told");
        let udp = GuestArgs { transport: TransportMode::Udp, ..plain.clone() };
        assert_eq!(parse(&udp.to_args()), udp);
        assert!(!plain.to_args().iter().any(|a| a.starts_with("--transport")), "the default is not spelled out");
    }

    /// Found by the `guest_args` fuzz target: `--secret-file=--helpecret` parsed, and rendered as
    /// `--secret-file --helpecret` it no longer did (clap took the value for an option).
    #[test]
    fn values_that_start_with_dashes_render_as_values_not_options() {
        let dashed = GuestArgs {
            server: "-h:2511".into(),
            tun_name: "--no-firewall".into(),
            rules_file: Some("--help".into()),
            ..GuestArgs::new("--helpecret")
        };
        assert_eq!(parse(&dashed.to_args()), dashed);
        assert!(!dashed.no_firewall);
        let from_fuzzer = ["--secret-file=--helpecret", "--tun-name=dr1", "--server=198.18.0.e1:2600"];
        let parsed = parse(&from_fuzzer.map(String::from));
        assert_eq!(parse(&parsed.to_args()), parsed);
    }

    #[test]
    fn the_secret_file_is_required() {
        assert!(GuestArgs::try_parse_from(["dockroute-guest"]).is_err());
    }
}
