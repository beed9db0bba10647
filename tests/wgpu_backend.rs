//! The wgpu backend against the chain and the CPU path: every conformance case in a few
//! batches, and seeded random epochs of every variant and edge case, each output field
//! equal. Without any wgpu adapter the tests fail loudly unless `YUMA_ALLOW_NO_WGPU=1`
//! (CI installs Mesa lavapipe, so a missing adapter there is a failure).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::epochgen::{self, Rng, Shape};
use yuma::backend::Backend;
use yuma::backend::wgpu::{WgpuBackend, adapters};
use yuma::model::{Case, EpochInput, case_files, decode};

/// The backend on any adapter, software included; `None` (after a loud notice) only when
/// there is none and `YUMA_ALLOW_NO_WGPU=1`.
fn backend() -> Option<WgpuBackend> {
    match WgpuBackend::new(true) {
        Ok(b) => {
            eprintln!("wgpu backend: {}", b.describe());
            Some(b)
        }
        Err(e) => {
            // Written past the test harness's capture, so the skip shows even on success.
            let _ = writeln!(std::io::stderr(), "SKIPPED: no wgpu adapter ({e}); adapters seen: {:?}", adapters());
            assert!(
                std::env::var("YUMA_ALLOW_NO_WGPU").as_deref() == Ok("1"),
                "no wgpu adapter: install Mesa lavapipe (mesa-vulkan-drivers) or set YUMA_ALLOW_NO_WGPU=1"
            );
            None
        }
    }
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance/cases")];
    let shared = root.join("../shared/conformance/cases");
    if shared.is_dir() {
        dirs.push(shared);
    }
    dirs
}

#[test]
fn wgpu_matches_every_conformance_case() {
    let Some(b) = backend() else { return };
    let mut cases: Vec<(String, Case)> = Vec::new();
    for dir in case_dirs() {
        for path in case_files(&dir).unwrap() {
            let text = std::fs::read_to_string(&path).unwrap();
            cases.push((path.display().to_string(), decode(&text).unwrap()));
        }
    }
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    // A few batches mixing every size and variant.
    for chunk in cases.chunks(64) {
        let inputs: Vec<EpochInput> = chunk.iter().map(|(_, c)| c.input.clone()).collect();
        let got = b.run_batch(&inputs).expect("wgpu batch");
        for ((name, case), got) in chunk.iter().zip(got) {
            let want = case.output.as_ref().expect("case has an output");
            match got {
                Ok(out) => {
                    if let Some(m) = want.first_difference(&out) {
                        failures.push(format!("{name}: {m}"));
                    }
                }
                Err(e) => failures.push(format!("{name}: rejected: {e}")),
            }
        }
    }
    eprintln!("wgpu: checked {} conformance cases, {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// Runs `inputs` on both backends and compares every field.
fn compare(b: &WgpuBackend, inputs: &[EpochInput], what: &str) -> usize {
    let cpu = yuma::epoch::run_batch(inputs);
    let gpu = b.run_batch(inputs).expect("wgpu batch");
    assert_eq!(cpu.len(), gpu.len());
    let mut failures = Vec::new();
    for (k, (c, g)) in cpu.iter().zip(&gpu).enumerate() {
        match (c, g) {
            (Ok(c), Ok(g)) => {
                if let Some(m) = c.first_difference(g) {
                    let x = &inputs[k];
                    failures.push(format!(
                        "{what} #{k} (n {}, yuma3 {}, liquid {}, bp {}): {m}",
                        x.n, x.yuma3, x.liquid_alpha, x.bonds_penalty
                    ));
                }
            }
            (Err(c), Err(g)) => assert_eq!(c.to_string(), g.to_string(), "{what} #{k}"),
            _ => failures.push(format!("{what} #{k}: cpu {:?} vs wgpu {:?}", c.is_ok(), g.is_ok())),
        }
    }
    assert!(failures.is_empty(), "{} of {} epochs differ:\n{}", failures.len(), inputs.len(), failures.join("\n"));
    inputs.len()
}

#[test]
fn wgpu_matches_cpu_on_random_epochs() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_0001);
    let mut compared = 0;
    // Small and medium subnets, every variant and penalty, sizes mixed in one batch;
    // n = 0 and n = 1 included.
    for round in 0..10 {
        let inputs: Vec<EpochInput> = (0..50)
            .map(|_| {
                let n = rng.pick(&[0, 1, 2, 3, 7, 16, 33, 64, 100]);
                let density = rng.pick(&[0, 10, 50, 100]);
                let shape = epochgen::shape(&mut rng, n, density);
                epochgen::epoch(&mut rng, shape)
            })
            .collect();
        compared += compare(&b, &inputs, &format!("mixed round {round}"));
    }
    eprintln!("wgpu vs cpu: compared {compared} random epochs");
}

