//! The shared secret and the HMAC-SHA256 tags that prove knowledge of it.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use super::wire::{Mac, MAC_LEN};

pub const LABEL_AUTH: &[u8] = b"dockroute/1 auth";
pub const LABEL_WELCOME: &[u8] = b"dockroute/1 welcome";
pub const LABEL_STALE: &[u8] = b"dockroute/1 stale";

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
    pub fn new(bytes: Vec<u8>) -> Result<Secret, SecretLengthError> {
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            let n = bytes.len();
            let mut bytes = bytes;
            wipe(&mut bytes);
            return Err(SecretLengthError(n));
        }
        Ok(Secret(bytes.into_boxed_slice()))
    }

    /// Tag over `label || parts...`; the label separates message kinds so that no tag
    /// made for one can be replayed as another.
    pub fn tag(&self, label: &[u8], parts: &[&[u8]]) -> Mac {
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&self.hmac(label, parts).finalize().into_bytes());
        out
    }

    /// Constant-time check of a tag.
    pub fn verify(&self, label: &[u8], parts: &[&[u8]], tag: &Mac) -> bool {
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
        wipe(&mut self.0);
    }
}

fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // Volatile so the compiler cannot drop the store as dead.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_secret_label_and_every_part() {
        let a = Secret::new(vec![1; 32]).unwrap();
        let b = Secret::new(vec![2; 32]).unwrap();
        let t = a.tag(LABEL_AUTH, &[b"x", b"y"]);
        assert!(a.verify(LABEL_AUTH, &[b"x", b"y"], &t));
        assert!(!b.verify(LABEL_AUTH, &[b"x", b"y"], &t));
        assert!(!a.verify(LABEL_WELCOME, &[b"x", b"y"], &t));
        assert!(!a.verify(LABEL_AUTH, &[b"x", b"z"], &t));
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_the_bytes() {
        assert_eq!(Secret::new(vec![0; 15]).unwrap_err(), SecretLengthError(15));
        let s = Secret::new(b"super-secret-value-123".to_vec()).unwrap();
        assert!(!format!("{s:?}").contains("super"));
    }
}
