//! Which code requirement the helper holds the app to, and when it reads the app's requirement
//! again. Plain logic: the bundle's on-disk stamp and a way to read its designated requirement
//! go in, the requirement to verify callers against comes out (tested on every OS; the reading
//! itself is `codesign::os`).
//!
//! What an app's designated requirement (DR) says depends on how it was signed (Apple's TN3127
//! "Inside Code Signing: Requirements"; codesign(1)):
//! - a Developer ID: `anchor apple generic and identifier "<bundle id>" and (… certificate
//!   leaf[subject.OU] = <Team ID>)`: the same for every release of the app, so it is read once
//!   and kept: an update keeps working, and a bundle replaced by anyone else's build never takes
//!   the trust over (re-reading would hand it to whatever is at the path now);
//! - ad hoc (`codesign -s -`, every build without a certificate): `cdhash H"<hash>"`, that one
//!   build only. Pinned for ever it would lock out the next build of the app, so it is read
//!   again whenever the bundle on disk changed (its stamp). With ad-hoc signing the trust is "the
//!   app at this path", which is all such a signature can say.
//!
//! A read that fails (the bundle is being replaced right now) keeps the last good requirement
//! and tries again at the next check.

/// What identifies one state of the bundle on disk: (device, inode, size, mtime, ctime) of the
/// files a signing rewrites (`Contents/_CodeSignature/CodeResources`, `Contents/Info.plist`).
/// None when they cannot be read.
pub type Stamp = Vec<(u64, u64, u64, i64, i64)>;

/// The kind of signature a DR describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Signed with a Developer ID of `team` for the bundle id `identifier`.
    DeveloperId { team: String, identifier: String },
    /// Ad hoc: the DR names one build by its code-directory hash.
    AdHoc,
    /// Anything else (an Apple Development certificate, a custom requirement): kept like a
    /// Developer ID one, never replaced by what is on disk later.
    Other,
}

/// Reads a DR as `SecRequirementCopyString` (and `codesign -d -r-` after `designated =>`)
/// prints it.
pub fn classify(requirement: &str) -> Kind {
    let r = requirement.trim();
    if r.starts_with("cdhash H\"") && !r.contains(" and ") && !r.contains(" or ") {
        return Kind::AdHoc;
    }
    let team = after(r, "certificate leaf[subject.OU] = ");
    let identifier = after(r, "identifier ");
    match (r.contains("anchor apple generic"), team, identifier) {
        (true, Some(team), Some(identifier)) => Kind::DeveloperId { team, identifier },
        _ => Kind::Other,
    }
}

/// The value after `key`: a quoted string, or a bare word up to a space or `)`.
fn after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split([' ', ')']).next()?,
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// The app's requirement as the helper currently holds it.
#[derive(Debug, Clone, Default)]
pub struct AppTrust {
    /// The stamp the requirement was read at.
    stamp: Option<Stamp>,
    current: Option<Result<String, String>>,
}

/// What `refresh` did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refreshed {
    Unchanged,
    /// Read for the first time, or again after the bundle changed: the new requirement.
    Read(String),
    /// The bundle changed, and the requirement is the same: nothing to tell.
    Same,
    /// Reading failed; the last good requirement (if any) stays.
    Failed(String),
}

impl AppTrust {
    /// Brings the requirement up to date with the bundle's `stamp`; `read` reads its DR.
    pub fn refresh(&mut self, stamp: Option<Stamp>, read: impl FnOnce() -> Result<String, String>) -> Refreshed {
        let pinned = matches!(&self.current, Some(Ok(r)) if classify(r) != Kind::AdHoc);
        if pinned || (self.current.is_some() && stamp.is_some() && stamp == self.stamp) {
            return Refreshed::Unchanged;
        }
        match read() {
            Ok(requirement) => {
                self.stamp = stamp;
                let same = matches!(&self.current, Some(Ok(old)) if *old == requirement);
                self.current = Some(Ok(requirement.clone()));
                if same {
                    Refreshed::Same
                } else {
                    Refreshed::Read(requirement)
                }
            }
            Err(why) => {
                // Keep a good one; remember only that there is none. The stamp stays old, so the
                // next check reads again.
                if !matches!(self.current, Some(Ok(_))) {
                    self.current = Some(Err(why.clone()));
                }
                Refreshed::Failed(why)
            }
        }
    }

