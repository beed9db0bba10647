//! Every conformance case, on every backend available here, must match the chain's
//! outputs exactly: the repository copy always, and ../shared/conformance/cases when present.

use std::path::{Path, PathBuf};

use yuma::model::{Case, case_files, decode};

/// Case directories: the repository copy, plus the shared one when it exists (as in CI).
fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance/cases")];
    let shared = root.join("../shared/conformance/cases");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!("note: {} not found; checking the repository copy only", shared.display());
    }
    dirs
}

fn load(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn cpu_matches_every_case() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in case_dirs() {
        let files = case_files(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(!files.is_empty(), "no case found in {}", dir.display());
        for path in files {
            let case = load(&path);
            let expected = case.output.as_ref().unwrap_or_else(|| panic!("{}: no output", path.display()));
            match yuma::epoch::run_epoch(&case.input) {
                Ok(got) => {
                    if let Some(m) = expected.first_difference(&got) {
                        failures.push(format!("{}: {m}", path.display()));
                    }
                }
                Err(e) => failures.push(format!("{}: rejected: {e}", path.display())),
            }
            checked += 1;
        }
    }
    eprintln!("cpu: checked {checked} cases, {} failed", failures.len());
    assert!(failures.is_empty(), "{} of {checked} cases differ:\n{}", failures.len(), failures.join("\n"));
}
