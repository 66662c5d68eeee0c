//! The helper sidecar of the macOS builds, checked on Linux: `scripts/package.sh
//! --stage-mac-helpers` stages the helpers (a recording `lipo` stands in for Apple's), then every
//! lookup `cargo tauri build --target T` makes for `bundle.externalBin` is replayed against the
//! result with tauri's own code (tauri-utils), for T = universal-apple-darwin,
//! aarch64-apple-darwin and x86_64-apple-darwin. The lookups, from the sources of the versions in
//! Cargo.lock and of tauri-cli 2.12:
//! - tauri-cli `src/interface/rust/desktop.rs` (`build`, l. 168-190): for universal-apple-darwin
//!   one `cargo build` per CPU, `["aarch64-apple-darwin", "x86_64-apple-darwin"]`, then `lipo`;
//!   any other target is one build for that target.
//! - tauri-build `src/lib.rs` (`try_build`, l. 735-741, and `copy_binaries`, l. 139-165): each
//!   build's build script resolves `external_binaries(paths, TARGET, Target::from_triple(TARGET))`
//!   through `ResourcePaths::new(.., true)` (an error for a missing file) and copies each to
//!   its file name without `-TARGET`.
//! - tauri-bundler `src/bundle/settings.rs` (`SettingsBuilder::build`, l. 985-995, and
//!   `Settings::copy_binaries`, l. 1203-1220): the bundler resolves them once more with the
//!   *invocation's* target (`universal-apple-darwin` for a universal build) and copies each into
//!   the .app as its file name without `-{target}`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tauri_utils::platform::Target;
use tauri_utils::resources::{external_binaries, ResourcePaths};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const ARM: &[u8] = b"helper built for aarch64-apple-darwin";
const INTEL: &[u8] = b"helper built for x86_64-apple-darwin";

/// `bundle.externalBin` of the config package.sh bundles with (relative to src-tauri/).
fn external_bin() -> Vec<String> {
    let path = Path::new(REPO).join("src-tauri/tauri.bundle.conf.json");
    let conf: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let bins: Vec<String> = serde_json::from_value(conf["bundle"]["externalBin"].clone()).unwrap();
    assert_eq!(bins, ["binaries/dockroute-helper"], "the test knows this sidecar");
    bins
}

/// The CPU builds tauri-cli runs for `--target target` (desktop.rs, `build`).
fn cargo_builds(target: &str) -> Vec<&str> {
    if target == "universal-apple-darwin" {
        vec!["aarch64-apple-darwin", "x86_64-apple-darwin"]
    } else {
        vec![target]
    }
}

/// One lookup as tauri makes it for `triple`: the files found (an error names a missing one),
/// each with the name it gets where tauri copies it.
fn lookup(src_tauri: &Path, bins: &[String], triple: &str) -> Result<Vec<(PathBuf, String)>, String> {
    let absolute: Vec<String> = bins.iter().map(|b| src_tauri.join(b).to_string_lossy().into_owned()).collect();
    let paths = external_binaries(&absolute, triple, &Target::from_triple(triple));
    ResourcePaths::new(&paths, true)
        .map(|found| {
            let path = found.map_err(|e| format!("{triple}: {e}"))?;
            let name = path.file_name().unwrap().to_string_lossy().replace(&format!("-{triple}"), "");
            Ok((path, name))
        })
        .collect()
}

/// Stages with package.sh into a fresh `src-tauri/binaries` stand-in; returns its src-tauri dir.
fn stage(dir: &Path) -> PathBuf {
    let src_tauri = dir.join("src-tauri");
    fs::create_dir_all(src_tauri.join("binaries")).unwrap();
    let (arm, intel) = (dir.join("arm"), dir.join("intel"));
    fs::write(&arm, ARM).unwrap();
    fs::write(&intel, INTEL).unwrap();
    // lipo -create -output OUT IN...: the recording writes what it was given, in order.
    let lipo = dir.join("lipo");
    fs::write(
        &lipo,
        "#!/bin/sh\n[ \"$1 $2\" = \"-create -output\" ] || exit 64\nout=$3; shift 3\ncat \"$@\" >\"$out\"\n",
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&lipo).status().unwrap();
    assert!(status.success());
    let out = Command::new("bash")
        .arg(Path::new(REPO).join("scripts/package.sh"))
        .arg("--stage-mac-helpers")
        .args([src_tauri.join("binaries"), arm, intel])
        .env("LIPO", &lipo)
        .output()
        .unwrap();
    assert!(out.status.success(), "package.sh --stage-mac-helpers: {}", String::from_utf8_lossy(&out.stderr));
    src_tauri
}

#[test]
fn every_lookup_of_a_mac_build_finds_the_helper_package_sh_staged() {
    let dir = tempfile::tempdir().unwrap();
    let src_tauri = stage(dir.path());
    let bins = external_bin();
    let universal: Vec<u8> = [ARM, INTEL].concat();
    for target in ["universal-apple-darwin", "aarch64-apple-darwin", "x86_64-apple-darwin"] {
        for build in cargo_builds(target) {
            // tauri-build, in that CPU's build: the helper of that CPU, next to its app binary.
            let found = lookup(&src_tauri, &bins, build).unwrap_or_else(|e| panic!("--target {target}: {e}"));
            let [(path, name)] = &found[..] else { panic!("{found:?}") };
            assert_eq!(name, "dockroute-helper");
            let want = if build.starts_with("aarch64") { ARM } else { INTEL };
            assert_eq!(fs::read(path).unwrap(), want, "--target {target}, build {build}: {}", path.display());
        }
        // The bundler, with the invocation's target: what goes into Contents/MacOS.
        let found = lookup(&src_tauri, &bins, target).unwrap_or_else(|e| panic!("bundler, --target {target}: {e}"));
        let [(path, name)] = &found[..] else { panic!("{found:?}") };
        assert_eq!(name, "dockroute-helper");
        let want = match target {
            "universal-apple-darwin" => &universal[..],
            "aarch64-apple-darwin" => ARM,
            _ => INTEL,
        };
        assert_eq!(fs::read(path).unwrap(), want, "bundler, --target {target}");
    }
}

#[test]
fn a_missing_cpu_helper_is_what_the_universal_build_would_trip_on() {
    // What package.sh staged before: the universal helper only. tauri-build's lookup for the
    // first CPU build fails, as `cargo tauri build --target universal-apple-darwin` did.
    let dir = tempfile::tempdir().unwrap();
    let src_tauri = stage(dir.path());
    for cpu in ["aarch64-apple-darwin", "x86_64-apple-darwin"] {
        fs::remove_file(src_tauri.join(format!("binaries/dockroute-helper-{cpu}"))).unwrap();
    }
    let bins = external_bin();
    let e = lookup(&src_tauri, &bins, "aarch64-apple-darwin").unwrap_err();
    assert!(e.contains("dockroute-helper-aarch64-apple-darwin"), "{e}");
    assert!(lookup(&src_tauri, &bins, "universal-apple-darwin").is_ok(), "the bundler's own lookup still finds it");
}
