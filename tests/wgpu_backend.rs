//! The wgpu backend against the chain and the CPU path: every conformance case in a few
//! batches, and seeded random epochs of every variant and edge case, each output field
//! equal. Without any wgpu adapter the tests fail loudly unless `YUMA_ALLOW_NO_WGPU=1`
//! (CI installs Mesa lavapipe, so a missing adapter there is a failure).

mod common;

use std::io::Write;

use common::epochgen::{self, Rng, Shape};
use yuma::backend::Backend;
use yuma::backend::wgpu::{WgpuBackend, adapters};
use yuma::epoch::stake;
use yuma::model::{EpochInput, InputError};

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
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: no wgpu adapter ({e}); adapters seen: {:?}",
                adapters()
            );
            assert!(
                std::env::var("YUMA_ALLOW_NO_WGPU").as_deref() == Ok("1"),
                "no wgpu adapter: install Mesa lavapipe (mesa-vulkan-drivers) or set YUMA_ALLOW_NO_WGPU=1"
            );
            None
        }
    }
}

#[test]
fn wgpu_matches_every_conformance_case() {
    let Some(b) = backend() else { return };
    let cases = common::cases::conformance_cases();
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
    common::report(
        &format!(
            "wgpu: checked {} conformance cases, {} failed",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}

/// Every format 2 case: all mechanisms' epochs in one wgpu batch, split and fold on the
/// host, exactly the chain's outputs.
#[test]
fn wgpu_matches_every_subnet_case() {
    let Some(b) = backend() else { return };
    common::cases::check_subnets("wgpu", |epochs| b.run_batch(epochs).expect("wgpu batch"));
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
            _ => failures.push(format!(
                "{what} #{k}: cpu {:?} vs wgpu {:?}",
                c.is_ok(),
                g.is_ok()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} epochs differ:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
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
            let shape = Shape {
                n: 1024,
                density: 100,
                yuma3,
                liquid_alpha,
                bonds_penalty: rng.pick(&[0, 65_535, 30_000]),
            };
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
                let shape = Shape {
                    n,
                    density: 100,
                    yuma3,
                    liquid_alpha,
                    bonds_penalty,
                };
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

/// One epoch bent towards a corner of the stake steps (1-4); `variant` picks which.
fn stake_edge(rng: &mut Rng, n: u16, variant: u32) -> EpochInput {
    let shape = epochgen::shape(rng, n, 50);
    let mut x = epochgen::epoch(rng, shape);
    let n = n as usize;
    let near_2_63 = [
        (1 << 63) - 1,
        1 << 63,
        (1 << 63) + 1,
        u64::MAX,
        (1 << 63) - (1 << 20),
        1 << 62,
    ];
    match variant {
        0 => x.tao_weight = 0,
        1 => x.tao_weight = u64::MAX,
        2 => x.tao_weight = rng.next(),
        // One stake at or past 2^63 (I64F64's from_u64 saturates there), the rest small.
        3 => {
            if n > 0 {
                let j = rng.below(n as u64) as usize;
                x.alpha_stake[j] = rng.pick(&near_2_63);
                let any = rng.next();
                x.tao_weight = rng.pick(&[0, u64::MAX, any]);
            }
        }
        // A tao stake past 2^63 times the tao weight: the saturating multiply.
        4 => {
            if n > 0 {
                let j = rng.below(n as u64) as usize;
                x.alpha_stake[j] = rng.below(1 << 40);
                x.tao_stake[j] = rng.pick(&near_2_63);
                let any = rng.next();
                x.tao_weight = rng.pick(&[u64::MAX, u64::MAX - 1, 1 << 63, any]);
            }
        }
        // Every stake near 2^63: the checked sum overflows from the second uid on.
        5 => {
            x.alpha_stake
                .iter_mut()
                .for_each(|s| *s = rng.pick(&near_2_63));
            x.stake_threshold = 0;
        }
        // The threshold at, just above and just below one uid's total (fractions included).
        6 => {
            if n > 0 {
                let j = rng.below(n as u64) as usize;
                let total = stake::compute(&x).expect("no overflow").total[j].saturating_to_u64();
                x.stake_threshold = total
                    .saturating_add(rng.pick(&[0, 1]))
                    .saturating_sub(rng.pick(&[0, 1]));
            }
        }
        // The owner below the threshold (and maybe with no stake at all) keeps its stake.
        7 => {
            if n > 0 {
                let o = rng.below(n as u64) as usize;
                x.owner_uid = Some(o as u16);
                if rng.chance(30) {
                    x.alpha_stake[o] = 0;
                    x.tao_stake[o] = 0;
                }
                x.stake_threshold = rng.pick(&[u64::MAX, x.alpha_stake[o].saturating_add(1)]);
            }
        }
        // Tied stakes with fewer validator slots than uids: ties go against the lower uid.
        8 => {
            let levels = [0, 5_000_000_000, 5_000_000_000, 7_000_000_000];
            let all_equal = rng.chance(40);
            x.alpha_stake = (0..n)
                .map(|_| {
                    if all_equal {
                        5_000_000_000
                    } else {
                        rng.pick(&levels)
                    }
                })
                .collect();
            x.tao_stake = vec![0; n];
            x.stake_threshold = 0;
            x.max_allowed_validators =
                rng.pick(&[0, 1, n / 2, n.saturating_sub(1), n, n + 1]) as u16;
            if rng.chance(50) {
                x.owner_uid = None;
            }
        }
        // All stake zero.
        _ => {
            x.alpha_stake = vec![0; n];
            x.tao_stake = vec![0; n];
        }
    }
    x
}

#[test]
fn wgpu_matches_cpu_on_stake_edges() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_57AC);
    let mut inputs = Vec::new();
    for _ in 0..3 {
        for n in [0u16, 1, 2, 3, 6, 17] {
            for variant in 0..10 {
                inputs.push(stake_edge(&mut rng, n, variant));
            }
        }
    }
    let overflows = yuma::epoch::run_batch(&inputs)
        .iter()
        .filter(|r| r.is_err())
        .count();
    assert!(overflows > 0, "the batch must hold stake-overflow epochs");
    let compared = compare(&b, &inputs, "stake edge");
    eprintln!("wgpu vs cpu: compared {compared} stake-edge epochs ({overflows} stake overflows)");
}

/// A stake overflow fails its own epoch with the CPU's uid, beside an invalid epoch and
/// valid ones that still match.
#[test]
fn wgpu_stake_overflow_fails_only_its_epoch() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_0F10);
    let mut inputs: Vec<EpochInput> = (0..6)
        .map(|_| {
            let shape = epochgen::shape(&mut rng, 8, 50);
            epochgen::epoch(&mut rng, shape)
        })
        .collect();
    // Running sums 2^40, 2^62 + 2^40, + 3, then past I64F64::MAX at uid 4.
    let mut overflow = inputs[2].clone();
    overflow.alpha_stake = vec![0, 1 << 40, 1 << 62, 3, 1 << 62, u64::MAX, 0, 0];
    overflow.tao_stake = vec![0; 8];
    overflow.stake_threshold = 0;
    inputs.insert(2, overflow);
    let mut bad = inputs[0].clone();
    bad.owner_uid = Some(bad.n);
    inputs.insert(5, bad);
    compare(&b, &inputs, "overflow batch");
    let got = b.run_batch(&inputs).expect("wgpu batch");
    match &got[2] {
        Err(InputError::StakeOverflow { uid }) => assert_eq!(*uid, 4),
        other => panic!(
            "expected a stake overflow at uid 4, got {:?}",
            other.as_ref().map(|_| "an output")
        ),
    }
    assert!(matches!(got[5], Err(InputError::Owner { .. })));
    let ok = got.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 6);
    eprintln!("overflow batch: epoch 2 fails with uid 4, epoch 5 is invalid, {ok} others match");
}

