//! Shared by the integration tests: where the containers/image vectors are, and a skip rule.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::path::PathBuf;
use std::process::Command;

/// The containers/image signature fixtures (shared/vectors), or `None` (with a message) when absent
/// (beside the project, where a clone elsewhere has none).
pub fn vectors() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/vectors/containers-image-signature");
    if dir.join("image.signature").is_file() {
        return Some(dir);
    }
    // The vectors live beside the project, not in it (shared/vectors): a clone elsewhere has none, and CI
    // cannot install them as it installs a peer, so their absence skips, loudly, even under CI=true.
    eprintln!("SKIP: signature vectors missing at {}", dir.display());
    None
}

/// Reads a vector file.
pub fn read(dir: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Whether `tool` runs; when not, skips (or fails under `CI=true`).
pub fn have(tool: &str) -> bool {
    let version = if tool == "openssl" {
        "version"
    } else {
        "--version"
    };
    let ok = Command::new(tool)
        .arg(version)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI");
        }
        eprintln!("skipping: {tool} not installed");
    }
    ok
}

/// Reads a fixture file that git stored as a symbolic link (its content is then the relative target,
/// e.g. `../dir-img-cosign-valid/signature-1`, when the vectors were copied without links).
pub fn read_link(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(b"../") && bytes.len() < 200 && !bytes.contains(&b'\n') {
        let target = path
            .parent()
            .unwrap()
            .join(String::from_utf8(bytes).unwrap());
        return std::fs::read(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
    }
    bytes
}
