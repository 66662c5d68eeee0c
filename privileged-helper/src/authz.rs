//! Who may use the API: root, and members of the allowed groups, decided from the kernel's
//! report of the connecting process's credentials (never from anything the client says); and,
//! for non-root callers, the code signature rule (`Signature`).
//!
//! The decisions (`check`, `signature_check`, `signature_rule`, `app_bundle`) are plain
//! functions of their inputs. The thin OS part gathers those inputs: the caller's groups come
//! from `getgrouplist(3)`, which on macOS asks Directory Services and so includes nested and
//! directory (LDAP/AD) groups, and on Linux includes every supplementary group in the group
//! database; reading a group's `gr_mem` list would see neither.

use std::ffi::{CStr, CString};
use std::path::{Component, Path, PathBuf};

/// Groups allowed when the config names none.
#[cfg(target_os = "macos")]
pub const DEFAULT_GROUPS: &[&str] = &["admin"];
#[cfg(not(target_os = "macos"))]
pub const DEFAULT_GROUPS: &[&str] = &["dockroute"];

/// Who may use the API, as the config (and the bundle the helper runs from) say; re-derived on
/// every config reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Empty: the platform's default groups.
    pub groups: Vec<String>,
    pub signature: Signature,
    /// Groups that may also share (`share-group`); empty: root and the signed app only.
    pub share_groups: Vec<String>,
}

/// What a non-root caller's code signature must satisfy, on top of its groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Signature {
    /// Nothing: the group check alone decides.
    #[default]
    Any,
    /// A code requirement (macOS requirement language), checked through the audit token.
    Required(String),
    /// The designated requirement of the helper's app bundle, as `codesign::AppRequirement`
    /// holds it when the caller connects (read again after an ad-hoc signed app changed); a
    /// caller is refused while it cannot be read.
    App,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// The caller as the user and group databases see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    /// The connecting process's group, from the kernel.
    pub gid: u32,
    pub user: Option<String>,
    /// Every group the user belongs to (`getgrouplist`), empty if the user is unknown.
    pub groups: Vec<u32>,
}

/// An allowed group by name, with its gid if it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedGroup {
    pub name: String,
    pub gid: Option<u32>,
}

/// The configured groups, or the platform's default ones.
pub fn allowed_names(configured: &[String]) -> Vec<String> {
    if configured.is_empty() {
        DEFAULT_GROUPS.iter().map(|g| g.to_string()).collect()
    } else {
        configured.to_vec()
    }
}

/// Ok, or the reason for the refusal (told to the caller and logged).
pub fn check(caller: &Caller, allowed: &[AllowedGroup]) -> Result<(), String> {
    if caller.uid == 0 {
        return Ok(());
    }
    let member = |gid: u32| gid == caller.gid || caller.groups.contains(&gid);
    if allowed.iter().filter_map(|g| g.gid).any(member) {
        return Ok(());
    }
    let who = describe(caller);
    let names: Vec<&str> = allowed.iter().map(|g| g.name.as_str()).collect();
    Err(format!(
        "not authorised: {who} is neither root nor a member of group {}; an administrator can add the user to group {}",
        names.join(" or "),
        names.first().copied().unwrap_or("(none)")
    ))
}

/// "user alice (uid 501)", or "uid 501" for a user the database does not know.
fn describe(caller: &Caller) -> String {
    caller.user.as_ref().map_or_else(|| format!("uid {}", caller.uid), |u| format!("user {u} (uid {})", caller.uid))
}

/// What to do about the signature of a caller with `uid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck<'a> {
    Skip,
    Verify(&'a str),
    /// Verify against the app bundle's requirement as it is now.
    VerifyApp,
}

pub fn signature_check(uid: u32, signature: &Signature) -> SignatureCheck<'_> {
    match signature {
        _ if uid == 0 => SignatureCheck::Skip,
        Signature::Any => SignatureCheck::Skip,
        Signature::Required(req) => SignatureCheck::Verify(req),
        Signature::App => SignatureCheck::VerifyApp,
    }
}

