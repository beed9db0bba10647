//! The conformance cases every backend is held to: the repository copy always, plus
//! `../shared/conformance/cases` (format 1) and `../shared/conformance/mechanisms`
//! (format 2) when they exist (as in CI); the era vectors likewise from `eras/<spec>/`.

use std::path::{Path, PathBuf};

use yuma::epoch::mechanisms::run_any;
use yuma::model::subnet::{AnyCase, AnyInput, AnyOutput, SubnetCase, decode_case};
use yuma::model::{Case, EpochInput, EpochOutput, InputError, case_files, decode};

/// `tests/conformance/<kind>` and, when it exists, `../shared/conformance/<kind>`.
fn repo_and_shared(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance").join(kind)];
    let shared = root.join("../shared/conformance").join(kind);
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

/// The case directories to read.
pub fn case_dirs() -> Vec<PathBuf> {
    repo_and_shared("cases")
}

/// The era directories (`eras/<spec>/`) of the repository copy and of ../shared when it
/// exists, each sorted.
pub fn era_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = Vec::new();
    for base in [
        root.join("tests/conformance/eras"),
        root.join("../shared/conformance/eras"),
    ] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut eras: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        eras.sort();
        dirs.extend(eras);
    }
    assert!(!dirs.is_empty(), "no era directory found");
    dirs
}

/// Every case as (file path, case); panics naming the file on unreadable JSON, and when no
/// case is found at all.
pub fn conformance_cases() -> Vec<(String, Case)> {
    read_cases(case_dirs())
}

/// Every era case (inputs with `spec_version`), as [`conformance_cases`] reads them.
pub fn era_cases() -> Vec<(String, Case)> {
    read_cases(era_dirs())
}

/// Today's cases and every era's together: what each backend must reproduce.
pub fn all_cases() -> Vec<(String, Case)> {
    let mut cases = conformance_cases();
    cases.extend(era_cases());
    cases
}

fn read_cases(dirs: Vec<PathBuf>) -> Vec<(String, Case)> {
    let mut cases = Vec::new();
    for dir in dirs {
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
    repo_and_shared("mechanisms")
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

/// Runs every format 2 case through `run` (one backend batch of all their mechanisms'
/// epochs, split and folded by `yuma::epoch::mechanisms::run_any`) and reports how many
/// cases ran, failing with every difference from the chain's output.
pub fn check_subnets(
    what: &str,
    run: impl FnOnce(&[EpochInput]) -> Vec<Result<EpochOutput, InputError>>,
) {
    let cases = subnet_cases();
    let inputs: Vec<AnyInput> = cases
        .iter()
        .map(|(_, c)| AnyInput::Subnet(c.input.clone()))
        .collect();
    let mut epochs = 0;
    let results = run_any(inputs, |batch| {
        epochs = batch.len();
        Ok::<_, std::convert::Infallible>(run(batch))
    })
    .unwrap_or_else(|e| match e {});
    let mut failures = Vec::new();
    for ((path, case), got) in cases.iter().zip(results) {
        let want = AnyOutput::Subnet(case.output.clone().expect("case has an output"));
        match got {
            Ok(got) => {
                if let Some(m) = want.first_difference(&got) {
                    failures.push(format!("{path}: {m}"));
                }
            }
            Err(e) => failures.push(format!("{path}: rejected: {e}")),
        }
    }
    super::report(
        &format!(
            "{what}: checked {} subnet cases ({epochs} mechanism epochs in one batch), {} failed",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}
