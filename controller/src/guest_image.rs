//! The guest image for the engine's CPU. The app ships one `docker save` tarball per CPU,
//! `dockroute-guest-<version>-amd64.tar` and `-arm64.tar`, each holding the image
//! `dockroute-guest:<version>` built for that CPU (its config names the architecture). Which
//! one to load follows from the engine's `Architecture` (`docker info`): `pick_tarball` and
//! `judge` decide, without I/O; `ensure` is the thin driver.
//!
//! Both CPUs share one image reference, and Docker runs the one for its CPU because an image
//! already there is used only when its architecture is the engine's: one of another CPU (say,
//! loaded from an x86-only bundle onto Apple Silicon, where it would run emulated or not at
//! all) is replaced by loading the right tarball, which moves the tag, and `guest::ensure`
//! recreates a container whose image id is not the tag's.

use std::path::{Path, PathBuf};

use bollard::query_parameters::ImportImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

/// The CPUs the guest is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    Amd64,
    Arm64,
}

impl Cpu {
    /// From `docker info`'s `Architecture` (uname's: x86_64, aarch64), an image's (Go's:
    /// amd64, arm64) or Rust's `std::env::consts::ARCH` (x86_64, aarch64).
    pub fn parse(arch: &str) -> Option<Cpu> {
        match arch.trim().to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" | "x86-64" | "x64" => Some(Cpu::Amd64),
            "aarch64" | "arm64" | "arm64/v8" | "armv8" => Some(Cpu::Arm64),
            _ => None,
        }
    }

    /// The name Docker images and our tarballs use.
    pub fn name(self) -> &'static str {
        match self {
            Cpu::Amd64 => "amd64",
            Cpu::Arm64 => "arm64",
        }
    }
}

/// The tarball of `version` for `cpu`; `None`: the single-CPU name older builds and
/// `GUEST_TAR` write, for the build machine's CPU.
pub fn tarball_name(version: &str, cpu: Option<Cpu>) -> String {
    match cpu {
        Some(cpu) => format!("dockroute-guest-{version}-{}.tar", cpu.name()),
        None => format!("dockroute-guest-{version}.tar"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickError {
    /// The engine reports a CPU no guest is built for.
    UnknownEngineCpu(String),
    /// No tarball for the engine's CPU among the files.
    Missing { cpu: Cpu, wanted: String },
}

impl std::fmt::Display for PickError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PickError::UnknownEngineCpu(arch) => write!(
                f,
                "the Docker engine reports the CPU architecture {arch:?}; Dockroute's guest is built for x86_64 and arm64 only"
            ),
            PickError::Missing { cpu, wanted } => write!(
                f,
                "no guest image for the Docker engine's CPU ({}): {wanted} is not among the app's files; install Dockroute again",
                cpu.name()
            ),
        }
    }
}

impl std::error::Error for PickError {}

/// The tarball to load for an engine reporting `engine_arch`, from the files `available` (the
/// app's resources, the files beside its binary). The per-CPU name first; the single-CPU name
/// only when the app's own CPU (`app_arch`) is the engine's, since that is the CPU it was
/// built for.
pub fn pick_tarball(
    engine_arch: &str,
    app_arch: &str,
    version: &str,
    available: &[PathBuf],
) -> Result<PathBuf, PickError> {
    let cpu = Cpu::parse(engine_arch).ok_or_else(|| PickError::UnknownEngineCpu(engine_arch.to_string()))?;
    let named = |name: &str| available.iter().find(|p| p.file_name().is_some_and(|f| f == name)).cloned();
    let wanted = tarball_name(version, Some(cpu));
    if let Some(exact) = named(&wanted) {
        return Ok(exact);
    }
    if Cpu::parse(app_arch) == Some(cpu) {
        if let Some(single) = named(&tarball_name(version, None)) {
            return Ok(single);
        }
    }
    Err(PickError::Missing { cpu, wanted })
}

/// What to do with an image already present under our reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Use,
    /// Built for another CPU (named): load the right one over it.
    Replace(String),
}

