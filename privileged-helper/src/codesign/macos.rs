//! The peer's audit token (`LOCAL_PEERTOKEN`) names exactly the connecting process, even if
//! its pid is reused: Security.framework checks that process's signature against the
//! requirement.

use std::ffi::c_void;
use std::path::Path;

use core_foundation::base::TCFType;
use core_foundation::data::CFData;
use core_foundation::string::CFString;
use core_foundation::url::CFURL;
use security_framework::os::macos::code_signing::{Flags, GuestAttributes, SecCode, SecRequirement, SecStaticCode};

// Security.framework calls the security-framework crate does not wrap (CSCommon.h,
// SecRequirement.h): a static code's designated requirement, and a requirement as text.
#[link(name = "Security", kind = "framework")]
extern "C" {
    fn SecCodeCopyDesignatedRequirement(code: *const c_void, flags: u32, requirement: *mut *mut c_void) -> i32;
    fn SecRequirementCopyString(requirement: *const c_void, flags: u32, text: *mut *const c_void) -> i32;
}

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

/// The designated requirement of the signed bundle at `bundle`, in the requirement language.
pub(super) fn designated_requirement(bundle: &Path) -> Result<String, String> {
    let url = CFURL::from_path(bundle, true).ok_or("not a usable path")?;
    let code = SecStaticCode::from_path(&url, Flags::NONE).map_err(|e| e.to_string())?;
    let mut req: *mut c_void = std::ptr::null_mut();
    // SAFETY: a live static code object; on success `req` is a +1 reference we take over.
    let status = unsafe { SecCodeCopyDesignatedRequirement(code.as_concrete_TypeRef().cast(), 0, &mut req) };
    if status != 0 || req.is_null() {
        return Err(format!("no designated requirement (OSStatus {status})"));
    }
    let req = unsafe { SecRequirement::wrap_under_create_rule(req.cast()) };
    let mut text: *const c_void = std::ptr::null();
    // SAFETY: as above, `text` is a +1 CFString on success.
    let status = unsafe { SecRequirementCopyString(req.as_concrete_TypeRef().cast(), 0, &mut text) };
    if status != 0 || text.is_null() {
        return Err(format!("cannot print the designated requirement (OSStatus {status})"));
    }
    Ok(unsafe { CFString::wrap_under_create_rule(text.cast()) }.to_string())
}
