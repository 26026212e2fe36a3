//! Harness for ballast's end-to-end tests: the real stage binaries, built fresh, run in
//! temporary folders, and trees compared byte for byte.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// The folder holding the stage binaries of this test build's profile, built (or found up to
/// date) once per test process. `cargo test --workspace` has built them already, so this is a
/// no-op there; `cargo test -p ballast-e2e` builds them here.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_string(),
            Some(other) => other.to_string(),
            None => panic!("cannot tell the build profile from {}", exe.display()),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--bins", "--profile", &profile])
            .args([
                "-p",
                "ballast-synth",
                "-p",
                "ballast-tiler",
                "-p",
                "ballast-packer",
            ])
            .args(["-p", "ballast-trainer", "-p", "ballast-scorer"])
            .current_dir(root())
            .status()
            .expect("run cargo build for the stage binaries");
        assert!(status.success(), "building the stage binaries failed");
        dir
    })
}

/// A stage binary (`synth`, `tiler`, `packer`, `trainer`, `scorer`), with a clean environment.
pub fn stage(name: &str) -> Command {
    ballast_testkit::clean(bin_dir().join(name))
}

/// The shared helpers: `ok` (run, assert success), file trees and their comparison (lock files
/// excluded), mtimes, JSON.
pub use ballast_testkit::{assert_same_tree, mtimes, ok, read_json as json};

/// Every file under `dir` with the BLAKE3 of its bytes (lock files excluded).
pub fn tree(dir: &Path) -> BTreeMap<String, String> {
    ballast_testkit::trees::digests(dir)
}

/// Renders a small synth photo set: `classes` × `per_class` photos of `w`×`h`.
pub fn synth_photos(out: &Path, classes: u32, per_class: u32, w: u32, h: u32, seed: u64) {
    ok(stage("synth")
        .arg("--out")
        .arg(out)
        .args([
            "--classes",
            &classes.to_string(),
            "--per-class",
            &per_class.to_string(),
        ])
        .args(["--width", &w.to_string(), "--height", &h.to_string()])
        .args(["--seed", &seed.to_string(), "--quiet"]));
}
