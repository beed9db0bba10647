//! Every conformance case must match the chain's outputs exactly on the CPU path: the
//! repository copy always, and ../shared/conformance/cases when present, today's cases and
//! every era's (`eras/<spec>/`, run under that spec's rules). (The GPU backends and the
//! daemon check the same cases in their own test files.)

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
    let cases = common::cases::all_cases();
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

/// Every era case carries a `spec_version` that selects the era of its directory.
#[test]
fn every_era_case_names_its_spec() {
    for (path, case) in common::cases::era_cases() {
        let spec = case
            .input
            .spec_version
            .unwrap_or_else(|| panic!("{path}: no spec_version"));
        let dir = std::path::Path::new(&path)
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .and_then(|d| d.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{path}: not in an era directory"));
        assert_eq!(
            yuma::epoch::rules::Rules::for_spec(Some(spec)).unwrap().era,
            dir,
            "{path}: spec_version {spec} selects another era than its directory"
        );
    }
}
