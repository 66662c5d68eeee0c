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

/// Reserved for private use (RFC 6761's `.test` and `.example`, RFC 8375's `.home.arpa`,
/// ICANN's `.internal`): never a public name, so answering below them takes nothing from the
/// internet.
pub const PRIVATE_USE: [&str; 4] = ["test", "example", "internal", "home.arpa"];

/// Whether `name` is `zone` or below it (label-wise: `notshop.test` is not below `shop.test`).
pub fn is_below(name: &str, zone: &str) -> bool {
    name == zone || name.strip_suffix(zone).is_some_and(|head| head.ends_with('.'))
}

/// Why an absolute name (a container's `dev.dockroute.domains` entry, normalised, `*.`
/// allowed) may not be claimed, or None. It must lie below the suffix or below a private-use
/// name (labels come with images: an image must not take over `github.com`, or `com`, on the
/// user's machine). The suffix itself and its wildcard are not for labels either: the
/// wildcard would answer every container name that does not exist (a stopped container's, a
/// typo) with the label's container. `suffix` is None until the helper has said it.
pub fn domain_problem(domain: &str, suffix: Option<&str>) -> Option<String> {
    let zone = domain.strip_prefix("*.").unwrap_or(domain);
    let strictly_below = |outer: &str| zone != outer && is_below(zone, outer);
    if let Some(s) = suffix {
        if zone == s {
            return Some(format!("{domain}: .{s} and *.{s} are the containers' own names"));
        }
        if strictly_below(s) {
            return None;
        }
    }
    if PRIVATE_USE.iter().any(|p| strictly_below(p)) {
        return None;
    }
    let allowed: Vec<String> = suffix.into_iter().chain(PRIVATE_USE).map(|d| format!(".{d}")).collect();
    Some(format!("only names below {} are answered", allowed.join(", ")))
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

    #[test]
    fn a_label_may_not_claim_a_public_zone_the_suffix_or_its_wildcard() {
        let outside = "only names below .docker, .test, .example, .internal, .home.arpa are answered";
        for attack in
            ["com", "*.com", "example.com", "github.com", "*.github.com", "test", "*.test", "arpa", "home.arpa"]
        {
            assert_eq!(domain_problem(attack, Some("docker")).as_deref(), Some(outside), "{attack}");
        }
        for own in ["docker", "*.docker"] {
            let why = domain_problem(own, Some("docker")).unwrap();
            assert!(why.contains("the containers' own names"), "{own}: {why}");
        }
        for ok in
            ["shop.test", "*.shop.test", "a.b.internal", "x.home.arpa", "db.example", "extra.docker", "*.shop.docker"]
        {
            assert_eq!(domain_problem(ok, Some("docker")), None, "{ok}");
        }
        assert_eq!(
            domain_problem("extra.docker", None).as_deref(),
            Some("only names below .test, .example, .internal, .home.arpa are answered"),
            "before the suffix is known, only the private-use names"
        );
        assert!(is_below("a.shop.test", "shop.test") && !is_below("notshop.test", "shop.test"));
    }
}