    /// The requirement callers must satisfy, or why there is none.
    pub fn requirement(&self) -> Result<&str, &str> {
        match &self.current {
            Some(Ok(r)) => Ok(r),
            Some(Err(why)) => Err(why),
            None => Err("the app's code requirement has not been read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Developer ID app's DR as Xcode and codesign write it, recorded with `codesign -d -r-`
    /// (Gen Kiyooka, "Apple codesigning certificates", 2012; the identifier changed to ours).
    const DEVELOPER_ID: &str = "anchor apple generic and identifier \"dev.dockroute.app\" and (certificate \
                                leaf[field.1.2.840.113635.100.6.1.9] /* exists */ or certificate \
                                1[field.1.2.840.113635.100.6.2.6] /* exists */ and certificate \
                                leaf[field.1.2.840.113635.100.6.1.13] /* exists */ and certificate \
                                leaf[subject.OU] = MQK467HD9A)";
    /// Ad-hoc builds (`codesign -s -`, what `cargo tauri build` signs with here): their DR is
    /// their cdhash (codesign(1), TN3127). Two builds, two hashes.
    const BUILD_1: &str = "cdhash H\"8b3ac2a5c4bd2a61c6b1d5e7f1f4a0b2c3d4e5f6\"";
    const BUILD_2: &str = "cdhash H\"0f1e2d3c4b5a69788796a5b4c3d2e1f00112233\"";

    fn stamp(n: i64) -> Option<Stamp> {
        Some(vec![(1, 42, 1000, n, n)])
    }

    #[test]
    fn the_kind_of_signature_is_read_from_the_requirement() {
        assert_eq!(
            classify(DEVELOPER_ID),
            Kind::DeveloperId { team: "MQK467HD9A".into(), identifier: "dev.dockroute.app".into() }
        );
        let quoted_team = "identifier \"dev.dockroute.app\" and anchor apple generic and certificate leaf[subject.OU] = \"AB12CD34EF\"";
        assert_eq!(
            classify(quoted_team),
            Kind::DeveloperId { team: "AB12CD34EF".into(), identifier: "dev.dockroute.app".into() }
        );
        assert_eq!(classify(BUILD_1), Kind::AdHoc);
        assert_eq!(classify(&format!("{BUILD_1} or {BUILD_2}")), Kind::Other, "a hand-written requirement");
        assert_eq!(classify("identifier \"dev.dockroute.app\" and anchor apple"), Kind::Other);
    }

    #[test]
    fn an_ad_hoc_app_updated_in_place_is_trusted_again_with_its_new_hash() {
        let mut trust = AppTrust::default();
        assert_eq!(trust.refresh(stamp(1), || Ok(BUILD_1.into())), Refreshed::Read(BUILD_1.into()));
        assert_eq!(trust.requirement(), Ok(BUILD_1));
        // The same bundle: no second read.
        assert_eq!(trust.refresh(stamp(1), || panic!("read again although nothing changed")), Refreshed::Unchanged);
        // The update replaced the bundle: the new build's hash, not the first one for ever.
        assert_eq!(trust.refresh(stamp(2), || Ok(BUILD_2.into())), Refreshed::Read(BUILD_2.into()));
        assert_eq!(trust.requirement(), Ok(BUILD_2));
        // Touched but re-signed identically.
        assert_eq!(trust.refresh(stamp(3), || Ok(BUILD_2.into())), Refreshed::Same);
    }

    #[test]
    fn a_developer_id_requirement_is_kept_whatever_the_bundle_becomes() {
        let mut trust = AppTrust::default();
        trust.refresh(stamp(1), || Ok(DEVELOPER_ID.into()));
        // An update (same Team ID and bundle id) needs no new read; an ad-hoc build someone put
        // at the same path does not take the trust over.
        assert_eq!(trust.refresh(stamp(2), || Ok(BUILD_1.into())), Refreshed::Unchanged);
        assert_eq!(trust.requirement(), Ok(DEVELOPER_ID));
    }

    #[test]
    fn an_ad_hoc_build_replaced_by_the_signed_release_is_then_pinned() {
        let mut trust = AppTrust::default();
        trust.refresh(stamp(1), || Ok(BUILD_1.into()));
        assert_eq!(trust.refresh(stamp(2), || Ok(DEVELOPER_ID.into())), Refreshed::Read(DEVELOPER_ID.into()));
        assert_eq!(trust.refresh(stamp(3), || Ok(BUILD_2.into())), Refreshed::Unchanged);
        assert_eq!(trust.requirement(), Ok(DEVELOPER_ID));
    }

    #[test]
    fn a_bundle_half_replaced_keeps_the_last_good_requirement_and_is_read_again() {
        let mut trust = AppTrust::default();
        // Unreadable from the start: no requirement, and the reason.
        assert!(matches!(trust.refresh(None, || Err("no such file".into())), Refreshed::Failed(_)));
        assert_eq!(trust.requirement(), Err("no such file"));
        assert_eq!(trust.refresh(stamp(1), || Ok(BUILD_1.into())), Refreshed::Read(BUILD_1.into()));
        // Mid-update: the read fails, the old requirement stays; the next check reads again.
        assert!(matches!(trust.refresh(stamp(2), || Err("not signed at all".into())), Refreshed::Failed(_)));
        assert_eq!(trust.requirement(), Ok(BUILD_1));
        assert_eq!(trust.refresh(stamp(2), || Ok(BUILD_2.into())), Refreshed::Read(BUILD_2.into()));
        // No stamp at all (the files vanished): read every time rather than trust a stale one.
        let mut reads = 0;
        trust.refresh(None, || {
            reads += 1;
            Ok(BUILD_2.into())
        });
        assert_eq!(reads, 1);
    }
}
