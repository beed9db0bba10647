//! Seeded random epochs for differential tests (CPU against a GPU backend): every
//! variant and the edge cases the chain's storage allows (unsorted rows, explicit zeros,
//! uids >= n, empty rows, tied weights, all-zero stake, owner self-weight).

use yuma::model::{EpochInput, SparseMatrix};

/// SplitMix64: a tiny, fully reproducible generator (no dependency).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One of `xs`.
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Shape knobs for one generated epoch.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Subnet size.
    pub n: u16,
    /// Percent of possible weight entries present per row (100 = dense).
    pub density: u64,
    /// Yuma3 bonds.
    pub yuma3: bool,
    /// Liquid alpha.
    pub liquid_alpha: bool,
    /// Bonds penalty.
    pub bonds_penalty: u16,
}

/// A valid random epoch of `shape`, every edge case drawn from `rng`.
pub fn epoch(rng: &mut Rng, shape: Shape) -> EpochInput {
    let n = shape.n as usize;
    let current_block = 10_000 + rng.below(1_000_000);
    let zero_stake = rng.chance(5);
    let stake = |rng: &mut Rng| -> u64 {
        if zero_stake || rng.chance(20) {
            0
        } else {
            rng.pick(&[
                1_000,
                1_000_000_000,
                5_000_000_000_000,
                1 << 40,
                123_456_789,
            ]) + rng.below(1 << 30)
        }
    };
    let alpha_stake: Vec<u64> = (0..n).map(|_| stake(rng)).collect();
    let tao_stake: Vec<u64> = (0..n).map(|_| stake(rng)).collect();
    let last_update: Vec<u64> = (0..n)
        .map(|_| {
            let span = if rng.chance(20) { 20_000 } else { 500 };
            current_block.saturating_sub(rng.below(span))
        })
        .collect();
    let block_at_registration: Vec<u64> = (0..n)
        .map(|_| {
            let span = if rng.chance(10) { 300 } else { 50_000 };
            current_block.saturating_sub(rng.below(span))
        })
        .collect();
    let commit_block: Vec<Option<u64>> = (0..n)
        .map(|_| {
            if rng.chance(30) {
                Some(current_block.saturating_sub(rng.below(40_000)))
            } else {
                None
            }
        })
        .collect();
    let validator_permit: Vec<bool> = (0..n).map(|_| rng.chance(60)).collect();
    let owner_uid = if n > 0 && rng.chance(70) {
        Some(rng.below(n as u64) as u16)
    } else {
        None
    };
    // Tied weights: values from a small set make median ties common.
    let tied = rng.chance(40);
    let weight = |rng: &mut Rng| -> u16 {
        if rng.chance(5) {
            0
        } else if tied {
            rng.pick(&[1, 100, 32_768, 65_535])
        } else {
            rng.below(65_536) as u16
        }
    };
    let rows = |rng: &mut Rng, density: u64, w: &dyn Fn(&mut Rng) -> u16| -> SparseMatrix {
        let rows: Vec<Vec<(u16, u16)>> = (0..n)
            .map(|i| {
                if rng.chance(10) {
                    return Vec::new();
                }
                let mut row: Vec<(u16, u16)> = Vec::new();
                for j in 0..n {
                    if rng.below(100) < density || (j == i && rng.chance(50)) {
                        row.push((j as u16, w(rng)));
                    }
                }
                // Uids >= n, as rows keep them after trimming.
                if rng.chance(10) {
                    let extra = n as u64 + rng.below(8);
                    if extra < 65_536 {
                        row.push((extra as u16, w(rng)));
                    }
                }
                // Storage order: unsorted rows.
                if rng.chance(30) {
                    for k in (1..row.len()).rev() {
                        row.swap(k, rng.below(k as u64 + 1) as usize);
                    }
                }
                row
            })
            .collect();
        SparseMatrix::from_rows(&rows)
    };
    let weights = rows(rng, shape.density, &weight);
    let bonds = rows(rng, shape.density.min(60), &|rng: &mut Rng| {
        if rng.chance(5) {
            0
        } else {
            rng.below(65_536) as u16
        }
    });
    let alpha_low = rng.below(40_000) as u16;
    EpochInput {
        n: shape.n,
        current_block,
        tempo: rng.pick(&[1, 99, 360]),
        activity_cutoff: rng.pick(&[0, 100, 5_000, u64::MAX]),
        last_mechanism_step_block: if rng.chance(20) {
            0
        } else {
            current_block - rng.below(400) - 1
        },
        kappa: rng.pick(&[32_767, 0, 65_535, 40_000]),
        bonds_penalty: shape.bonds_penalty,
        bonds_moving_average: rng.pick(&[900_000, 975_000, 0, 1_000_000, 500_000]),
        max_allowed_validators: rng.pick(&[1, 4, 64, 256, 65_535]),
        stake_threshold: rng.pick(&[0, 1_000, 1_000_000_000_000]),
        tao_weight: {
            let any = rng.next();
            rng.pick(&[0, u64::MAX, 332_114_010_683_572_224, any])
        },
        owner_uid,
        yuma3: shape.yuma3,
        liquid_alpha: shape.liquid_alpha,
        alpha_low,
        alpha_high: alpha_low + rng.below(65_536 - alpha_low as u64) as u16,
        alpha_sigmoid_steepness: rng.pick(&[1_000, -500, 10, 32_767, -32_768, 0]),
        commit_reveal: rng.chance(30),
        commit_block,
        emission: {
            let any = rng.next();
            rng.pick(&[0, 1_000_000_000, u64::MAX, any])
        },
        alpha_stake,
        tao_stake,
        last_update,
        block_at_registration,
        validator_permit,
        weights,
        bonds,
        spec_version: None,
    }
}

/// A valid random epoch of `shape` under the rule set of `spec` (ERAS.md): [`epoch`] with
/// `spec_version` set and only what that era's storage could hold (a u16 activity cutoff
/// before 423, a non-negative steepness in 273-282, no bond column uid >= n before 320).
pub fn era_epoch(rng: &mut Rng, shape: Shape, spec: u32) -> EpochInput {
    let mut x = epoch(rng, shape);
    x.spec_version = Some(spec);
    if spec < 423 && x.activity_cutoff > u16::MAX as u64 {
        x.activity_cutoff = u16::MAX as u64;
    }
    if (273..283).contains(&spec) {
        x.alpha_sigmoid_steepness = x.alpha_sigmoid_steepness.saturating_abs();
    }
    if spec < 320 {
        let rows: Vec<Vec<(u16, u16)>> = (0..x.n as usize)
            .map(|i| x.bonds.row_pairs(i).filter(|&(c, _)| c < x.n).collect())
            .collect();
        x.bonds = SparseMatrix::from_rows(&rows);
    }
    x
}

/// A random shape: variant and bonds penalty drawn, size and density given.
pub fn shape(rng: &mut Rng, n: u16, density: u64) -> Shape {
    let variant = rng.below(4);
    Shape {
        n,
        density,
        yuma3: variant != 0,
        liquid_alpha: variant >= 2 || (variant == 0 && rng.chance(50)),
        bonds_penalty: rng.pick(&[0, 65_535, 21_845, 40_000]),
    }
}
