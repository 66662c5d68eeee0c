//! The local CA: one per install, made on first use, able to sign nothing but our names.
//!
//! Its certificate carries a critical X.509 name-constraints extension (RFC 5280 4.2.1.10)
//! permitting only DNS names below the suffix (`docker`) and the private-use zones labels may
//! use (`dns_name::PRIVATE_USE`), and IP addresses in the private ranges we route
//! (`address_space::private_ranges`). OpenSSL, rustls/webpki, Apple and Chromium honour it, so
//! whoever steals the key still cannot make a certificate for `github.com` that this machine
//! accepts. The issuer refuses such names itself too (`issuable`), before any signing.
//!
//! Files beside the config (like the secret and the share's state): `dockroute.ca.key` (the
//! key, PKCS#8 PEM, 0600), `dockroute.ca.pem` (the certificate, 0644: it is public, and a
//! container may mount it). Leaves are never written: they live in memory (`leaf.rs`).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dockroute_api::{address_space, dns_name};
use ipnet::IpNet;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints, PublicKeyData, PKCS_ECDSA_P256_SHA256,
};

/// The CA's life. It is installed into trust stores by hand (the user's consent), so it should
/// not need that often; what bounds the harm of a stolen key is the name constraints, not time.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Leaves are made before the CA's `not_before` would matter to a client whose clock is behind
/// (a container in a VM that slept): a little slack, never days.
pub const CLOCK_SLACK: Duration = Duration::from_secs(3600);

/// What the CA may sign, in the words the certificate says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    /// DNS subtrees: each permits itself and every name below it.
    pub dns: Vec<String>,
    pub ip: Vec<IpNet>,
}

impl Constraints {
    pub fn for_suffix(suffix: &str) -> Constraints {
        let suffix = dns_name::normalise(suffix);
        let private = dns_name::PRIVATE_USE.iter().map(|z| z.to_string()).filter(|z| *z != suffix);
        let dns = std::iter::once(suffix.clone()).chain(private).collect();
        Constraints { dns, ip: address_space::private_ranges() }
    }

    /// For the app and `ca show`: one line a user can read.
    pub fn in_words(&self) -> String {
        let dns: Vec<String> = self.dns.iter().map(|d| format!("*.{d}")).collect();
        let ip: Vec<String> = self.ip.iter().map(ToString::to_string).collect();
        format!("names {} and addresses in {} only", dns.join(", "), ip.join(", "))
    }

    fn to_rcgen(&self) -> NameConstraints {
        let dns = self.dns.iter().map(|d| GeneralSubtree::DnsName(d.clone()));
        let ip =
            self.ip.iter().map(|n| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(n.addr(), n.prefix_len())));
        NameConstraints { permitted_subtrees: dns.chain(ip).collect(), excluded_subtrees: Vec::new() }
    }
}

/// The name a leaf may be issued for (lower case), or why not: a hostname (no wildcard, no
/// address) strictly below the suffix or a private-use zone — the constraints' DNS subtrees
/// minus the zone apexes themselves, which are never a container's name.
pub fn issuable(name: &str, suffix: &str) -> Result<String, String> {
    let name = dns_name::normalise(name);
    if let Some(why) = dns_name::name_problem(&name, false) {
        return Err(format!("{name:?}: {why}"));
    }
    let below = |zone: &str| name != zone && dns_name::is_below(&name, zone);
    if below(suffix) || dns_name::PRIVATE_USE.iter().any(|z| below(z)) {
        return Ok(name);
    }
    Err(format!("{name}: the local CA signs only {}", Constraints::for_suffix(suffix).in_words()))
}

/// The CA's certificate and key, loaded or just made.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub constraints: Constraints,
    pub not_after: SystemTime,
    /// A short fingerprint (hex of the key's SHA-256 start): names the trust-store files.
    pub id: String,
}

/// Where the CA's files live for a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub key: PathBuf,
    pub cert: PathBuf,
    /// Where the CA was added to trust stores (so untrust and uninstall remove exactly that).
    pub trust_record: PathBuf,
}

impl CaFiles {
    pub fn for_config(config: &Path) -> CaFiles {
        CaFiles {
            key: config.with_file_name("dockroute.ca.key"),
            cert: config.with_file_name("dockroute.ca.pem"),
            trust_record: config.with_file_name("dockroute.ca.trust"),
        }
    }
}

