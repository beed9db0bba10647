//! Batch packing shared by the GPU backends: epochs of any sizes laid into flat,
//! `bytemuck::Pod` buffers of u32 words (u64 values as `[lo, hi]` pairs, CSR rows with
//! absolute offsets), and the output buffers unpacked back into [`EpochOutput`]s.
//!
//! Epoch `e` owns uids `uid_base..uid_base + n` of every per-uid array, rows
//! `row_base..row_base + n + 1` of every offsets array (`row_base = uid_base + e`), and the
//! entries those offsets point at. Output bond rows get the capacity of the weight row
//! plus the bond row, an upper bound on what the EMA can emit.

use bytemuck::{Pod, Zeroable};

use crate::epoch::rules::{BondMask, Rules, Sigmoid};
use crate::model::{EpochInput, EpochOutput, SparseMatrix};

/// Header flag: Yuma3 bonds.
pub const FLAG_YUMA3: u32 = 1;
/// Header flag: liquid alpha on.
pub const FLAG_LIQUID_ALPHA: u32 = 2;
/// Header flag: commit-reveal on.
pub const FLAG_COMMIT_REVEAL: u32 = 4;
/// Header flag: `owner_uid` is set (and read: from spec 252).
pub const FLAG_HAS_OWNER: u32 = 8;
/// Rule flag (from 397): the owner is exempt from the stake threshold and holds both permits.
pub const FLAG_OWNER_PERMIT: u32 = 16;
/// Rule flag (before 273): permits go to the top-k stakes, zero stakes included.
pub const FLAG_TOPK_ZERO: u32 = 32;
/// Rule flag (before 257): bond (i, j) is dropped when `last_update[i] <= reg[j]`.
pub const FLAG_BONDS_OUTDATED: u32 = 64;
/// Rule flag (273-282): the sigmoid's exponent is `-s (d - 1/2)`.
pub const FLAG_SIGMOID_STEEPNESS: u32 = 128;
/// Rule flag (before 365): the sigmoid's exp is unclamped (`safe_exp`).
pub const FLAG_EXP_UNCLAMPED: u32 = 256;
/// Rule flag (before 365): trust and pruning scores are computed.
pub const FLAG_RANK_TRUST_PRUNING: u32 = 512;
/// Rule flag (before 273): LiquidAlphaOn on the original path runs liquid alpha v1.
pub const FLAG_LIQUID_ALPHA_V1: u32 = 1024;

/// The header flags that carry `rules` to the kernels (the rest of an era's differences
/// are neutralised inputs, [`Rules::effective`], or output shaping in [`unpack`]).
pub fn rule_flags(rules: &Rules) -> u32 {
    let mut f = 0;
    if rules.owner_permit {
        f |= FLAG_OWNER_PERMIT;
    }
    if rules.topk_zero_stake {
        f |= FLAG_TOPK_ZERO;
    }
    if rules.bond_mask == BondMask::Outdated {
        f |= FLAG_BONDS_OUTDATED;
    }
    if rules.sigmoid == Sigmoid::Steepness {
        f |= FLAG_SIGMOID_STEEPNESS;
    }
    if rules.sigmoid != Sigmoid::PercentClamped {
        f |= FLAG_EXP_UNCLAMPED;
    }
    if rules.rank_trust_pruning {
        f |= FLAG_RANK_TRUST_PRUNING;
    }
    if rules.liquid_alpha_v1 {
        f |= FLAG_LIQUID_ALPHA_V1;
    }
    f
}

/// A u64 as two u32 words, low first (WGSL has no portable 64-bit integer).
pub type U64Words = [u32; 2];

/// Splits a u64 into words.
pub const fn words(x: u64) -> U64Words {
    [x as u32, (x >> 32) as u32]
}

/// Joins words into a u64.
pub const fn join(w: U64Words) -> u64 {
    w[0] as u64 | (w[1] as u64) << 32
}

