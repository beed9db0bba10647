//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod cases;
pub mod epochgen;
pub mod skip;

/// Prints `summary` (what was checked, with the mismatch count) and fails listing every
/// mismatch when there is one.
pub fn report(summary: &str, failures: &[String]) {
    eprintln!("{summary}");
    assert!(failures.is_empty(), "{summary}:\n{}", failures.join("\n"));
}

/// A fresh, empty directory for one test (`yuma-<what>-<pid>` under the temp directory).
pub fn tmp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("yuma-{what}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
