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