/// One epoch's scalars and where its rows live in the batch buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct EpochHeader {
    /// Subnetwork size.
    pub n: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Owner uid (valid when `FLAG_HAS_OWNER`).
    pub owner_uid: u32,
    /// Kappa, u16.
    pub kappa: u32,
    /// Bonds penalty, u16.
    pub bonds_penalty: u32,
    /// Max allowed validators, u16.
    pub max_allowed_validators: u32,
    /// Liquid alpha low, u16.
    pub alpha_low: u32,
    /// Liquid alpha high, u16.
    pub alpha_high: u32,
    /// Sigmoid steepness, i16 sign-extended.
    pub alpha_sigmoid_steepness: i32,
    /// Tempo, u16.
    pub tempo: u32,
    /// First uid of this epoch in the per-uid arrays.
    pub uid_base: u32,
    /// First row of this epoch in the offsets arrays (`uid_base + epoch index`).
    pub row_base: u32,
    /// Current block.
    pub current_block: U64Words,
    /// Activity cutoff.
    pub activity_cutoff: U64Words,
    /// Last mechanism step block.
    pub last_mechanism_step_block: U64Words,
    /// Bonds moving average, ppm.
    pub bonds_moving_average: U64Words,
    /// Stake threshold, rao.
    pub stake_threshold: U64Words,
    /// Raw tao weight.
    pub tao_weight: U64Words,
    /// Emission, rao.
    pub emission: U64Words,
}

/// A batch of epochs in flat buffers.
#[derive(Clone, Debug, Default)]
pub struct PackedBatch {
    /// One header per epoch.
    pub headers: Vec<EpochHeader>,
    /// Per uid alpha stake.
    pub alpha_stake: Vec<U64Words>,
    /// Per uid tao stake.
    pub tao_stake: Vec<U64Words>,
    /// Per uid last update block.
    pub last_update: Vec<U64Words>,
    /// Per uid registration block.
    pub block_at_registration: Vec<U64Words>,
    /// Per uid earliest unexpired commit block, u64::MAX for none.
    pub commit_block: Vec<U64Words>,
    /// Per uid old permit (0/1).
    pub validator_permit: Vec<u32>,
    /// Weight row offsets (absolute), `n + 1` per epoch.
    pub w_offsets: Vec<u32>,
    /// Weight column uids.
    pub w_cols: Vec<u32>,
    /// Weight values (u16).
    pub w_vals: Vec<u32>,
    /// Bond row offsets (absolute), `n + 1` per epoch.
    pub b_offsets: Vec<u32>,
    /// Bond column uids.
    pub b_cols: Vec<u32>,
    /// Bond values (u16).
    pub b_vals: Vec<u32>,
    /// Output bond row capacity offsets (absolute), `n + 1` per epoch.
    pub ob_offsets: Vec<u32>,
    /// One rule set per epoch, for the output shaping [`unpack`] does.
    pub rules: Vec<Rules>,
}

impl PackedBatch {
    /// Total uids over all epochs.
    pub fn total_uids(&self) -> usize {
        self.validator_permit.len()
    }

    /// Total output bond capacity.
    pub fn bond_capacity(&self) -> usize {
        self.ob_offsets.last().copied().unwrap_or(0) as usize
    }
}

/// Output buffers, laid out like the batch's per-uid arrays and output bond rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackedOutput {
    /// Per uid active (0/1).
    pub active: Vec<u32>,
    /// Per uid total stake.
    pub stake: Vec<U64Words>,
    /// Per uid stake weight (u16).
    pub stake_weight: Vec<u32>,
    /// Per uid consensus (u16).
    pub consensus: Vec<u32>,
    /// Per uid incentive (u16).
    pub incentive: Vec<u32>,
    /// Per uid dividend (u16).
    pub dividend: Vec<u32>,
    /// Per uid validator trust (u16).
    pub validator_trust: Vec<u32>,
    /// Per uid new permit (0/1).
    pub new_validator_permit: Vec<u32>,
    /// Per uid combined emission.
    pub emission: Vec<U64Words>,
    /// Per uid server emission.
    pub server_emission: Vec<U64Words>,
    /// Per uid validator emission.
    pub validator_emission: Vec<U64Words>,
    /// Per uid number of entries written into its output bond row.
    pub bond_len: Vec<u32>,
    /// Output bond column uids, at `ob_offsets`.
    pub bond_cols: Vec<u32>,
    /// Output bond values (u16), at `ob_offsets`.
    pub bond_vals: Vec<u32>,
    /// Per uid trust (u16), written before spec 365.
    pub trust: Vec<u32>,
    /// Per uid pruning score (u16), written before spec 365.
    pub pruning_score: Vec<u32>,
}

