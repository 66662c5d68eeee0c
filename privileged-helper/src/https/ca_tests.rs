use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::*;

use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

/// rustls's own verifier (webpki), with only our CA as a root.
fn verify(ca: &Ca, leaf: &[u8], name: &str, at: SystemTime) -> Result<(), rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.cert_der.clone())).unwrap();
    let provider = crate::https::crypto();
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
    let at = UnixTime::since_unix_epoch(at.duration_since(SystemTime::UNIX_EPOCH).unwrap());
    let name = ServerName::try_from(name.to_string()).unwrap();
    verifier.verify_server_cert(&CertificateDer::from(leaf.to_vec()), &[], &name, &[], at).map(|_| ())
}

#[test]
fn the_ca_carries_critical_name_constraints_for_the_suffix_private_zones_and_ranges_only() {
    let ca = Ca::make("docker", now()).unwrap();
    let cert = parse(&ca.cert_der);
    let ext = cert.extensions().iter().find(|e| matches!(e.parsed_extension(), ParsedExtension::NameConstraints(_)));
    let ext = ext.expect("a name-constraints extension");
    assert!(ext.critical, "clients that do not understand it must refuse the CA, not ignore it");
    let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() else { unreachable!() };
    assert!(nc.excluded_subtrees.is_none());
    let mut dns = Vec::new();
    let mut ip = Vec::new();
    for s in nc.permitted_subtrees.as_ref().unwrap() {
        match s.base {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) => ip.push(b.to_vec()),
            ref other => panic!("unexpected subtree {other:?}"),
        }
    }
    assert_eq!(dns, ["docker", "test", "example", "internal", "home.arpa"]);
    // Address and mask, as RFC 5280 writes an IP subtree: 10.0.0.0/8 first, 2001:2::/48 last.
    assert_eq!(ip[0], [10, 0, 0, 0, 255, 0, 0, 0]);
    assert!(ip.contains(&vec![198, 18, 0, 0, 255, 254, 0, 0]), "the benchmarking range our tests use");
    let last = ip.last().unwrap();
    assert_eq!(last.len(), 32);
    assert_eq!(&last[..6], [0x20, 0x01, 0, 2, 0, 0]);
    assert_eq!(&last[16..], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(ip.len(), 7);
    // A CA that signs leaves only, not other CAs.
    let bc = cert.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca);
    assert_eq!(bc.value.path_len_constraint, Some(0));
    assert!(cert.key_usage().unwrap().unwrap().value.key_cert_sign());
    assert!(ca.constraints.in_words().starts_with("names *.docker, *.test, *.example, *.internal, *.home.arpa"));
}

#[test]
fn a_leaf_for_a_container_name_verifies_under_the_ca() {
    let ca = Ca::make("docker", now()).unwrap();
    for name in ["web.docker", "admin.web.docker", "shop.test", "db.home.arpa"] {
        let (leaf, _key) = ca.issue(name, now(), crate::https::leaf::LEAF_LIFETIME).unwrap();
        verify(&ca, &leaf, name, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cert = parse(&leaf);
        assert_eq!(
            cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp(),
            (crate::https::leaf::LEAF_LIFETIME + CLOCK_SLACK).as_secs() as i64
        );
    }
    let (leaf, _) = ca.issue("web.docker", now(), crate::https::leaf::LEAF_LIFETIME).unwrap();
    assert!(verify(&ca, &leaf, "api.docker", now()).is_err(), "a leaf is for its own name only");
    let later = now() + crate::https::leaf::LEAF_LIFETIME + Duration::from_secs(1);
    assert!(verify(&ca, &leaf, "web.docker", later).is_err(), "expired");
}

#[test]
fn the_issuer_refuses_github_com_and_anything_outside_its_constraints() {
    let ca = Ca::make("docker", now()).unwrap();
    for attack in [
        "github.com",
        "docker",
        "test",
        "home.arpa",
        "*.docker",
        "web.docker.com",
        "dockerx",
        "evil.arpa",
        "a b.docker",
    ] {
        let e = ca.issue(attack, now(), Duration::from_secs(60)).unwrap_err();
        assert!(!e.is_empty(), "{attack}");
    }
    assert!(issuable("github.com", "docker").unwrap_err().contains("the local CA signs only names *.docker"));
    assert_eq!(issuable("Web.Docker.", "docker").unwrap(), "web.docker");
}

/// What a thief with the CA's key could do: sign `github.com` with rcgen directly, past
/// `issuable`. The client refuses it by the constraints (and `openssl verify` in the e2e test).
#[test]
fn a_leaf_forged_for_github_com_with_the_stolen_key_is_rejected_by_the_constraints() {
    let ca = Ca::make("docker", now()).unwrap();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    for (forged_for, san) in [("github.com", "github.com"), ("ip", "8.8.8.8")] {
        let mut params = CertificateParams::new(vec![san.to_string()]).unwrap();
        params.not_before = (now() - CLOCK_SLACK).into();
        params.not_after = (now() + Duration::from_secs(3600)).into();
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        let forged = params.signed_by(&key, &issuer).unwrap();
        let e = verify(&ca, forged.der(), san, now()).unwrap_err();
        assert!(format!("{e:?}").contains("NameConstraintViolation"), "{forged_for}: {e:?}");
    }
}

#[test]
fn the_ca_files_load_back_as_the_same_ca_and_the_key_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let files = CaFiles::for_config(&dir.path().join("dockroute.conf"));
    let (made, created) = load_or_make(&files, "docker", now()).unwrap();
    assert!(created);
    assert_eq!(std::fs::metadata(&files.key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&files.cert).unwrap().permissions().mode() & 0o777, 0o644);
    let (loaded, created) = load_or_make(&files, "docker", now()).unwrap();
    assert!(!created);
    assert_eq!((loaded.cert_der.clone(), loaded.id.clone()), (made.cert_der.clone(), made.id.clone()));
    assert_eq!(loaded.not_after, made.not_after);
    // A leaf from the loaded CA verifies under the certificate written first.
    let (leaf, _) = loaded.issue("web.docker", now(), Duration::from_secs(3600)).unwrap();
    verify(&made, &leaf, "web.docker", now()).unwrap();
    // Another suffix: a new CA (the old one cannot sign the new names).
    let (other, created) = load_or_make(&files, "box", now()).unwrap();
    assert!(created && other.id != made.id);
    assert_eq!(other.suffix(), "box");
    // A key others can read is refused, not used.
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = load_or_make(&files, "box", now()).err().unwrap().to_string();
    assert!(e.contains("chmod 600"), "{e}");
}

#[test]
fn a_certificate_that_is_not_the_keys_is_refused() {
    let a = Ca::make("docker", now()).unwrap();
    let b = Ca::make("docker", now()).unwrap();
    let e = Ca::from_pem(&a.key_pem(), &b.cert_pem).err().unwrap();
    assert!(e.contains("not the CA key's"), "{e}");
}