/// Whether an image whose config says `image_arch` suits an engine on `engine`. An image that
/// names no architecture, or an engine whose CPU we do not know, cannot be judged: it is used,
/// as it always was.
pub fn judge(engine: Option<Cpu>, image_arch: Option<&str>) -> Judged {
    match (engine, image_arch.map(str::trim).filter(|a| !a.is_empty())) {
        (Some(engine), Some(arch)) if Cpu::parse(arch) != Some(engine) => Judged::Replace(arch.to_string()),
        _ => Judged::Use,
    }
}

/// Where the tarballs may be: `file` (the `--guest-image-tar` override) or else the tarball
/// for the engine's CPU in one of `dirs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tarballs<'a> {
    pub file: Option<&'a Path>,
    pub dirs: &'a [PathBuf],
}

/// Makes `image` present for the engine's CPU (`engine_arch`, from `docker info`), loading
/// it when it is missing or of another CPU. Returns its image id.
pub async fn ensure(docker: &Docker, image: &str, tarballs: Tarballs<'_>, engine_arch: &str) -> anyhow::Result<String> {
    let engine = Cpu::parse(engine_arch);
    if let Ok(found) = docker.inspect_image(image).await {
        match judge(engine, found.architecture.as_deref()) {
            Judged::Use => return Ok(found.id.unwrap_or_default()),
            Judged::Replace(arch) => {
                tracing::warn!(
                    "the guest image {image} is for {arch}, the Docker engine runs on {engine_arch}: replacing it"
                )
            }
        }
    }
    let path = match tarballs.file {
        Some(file) => file.to_path_buf(),
        None => {
            let available = list_tarballs(tarballs.dirs);
            pick_tarball(engine_arch, std::env::consts::ARCH, env!("CARGO_PKG_VERSION"), &available).map_err(|e| {
                let dirs: Vec<String> = tarballs.dirs.iter().map(|d| d.display().to_string()).collect();
                anyhow::anyhow!("the guest image {image} is not loaded, and {e} (looked in: {})", dirs.join(", "))
            })?
        }
    };
    load(docker, &path).await?;
    let loaded = docker
        .inspect_image(image)
        .await
        .map_err(|e| anyhow::anyhow!("{} did not contain {image}: {e}", path.display()))?;
    if let Judged::Replace(arch) = judge(engine, loaded.architecture.as_deref()) {
        anyhow::bail!("{} holds a guest image for {arch}, but the Docker engine runs on {engine_arch}", path.display());
    }
    tracing::info!("loaded the guest image {image} from {}", path.display());
    Ok(loaded.id.unwrap_or_default())
}

