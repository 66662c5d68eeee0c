//! Adding the CA to trust stores and removing it again (`ca trust` / `ca untrust`, uninstall).
//! Trusting a root is the user's decision: nothing here runs unless they ask.
//!
//! The decisions are plain logic: which store a system has (`system_store`), the steps for
//! each store (`trust_steps`, `untrust_steps`: files to write or remove, commands to run),
//! and the record of where the CA went (`Record`), so untrust and uninstall remove exactly
//! that. `macos` builds and reads `security`'s commands. `apply` is the thin part that writes
//! files and runs commands.
//!
//! - Debian/Ubuntu: `/usr/local/share/ca-certificates/dockroute-<id>.crt` + `update-ca-certificates`
//!   (what OpenSSL, curl, Python and Go read through `/etc/ssl/certs`).
//! - Fedora/Arch (p11-kit): `trust anchor --store` / `trust anchor --remove`.
//! - A browser's NSS database where the user names one (`--nss DIR`; Chromium and Firefox on
//!   Linux read their own): `certutil -A` / `-D` from libnss3-tools.
//! - macOS: `security add-trusted-cert` in the user's session (macOS asks for the password).

/// In `dockroute_api`: the app runs the same commands in the user's session.
pub use dockroute_api::macos_trust as macos;

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the CA was added; one line of the record each.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// A file in Debian's local CA directory.
    Debian(PathBuf),
    /// A file handed to p11-kit's `trust anchor` (it keeps its own copy).
    P11Kit(PathBuf),
    /// An NSS database directory and the nickname the CA has in it.
    Nss { dir: PathBuf, nickname: String },
    /// macOS: the user's login keychain (`admin` false) or the admin trust domain.
    MacOs { admin: bool, cert: PathBuf },
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Debian(p) => write!(f, "debian\t{}", p.display()),
            Entry::P11Kit(p) => write!(f, "p11-kit\t{}", p.display()),
            Entry::Nss { dir, nickname } => write!(f, "nss\t{}\t{nickname}", dir.display()),
            Entry::MacOs { admin, cert } => {
                write!(f, "{}\t{}", if *admin { "macos-admin" } else { "macos-user" }, cert.display())
            }
        }
    }
}

impl Entry {
    /// For the app and `ca show`: where, in words.
    pub fn describe(&self) -> String {
        match self {
            Entry::Debian(p) => format!("system store ({})", p.display()),
            Entry::P11Kit(p) => format!("system store (p11-kit anchor {})", p.display()),
            Entry::Nss { dir, .. } => format!("NSS database {}", dir.display()),
            Entry::MacOs { admin: true, .. } => "macOS admin trust settings".into(),
            Entry::MacOs { admin: false, .. } => "macOS login keychain".into(),
        }
    }
}

/// Where the CA is trusted: the record file's lines (tab-separated; unknown lines are kept
/// out, never fatal: a record from a newer helper still lets this one remove what it knows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub entries: Vec<Entry>,
}

impl Record {
    pub fn parse(text: &str) -> Record {
        let entries = text
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                match fields.as_slice() {
                    ["debian", p] => Some(Entry::Debian(p.into())),
                    ["p11-kit", p] => Some(Entry::P11Kit(p.into())),
                    ["nss", dir, nickname] => Some(Entry::Nss { dir: dir.into(), nickname: nickname.to_string() }),
                    ["macos-admin", c] => Some(Entry::MacOs { admin: true, cert: c.into() }),
                    ["macos-user", c] => Some(Entry::MacOs { admin: false, cert: c.into() }),
                    _ => None,
                }
            })
            .collect();
        Record { entries }
    }

    pub fn render(&self) -> String {
        self.entries.iter().map(|e| format!("{e}\n")).collect()
    }

    pub fn add(&mut self, e: Entry) {
        if !self.entries.contains(&e) {
            self.entries.push(e);
        }
    }

    pub fn remove(&mut self, e: &Entry) {
        self.entries.retain(|x| x != e);
    }
}

/// The system's own store, by which tool the system has (Debian's first: where both exist,
/// as on Debian with p11-kit installed, `update-ca-certificates` is what fills
/// `/etc/ssl/certs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemStore {
    Debian,
    P11Kit,
    /// `admin`: the admin trust domain in the System keychain (mkcert's choice under sudo);
    /// otherwise the user's own trust settings in their login keychain (the app's, in the
    /// user's session).
    MacOs {
        admin: bool,
    },
}

pub fn system_store(macos: bool, root: bool, has_update_ca_certificates: bool, has_trust: bool) -> Option<SystemStore> {
    match (macos, has_update_ca_certificates, has_trust) {
        (true, _, _) => Some(SystemStore::MacOs { admin: root }),
        (false, true, _) => Some(SystemStore::Debian),
        (false, false, true) => Some(SystemStore::P11Kit),
        _ => None,
    }
}

