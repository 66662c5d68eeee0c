//! What a DNS name may be, for the names the controller derives from Docker and the helper
//! answers: one set of rules both sides check, so a name the controller sends is never refused
//! by the helper for a reason the controller did not report.
//!
//! Names are hostnames (RFC 1123 labels: letters, digits, inner hyphens; 1–63 characters;
//! at most 253 characters in all), compared without case. `_` is left out on purpose: glibc
//! refuses answers whose owner name is not a valid hostname, so such a name would never resolve.

/// The longest name in text form, without the final dot (255 bytes on the wire).
pub const MAX_NAME_LEN: usize = 253;
pub const MAX_LABEL_LEN: usize = 63;

/// Why `label` cannot be one label of a hostname, or None if it can.
pub fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("an empty label".into());
    }
    if label.len() > MAX_LABEL_LEN {
        return Some(format!("a label of {} characters (at most {MAX_LABEL_LEN})", label.len()));
    }
    if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        return Some(format!("{c:?} is not allowed in DNS names (letters, digits and '-' only)"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some("a label may not start or end with '-'".into());
    }
    None
}

/// Why `name` (labels joined by dots, no final dot) is not a hostname, or None if it is.
/// With `wildcard`, a leading `*.` is allowed (it stands for any name below the rest).
pub fn name_problem(name: &str, wildcard: bool) -> Option<String> {
    let rest = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name,
    };
    if name.len() > MAX_NAME_LEN {
        return Some(format!("{} characters (at most {MAX_NAME_LEN})", name.len()));
    }
    rest.split('.').find_map(label_problem)
}

/// `name` in the form names are compared in: lower case, without a final dot.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_labels_pass_and_everything_else_says_why() {
        for ok in ["web", "a", "shop-api-1", "X9", &"a".repeat(63)] {
            assert_eq!(label_problem(ok), None, "{ok}");
        }
        let why = |l: &str| label_problem(l).unwrap();
        assert_eq!(why(""), "an empty label");
        assert_eq!(why(&"a".repeat(64)), "a label of 64 characters (at most 63)");
        assert_eq!(why("my_app"), "'_' is not allowed in DNS names (letters, digits and '-' only)");
        assert!(why("web.1").starts_with("'.'"));
        assert!(why("café").starts_with("'é'"));
        assert_eq!(why("-web"), "a label may not start or end with '-'");
        assert_eq!(why("web-"), "a label may not start or end with '-'");
    }

    #[test]
    fn names_are_checked_label_by_label_and_wildcards_only_where_allowed() {
        assert_eq!(name_problem("api.shop.test", false), None);
        assert_eq!(name_problem("*.shop.test", true), None);
        assert!(name_problem("*.shop.test", false).unwrap().contains("'*'"));
        assert!(name_problem("a.*.test", true).is_some(), "only a leading wildcard");
        assert_eq!(name_problem("shop..test", false).as_deref(), Some("an empty label"));
        assert_eq!(name_problem("shop.test.", false).as_deref(), Some("an empty label"), "no final dot");
        let long = vec!["a".repeat(63); 4].join(".");
        assert_eq!(long.len(), 255);
        assert_eq!(name_problem(&long, false).as_deref(), Some("255 characters (at most 253)"));
        assert_eq!(normalise("Web.Docker."), "web.docker");
    }
}
