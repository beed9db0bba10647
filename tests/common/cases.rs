//! The conformance cases every backend is held to: the repository copy always, plus
//! `../shared/conformance/cases` (format 1) and `../shared/conformance/mechanisms`
//! (format 2) when they exist (as in CI).

use std::path::{Path, PathBuf};

use yuma::model::subnet::{AnyCase, SubnetCase, decode_case};
use yuma::model::{Case, case_files, decode};

/// The case directories to read.
pub fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance/cases")];
    let shared = root.join("../shared/conformance/cases");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!(
            "note: {} not found; checking the repository copy only",
            shared.display()
        );
    }
    dirs
}

/// Every case as (file path, case); panics naming the file on unreadable JSON, and when no
/// case is found at all.
pub fn conformance_cases() -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    for dir in case_dirs() {
        let files = case_files(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(!files.is_empty(), "no case found in {}", dir.display());
        for path in files {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let case = decode(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            cases.push((path.display().to_string(), case));
        }
    }
    cases
}

/// The format 2 (subnet) case directories: the repository copy, plus
/// `../shared/conformance/mechanisms` when it exists.
pub fn subnet_case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance/mechanisms")];
    let shared = root.join("../shared/conformance/mechanisms");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!(
            "note: {} not found; checking the repository copy only",
            shared.display()
        );
    }
    dirs
}

/// Every format 2 case as (file path, case); panics naming the file on unreadable JSON or
/// a case of another format, and when no case is found at all.
pub fn subnet_cases() -> Vec<(String, SubnetCase)> {
    let mut cases = Vec::new();
    for dir in subnet_case_dirs() {
        let files = case_files(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(!files.is_empty(), "no case found in {}", dir.display());
        for path in files {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match decode_case(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
                AnyCase::Subnet(case) => cases.push((path.display().to_string(), case)),
                AnyCase::Epoch(_) => panic!("{}: a format 1 case", path.display()),
            }
        }
    }
    cases
}