/// The guest tarballs in `dirs` (any version: `pick_tarball` chooses by name).
fn list_tarballs(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("dockroute-guest-") && name.ends_with(".tar") && path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

async fn load(docker: &Docker, path: &Path) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(path).await.map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let mut stream =
        docker.import_image(ImportImageOptionsBuilder::default().build(), bollard::body_full(bytes.into()), None);
    while let Some(r) = stream.next().await {
        r.map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| Path::new("/Applications/Dockroute.app/Contents/Resources").join(n)).collect()
    }

    #[test]
    fn every_spelling_of_both_cpus_is_understood() {
        for arch in ["x86_64", "amd64", "X86_64", " x86-64 "] {
            assert_eq!(Cpu::parse(arch), Some(Cpu::Amd64), "{arch}");
        }
        // Docker Desktop on Apple Silicon reports the VM's uname (aarch64); images say arm64.
        for arch in ["aarch64", "arm64", "ARM64", "arm64/v8"] {
            assert_eq!(Cpu::parse(arch), Some(Cpu::Arm64), "{arch}");
        }
        for arch in ["", "armv7l", "ppc64le", "s390x", "riscv64", "i386"] {
            assert_eq!(Cpu::parse(arch), None, "{arch}");
        }
    }

    #[test]
    fn the_tarball_for_the_engines_cpu_is_picked() {
        let both = files(&["dockroute-guest-0.3.0-amd64.tar", "dockroute-guest-0.3.0-arm64.tar"]);
        for (engine, want) in [("x86_64", "amd64"), ("aarch64", "arm64"), ("arm64", "arm64"), ("amd64", "amd64")] {
            // The app's own CPU does not matter: an x86 app may drive an arm64 engine (Rosetta).
            for app in ["x86_64", "aarch64"] {
                let got = pick_tarball(engine, app, "0.3.0", &both).unwrap();
                assert_eq!(got, files(&[&format!("dockroute-guest-0.3.0-{want}.tar")])[0], "{engine} from {app}");
            }
        }
    }

    #[test]
    fn the_single_cpu_tarball_serves_only_the_apps_own_cpu() {
        let single = files(&["dockroute-guest-0.3.0.tar"]);
        assert_eq!(pick_tarball("x86_64", "x86_64", "0.3.0", &single), Ok(single[0].clone()));
        assert_eq!(pick_tarball("aarch64", "aarch64", "0.3.0", &single), Ok(single[0].clone()));
        let e = pick_tarball("aarch64", "x86_64", "0.3.0", &single).unwrap_err();
        assert_eq!(e, PickError::Missing { cpu: Cpu::Arm64, wanted: "dockroute-guest-0.3.0-arm64.tar".into() });
        assert_eq!(
            e.to_string(),
            "no guest image for the Docker engine's CPU (arm64): dockroute-guest-0.3.0-arm64.tar is not among the app's files; install Dockroute again"
        );
        // The per-CPU file wins over the single one.
        let mixed = files(&["dockroute-guest-0.3.0.tar", "dockroute-guest-0.3.0-amd64.tar"]);
        assert_eq!(pick_tarball("x86_64", "x86_64", "0.3.0", &mixed), Ok(mixed[1].clone()));
    }

    #[test]
    fn other_versions_and_cpus_are_clear_errors() {
        let old = files(&["dockroute-guest-0.2.0-amd64.tar", "dockroute-guest-0.2.0.tar", "other.tar"]);
        let e = pick_tarball("x86_64", "x86_64", "0.3.0", &old).unwrap_err();
        assert!(matches!(e, PickError::Missing { cpu: Cpu::Amd64, .. }), "{e}");
        assert!(pick_tarball("x86_64", "x86_64", "0.3.0", &[]).is_err());
        let e = pick_tarball("riscv64", "x86_64", "0.3.0", &old).unwrap_err();
        assert_eq!(e, PickError::UnknownEngineCpu("riscv64".into()));
        assert!(e.to_string().contains("\"riscv64\"") && e.to_string().contains("x86_64 and arm64 only"), "{e}");
    }

    #[test]
    fn an_image_of_another_cpu_is_replaced() {
        assert_eq!(judge(Some(Cpu::Arm64), Some("arm64")), Judged::Use);
        assert_eq!(judge(Some(Cpu::Amd64), Some("amd64")), Judged::Use);
        assert_eq!(judge(Some(Cpu::Arm64), Some("amd64")), Judged::Replace("amd64".into()));
        assert_eq!(judge(Some(Cpu::Amd64), Some("arm64")), Judged::Replace("arm64".into()));
        assert_eq!(judge(Some(Cpu::Amd64), Some("s390x")), Judged::Replace("s390x".into()));
        // Nothing to judge by: used, as before.
        assert_eq!(judge(Some(Cpu::Arm64), None), Judged::Use);
        assert_eq!(judge(Some(Cpu::Arm64), Some(" ")), Judged::Use);
        assert_eq!(judge(None, Some("amd64")), Judged::Use);
    }

    #[test]
    fn tarballs_are_found_in_the_given_dirs_only() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for name in ["dockroute-guest-1.0.0-arm64.tar", "dockroute-guest-notes.txt", "busybox.tar"] {
            std::fs::write(a.path().join(name), b"").unwrap();
        }
        std::fs::create_dir(b.path().join("dockroute-guest-dir.tar")).unwrap();
        std::fs::write(b.path().join("dockroute-guest-1.0.0.tar"), b"").unwrap();
        let missing = a.path().join("nope");
        let found = list_tarballs(&[a.path().into(), missing, b.path().into()]);
        assert_eq!(
            found,
            [a.path().join("dockroute-guest-1.0.0-arm64.tar"), b.path().join("dockroute-guest-1.0.0.tar")]
        );
    }
}
