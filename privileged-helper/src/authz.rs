//! Who may use the API: root, and members of the allowed groups, decided from the kernel's
//! report of the connecting process's credentials (never from anything the client says).

use std::ffi::{CStr, CString};

/// Groups allowed when the config names none.
#[cfg(target_os = "macos")]
pub const DEFAULT_GROUPS: &[&str] = &["admin"];
#[cfg(not(target_os = "macos"))]
pub const DEFAULT_GROUPS: &[&str] = &["dockroute"];

/// Who may use the API, as the config says (re-read on reload).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Empty: the platform's default groups.
    pub groups: Vec<String>,
    /// A code requirement non-root callers must satisfy too (macOS).
    pub require_signature: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// Ok, or the reason for the refusal (told to the caller and logged).
pub fn check(peer: &Peer, allowed_groups: &[String]) -> Result<(), String> {
    if peer.uid == 0 {
        return Ok(());
    }
    let groups: Vec<String> = if allowed_groups.is_empty() {
        DEFAULT_GROUPS.iter().map(|g| g.to_string()).collect()
    } else {
        allowed_groups.to_vec()
    };
    let user = user_name(peer.uid);
    for g in &groups {
        if let Some((gid, members)) = group(g) {
            let by_primary = gid == peer.gid;
            let by_list = user.as_ref().is_some_and(|u| members.contains(u));
            if by_primary || by_list {
                return Ok(());
            }
        }
    }
    let who = user.map_or_else(|| format!("uid {}", peer.uid), |u| format!("user {u} (uid {})", peer.uid));
    Err(format!(
        "not authorised: {who} is neither root nor a member of group {}; an administrator can add the user to group {}",
        groups.join(" or "),
        groups[0]
    ))
}

/// The group's gid and member names, if it exists. Reads the system's group database
/// (/etc/group, Directory Services on macOS) through libc so it sees what `id` sees.
pub fn group(name: &str) -> Option<(u32, Vec<String>)> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..4 {
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if rc == libc::ERANGE {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        let mut members = Vec::new();
        let mut p = grp.gr_mem;
        // gr_mem is a NULL-terminated array of C strings inside `buf`.
        while !p.is_null() && unsafe { !(*p).is_null() } {
            members.push(unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned());
            p = unsafe { p.add(1) };
        }
        return Some((grp.gr_gid, members));
    }
    None
}

pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some(unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_always_allowed_and_strangers_are_told_why_not() {
        assert!(check(&Peer { uid: 0, gid: 0, pid: None }, &["nosuchgroup-dr".into()]).is_ok());
        let e = check(&Peer { uid: 65534, gid: 65534, pid: None }, &["nosuchgroup-dr".into()]).unwrap_err();
        assert!(e.contains("not authorised") && e.contains("nosuchgroup-dr") && e.contains("65534"), "{e}");
    }

    #[test]
    fn membership_by_primary_group_counts() {
        // `nogroup`/`nobody` exists on Debian and macOS alike under one of these names.
        let (name, gid) = ["nogroup", "nobody"].iter().find_map(|n| group(n).map(|(g, _)| (n.to_string(), g))).unwrap();
        assert!(check(&Peer { uid: 65534, gid, pid: None }, &[name]).is_ok());
    }

    #[test]
    fn the_group_database_is_read() {
        let (gid, _) = group("root").or_else(|| group("wheel")).expect("root or wheel group");
        assert_eq!(gid, 0);
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(group("no-such-group-dockroute").is_none());
    }
}