/// The signature rule: the config's `require-signature` wins (`none` switches it off);
/// without one, a helper that belongs to an app bundle (it runs from inside it, or was
/// installed for it with `--app-bundle`) requires that app's designated requirement, so that
/// only that app, and not every process of an admin, may drive it.
pub fn signature_rule(configured: Option<&str>, has_app: bool) -> Signature {
    match configured.map(str::trim) {
        Some(none) if none.eq_ignore_ascii_case("none") => Signature::Any,
        Some(req) => Signature::Required(req.to_string()),
        None if has_app => Signature::App,
        None => Signature::Any,
    }
}

/// Why a caller is refused while the app's requirement cannot be read.
pub fn unreadable_app_requirement(why: &str) -> String {
    format!(
        "not authorised: the helper belongs to an app bundle whose code requirement cannot be read ({why}); set \
         require-signature in the config"
    )
}

/// The app bundle a binary runs from: the outermost `*.app` directly followed by `Contents`,
/// e.g. `/Applications/Dockroute.app` for `.../Dockroute.app/Contents/MacOS/dockroute-helper`.
pub fn app_bundle(exe: &Path) -> Option<PathBuf> {
    let parts: Vec<Component> = exe.components().collect();
    let is_bundle = |w: &[Component]| {
        let name = w[0].as_os_str().to_string_lossy();
        name.len() > 4 && name.ends_with(".app") && w[1].as_os_str() == "Contents"
    };
    let at = parts.windows(2).position(is_bundle)?;
    Some(parts[..=at].iter().collect())
}

/// Who may share: root; a member of a `share-group`; a caller whose code signature the helper
/// verified against its requirement (`signed_app`: on macOS, the signed app). Any other API
/// user may route, but not hand out teammate keys, revoke them or expose networks.
pub fn share_check(caller: &Caller, share_groups: &[AllowedGroup], signed_app: bool) -> Result<(), String> {
    let member = |gid: u32| gid == caller.gid || caller.groups.contains(&gid);
    if caller.uid == 0 || signed_app || share_groups.iter().filter_map(|g| g.gid).any(member) {
        return Ok(());
    }
    let who = describe(caller);
    let groups: Vec<&str> = share_groups.iter().map(|g| g.name.as_str()).collect();
    let how = match groups.as_slice() {
        [] => "name a group with `share-group GROUP` in the helper's config".to_string(),
        names => format!("an administrator can add the user to group {}", names.join(" or ")),
    };
    Err(format!(
        "not authorised to share: {who} may route but not hand out teammate keys, revoke them, expose \
         networks or change where the local CA is trusted; that takes root (sudo dockroute-helper share …), the signed Dockroute app, or a share-group \
         member ({how})"
    ))
}

/// The gid of each allowed group (None for a group that does not exist).
pub fn resolve(names: &[String]) -> Vec<AllowedGroup> {
    names.iter().map(|name| AllowedGroup { name: name.clone(), gid: group_gid(name) }).collect()
}

/// The caller's user name and groups, from the system's databases.
pub fn caller(peer: &Peer) -> Caller {
    let user = user_entry(peer.uid);
    let groups = user.as_ref().map(|(name, gid)| group_list(name, *gid)).unwrap_or_default();
    Caller { uid: peer.uid, gid: peer.gid, user: user.map(|(name, _)| name), groups }
}

/// The group's gid, if it exists. Reads the system's group database (/etc/group, Directory
/// Services on macOS) through libc so it sees what `id` sees.
pub fn group_gid(name: &str) -> Option<u32> {
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
        return (rc == 0 && !result.is_null()).then_some(grp.gr_gid);
    }
    None
}

#[cfg(test)]
pub fn user_name(uid: u32) -> Option<String> {
    user_entry(uid).map(|(name, _)| name)
}

/// The user's name and primary gid.
fn user_entry(uid: u32) -> Option<(String, u32)> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    Some((unsafe { CStr::from_ptr(pwd.pw_name) }.to_string_lossy().into_owned(), pwd.pw_gid))
}

