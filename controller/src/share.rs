//! The dashboard's Share section: add a teammate (their config, and as a QR code for the
//! WireGuard app), revoke one, and expose a network (by its Docker id) to teammates. Each is one
//! call to the helper's API, authorised like every other; the view shows the result through
//! the helper's status (`View::share`, `NetworkView::exposed`).

use std::path::{Path, PathBuf};

use dockroute_api::share::ShareAdd;
use dockroute_api::{Answer, Client, Op};
use serde::Serialize;

/// How the helper's logs name us.
const CLIENT_NAME: &str = "dockroute share";

/// A teammate's new config, for the page: the QR code to scan and where it goes. The config
/// text itself stays in the app (`text`, not serialised) until the user saves it.
#[derive(Clone, Serialize)]
pub struct IssuedConfig {
    pub name: String,
    pub address: String,
    /// The config as an SVG QR code (the WireGuard app's "Create from QR code").
    pub qr_svg: String,
    #[serde(skip)]
    pub text: String,
}

impl std::fmt::Debug for IssuedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedConfig").field("name", &self.name).field("address", &self.address).finish()
    }
}

async fn client(socket: &Path) -> Result<Client, String> {
    Client::connect(socket, CLIENT_NAME).await.map_err(|e| e.to_string())
}

/// A new teammate (or, with `rotate`, a new key for one): their config and its QR code.
pub async fn add_teammate(socket: &Path, name: &str, rotate: bool) -> Result<IssuedConfig, String> {
    let add = ShareAdd { name: name.to_string(), ip: None, endpoint: None, rotate };
    let config = client(socket).await?.share_add(add).await.map_err(|e| e.to_string())?;
    Ok(IssuedConfig {
        name: config.name,
        address: config.address.to_string(),
        qr_svg: qr_svg(&config.text.0)?,
        text: config.text.0,
    })
}

pub async fn revoke_teammate(socket: &Path, name: &str) -> Result<(), String> {
    let c = client(socket).await?;
    c.call(Op::ShareRevoke { name: name.to_string() }).await.map(drop).map_err(|e| e.to_string())
}

/// Exposes (or not) a Docker network, by its id: its exposure goes when it does.
pub async fn set_exposed(socket: &Path, network_id: &str, exposed: bool) -> Result<(), String> {
    if network_id.is_empty() {
        return Err("this network has no id to expose it by".into());
    }
    let c = client(socket).await?;
    match c.call(Op::SetNetworkExposed { network: network_id.to_string(), exposed }).await {
        Ok(Answer::Done) => Ok(()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The config as an SVG QR code: dark modules on white with a quiet zone, as scanners want.
pub fn qr_svg(text: &str) -> Result<String, String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| format!("cannot make a QR code: {e}"))?;
    Ok(code.render::<svg::Color<'_>>().min_dimensions(240, 240).quiet_zone(true).build())
}

/// Writes the config into `dir` as `NAME.conf` (WireGuard names the tunnel after the file),
/// mode 0600, never over an existing file (`NAME-2.conf`, …). Returns the path.
pub fn save_config(dir: &Path, config: &IssuedConfig) -> Result<PathBuf, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let stem: String =
        config.name.chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).take(15).collect::<String>();
    let stem = if stem.is_empty() { "dockroute".to_string() } else { stem };
    for n in 1..100 {
        let file = if n == 1 { format!("{stem}.conf") } else { format!("{stem}-{n}.conf") };
        let path = dir.join(file);
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut f) => {
                f.write_all(config.text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot write {}: {e}", path.display())),
        }
    }
    Err(format!("too many {stem}*.conf files in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(name: &str) -> IssuedConfig {
        IssuedConfig {
            name: name.into(),
            address: "198.18.5.3".into(),
            qr_svg: String::new(),
            text: "[Interface]\nPrivateKey = c2VjcmV0\n".into(),
        }
    }

    #[test]
    fn the_qr_code_is_an_svg_image() {
        let svg = qr_svg("[Interface]\nPrivateKey = x\nAddress = 198.18.5.3/32\n").unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"), "{svg}");
    }

    #[test]
    fn a_saved_config_is_private_named_after_the_teammate_and_never_overwrites() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = save_config(dir.path(), &issued("alice")).unwrap();
        let second = save_config(dir.path(), &issued("alice")).unwrap();
        assert_eq!(first.file_name().unwrap(), "alice.conf");
        assert_eq!(second.file_name().unwrap(), "alice-2.conf");
        assert_eq!(std::fs::read_to_string(&first).unwrap(), issued("alice").text);
        assert_eq!(std::fs::metadata(&first).unwrap().permissions().mode() & 0o777, 0o600);
        let odd = save_config(dir.path(), &issued("../../etc/x y")).unwrap();
        assert_eq!(odd.parent().unwrap(), dir.path(), "a name never leaves the directory");
        assert!(!format!("{:?}", issued("a")).contains("c2VjcmV0"), "Debug never shows the key");
        let json = serde_json::to_string(&issued("a")).unwrap();
        assert!(!json.contains("c2VjcmV0"), "the page never gets the text: {json}");
    }

    #[tokio::test]
    async fn without_a_helper_every_operation_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let e = add_teammate(&socket, "alice", false).await.unwrap_err();
        assert!(e.contains("helper not running"), "{e}");
        assert!(revoke_teammate(&socket, "alice").await.unwrap_err().contains("helper not running"));
        assert!(set_exposed(&socket, "4f1d", true).await.unwrap_err().contains("helper not running"));
        assert!(set_exposed(&socket, "", true).await.unwrap_err().contains("no id"));
    }
}