#[test]
fn wgpu_matches_cpu_on_dense_1024_subnets() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_1024);
    let inputs: Vec<EpochInput> = [(true, true), (true, false), (false, false)]
        .iter()
        .map(|&(yuma3, liquid_alpha)| {
            let shape = Shape { n: 1024, density: 100, yuma3, liquid_alpha, bonds_penalty: rng.pick(&[0, 65_535, 30_000]) };
            epochgen::epoch(&mut rng, shape)
        })
        .collect();
    let compared = compare(&b, &inputs, "dense 1024");
    eprintln!("wgpu vs cpu: compared {compared} dense 1024-uid epochs");
}

#[test]
fn wgpu_matches_cpu_on_edge_epochs() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_ED6E);
    let mut inputs = Vec::new();
    for &(yuma3, liquid_alpha) in &[(true, true), (true, false), (false, false), (false, true)] {
        for bonds_penalty in [0, 65_535, 12_345] {
            for n in [0u16, 1, 2, 5] {
                let shape = Shape { n, density: 100, yuma3, liquid_alpha, bonds_penalty };
                let mut x = epochgen::epoch(&mut rng, shape);
                if n > 0 && rng.chance(50) {
                    // Owner self-weight: the only diagonal entry the chain keeps.
                    x.owner_uid = Some(0);
                    x.validator_permit[0] = true;
                }
                inputs.push(x.clone());
                // The same epoch with every stake zero: emission falls back to stake.
                x.alpha_stake.iter_mut().for_each(|s| *s = 0);
                x.tao_stake.iter_mut().for_each(|s| *s = 0);
                inputs.push(x);
            }
        }
    }
    // An invalid epoch fails alone, with the CPU's error.
    let mut bad = inputs[5].clone();
    bad.owner_uid = Some(bad.n);
    inputs.insert(3, bad);
    let compared = compare(&b, &inputs, "edge");
    eprintln!("wgpu vs cpu: compared {compared} edge epochs (one invalid)");
}

#[test]
fn adapters_lists_the_backend_adapter() {
    let Some(b) = backend() else { return };
    let listed = adapters();
    eprintln!("adapters: {listed:?}");
    assert!(!listed.is_empty());
    let name = b.describe();
    assert!(listed.iter().any(|a| name.contains(a.as_str())), "{name} not among {listed:?}");
}

/// Past what the adapter can do in one invocation (Mesa lavapipe caps loop iterations and
/// then leaves loops early), the backend must fail with a device error, never return
/// wrong numbers; on an adapter without that cap the epoch must simply match the CPU.
#[test]
fn wgpu_fails_loudly_rather_than_wrongly_on_a_dense_1200_subnet() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(7);
    let shape = Shape { n: 1200, density: 100, yuma3: true, liquid_alpha: true, bonds_penalty: 0 };
    let x = epochgen::epoch(&mut rng, shape);
    match b.run_batch(std::slice::from_ref(&x)) {
        Ok(mut got) => {
            let want = yuma::epoch::run_epoch(&x).unwrap();
            let got = got.remove(0).unwrap();
            assert_eq!(want.first_difference(&got).map(|m| m.to_string()), None);
            eprintln!("dense 1200: matches the CPU on {}", b.describe());
        }
        Err(e @ yuma::backend::BackendError::Device { .. }) => {
            eprintln!("dense 1200: refused on {}: {e}", b.describe());
            assert!(b.is_software(), "only a software adapter may refuse this epoch: {e}");
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