/// getgrouplist's group type: `int` on macOS, `gid_t` elsewhere.
#[cfg(target_os = "macos")]
type GroupId = libc::c_int;
#[cfg(not(target_os = "macos"))]
type GroupId = libc::gid_t;

/// Every group `user` is in, `base` included. The buffer grows until it fits: glibc reports
/// the size it needs, macOS only that it did not fit.
#[allow(clippy::unnecessary_cast)] // `GroupId` is `int` on macOS: there the casts convert (-2 is nobody)
fn group_list(user: &str, base: u32) -> Vec<u32> {
    let Ok(name) = CString::new(user) else { return vec![base] };
    let mut size: libc::c_int = 64;
    while size <= 1 << 16 {
        let mut groups: Vec<GroupId> = vec![0; size as usize];
        let mut count = size;
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), base as GroupId, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.clamp(0, size) as usize);
            return groups.into_iter().map(|g| g as u32).collect();
        }
        size = count.max(size.saturating_mul(2));
    }
    vec![base]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller { uid, gid, user: Some("alice".into()), groups: groups.to_vec() }
    }

    fn allowed(groups: &[(&str, Option<u32>)]) -> Vec<AllowedGroup> {
        groups.iter().map(|(n, g)| AllowedGroup { name: n.to_string(), gid: *g }).collect()
    }

    #[test]
    fn root_is_always_allowed_and_strangers_are_told_why_not() {
        let none = allowed(&[("nosuchgroup-dr", None)]);
        assert!(check(&caller(0, 0, &[]), &none).is_ok());
        let stranger = Caller { uid: 65534, gid: 65534, user: None, groups: vec![] };
        let e = check(&stranger, &none).unwrap_err();
        assert!(e.contains("not authorised") && e.contains("nosuchgroup-dr") && e.contains("65534"), "{e}");
        let e = check(&caller(501, 20, &[20, 12, 61]), &allowed(&[("admin", Some(80)), ("docker", Some(998))]));
        assert_eq!(
            e.unwrap_err(),
            "not authorised: user alice (uid 501) is neither root nor a member of group admin or docker; an \
             administrator can add the user to group admin"
        );
    }

    #[test]
    fn membership_counts_by_the_process_group_or_any_group_of_the_user() {
        let admin = allowed(&[("admin", Some(80))]);
        // The process runs with group 80 (newgrp, setgid): allowed.
        assert!(check(&caller(501, 80, &[20]), &admin).is_ok());
        // admin through a nested or directory group: getgrouplist lists 80 although the
        // user's name is in no gr_mem list.
        assert!(check(&caller(501, 20, &[20, 12, 80, 701]), &admin).is_ok());
        // A group that does not exist lets nobody in, and never matches by accident.
        assert!(check(&caller(501, 20, &[20]), &allowed(&[("ghost", None), ("admin", Some(80))])).is_err());
        assert!(check(&caller(501, 0, &[20]), &allowed(&[("ghost", None)])).is_err());
    }

    #[test]
    fn the_default_groups_apply_only_when_the_config_names_none() {
        assert_eq!(allowed_names(&[]), DEFAULT_GROUPS.iter().map(|g| g.to_string()).collect::<Vec<_>>());
        assert_eq!(allowed_names(&["staff".into()]), ["staff"]);
    }

    #[test]
    fn a_bundled_helper_requires_its_apps_signature_unless_the_config_says_otherwise() {
        assert_eq!(signature_rule(None, false), Signature::Any, "no app, nothing configured");
        assert_eq!(signature_rule(None, true), Signature::App);
        let mine = r#"identifier "dev.example.tool""#;
        assert_eq!(signature_rule(Some(mine), true), Signature::Required(mine.into()));
        assert_eq!(signature_rule(Some(mine), false), Signature::Required(mine.into()));
        assert_eq!(signature_rule(Some(" none "), true), Signature::Any, "switched off");
        assert_eq!(signature_rule(Some("NONE"), false), Signature::Any);
        let why = unreadable_app_requirement("code object is not signed at all");
        assert!(why.contains("code object is not signed at all") && why.contains("require-signature"), "{why}");
    }

    #[test]
    fn root_skips_the_signature_and_others_are_verified_or_refused() {
        let req = Signature::Required("anchor apple".into());
        assert_eq!(signature_check(0, &req), SignatureCheck::Skip);
        assert_eq!(signature_check(501, &req), SignatureCheck::Verify("anchor apple"));
        assert_eq!(signature_check(501, &Signature::Any), SignatureCheck::Skip);
        assert_eq!(signature_check(0, &Signature::App), SignatureCheck::Skip);
        assert_eq!(signature_check(501, &Signature::App), SignatureCheck::VerifyApp);
    }

    #[test]
    fn an_attack_by_an_api_user_minting_a_teammate_key_is_refused_unless_they_may_share() {
        let admin = caller(501, 20, &[20, 80]);
        let e = share_check(&admin, &[], false).unwrap_err();
        assert!(e.starts_with("not authorised to share: user alice (uid 501) may route"), "{e}");
        assert!(e.contains("share-group GROUP"), "{e}");
        let named = allowed(&[("dockroute-share", Some(990))]);
        let e = share_check(&admin, &named, false).unwrap_err();
        assert!(e.contains("add the user to group dockroute-share"), "{e}");
        assert!(share_check(&caller(501, 20, &[20, 990]), &named, false).is_ok(), "a share-group member");
        assert!(share_check(&caller(501, 990, &[20]), &named, false).is_ok(), "by the process's group");
        assert!(share_check(&caller(0, 0, &[]), &[], false).is_ok(), "root");
        assert!(share_check(&admin, &[], true).is_ok(), "the app whose signature was verified");
        assert!(share_check(&admin, &allowed(&[("ghost", None)]), false).is_err(), "a group that does not exist");
    }

    #[test]
    fn the_app_bundle_is_found_from_the_helpers_path() {
        let app = |p: &str| app_bundle(Path::new(p));
        assert_eq!(
            app("/Applications/Dockroute.app/Contents/MacOS/dockroute-helper"),
            Some("/Applications/Dockroute.app".into())
        );
        assert_eq!(
            app("/Users/a/Apps/My Tools/Dockroute.app/Contents/Library/LaunchDaemons/x"),
            Some("/Users/a/Apps/My Tools/Dockroute.app".into())
        );
        // Nested bundles: the outer app is the one that talks to the helper.
        assert_eq!(
            app("/Applications/Dockroute.app/Contents/Library/Helper.app/Contents/MacOS/h"),
            Some("/Applications/Dockroute.app".into())
        );
        assert_eq!(app("/usr/local/bin/dockroute-helper"), None);
        assert_eq!(app("/opt/x.app/dockroute-helper"), None, "a .app directory without Contents is no bundle");
        assert_eq!(app("/opt/.app/Contents/MacOS/h"), None);
    }

    #[test]
    fn the_group_database_is_read() {
        let gid = group_gid("root").or_else(|| group_gid("wheel")).expect("root or wheel group");
        assert_eq!(gid, 0);
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert!(group_gid("no-such-group-dockroute").is_none());
        // root is in its own primary group, whatever else getgrouplist finds.
        let root = super::caller(&Peer { uid: 0, gid: 0, pid: None });
        assert!(root.groups.contains(&0), "{root:?}");
        assert_eq!(root.user.as_deref(), Some("root"));
    }

    #[test]
    fn membership_by_primary_group_counts() {
        // `nogroup`/`nobody` exists on Debian and macOS alike under one of these names.
        let (name, gid) = ["nogroup", "nobody"].iter().find_map(|n| group_gid(n).map(|g| (n.to_string(), g))).unwrap();
        let peer = Peer { uid: 65534, gid, pid: None };
        assert!(check(&super::caller(&peer), &resolve(&[name])).is_ok());
    }
}
