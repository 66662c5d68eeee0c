//! The tunnel's shared secret: both ends key HMAC-SHA256 with it. Never printed (`Debug` shows
//! the length only), wiped from memory when dropped. And `Redacted`, a string kept out of logs.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// An HMAC-SHA256 tag.
pub type Tag = [u8; 32];

/// Shortest secret we accept: 128 bits.
pub const MIN_SECRET_LEN: usize = 16;
pub const MAX_SECRET_LEN: usize = 1024;

/// Never printed, zeroed when dropped.
pub struct Secret(Box<[u8]>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretLengthError(pub usize);

impl std::fmt::Display for SecretLengthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "secret is {} bytes; it must be {MIN_SECRET_LEN}..={MAX_SECRET_LEN}", self.0)
    }
}
impl std::error::Error for SecretLengthError {}

impl Secret {
    /// A fresh random secret: 32 bytes from the OS, as 64 hex characters (the form the helper's
    /// secret file and the guest's copy hold, so it survives being written as text).
    pub fn generate() -> std::io::Result<Secret> {
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(raw.as_mut()).map_err(|e| std::io::Error::other(format!("OS random generator: {e}")))?;
        let text = dockroute_stdx::hex::encode(raw.as_ref());
        Ok(Secret::new(text.into_bytes()).expect("64 bytes is a valid length"))
    }

    /// The bytes, to key a MAC or to hand to the other end. Keep them out of logs.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn new(bytes: Vec<u8>) -> Result<Secret, SecretLengthError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            let n = bytes.len();
            let mut bytes = bytes;
            bytes.zeroize();
            return Err(SecretLengthError(n));
        }
        Ok(Secret(bytes.into_boxed_slice()))
    }

    /// Tag over `label || parts...`; the label separates message kinds so that no tag
    /// made for one can be replayed as another.
    pub fn tag(&self, label: &[u8], parts: &[&[u8]]) -> Tag {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.hmac(label, parts).finalize().into_bytes());
        out
    }

    /// Constant-time check of a tag.
    pub fn verify(&self, label: &[u8], parts: &[&[u8]], tag: &Tag) -> bool {
        self.hmac(label, parts).verify_slice(tag).is_ok()
    }

    fn hmac(&self, label: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as hmac::Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        m.update(label);
        for p in parts {
            m.update(p);
        }
        m
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret(self.0.clone())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A string that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &[u8] = b"test label";

    #[test]
    fn tags_depend_on_secret_label_and_every_part() {
        let a = Secret::new(vec![1; 32]).unwrap();
        let b = Secret::new(vec![2; 32]).unwrap();
        let t = a.tag(LABEL, &[b"x", b"y"]);
        assert!(a.verify(LABEL, &[b"x", b"y"], &t));
        assert!(!b.verify(LABEL, &[b"x", b"y"], &t));
        assert!(!a.verify(b"other label", &[b"x", b"y"], &t));
        assert!(!a.verify(LABEL, &[b"x", b"z"], &t));
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_the_bytes() {
        assert_eq!(Secret::new(vec![0; 15]).unwrap_err(), SecretLengthError(15));
        assert_eq!(Secret::new(vec![0; MAX_SECRET_LEN + 1]).unwrap_err(), SecretLengthError(MAX_SECRET_LEN + 1));
        let s = Secret::new(b"super-secret-value-123".to_vec()).unwrap();
        assert!(!format!("{s:?}").contains("super"));
    }

    #[test]
    fn generated_secrets_are_64_hex_characters_and_differ() {
        let (a, b) = (Secret::generate().unwrap(), Secret::generate().unwrap());
        assert_eq!(a.expose().len(), 64);
        assert!(a.expose().iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a.expose(), b.expose());
    }
}
