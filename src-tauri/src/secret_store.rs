//! The tunnel secret in the OS keychain (Keychain on macOS, the kernel keyring on Linux),
//! created on first run and never written to disk by us. Keeping it across app restarts lets a
//! restarted app adopt the guest container that is still running instead of replacing it.

/// Keychain service and account names.
pub const SERVICE: &str = "dev.dockroute.app";
pub const ACCOUNT: &str = "tunnel-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Stored,
    /// Nothing usable was stored: a new secret was made and stored.
    Created,
}

/// The stored secret, or a new one stored now. A stored value that is not a secret we made
/// (wrong length or not hex) is replaced, not used.
pub fn load_or_create(entry: &keyring::Entry) -> anyhow::Result<(Vec<u8>, Origin)> {
    match entry.get_password() {
        Ok(s) if is_valid(&s) => return Ok((s.into_bytes(), Origin::Stored)),
        Ok(_) => tracing::warn!("the stored tunnel secret is not valid; making a new one"),
        Err(keyring::Error::NoEntry) => {}
        Err(e) => return Err(anyhow::anyhow!("cannot read the tunnel secret from the keychain: {e}")),
    }
    let secret = dockroute_controller::new_secret()?;
    let text = String::from_utf8(secret.clone()).expect("hex is ASCII");
    entry.set_password(&text).map_err(|e| anyhow::anyhow!("cannot store the tunnel secret in the keychain: {e}"))?;
    Ok((secret, Origin::Created))
}

/// The app's entry. `DOCKROUTE_KEYCHAIN_SERVICE` names another service, so tests (and a second
/// copy of the app) keep their secret apart from the user's.
pub fn entry() -> anyhow::Result<keyring::Entry> {
    let service = std::env::var("DOCKROUTE_KEYCHAIN_SERVICE").unwrap_or_else(|_| SERVICE.to_string());
    keyring::Entry::new(&service, ACCOUNT).map_err(|e| anyhow::anyhow!("keychain: {e}"))
}

/// What `new_secret` makes: 64 lowercase hex characters.
fn is_valid(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_secrets_are_accepted() {
        let ours = String::from_utf8(dockroute_controller::new_secret().unwrap()).unwrap();
        assert!(is_valid(&ours));
        assert!(!is_valid(&ours[..63]));
        assert!(!is_valid(&ours.to_uppercase()));
        assert!(!is_valid(""));
        assert!(!is_valid(&"g".repeat(64)));
    }
}