impl Ca {
    /// A new CA for `suffix`, valid from `now` (a little earlier, for clocks behind ours).
    pub fn make(suffix: &str, now: SystemTime) -> Result<Ca, String> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("CA key: {e}"))?;
        let not_before = now - CLOCK_SLACK;
        Ca::assemble(key, suffix, not_before, not_before + CA_LIFETIME)
    }

    /// The CA from its key and certificate files' text. The certificate's validity and suffix
    /// are read back from it; a certificate that is not the key's is refused.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Ca, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("CA key: {e}"))?;
        let facts = read_cert(cert_pem)?;
        let ca = Ca::assemble(key, &facts.suffix, facts.not_before, facts.not_after)?;
        if ca.public_key_der() != facts.public_key {
            return Err("the CA certificate is not the CA key's".into());
        }
        // Keep the certificate as it is on disk (the trust stores hold exactly these bytes).
        Ok(Ca { cert_pem: cert_pem.to_string(), cert_der: facts.der, ..ca })
    }

    fn assemble(key: KeyPair, suffix: &str, not_before: SystemTime, not_after: SystemTime) -> Result<Ca, String> {
        let id = fingerprint(&key.subject_public_key_info());
        let constraints = Constraints::for_suffix(suffix);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Dockroute");
        dn.push(DnType::CommonName, format!("Dockroute local CA {id} (.{suffix})"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.name_constraints = Some(constraints.to_rcgen());
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(|e| format!("CA certificate: {e}"))?;
        Ok(Ca { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), params, key, constraints, not_after, id })
    }

    pub fn suffix(&self) -> &str {
        &self.constraints.dns[0]
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn public_key_der(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    /// A leaf certificate for `name` (checked by `issuable`), valid `life` from `now`, with a
    /// fresh key. Returns (certificate DER, key PKCS#8 DER).
    pub fn issue(&self, name: &str, now: SystemTime, life: Duration) -> Result<(Vec<u8>, Vec<u8>), String> {
        let name = issuable(name, self.suffix())?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| format!("leaf key: {e}"))?;
        let mut params = CertificateParams::new(vec![name.clone()]).map_err(|e| format!("{name}: {e}"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.clone());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = (now - CLOCK_SLACK).into();
        params.not_after = (now + life).min(self.not_after).into();
        params.serial_number = Some(random_serial()?);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(|e| format!("{name}: {e}"))?;
        Ok((cert.der().to_vec(), key.serialize_der()))
    }
}

fn random_serial() -> Result<rcgen::SerialNumber, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("random serial: {e}"))?;
    bytes[0] &= 0x7f; // a positive INTEGER
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

fn fingerprint(public_key_der: &[u8]) -> String {
    use sha2::Digest;
    dockroute_stdx::hex::encode(&sha2::Sha256::digest(public_key_der)[..4])
}

/// What `from_pem` needs back from the certificate file.
struct CertFacts {
    der: Vec<u8>,
    public_key: Vec<u8>,
    suffix: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

fn read_cert(pem_text: &str) -> Result<CertFacts, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| format!("CA certificate: {e}"))?;
    let pem = pem.contents;
    let (_, cert) = x509_parser::parse_x509_certificate(&pem).map_err(|e| format!("CA certificate: {e}"))?;
    let secs = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    let suffix = first_dns_constraint(&cert).ok_or("CA certificate without DNS name constraints")?;
    Ok(CertFacts {
        public_key: cert.public_key().raw.to_vec(),
        not_before: secs(cert.validity().not_before),
        not_after: secs(cert.validity().not_after),
        suffix,
        der: pem,
    })
}

/// The first permitted DNS subtree: the suffix (`Constraints::for_suffix` puts it first).
pub fn first_dns_constraint(cert: &x509_parser::certificate::X509Certificate<'_>) -> Option<String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    cert.extensions().iter().find_map(|ext| match ext.parsed_extension() {
        ParsedExtension::NameConstraints(nc) => nc.permitted_subtrees.as_ref()?.iter().find_map(|s| match s.base {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        }),
        _ => None,
    })
}

/// Loads the CA for `files`, or makes one (and writes it) when there is none or it does not
/// cover `suffix` any more (the config's `dns-suffix` changed). Returns whether it was made.
/// A key file others can read is refused, like the secret file.
pub fn load_or_make(files: &CaFiles, suffix: &str, now: SystemTime) -> io::Result<(Ca, bool)> {
    let ctx = |what: &Path, e: String| io::Error::other(format!("{}: {e}", what.display()));
    match (std::fs::read_to_string(&files.key), std::fs::read_to_string(&files.cert)) {
        (Ok(key), Ok(cert)) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.key)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(ctx(&files.key, format!("mode {:o}; run chmod 600 on it", mode & 0o777)));
            }
            let ca = Ca::from_pem(&key, &cert).map_err(|e| ctx(&files.cert, e))?;
            if ca.suffix() == suffix && ca.not_after > now + CA_LIFETIME / 10 {
                return Ok((ca, false));
            }
            tracing::warn!(
                "https: the local CA covers .{} until {:?}; making a new one for .{suffix}",
                ca.suffix(),
                ca.not_after
            );
        }
        (Err(e), _) | (_, Err(e)) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let ca = Ca::make(suffix, now).map_err(|e| ctx(&files.cert, e))?;
    // The key first: a certificate without its key would be useless and refused next time.
    dockroute_stdx::fs::write_atomic(&files.key, ca.key_pem().as_bytes(), 0o600)?;
    dockroute_stdx::fs::write_atomic(&files.cert, ca.cert_pem.as_bytes(), 0o644)?;
    Ok((ca, true))
}

#[cfg(test)]
#[path = "ca_tests.rs"]
mod tests;
