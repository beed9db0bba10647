//! Every conformance case must match the chain's outputs exactly on the CPU path: the
//! repository copy always, and ../shared/conformance/cases when present. (The GPU
//! backends and the daemon check the same cases in their own test files.)

mod common;

use yuma::epoch::Layout;

#[test]
fn cpu_matches_every_case() {
    check_layout(Layout::Auto, "cpu");
}

/// Both bond layouts on every case, whatever `Auto` would pick for it.
#[test]
fn cpu_matches_every_case_in_each_layout() {
    check_layout(Layout::Sparse, "cpu sparse bonds");
    check_layout(Layout::Dense, "cpu dense bonds");
}

fn check_layout(layout: Layout, name: &str) {
    let cases = common::cases::conformance_cases();
    let mut failures = Vec::new();
    for (path, case) in &cases {
        let expected = case
            .output
            .as_ref()
            .unwrap_or_else(|| panic!("{path}: no output"));
        match yuma::epoch::run_epoch_with(&case.input, layout) {
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
            "{name}: checked {} cases, {} failed",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}