pub const DEBIAN_DIR: &str = "/usr/local/share/ca-certificates";

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the CA certificate (PEM) here, readable by all.
    WriteCert(PathBuf),
    /// Remove this file if it is there.
    Remove(PathBuf),
    /// Run this command; `ok_codes` beyond 0 mean "already so" (idempotent steps).
    Run { argv: Vec<String>, ok_codes: Vec<i32> },
}

fn run(argv: &[&str]) -> Step {
    Step::Run { argv: argv.iter().map(|s| s.to_string()).collect(), ok_codes: Vec::new() }
}

/// The NSS nickname: names the CA by its id, so two installs never collide.
pub fn nss_nickname(id: &str) -> String {
    format!("Dockroute local CA {id}")
}

/// Where the CA goes in `store` and how.
pub fn trust_steps(store: SystemStore, cert: &Path, id: &str, root: &Path) -> (Entry, Vec<Step>) {
    let cert_s = cert.display().to_string();
    match store {
        SystemStore::Debian => {
            // update-ca-certificates takes only `.crt` files below this directory.
            let file = root.join(DEBIAN_DIR.trim_start_matches('/')).join(format!("dockroute-{id}.crt"));
            let steps = vec![Step::WriteCert(file.clone()), run(&["update-ca-certificates"])];
            (Entry::Debian(file), steps)
        }
        SystemStore::P11Kit => (Entry::P11Kit(cert.to_path_buf()), vec![run(&["trust", "anchor", "--store", &cert_s])]),
        SystemStore::MacOs { admin } => {
            let entry = Entry::MacOs { admin, cert: cert.to_path_buf() };
            (entry, vec![Step::Run { argv: macos::add_trusted_cert(cert, admin), ok_codes: Vec::new() }])
        }
    }
}

pub fn nss_trust_steps(dir: &Path, cert: &Path, id: &str) -> (Entry, Vec<Step>) {
    let db = format!("sql:{}", dir.display());
    let nickname = nss_nickname(id);
    let cert_s = cert.display().to_string();
    // `C,,`: a CA trusted to issue server certificates (and nothing else: no mail, no code).
    let add = run(&["certutil", "-d", &db, "-A", "-t", "C,,", "-n", &nickname, "-i", &cert_s]);
    (Entry::Nss { dir: dir.to_path_buf(), nickname }, vec![add])
}

/// What removes `entry` again. Each step may find it already gone.
pub fn untrust_steps(entry: &Entry) -> Vec<Step> {
    match entry {
        Entry::Debian(file) => vec![
            Step::Remove(file.clone()),
            // --fresh: a plain run rebuilds the bundle without it but leaves its link in
            // /etc/ssl/certs dangling; --fresh removes dangling links and re-adds the rest
            // (Debian's own way to take a local CA out).
            run(&["update-ca-certificates", "--fresh"]),
        ],
        Entry::P11Kit(cert) => {
            // Exit 1 with "no such anchor" when it is already gone.
            vec![Step::Run {
                argv: ["trust", "anchor", "--remove"]
                    .iter()
                    .map(|s| s.to_string())
                    .chain([cert.display().to_string()])
                    .collect(),
                ok_codes: vec![1],
            }]
        }
        Entry::Nss { dir, nickname } => {
            let db = format!("sql:{}", dir.display());
            // certutil exits 255 when the nickname is not in the database.
            vec![Step::Run {
                argv: ["certutil", "-d", &db, "-D", "-n", nickname].iter().map(|s| s.to_string()).collect(),
                ok_codes: vec![255],
            }]
        }
        // "No Trust Settings were found" (already gone) is told apart by its text: `macos`.
        Entry::MacOs { admin, cert } => {
            vec![Step::Run { argv: macos::remove_trusted_cert(cert, *admin), ok_codes: vec![] }]
        }
    }
}

