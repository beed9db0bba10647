//! A built-in, deterministic, realistic subnet: a few validators with full weight rows
//! over every uid, power-law stake, warm bonds, recent updates. Used by `yuma run
//! --example`, the benchmarks and the load test.

use crate::model::subnet::{MechanismInput, SubnetInput};
use crate::model::{EpochInput, SparseMatrix};

/// Which epoch variant to build; parsed from and shown as `y3-la`, `y3` or `orig`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Yuma3 bonds with liquid alpha.
    Yuma3Liquid,
    /// Yuma3 bonds with the fixed alpha.
    Yuma3,
    /// Original Yuma bonds.
    Original,
}

impl Variant {
    /// Every variant, in the order `--help` lists them.
    pub const ALL: [Variant; 3] = [Self::Yuma3Liquid, Self::Yuma3, Self::Original];

    /// The name a command line uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yuma3Liquid => "y3-la",
            Self::Yuma3 => "y3",
            Self::Original => "orig",
        }
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Variant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown variant `{s}` (expected y3-la, y3 or orig)"))
    }
}

/// SplitMix64: a tiny deterministic generator, so examples are identical everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0; the modulo bias is irrelevant here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The `yuma run --example` subnet: 256 uids, 64 validators, Yuma3 + liquid alpha.
pub fn default_example() -> EpochInput {
    realistic(256, 64, Variant::Yuma3Liquid, 1)
}

/// The `yuma run --example --mechanisms M` subnet: the default example's uids, stake and
/// hyperparameters, run by `mechanisms` mechanisms (1 to 16) with an even split; mechanism
/// k holds the weights, bonds and updates of the example built from seed k + 1.
pub fn example_subnet(mechanisms: usize) -> SubnetInput {
    let mut subnet = SubnetInput::from_epoch(default_example());
    subnet.mechanisms.extend((1..mechanisms as u64).map(|k| {
        let e = realistic(256, 64, Variant::Yuma3Liquid, k + 1);
        MechanismInput {
            last_update: e.last_update,
            commit_block: e.commit_block,
            weights: e.weights,
            bonds: e.bonds,
        }
    }));
    subnet
}

/// A realistic subnet of `n` uids whose first `validators` uids validate with full weight
/// rows (every other uid), stake falling off as a power law, warm bonds, owner uid 0.
pub fn realistic(n: u16, validators: u16, variant: Variant, seed: u64) -> EpochInput {
    let mut rng = SplitMix(seed ^ 0x5955_4D41);
    let nu = n as usize;
    let v = validators.min(n) as usize;
    let current_block: u64 = 5_000_000;
    let tempo: u16 = 360;

    let alpha_stake: Vec<u64> = (0..nu)
        .map(|i| {
            if i < v {
                4_000_000_000_000_000 / (i as u64 + 1) + rng.below(1_000_000_000_000)
            } else {
                rng.below(2_000_000_000)
            }
        })
        .collect();
    let tao_stake: Vec<u64> = (0..nu)
        .map(|i| {
            if i < v {
                rng.below(500_000_000_000_000)
            } else {
                0
            }
        })
        .collect();
    let last_update: Vec<u64> = (0..nu).map(|_| current_block - rng.below(400)).collect();
    let block_at_registration: Vec<u64> = (0..nu).map(|_| 4_000_000 + rng.below(900_000)).collect();

    let mut weights = Vec::with_capacity(nu);
    let mut bonds = Vec::with_capacity(nu);
    for i in 0..nu {
        if i < v {
            // Validators agree on a shared quality per miner, each with its own noise.
            let row: Vec<(u16, u16)> = (0..nu)
                .filter(|&j| j != i)
                .map(|j| {
                    let quality = (((j as u64 * 2_654_435_761) >> 7) % 50_000) + 10_000;
                    let noise = rng.below(8_000);
                    (j as u16, (quality + noise).min(65_535) as u16)
                })
                .collect();
            let brow: Vec<(u16, u16)> = (0..nu)
                .filter(|&j| j != i)
                .map(|j| (j as u16, rng.below(65_536) as u16))
                .collect();
            weights.push(row);
            bonds.push(brow);
        } else {
            weights.push(Vec::new());
            bonds.push(Vec::new());
        }
    }

    EpochInput {
        n,
        current_block,
        tempo,
        activity_cutoff: 5_000,
        last_mechanism_step_block: current_block - tempo as u64 - 1,
        kappa: 32_767,
        bonds_penalty: 65_535,
        bonds_moving_average: 900_000,
        max_allowed_validators: validators,
        stake_threshold: 1_000,
        tao_weight: 3_320_413_933_267_719_290,
        owner_uid: Some(0),
        yuma3: variant != Variant::Original,
        liquid_alpha: variant == Variant::Yuma3Liquid,
        alpha_low: 45_875,
        alpha_high: 58_982,
        alpha_sigmoid_steepness: 1_000,
        commit_reveal: false,
        commit_block: vec![None; nu],
        emission: 123_979_640_189,
        alpha_stake,
        tao_stake,
        last_update,
        block_at_registration,
        validator_permit: (0..nu).map(|i| i < v).collect(),
        weights: SparseMatrix::from_rows(&weights),
        bonds: SparseMatrix::from_rows(&bonds),
    }
}