impl PackedOutput {
    /// Zeroed output buffers sized for `batch`.
    pub fn zeroed(batch: &PackedBatch) -> Self {
        let (u, c) = (batch.total_uids(), batch.bond_capacity());
        Self {
            active: vec![0; u],
            stake: vec![[0; 2]; u],
            stake_weight: vec![0; u],
            consensus: vec![0; u],
            incentive: vec![0; u],
            dividend: vec![0; u],
            validator_trust: vec![0; u],
            new_validator_permit: vec![0; u],
            emission: vec![[0; 2]; u],
            server_emission: vec![[0; 2]; u],
            validator_emission: vec![[0; 2]; u],
            bond_len: vec![0; u],
            bond_cols: vec![0; c],
            bond_vals: vec![0; c],
            trust: vec![0; u],
            pruning_score: vec![0; u],
        }
    }

    /// Writes epoch `e`'s output into the buffers (the inverse of [`unpack`]).
    pub fn store(&mut self, batch: &PackedBatch, e: usize, out: &EpochOutput) {
        let h = &batch.headers[e];
        let (ub, rb) = (h.uid_base as usize, h.row_base as usize);
        for i in 0..h.n as usize {
            let u = ub + i;
            self.active[u] = out.active[i] as u32;
            if let Some(stake) = &out.stake {
                self.stake[u] = words(stake[i]);
            }
            self.stake_weight[u] = out.stake_weight[i] as u32;
            self.consensus[u] = out.consensus[i] as u32;
            self.incentive[u] = out.incentive[i] as u32;
            self.dividend[u] = out.dividend[i] as u32;
            self.validator_trust[u] = out.validator_trust[i] as u32;
            self.new_validator_permit[u] = out.new_validator_permit[i] as u32;
            self.emission[u] = words(out.emission[i]);
            self.server_emission[u] = words(out.server_emission[i]);
            self.validator_emission[u] = words(out.validator_emission[i]);
            if let (Some(t), Some(p)) = (&out.trust, &out.pruning_score) {
                self.trust[u] = t[i] as u32;
                self.pruning_score[u] = p[i] as u32;
            }
            let (cols, vals) = out.bonds.row(i);
            let at = batch.ob_offsets[rb + i] as usize;
            self.bond_len[u] = cols.len() as u32;
            for (k, (&c, &v)) in cols.iter().zip(vals).enumerate() {
                self.bond_cols[at + k] = c as u32;
                self.bond_vals[at + k] = v as u32;
            }
        }
    }
}

/// Packs validated inputs into one batch, each under the rules of its `spec_version`
/// (fields its era does not read neutralised, the rest as header flags).
pub fn pack(inputs: &[EpochInput]) -> PackedBatch {
    let mut b = PackedBatch::default();
    let mut cap = 0u32;
    let push_rows =
        |offsets: &mut Vec<u32>, cols: &mut Vec<u32>, vals: &mut Vec<u32>, m: &SparseMatrix| {
            for i in 0..m.rows() {
                offsets.push(cols.len() as u32);
                let (c, v) = m.row(i);
                cols.extend(c.iter().map(|&x| x as u32));
                vals.extend(v.iter().map(|&x| x as u32));
            }
            offsets.push(cols.len() as u32);
        };
    for (e, x) in inputs.iter().enumerate() {
        // Validated already: a spec below 233 does not get here.
        let rules = Rules::for_spec(x.spec_version).unwrap_or(Rules::TODAY);
        let effective = rules.effective(x);
        let x = effective.as_ref();
        b.rules.push(rules);
        let uid_base = b.validator_permit.len() as u32;
        let mut flags = rule_flags(&rules);
        if x.yuma3 {
            flags |= FLAG_YUMA3;
        }
        if x.liquid_alpha {
            flags |= FLAG_LIQUID_ALPHA;
        }
        if x.commit_reveal {
            flags |= FLAG_COMMIT_REVEAL;
        }
        if x.owner_uid.is_some() {
            flags |= FLAG_HAS_OWNER;
        }
        b.headers.push(EpochHeader {
            n: x.n as u32,
            flags,
            owner_uid: x.owner_uid.unwrap_or(0) as u32,
            kappa: x.kappa as u32,
            bonds_penalty: x.bonds_penalty as u32,
            max_allowed_validators: x.max_allowed_validators as u32,
            alpha_low: x.alpha_low as u32,
            alpha_high: x.alpha_high as u32,
            alpha_sigmoid_steepness: x.alpha_sigmoid_steepness as i32,
            tempo: x.tempo as u32,
            uid_base,
            row_base: uid_base + e as u32,
            current_block: words(x.current_block),
            activity_cutoff: words(x.activity_cutoff),
            last_mechanism_step_block: words(x.last_mechanism_step_block),
            bonds_moving_average: words(x.bonds_moving_average),
            stake_threshold: words(x.stake_threshold),
            tao_weight: words(x.tao_weight),
            emission: words(x.emission),
        });
        b.alpha_stake
            .extend(x.alpha_stake.iter().map(|&v| words(v)));
        b.tao_stake.extend(x.tao_stake.iter().map(|&v| words(v)));
        b.last_update
            .extend(x.last_update.iter().map(|&v| words(v)));
        b.block_at_registration
            .extend(x.block_at_registration.iter().map(|&v| words(v)));
        b.commit_block
            .extend(x.commit_block.iter().map(|&v| words(v.unwrap_or(u64::MAX))));
        b.validator_permit
            .extend(x.validator_permit.iter().map(|&p| p as u32));
        push_rows(&mut b.w_offsets, &mut b.w_cols, &mut b.w_vals, &x.weights);
        push_rows(&mut b.b_offsets, &mut b.b_cols, &mut b.b_vals, &x.bonds);
        for i in 0..x.n as usize {
            b.ob_offsets.push(cap);
            cap += x.weights.row(i).0.len() as u32 + x.bonds.row(i).0.len() as u32;
        }
        b.ob_offsets.push(cap);
    }
    b
}

