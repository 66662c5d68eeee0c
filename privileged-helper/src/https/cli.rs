//! `dockroute-helper ca …`: the local CA from the command line, run as root beside the config
//! (the CA's files are root's; the running helper reads the same files).
//!
//! - `show`: the certificate (PEM) and, on stderr, what it may sign and where it is trusted.
//! - `path`: where the certificate is (for `--cacert`, a container's mount, a browser import).
//! - `trust [--nss DIR] [--no-system]`: adds it to the system's store (and an NSS database).
//! - `untrust`: removes it from every store the record names.
//!
//! Each makes the CA if there is none yet (as the helper's first start with `https on` does).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context};

use super::ca::{self, Ca, CaFiles};
use super::trust::{self, Entry, Record};

pub enum CaCommand {
    Show,
    Path,
    Trust { nss: Option<PathBuf>, system: bool },
    Untrust,
}

pub fn run(config_path: &Path, command: CaCommand) -> anyhow::Result<()> {
    let files = CaFiles::for_config(config_path);
    let suffix = match crate::config::Config::load(config_path) {
        Ok(c) => c.dns.suffix,
        Err(e) => return Err(anyhow!("{e}")),
    };
    let ca = || -> anyhow::Result<Ca> {
        let (ca, made) = ca::load_or_make(&files, &suffix, SystemTime::now()).context("local CA")?;
        if made {
            eprintln!("made the local CA {} ({})", ca.id, files.cert.display());
        }
        Ok(ca)
    };
    match command {
        CaCommand::Show => {
            let ca = ca()?;
            let record = read_record(&files);
            eprintln!("local CA {}: may sign {}", ca.id, ca.constraints.in_words());
            let trusted: Vec<String> = record.entries.iter().map(Entry::describe).collect();
            eprintln!(
                "trusted in: {}",
                if trusted.is_empty() { "nothing yet (`ca trust`)".into() } else { trusted.join(", ") }
            );
            print!("{}", ca.cert_pem);
        }
        CaCommand::Path => {
            ca()?;
            println!("{}", files.cert.display());
        }
        CaCommand::Trust { nss, system } => {
            let ca = ca()?;
            let mut plans = Vec::new();
            if system {
                plans.push(system_plan(&files, &ca)?);
            }
            if let Some(dir) = nss {
                plans.push(trust::nss_trust_steps(&dir, &files.cert, &ca.id));
            }
            trust_with(&files, &ca, plans)?.into_iter().for_each(|line| println!("{line}"));
        }
        CaCommand::Untrust => untrust_all(&files)?.into_iter().for_each(|line| println!("{line}")),
    }
    Ok(())
}

/// The steps into this system's own store, by the tools it has.
pub fn system_plan(files: &CaFiles, ca: &Ca) -> anyhow::Result<(Entry, Vec<trust::Step>)> {
    let has = |tool: &str| ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().any(|d| Path::new(d).join(tool).exists());
    let store = trust::system_store(cfg!(target_os = "macos"), is_root(), has("update-ca-certificates"), has("trust"))
        .ok_or_else(|| anyhow!("no system trust store tool found (update-ca-certificates or p11-kit's trust)"))?;
    Ok(trust::trust_steps(store, &files.cert, &ca.id, Path::new("/")))
}

/// Carries out each plan, recording each store at once (so a failure half-way leaves a record
/// of exactly where the CA went).
pub fn trust_with(files: &CaFiles, ca: &Ca, plans: Vec<(Entry, Vec<trust::Step>)>) -> anyhow::Result<Vec<String>> {
    let mut record = read_record(files);
    let mut done = Vec::new();
    for (entry, steps) in plans {
        trust::apply(&steps, &ca.cert_pem).map_err(|e| anyhow!("{}: {e}", entry.describe()))?;
        done.push(format!("trusted in {}", entry.describe()));
        record.add(entry);
        write_record(files, &record)?;
    }
    Ok(done)
}

/// Removes the CA from every store the record names; what was removed leaves the record at
/// once, so a failure half-way leaves a record of exactly what is still there. Idempotent.
pub fn untrust_all(files: &CaFiles) -> anyhow::Result<Vec<String>> {
    untrust_where(files, |_| true)
}

/// `untrust_all` for the entries `pick` chooses; the others stay in the record.
pub fn untrust_where(files: &CaFiles, pick: impl Fn(&Entry) -> bool) -> anyhow::Result<Vec<String>> {
    let mut record = read_record(files);
    let mut done = Vec::new();
    for entry in record.entries.clone().into_iter().filter(|e| pick(e)) {
        trust::apply(&trust::untrust_steps(&entry), "").map_err(|e| anyhow!("{}: {e}", entry.describe()))?;
        done.push(format!("no longer trusted in {}", entry.describe()));
        record.remove(&entry);
        write_record(files, &record)?;
    }
    Ok(done)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn read_record(files: &CaFiles) -> Record {
    std::fs::read_to_string(&files.trust_record).map(|t| Record::parse(&t)).unwrap_or_default()
}

pub fn write_record(files: &CaFiles, record: &Record) -> anyhow::Result<()> {
    if record.entries.is_empty() {
        match std::fs::remove_file(&files.trust_record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => return Ok(()),
        }
    }
    dockroute_stdx::fs::write_atomic(&files.trust_record, record.render().as_bytes(), 0o644)
        .with_context(|| format!("{}", files.trust_record.display()))
}
