//! The tunnel secret in the real Linux kernel keyring: the test runs itself again inside a new
//! session keyring (`keyctl session -`), stores and reloads the secret there, checks with
//! `keyctl` what the kernel holds, and removes the key again.

use std::process::Command;

use dockroute_app::secret_store::{load_or_create, Origin, ACCOUNT};

const INNER: &str = "DOCKROUTE_KEYRING_TEST_INNER";
const TEST: &str = "the_secret_lives_in_the_kernel_keyring";

struct Forget(keyring::Entry);

impl Drop for Forget {
    fn drop(&mut self) {
        let _ = self.0.delete_credential();
    }
}

fn keyctl(args: &[&str]) -> Result<String, String> {
    let out =
        Command::new("keyctl").args(args).output().map_err(|e| format!("keyctl (keyutils) not installed? {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn the_secret_lives_in_the_kernel_keyring() {
    if std::env::var_os(INNER).is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("keyctl")
            .args(["session", "-"])
            .arg(exe)
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(INNER, "1")
            .output()
            .expect("keyctl (package keyutils) is needed for this test");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "the test inside `keyctl session -` failed:\n{log}");
        assert!(log.contains("1 passed"), "the inner test did not run:\n{log}");
        return;
    }

    let service = format!("dev.dockroute.keyring-test.{}", std::process::id());
    let description = format!("keyring-rs:{ACCOUNT}@{service}");
    let entry = keyring::Entry::new(&service, ACCOUNT).unwrap();
    // keyring-rs also files the key in root's persistent keyring, which outlives this session:
    // removed however the test ends.
    let _cleanup = Forget(keyring::Entry::new(&service, ACCOUNT).unwrap());

    let (first, origin) = load_or_create(&entry).unwrap();
    assert_eq!(origin, Origin::Created);
    // The kernel holds it, in this session's keyring, under the keyring crate's name.
    let id = keyctl(&["search", "@s", "user", &description]).expect("the key is in the session keyring");
    assert_eq!(keyctl(&["pipe", &id]).unwrap().as_bytes(), first.as_slice());

    // The next start of the app finds the same secret.
    let again = keyring::Entry::new(&service, ACCOUNT).unwrap();
    let (second, origin) = load_or_create(&again).unwrap();
    assert_eq!((origin, &second), (Origin::Stored, &first));

    // Something else stored under our name is not trusted as a secret.
    entry.set_password("hunter2").unwrap();
    let (third, origin) = load_or_create(&entry).unwrap();
    assert_eq!(origin, Origin::Created);
    assert_ne!(third, first);
    assert_eq!(third.len(), 64);

    // Clean up: the key is gone from the kernel.
    entry.delete_credential().unwrap();
    assert!(keyctl(&["search", "@s", "user", &description]).is_err(), "the key was not removed");
}
