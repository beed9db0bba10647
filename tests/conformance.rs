//! Every conformance case must match the chain's outputs exactly on the CPU path: the
//! repository copy always, and ../shared/conformance/cases when present. (The GPU
//! backends and the daemon check the same cases in their own test files.)

mod common;

#[test]
fn cpu_matches_every_case() {
    let cases = common::cases::conformance_cases();
    let mut failures = Vec::new();
    for (path, case) in &cases {
        let expected = case
            .output
            .as_ref()
            .unwrap_or_else(|| panic!("{path}: no output"));
        match yuma::epoch::run_epoch(&case.input) {
            Ok(got) => {
                if let Some(m) = expected.first_difference(&got) {
                    failures.push(format!("{path}: {m}"));
                }
            }
            Err(e) => failures.push(format!("{path}: rejected: {e}")),
        }
    }
    common::report(
        &format!(
            "cpu: checked {} cases, {} failed",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}
