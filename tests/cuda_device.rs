//! The CUDA backend on a real device: every conformance case (every era's the kernels run:
//! all but liquid alpha v1) against the chain's output, and a batch of mixed epochs against
//! the CPU path. Without a usable device (no NVIDIA driver, no GPU, or no NVRTC) the test
//! prints a visible SKIPPED line and returns, or fails when `YUMA_REQUIRE_CUDA_DEVICE=1`: CI
//! has no GPU, so this test proves nothing there.

mod common;

use yuma::backend::cuda::CudaBackend;
use yuma::backend::{Backend, BackendError};
use yuma::model::{Case, EpochInput};

fn cases() -> Vec<Case> {
    common::cases::all_cases()
        .into_iter()
        .map(|(_, c)| c)
        .collect()
}

#[test]
fn cuda_device_matches_conformance_and_cpu_or_skipped_loudly() {
    let backend = match CudaBackend::new() {
        Ok(b) => b,
        Err(BackendError::Unavailable { reason, .. }) => {
            common::skip::skip(
                "cuda_device",
                common::skip::CUDA_DEVICE,
                &format!("{reason}; nothing verified on hardware"),
            );
            return;
        }
        Err(e) => panic!("CUDA backend failed to open: {e}"),
    };
    eprintln!("running on {}", backend.describe());
    let cases = cases();
    let inputs: Vec<EpochInput> = cases.iter().map(|c| c.input.clone()).collect();
    let got = backend.run_batch(&inputs).expect("batch runs");
    let mut failures = Vec::new();
    for (case, g) in cases.iter().zip(&got) {
        let cpu = yuma::epoch::run_epoch(&case.input);
        match (g, &cpu) {
            (Ok(g), Ok(c)) => {
                if let Some(m) = c.first_difference(g) {
                    failures.push(format!("{}: vs CPU: {m}", case.name));
                }
                if let Some(m) = case.output.as_ref().and_then(|w| w.first_difference(g)) {
                    failures.push(format!("{}: vs chain: {m}", case.name));
                }
            }
            (g, c) if g == c => {}
            (g, c) => failures.push(format!("{}: got {g:?}, CPU {c:?}", case.name)),
        }
    }
    // Each case alone too: a batch of one must not depend on its neighbours.
    for case in cases.iter().take(16) {
        let one = backend
            .run_batch(std::slice::from_ref(&case.input))
            .expect("batch runs");
        if one[0] != yuma::epoch::run_epoch(&case.input) {
            failures.push(format!("{}: differs when run alone", case.name));
        }
    }
    common::report(
        &format!(
            "cuda device: {} conformance cases, {} mismatches",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}