/// Carries out `steps` (the thin part). `cert_pem` is what `WriteCert` writes.
pub fn apply(steps: &[Step], cert_pem: &str) -> Result<(), String> {
    use dockroute_stdx::process::{Cmd, Failure};
    for step in steps {
        match step {
            Step::WriteCert(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                dockroute_stdx::fs::write_atomic(path, cert_pem.as_bytes(), 0o644)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Step::Remove(path) => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            },
            Step::Run { argv, ok_codes } => {
                let cmd = Cmd::new(&argv[0]).args(&argv[1..]);
                match cmd.run() {
                    Ok(_) => {}
                    Err(e) => match &e.failure {
                        Failure::Exit(o) if o.code.is_some_and(|c| ok_codes.contains(&c)) => {}
                        Failure::Exit(o) if argv[0] == "security" => match macos::outcome(o.code, &o.stderr) {
                            macos::Outcome::Done | macos::Outcome::AlreadyGone => {}
                            macos::Outcome::Failed(why) => return Err(why),
                            macos::Outcome::Cancelled => return Err("cancelled in macOS's dialog".into()),
                        },
                        _ => return Err(e.to_string()),
                    },
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_and_skips_lines_it_does_not_know() {
        let mut r = Record::default();
        r.add(Entry::Debian("/usr/local/share/ca-certificates/dockroute-ab12cd34.crt".into()));
        r.add(Entry::Nss { dir: "/root/.pki/nssdb".into(), nickname: "Dockroute local CA ab12cd34".into() });
        r.add(Entry::MacOs { admin: false, cert: "/etc/dockroute/dockroute.ca.pem".into() });
        r.add(Entry::Debian("/usr/local/share/ca-certificates/dockroute-ab12cd34.crt".into()));
        assert_eq!(r.entries.len(), 3, "added once");
        let text = r.render();
        assert_eq!(Record::parse(&text), r);
        let newer = format!("{text}windows\tsomething\n\nnss\tonly-two-fields\n");
        assert_eq!(Record::parse(&newer), r);
        r.remove(&Entry::Debian("/usr/local/share/ca-certificates/dockroute-ab12cd34.crt".into()));
        assert_eq!(r.entries.len(), 2);
    }

    #[test]
    fn the_system_store_is_debians_where_update_ca_certificates_exists_else_p11_kits() {
        assert_eq!(system_store(false, true, true, true), Some(SystemStore::Debian));
        assert_eq!(system_store(false, true, false, true), Some(SystemStore::P11Kit));
        assert_eq!(system_store(false, true, false, false), None);
        assert_eq!(
            system_store(true, true, false, false),
            Some(SystemStore::MacOs { admin: true }),
            "root: the admin domain"
        );
        assert_eq!(system_store(true, false, false, false), Some(SystemStore::MacOs { admin: false }));
    }

    #[test]
    fn trusting_on_debian_writes_a_crt_and_runs_update_ca_certificates_and_untrust_undoes_it() {
        let cert = Path::new("/etc/dockroute/dockroute.ca.pem");
        let (entry, steps) = trust_steps(SystemStore::Debian, cert, "ab12cd34", Path::new("/"));
        let file = PathBuf::from("/usr/local/share/ca-certificates/dockroute-ab12cd34.crt");
        assert_eq!(entry, Entry::Debian(file.clone()));
        assert_eq!(steps, [Step::WriteCert(file.clone()), run(&["update-ca-certificates"])]);
        assert_eq!(untrust_steps(&entry), [Step::Remove(file), run(&["update-ca-certificates", "--fresh"])]);
        let (_, in_root) = trust_steps(SystemStore::Debian, cert, "ab12cd34", Path::new("/tmp/t"));
        assert_eq!(in_root[0], Step::WriteCert("/tmp/t/usr/local/share/ca-certificates/dockroute-ab12cd34.crt".into()));
    }

    #[test]
    fn p11_kit_and_nss_commands_are_the_tools_own_forms() {
        let cert = Path::new("/etc/dockroute/dockroute.ca.pem");
        let (entry, steps) = trust_steps(SystemStore::P11Kit, cert, "ab12cd34", Path::new("/"));
        assert_eq!(steps, [run(&["trust", "anchor", "--store", "/etc/dockroute/dockroute.ca.pem"])]);
        assert!(
            matches!(&untrust_steps(&entry)[0], Step::Run { argv, ok_codes } if argv[..3] == ["trust", "anchor", "--remove"] && ok_codes == &[1])
        );
        let (entry, steps) = nss_trust_steps(Path::new("/home/u/.pki/nssdb"), cert, "ab12cd34");
        assert_eq!(
            steps,
            [run(&[
                "certutil",
                "-d",
                "sql:/home/u/.pki/nssdb",
                "-A",
                "-t",
                "C,,",
                "-n",
                "Dockroute local CA ab12cd34",
                "-i",
                "/etc/dockroute/dockroute.ca.pem"
            ])]
        );
        assert_eq!(
            untrust_steps(&entry),
            [Step::Run {
                argv: ["certutil", "-d", "sql:/home/u/.pki/nssdb", "-D", "-n", "Dockroute local CA ab12cd34"]
                    .map(String::from)
                    .to_vec(),
                ok_codes: vec![255]
            }]
        );
    }

    #[test]
    fn apply_writes_the_cert_removes_files_and_tolerates_what_is_already_gone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/dockroute-x.crt");
        apply(&[Step::WriteCert(file.clone())], "PEM").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "PEM");
        apply(&[Step::Remove(file.clone()), Step::Remove(file.clone())], "").unwrap();
        assert!(!file.exists());
        let e = apply(&[run(&["false"])], "").unwrap_err();
        assert!(e.contains("false"), "{e}");
        apply(&[Step::Run { argv: vec!["false".into()], ok_codes: vec![1] }], "").unwrap();
    }
}
