//! The share's state file beside the config (`<config>.share.json`, mode 0600): the helper's
//! own WireGuard key, each teammate's name, address and *public* key (their private key is
//! printed once and never stored), and the Docker networks the app exposed. Written whole to a
//! temporary file and renamed, so a crash leaves the old state or the new one.

use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use boringtun::x25519::{PublicKey, StaticSecret};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A WireGuard key pair: the private half never leaves this process except in a teammate's
/// printed config (theirs) or the state file (ours).
pub struct KeyPair {
    pub private: StaticSecret,
    pub public: PublicKey,
}

impl KeyPair {
    pub fn generate() -> io::Result<KeyPair> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no randomness: {e}")))?;
        Ok(KeyPair::from_private(bytes))
    }

    pub fn from_private(bytes: [u8; 32]) -> KeyPair {
        let private = StaticSecret::from(bytes);
        let public = PublicKey::from(&private);
        KeyPair { private, public }
    }

    pub fn private_base64(&self) -> String {
        B64.encode(self.private.to_bytes())
    }

    pub fn public_base64(&self) -> String {
        B64.encode(self.public.as_bytes())
    }
}

/// A key as WireGuard writes it: 32 bytes in standard base64.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let bytes = B64.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("a key is 32 bytes, this is {}", b.len()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTeammate {
    pub name: String,
    pub address: Ipv4Addr,
    /// Base64.
    pub public_key: String,
}

/// A Docker network the app exposed: by id (never reused), with the subnets it had then (a
/// network reported later under that id with other subnets is not this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedNetwork {
    pub id: String,
    pub name: String,
    pub subnets: Vec<IpNet>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareState {
    /// The helper's static private key, base64.
    pub private_key: String,
    #[serde(default)]
    pub teammates: Vec<StoredTeammate>,
    /// Networks exposed through the API (the app's toggles), besides the config's
    /// `route … expose`.
    #[serde(default)]
    pub exposed_networks: Vec<ExposedNetwork>,
    /// What earlier versions kept: exposed subnets, whatever network held them. Read so that
    /// the load can say it no longer counts (a subnet string is no network), never written.
    #[serde(default, rename = "exposed", skip_serializing)]
    pub legacy_exposed: Vec<IpNet>,
}

/// Every copy of the state (the book's, a `Save` on its way to disk) wipes our private key when
/// it goes, so clones made per share operation leave no key behind in freed memory.
impl Drop for ShareState {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key);
    }
}

impl std::fmt::Debug for ShareState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareState")
            .field("private_key", &"<redacted>")
            .field("teammates", &self.teammates)
            .field("exposed_networks", &self.exposed_networks)
            .finish()
    }
}

impl ShareState {
    pub fn new() -> io::Result<ShareState> {
        Ok(ShareState {
            private_key: KeyPair::generate()?.private_base64(),
            teammates: Vec::new(),
            exposed_networks: Vec::new(),
            legacy_exposed: Vec::new(),
        })
    }

    pub fn key_pair(&self) -> Result<KeyPair, String> {
        Ok(KeyPair::from_private(parse_key(&self.private_key)?))
    }
}

/// Where the state lives for a config file: `dockroute.conf` → `dockroute.share.json`.
pub fn path_for(config: &Path) -> PathBuf {
    config.with_extension("share.json")
}

/// Loads the state, or makes a new one (new key) when there is no file. A file others can
/// read is refused, like the secret file: it holds our private key.
pub fn load_or_new(path: &Path) -> io::Result<(ShareState, bool)> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("share state {}: {e}", path.display()));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((ShareState::new()?, true)),
        Err(e) => return Err(ctx(e)),
    };
    let mode = std::fs::metadata(path).map_err(ctx)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ctx(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("mode {:o}; run chmod 600 on it", mode & 0o777),
        )));
    }
    let state = parse(&text).map_err(|e| ctx(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    Ok((state, false))
}

/// The file's text: JSON whose `private_key` is a key.
pub fn parse(text: &str) -> Result<ShareState, String> {
    let state: ShareState = serde_json::from_str(text).map_err(|e| e.to_string())?;
    state.key_pair().map_err(|e| format!("private_key: {e}"))?;
    Ok(state)
}

/// The file's text for `state`, as `parse` reads it.
pub fn render(state: &ShareState) -> serde_json::Result<String> {
    serde_json::to_string_pretty(state).map(|text| text + "\n")
}

pub fn save(path: &Path, state: &ShareState) -> io::Result<()> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("cannot write share state {}: {e}", path.display()));
    let text = render(state).map_err(|e| ctx(io::Error::other(e)))?;
    dockroute_stdx::fs::write_atomic(path, text.as_bytes(), 0o600).map_err(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_and_parse_as_wireguard_writes_them() {
        let k = KeyPair::from_private([7u8; 32]);
        assert_eq!(k.private_base64().len(), 44);
        assert_eq!(parse_key(&k.public_base64()).unwrap(), *k.public.as_bytes());
        assert!(parse_key("bm90IDMyIGJ5dGVz").unwrap_err().contains("32 bytes"));
        assert!(parse_key("%%%").unwrap_err().starts_with("not base64"));
        assert_ne!(KeyPair::generate().unwrap().public_base64(), KeyPair::generate().unwrap().public_base64());
    }

    #[test]
    fn the_state_survives_a_save_and_load_private_and_a_readable_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("dockroute.conf"));
        assert_eq!(path.file_name().unwrap(), "dockroute.share.json");
        let (mut s, created) = load_or_new(&path).unwrap();
        assert!(created && !path.exists(), "nothing is written until there is something to keep");
        s.teammates.push(StoredTeammate {
            name: "alice".into(),
            address: "198.18.0.3".parse().unwrap(),
            public_key: KeyPair::generate().unwrap().public_base64(),
        });
        s.exposed_networks.push(ExposedNetwork {
            id: "4f1d".into(),
            name: "web".into(),
            subnets: vec!["198.19.1.0/24".parse().unwrap()],
        });
        save(&path, &s).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (back, created) = load_or_new(&path).unwrap();
        assert!(!created);
        assert!(back == s, "{back:?}");
        assert!(!format!("{s:?}").contains(&s.private_key), "Debug never prints our key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_new(&path).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        // An earlier version's exposed subnets are read, never written back.
        let legacy = format!("{{\"private_key\":\"{}\",\"exposed\":[\"198.19.9.0/24\"]}}", s.private_key);
        std::fs::write(&path, legacy).unwrap();
        let (old, _) = load_or_new(&path).unwrap();
        assert_eq!(old.legacy_exposed, ["198.19.9.0/24".parse::<IpNet>().unwrap()]);
        assert!(!serde_json::to_string(&old).unwrap().contains("198.19.9.0"));
        std::fs::write(&path, "{\"private_key\":\"short\"}").unwrap();
        assert!(load_or_new(&path).unwrap_err().to_string().contains("private_key"));
    }
}
