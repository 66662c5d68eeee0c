//! No code signatures outside macOS: a configured requirement cannot be met, so it refuses
//! (a config that asks for it must not silently let everyone in).

pub(super) fn verify(_fd: std::os::fd::RawFd, requirement: &str) -> Result<(), String> {
    Err(format!("require-signature {requirement:?} is set, but code signatures exist only on macOS"))
}

pub(super) fn designated_requirement(_bundle: &std::path::Path) -> Result<String, String> {
    Err("code signatures exist only on macOS".into())
}
