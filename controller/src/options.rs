//! What the controller is started with (the app's command line and keychain).

use std::net::IpAddr;
use std::path::PathBuf;

use dockroute_api::Pair;

#[derive(Clone)]
pub struct Options {
    pub helper_socket: PathBuf,
    /// The helper's UDP port (what the guest connects to).
    pub port: u16,
    /// Pin `host.docker.internal` in the guest to this address.
    pub host_address: Option<IpAddr>,
    pub guest_image: String,
    /// Loaded when the image is missing or of another CPU (`--guest-image-tar`): this file,
    /// whatever the engine's CPU.
    pub guest_tarball: Option<PathBuf>,
    /// Without `guest_tarball`: where to find the tarball for the engine's CPU (the app's
    /// resources, beside its binary); see `guest_image::pick_tarball`.
    pub guest_tarball_dirs: Vec<PathBuf>,
    /// Seed-style `A+B` pairs of subnets that may reach each other.
    pub pairs: Vec<Pair>,
    /// The tunnel secret (the app keeps one in the keychain, so a restarted app finds its
    /// guest still valid). None: a fresh one each time the controller connects.
    pub secret: Option<Vec<u8>>,
    /// Stop the guest while no other container runs, so Docker Desktop's VM may sleep (the
    /// app's preference; `--keep-guest-running` turns it off for servers).
    pub let_docker_sleep: bool,
}

/// By hand, so the secret never reaches a log through `{:?}`.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("helper_socket", &self.helper_socket)
            .field("port", &self.port)
            .field("host_address", &self.host_address)
            .field("guest_image", &self.guest_image)
            .field("guest_tarball", &self.guest_tarball)
            .field("guest_tarball_dirs", &self.guest_tarball_dirs)
            .field("pairs", &self.pairs)
            .field("secret", &self.secret.as_ref().map(|s| format!("<{} bytes>", s.len())))
            .field("let_docker_sleep", &self.let_docker_sleep)
            .finish()
    }
}

/// Checks `A+B` pairs before anything starts: the guest's firewall joins IPv4 networks only,
/// so an IPv6 pair is an error here and not a rules file the guest refuses.
pub fn validate_pairs(pairs: &[Pair]) -> anyhow::Result<()> {
    for p in pairs {
        anyhow::ensure!(
            p.is_ipv4(),
            "--iptables {:?}: expected two IPv4 network addresses joined by +, e.g. 172.0.1.0+172.0.2.0",
            p.to_string()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_must_be_ipv4_and_the_error_names_the_flag_and_the_form() {
        let v4: Pair = "198.19.1.0+198.19.2.0".parse().unwrap();
        assert!(validate_pairs(&[v4]).is_ok());
        assert!(validate_pairs(&[]).is_ok());
        let v6: Pair = "2001:2:1::+2001:2:2::".parse().unwrap();
        let e = validate_pairs(&[v4, v6]).unwrap_err().to_string();
        assert_eq!(
            e,
            "--iptables \"2001:2:1::+2001:2:2::\": expected two IPv4 network addresses joined by +, e.g. 172.0.1.0+172.0.2.0"
        );
    }

    #[test]
    fn the_secret_stays_out_of_debug_output() {
        let o = Options {
            helper_socket: "/run/h.sock".into(),
            port: 2511,
            host_address: None,
            guest_image: "g".into(),
            guest_tarball: None,
            guest_tarball_dirs: vec![],
            pairs: vec!["198.19.1.0+198.19.2.0".parse().unwrap()],
            secret: Some(b"0123456789abcdef-very-secret".to_vec()),
            let_docker_sleep: true,
        };
        let shown = format!("{o:?}");
        assert!(!shown.contains("very-secret") && shown.contains("<28 bytes>"), "{shown}");
    }
}