/// Unpacks epoch outputs from the output buffers.
pub fn unpack(batch: &PackedBatch, out: &PackedOutput) -> Vec<EpochOutput> {
    batch
        .headers
        .iter()
        .zip(&batch.rules)
        .map(|(h, rules)| {
            let (ub, rb, n) = (h.uid_base as usize, h.row_base as usize, h.n as usize);
            let r = ub..ub + n;
            let u16s = |v: &[u32]| -> Vec<u16> { v[r.clone()].iter().map(|&x| x as u16).collect() };
            let u64s =
                |v: &[U64Words]| -> Vec<u64> { v[r.clone()].iter().map(|&x| join(x)).collect() };
            let bools = |v: &[u32]| -> Vec<bool> { v[r.clone()].iter().map(|&x| x != 0).collect() };
            let rows: Vec<Vec<(u16, u16)>> = (0..n)
                .map(|i| {
                    let u = ub + i;
                    if rules.keep_unpermitted_bonds
                        && out.new_validator_permit[u] == 0
                        && batch.validator_permit[u] == 0
                    {
                        // Before 320 the epoch leaves this uid's stored row as it is.
                        let (a, z) = (batch.b_offsets[rb + i], batch.b_offsets[rb + i + 1]);
                        return (a as usize..z as usize)
                            .map(|k| (batch.b_cols[k] as u16, batch.b_vals[k] as u16))
                            .collect();
                    }
                    let at = batch.ob_offsets[rb + i] as usize;
                    let len = out.bond_len[u] as usize;
                    (at..at + len)
                        .map(|k| (out.bond_cols[k] as u16, out.bond_vals[k] as u16))
                        .collect()
                })
                .collect();
            let incentive = u16s(&out.incentive);
            EpochOutput {
                active: bools(&out.active),
                stake: rules.stake_output.then(|| u64s(&out.stake)),
                // Rank is the normalised clipped rank, the vector incentive copies.
                rank: rules.rank_trust_pruning.then(|| incentive.clone()),
                trust: rules.rank_trust_pruning.then(|| u16s(&out.trust)),
                pruning_score: rules.rank_trust_pruning.then(|| u16s(&out.pruning_score)),
                stake_weight: u16s(&out.stake_weight),
                consensus: u16s(&out.consensus),
                incentive,
                dividend: u16s(&out.dividend),
                validator_trust: u16s(&out.validator_trust),
                new_validator_permit: bools(&out.new_validator_permit),
                emission: u64s(&out.emission),
                server_emission: u64s(&out.server_emission),
                validator_emission: u64s(&out.validator_emission),
                bonds: SparseMatrix::from_rows(&rows),
            }
        })
        .collect()
}
