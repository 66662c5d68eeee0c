//! The HMAC-SHA256 tags that prove knowledge of the shared secret. `Secret` itself lives in the
//! API crate (the app hands it to the helper); its labels live here, with the protocol.

pub const LABEL_AUTH: &[u8] = b"dockroute/1 auth";
pub const LABEL_WELCOME: &[u8] = b"dockroute/1 welcome";
pub const LABEL_STALE: &[u8] = b"dockroute/1 stale";

#[cfg(test)]
mod tests {
    use super::*;
    use dockroute_api::Secret;

    #[test]
    fn a_tag_made_for_one_message_kind_is_refused_for_every_other() {
        let s = Secret::new(vec![1; 32]).unwrap();
        let labels = [LABEL_AUTH, LABEL_WELCOME, LABEL_STALE];
        for (i, a) in labels.iter().enumerate() {
            let t = s.tag(a, &[b"same body"]);
            for (j, b) in labels.iter().enumerate() {
                assert_eq!(s.verify(b, &[b"same body"], &t), i == j, "{:?} vs {:?}", a, b);
            }
        }
    }
}