/// Subnets past one rank block (2048 uids): ranks are summed over blocks, ties included.
#[test]
fn wgpu_matches_cpu_on_ranks_across_blocks() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(0x5EED_2B10);
    let inputs: Vec<EpochInput> = [2_049u16, 4_500]
        .iter()
        .map(|&n| {
            let yuma3 = rng.chance(50);
            let shape = Shape {
                n,
                density: 0,
                yuma3,
                liquid_alpha: false,
                bonds_penalty: 0,
            };
            let mut x = epochgen::epoch(&mut rng, shape);
            // Few stake levels, so ties span blocks.
            x.alpha_stake = (0..n)
                .map(|_| rng.pick(&[0, 1_000_000_000, 2_000_000_000, 3_000_000_000]))
                .collect();
            x.tao_stake = vec![0; n as usize];
            x.stake_threshold = 0;
            x.max_allowed_validators = rng.pick(&[64, 1_000, 2_100]);
            x
        })
        .collect();
    let compared = compare(&b, &inputs, "ranks across blocks");
    eprintln!("wgpu vs cpu: compared {compared} epochs past one rank block");
}

#[test]
fn adapters_lists_the_backend_adapter() {
    let Some(b) = backend() else { return };
    let listed = adapters();
    eprintln!("adapters: {listed:?}");
    assert!(!listed.is_empty());
    let name = b.describe();
    assert!(
        listed.iter().any(|a| name.contains(a.as_str())),
        "{name} not among {listed:?}"
    );
}

/// Past what the adapter can do in one invocation (Mesa lavapipe caps loop iterations and
/// then leaves loops early), the backend must fail with a device error, never return
/// wrong numbers; on an adapter without that cap the epoch must simply match the CPU.
#[test]
fn wgpu_fails_loudly_rather_than_wrongly_on_a_dense_1200_subnet() {
    let Some(b) = backend() else { return };
    let mut rng = Rng::new(7);
    let shape = Shape {
        n: 1200,
        density: 100,
        yuma3: true,
        liquid_alpha: true,
        bonds_penalty: 0,
    };
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
            assert!(
                b.is_software(),
                "only a software adapter may refuse this epoch: {e}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}
