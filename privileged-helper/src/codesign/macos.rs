//! The peer's audit token (`LOCAL_PEERTOKEN`) names exactly the connecting process, even if
//! its pid is reused: Security.framework checks that process's signature against the
//! requirement.

use core_foundation::base::TCFType;
use core_foundation::data::CFData;
use security_framework::os::macos::code_signing::{Flags, GuestAttributes, SecCode, SecRequirement};

pub(super) fn verify(fd: std::os::fd::RawFd, requirement: &str) -> Result<(), String> {
    // audit_token_t: eight 32-bit words.
    let mut token = [0u8; 32];
    let mut len = token.len() as libc::socklen_t;
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERTOKEN, token.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(format!("cannot read the caller's audit token: {}", std::io::Error::last_os_error()));
    }
    let data = CFData::from_buffer(&token[..len as usize]);
    let mut attrs = GuestAttributes::new();
    attrs.set_audit_token(data.as_concrete_TypeRef());
    let code = SecCode::copy_guest_with_attribues(None, &attrs, Flags::NONE)
        .map_err(|e| format!("cannot identify the caller's code: {e}"))?;
    let req: SecRequirement =
        requirement.parse().map_err(|e| format!("invalid require-signature {requirement:?}: {e}"))?;
    code.check_validity(Flags::NONE, &req)
        .map_err(|e| format!("the caller's code signature does not satisfy {requirement:?}: {e}"))
}
