//! Which path the tunnel's messages take between the guest and the helper: UDP (the normal
//! one), or TCP frames on the same port when UDP from the VM to the host is broken (Docker
//! Desktop releases have broken it; security software on a Mac can block it).

use serde::{Deserialize, Serialize};

/// The helper's config key `transport` and the guest's `--transport`: what may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    /// UDP, and TCP when UDP handshakes go unanswered (moving back when UDP answers again).
    #[default]
    Auto,
    /// UDP only (the helper does not listen on TCP).
    Udp,
    /// TCP only.
    Tcp,
}

impl TransportMode {
    pub fn name(self) -> &'static str {
        match self {
            TransportMode::Auto => "auto",
            TransportMode::Udp => "udp",
            TransportMode::Tcp => "tcp",
        }
    }

    /// Whether the helper listens on TCP in this mode.
    pub fn allows_tcp(self) -> bool {
        self != TransportMode::Udp
    }
}

impl std::fmt::Display for TransportMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TransportMode {
    type Err = String;
    fn from_str(s: &str) -> Result<TransportMode, String> {
        match s {
            "auto" => Ok(TransportMode::Auto),
            "udp" => Ok(TransportMode::Udp),
            "tcp" => Ok(TransportMode::Tcp),
            _ => Err(format!("{s:?}: expected auto, udp or tcp")),
        }
    }
}

/// The path a live session uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_from_and_print_as_their_config_words() {
        for m in [TransportMode::Auto, TransportMode::Udp, TransportMode::Tcp] {
            assert_eq!(m.name().parse::<TransportMode>(), Ok(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert!("UDP".parse::<TransportMode>().is_err());
        assert!("".parse::<TransportMode>().is_err());
        assert_eq!(TransportMode::default(), TransportMode::Auto);
        assert!(TransportMode::Auto.allows_tcp() && TransportMode::Tcp.allows_tcp());
        assert!(!TransportMode::Udp.allows_tcp());
        assert_eq!(serde_json::to_string(&Transport::Tcp).unwrap(), "\"tcp\"");
    }
}
