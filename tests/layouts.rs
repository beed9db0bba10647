//! The dense layout (the median's lane blocks, original Yuma's bond blocks) against the
//! sparse one: both must give identical outputs on random and adversarial epochs (the
//! conformance cases check both against the chain).

mod common;

use common::epochgen::{self, Rng, Shape};
use yuma::epoch::{Layout, run_epoch_with};
use yuma::model::{EpochInput, SparseMatrix};

/// Runs `x` in both layouts; a mismatch or a differing error is a failure line.
fn compare(x: &EpochInput, what: &str, failures: &mut Vec<String>) {
    let sparse = run_epoch_with(x, Layout::Sparse);
    let dense = run_epoch_with(x, Layout::Dense);
    match (&sparse, &dense) {
        (Ok(s), Ok(d)) => {
            if let Some(m) = s.first_difference(d) {
                failures.push(format!("{what}: dense differs: {m}"));
            }
        }
        (Err(a), Err(b)) if a.to_string() == b.to_string() => {}
        _ => failures.push(format!("{what}: {sparse:?} vs {dense:?}")),
    }
}

#[test]
fn dense_layout_matches_sparse_on_random_epochs() {
    let mut rng = Rng::new(0x5EED_DE75);
    let mut failures = Vec::new();
    let mut count = 0;
    for k in 0..600 {
        let n = rng.pick(&[0, 1, 2, 3, 7, 16, 33, 64, 100, 256]);
        let density = rng.pick(&[0, 5, 50, 90, 100]);
        let mut shape = epochgen::shape(&mut rng, n, density);
        // Dense bonds serve original Yuma (three quarters here); the dense median serves both.
        shape.yuma3 = rng.chance(25);
        let x = epochgen::epoch(&mut rng, shape);
        compare(
            &x,
            &format!("random epoch {k} (n {n}, density {density})"),
            &mut failures,
        );
        count += 1;
    }
    common::report(
        &format!(
            "layouts: compared {count} random epochs, {} failed",
            failures.len()
        ),
        &failures,
    );
}

/// Every era's rule set (liquid alpha v1 and the older bond masks among them) in both
/// layouts.
#[test]
fn dense_layout_matches_sparse_in_every_era() {
    let mut rng = Rng::new(0x5EED_E4A5);
    let mut failures = Vec::new();
    let mut count = 0;
    for &spec in &yuma::epoch::rules::ERAS {
        for k in 0..60 {
            let n = rng.pick(&[0, 1, 3, 16, 64, 100]);
            let density = rng.pick(&[5, 50, 100]);
            let mut shape = epochgen::shape(&mut rng, n, density);
            shape.yuma3 = rng.chance(25);
            let x = epochgen::era_epoch(&mut rng, shape, spec);
            compare(&x, &format!("spec {spec} epoch {k} (n {n})"), &mut failures);
            count += 1;
        }
    }
    common::report(
        &format!(
            "layouts: compared {count} era epochs, {} failed",
            failures.len()
        ),
        &failures,
    );
}

#[test]
fn dense_layout_matches_sparse_on_edge_epochs() {
    let mut rng = Rng::new(0x5EED_DE76);
    let mut failures = Vec::new();
    let mut count = 0;
    for variant in 0..8 {
        for n in [1u16, 2, 5, 40] {
            for _ in 0..6 {
                let shape = Shape {
                    n,
                    density: 100,
                    yuma3: false,
                    liquid_alpha: false,
                    bonds_penalty: rng.pick(&[0, 65_535, 12_345]),
                };
                let mut x = epochgen::epoch(&mut rng, shape);
                let nu = n as usize;
                match variant {
                    // Alpha 0 and 1: the EMA keeps only one side.
                    0 => x.bonds_moving_average = 0,
                    1 => x.bonds_moving_average = 1_000_000,
                    // Saturated warm bonds: every column sum is a large whole number.
                    2 => x.bonds = full(nu, |_, _| u16::MAX),
                    // One entry per column: normalised values of exactly 1.0.
                    3 => x.bonds = full(nu, |i, j| if i == j % nu.max(1) { 1 } else { 0 }),
                    // Tiny bonds beside huge ones: quotients that floor to zero stay present.
                    4 => x.bonds = full(nu, |i, j| if (i + j) % 3 == 0 { 1 } else { u16::MAX }),
                    // Bonds only in rows without weights, and the reverse.
                    5 => {
                        x.bonds = full(nu, |i, _| if i % 2 == 0 { 7 } else { 0 });
                        x.validator_permit = (0..nu).map(|i| i % 2 == 1).collect();
                    }
                    // One validator holding all stake: its normalised stake is exactly 1.0.
                    6 => {
                        x.alpha_stake = (0..nu).map(|i| if i == 0 { 1 << 40 } else { 0 }).collect();
                        x.tao_stake = vec![0; nu];
                        x.stake_threshold = 0;
                        x.validator_permit[0] = true;
                        x.last_update[0] = x.current_block;
                    }
                    // No bonds at all: a cold start.
                    _ => x.bonds = SparseMatrix::empty(nu),
                }
                compare(&x, &format!("edge variant {variant}, n {n}"), &mut failures);
                count += 1;
            }
        }
    }
    common::report(
        &format!(
            "layouts: compared {count} edge epochs, {} failed",
            failures.len()
        ),
        &failures,
    );
}

/// A full `n x n` bond matrix with `value(row, col)` in every cell (explicit zeros kept).
fn full(n: usize, value: impl Fn(usize, usize) -> u16) -> SparseMatrix {
    let rows: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|i| (0..n).map(|j| (j as u16, value(i, j))).collect())
        .collect();
    SparseMatrix::from_rows(&rows)
}
