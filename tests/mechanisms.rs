//! Subnet epochs over several mechanisms (format 2): every case exact on the CPU in each
//! layout and through a backend batch, and property tests of the split and the fold
//! (against substrate-fixed's U64F64 as the oracle). The GPU backends and the daemon
//! check the same cases in their own test files.

mod common;

use common::epochgen::Rng;
use substrate_fixed::types::U64F64;
use yuma::backend::{Backend, cpu::CpuBackend};
use yuma::epoch::Layout;
use yuma::epoch::mechanisms::{
    U64F64_ONE, combine, fold, mechanism_weight, run_subnet, run_subnet_with, split_emission,
};
use yuma::model::EpochOutput;
use yuma::model::subnet::{AnyInput, AnyOutput, SubnetError, SubnetInput};

#[test]
fn cpu_matches_every_subnet_case_in_each_layout() {
    let cases = common::cases::subnet_cases();
    let mut failures = Vec::new();
    for layout in [Layout::Auto, Layout::Sparse, Layout::Dense] {
        for (path, case) in &cases {
            let want = case.output.as_ref().expect("expected output");
            match run_subnet_with(&case.input, layout) {
                Ok(got) => {
                    if let Some(m) = want.first_difference(&got) {
                        failures.push(format!("{path} ({layout:?}): {m}"));
                    }
                }
                Err(e) => failures.push(format!("{path} ({layout:?}): rejected: {e}")),
            }
        }
    }
    common::report(
        &format!(
            "cpu subnet epochs: checked {} cases in 3 layouts, {} failed",
            cases.len(),
            failures.len()
        ),
        &failures,
    );
}

/// Every subnet case and every format 1 case in one mixed batch of the CPU backend.
#[test]
fn cpu_backend_batch_mixes_formats_exactly() {
    let subnets = common::cases::subnet_cases();
    let epochs = common::cases::conformance_cases();
    let mut inputs = Vec::new();
    let mut want = Vec::new();
    for ((_, s), (_, e)) in subnets.iter().zip(epochs.iter().cycle()) {
        inputs.push(AnyInput::Subnet(s.input.clone()));
        want.push(AnyOutput::Subnet(s.output.clone().unwrap()));
        inputs.push(AnyInput::Epoch(e.input.clone()));
        want.push(AnyOutput::Epoch(e.output.clone().unwrap()));
    }
    let results = CpuBackend::new().run_any(inputs).expect("cpu batch");
    assert_eq!(results.len(), want.len());
    let mut failures = Vec::new();
    for (i, (r, w)) in results.iter().zip(&want).enumerate() {
        match r {
            Ok(got) => {
                if let Some(m) = w.first_difference(got) {
                    failures.push(format!("input {i}: {m}"));
                }
            }
            Err(e) => failures.push(format!("input {i}: rejected: {e}")),
        }
    }
    common::report(
        &format!(
            "cpu backend mixed batch: {} inputs, {} failed",
            want.len(),
            failures.len()
        ),
        &failures,
    );
}

/// A rejected subnet fails alone and names its mechanism; the batch's others still run.
#[test]
fn a_bad_mechanism_fails_only_its_subnet() {
    let cases = common::cases::subnet_cases();
    let good = cases
        .iter()
        .find(|(p, _)| p.ends_with("m2-even-n16-y3-la.json"))
        .unwrap()
        .1
        .clone();
    let mut bad = good.input.clone();
    bad.mechanisms[1].commit_block.pop();
    let results = CpuBackend::new()
        .run_any(vec![
            AnyInput::Subnet(good.input.clone()),
            AnyInput::Subnet(bad),
            AnyInput::Subnet(good.input.clone()),
        ])
        .unwrap();
    let want = AnyOutput::Subnet(good.output.unwrap());
    assert_eq!(results[0].as_ref().ok(), Some(&want));
    assert_eq!(results[2].as_ref().ok(), Some(&want));
    let e = results[1].as_ref().unwrap_err();
    assert!(
        matches!(e, SubnetError::Mechanism { mechanism: 1, .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "mechanism 1: field `commit_block` has length 15, expected n = 16"
    );
}

/// One mechanism, split unset or [65535], gives exactly the format 1 epoch: the same
/// mechanism output, and subnet terms equal to its fields (weight exactly 1, also at
/// emission 0 through the fallback).
#[test]
fn one_mechanism_is_exactly_the_format_1_epoch() {
    let mut checked = 0;
    for (path, case) in common::cases::conformance_cases() {
        let want = case.output.unwrap();
        for split in [None, Some(vec![u16::MAX])] {
            let mut input = SubnetInput::from_epoch(case.input.clone());
            input.emission_split = split;
            let got = run_subnet(&input).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(got.mechanisms.len(), 1, "{path}");
            assert_eq!(got.mechanisms[0].emission, case.input.emission, "{path}");
            assert_eq!(got.mechanisms[0].output, want, "{path}");
            let s = &got.subnet;
            assert_eq!(s.active, want.active, "{path}");
            assert_eq!(s.emission, want.emission, "{path}");
            assert_eq!(s.consensus, want.consensus, "{path}");
            assert_eq!(s.dividend, want.dividend, "{path}");
            assert_eq!(s.validator_trust, want.validator_trust, "{path}");
            assert_eq!(s.new_validator_permit, want.new_validator_permit, "{path}");
            assert_eq!(s.stake_weight, want.stake_weight, "{path}");
            assert_eq!(s.server_emission, want.server_emission, "{path}");
            assert_eq!(s.validator_emission, want.validator_emission, "{path}");
            assert_eq!(s.stake, want.stake, "{path}");
            assert_eq!(s.incentive, want.incentive, "{path}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    eprintln!("one mechanism == format 1: {checked} runs");
}

/// Random valid splits (`len` entries summing to 65535, zeros included).
fn random_split(rng: &mut Rng, len: usize) -> Vec<u16> {
    let mut cuts: Vec<u64> = (1..len).map(|_| rng.below(65_536)).collect();
    cuts.push(0);
    cuts.push(65_535);
    cuts.sort();
    cuts.windows(2).map(|w| (w[1] - w[0]) as u16).collect()
}

fn random_total(rng: &mut Rng) -> u64 {
    match rng.below(5) {
        0 => 0,
        1 => rng.below(100),
        2 => u64::MAX - rng.below(100),
        3 => rng.next() >> rng.below(64),
        _ => rng.next(),
    }
}

#[test]
fn split_always_sums_to_the_emission() {
    let mut rng = Rng::new(0x5117);
    for _ in 0..50_000 {
        let count = 1 + rng.below(16) as usize;
        let total = random_total(&mut rng);
        let split = rng.chance(60).then(|| {
            let len = 1 + rng.below(count as u64) as usize;
            random_split(&mut rng, len)
        });
        let shares = split_emission(total, split.as_deref(), count);
        assert_eq!(shares.len(), count);
        let sum: u128 = shares.iter().map(|&s| s as u128).sum();
        assert_eq!(sum, total as u128, "total {total} split {split:?}");
        // Every share but mechanism 0's is the floored product; mechanism 0 takes the rest.
        for (k, &s) in shares.iter().enumerate().skip(1) {
            let want = match &split {
                None => total / count as u64,
                Some(sp) => sp
                    .get(k)
                    .map_or(0, |&w| (total as u128 * w as u128 / 65_535) as u64),
            };
            assert_eq!(s, want, "mechanism {k}: total {total} split {split:?}");
        }
    }
}

#[test]
fn zero_total_gives_mechanism_0_weight_1() {
    let mut rng = Rng::new(0x2e80);
    for count in 1..=16usize {
        let split = rng.chance(50).then(|| {
            let len = 1 + rng.below(count as u64) as usize;
            random_split(&mut rng, len)
        });
        let shares = split_emission(0, split.as_deref(), count);
        assert!(shares.iter().all(|&s| s == 0));
        for (k, &s) in shares.iter().enumerate() {
            let w = mechanism_weight(k, s, 0);
            assert_eq!(w, if k == 0 { U64F64_ONE } else { 0 }, "mechanism {k}");
        }
        // Folded, the subnet terms are mechanism 0's own (u64 sums aside).
        let outs: Vec<EpochOutput> = (0..count).map(|_| random_output(&mut rng, 7)).collect();
        let got = combine(0, &shares, outs.clone());
        assert_eq!(got.subnet.consensus, outs[0].consensus);
        assert_eq!(got.subnet.dividend, outs[0].dividend);
        assert_eq!(got.subnet.incentive, outs[0].incentive);
        assert_eq!(got.subnet.emission, outs[0].emission);
    }
}

/// The weight against substrate-fixed: `U64F64(share).safe_div_or(U64F64(total), fallback)`.
#[test]
fn weight_matches_substrate_fixed() {
    let mut rng = Rng::new(0x3e1);
    for _ in 0..100_000 {
        let total = random_total(&mut rng);
        let share = if total == 0 {
            0
        } else {
            rng.below(total) + rng.below(2)
        };
        let share = share.min(total);
        let k = rng.below(3) as usize;
        let fallback = U64F64::saturating_from_num(if k == 0 { 1 } else { 0 });
        let want = U64F64::saturating_from_num(share)
            .checked_div(U64F64::saturating_from_num(total))
            .unwrap_or(fallback);
        assert_eq!(
            mechanism_weight(k, share, total),
            want.to_bits(),
            "share {share} total {total}"
        );
    }
}

/// A random epoch output of `n` uids (only the fields the fold reads matter).
fn random_output(rng: &mut Rng, n: usize) -> EpochOutput {
    let u16s = |rng: &mut Rng| -> Vec<u16> {
        (0..n)
            .map(|_| match rng.below(4) {
                0 => 0,
                1 => u16::MAX,
                _ => rng.below(65_536) as u16,
            })
            .collect()
    };
    let consensus = u16s(rng);
    let dividend = u16s(rng);
    let validator_trust = u16s(rng);
    let stake_weight = u16s(rng);
    let incentive = u16s(rng);
    let u64s = |rng: &mut Rng| -> Vec<u64> { (0..n).map(|_| random_total(rng)).collect() };
    EpochOutput {
        active: (0..n).map(|_| rng.chance(50)).collect(),
        stake: u64s(rng),
        stake_weight,
        consensus,
        incentive,
        dividend,
        validator_trust,
        new_validator_permit: (0..n).map(|_| rng.chance(50)).collect(),
        emission: u64s(rng),
        server_emission: u64s(rng),
        validator_emission: u64s(rng),
        bonds: yuma::model::SparseMatrix::empty(n),
    }
}

/// The chain's `weighted_acc_*` in substrate-fixed.
fn oracle_u16(acc: u16, x: u16, w: U64F64) -> u16 {
    U64F64::saturating_from_num(acc)
        .saturating_add(U64F64::saturating_from_num(x).saturating_mul(w))
        .saturating_to_num::<u16>()
}

fn oracle_u64(acc: u64, x: u64, w: U64F64) -> u64 {
    U64F64::saturating_from_num(acc)
        .saturating_add(U64F64::saturating_from_num(x).saturating_mul(w))
        .saturating_to_num::<u64>()
}

/// The fold against the chain's fold written with substrate-fixed, over random outputs
/// and weights (including weights that sum above 1, which saturate).
#[test]
fn fold_matches_substrate_fixed() {
    let mut rng = Rng::new(0xf01d);
    for _ in 0..2_000 {
        let count = 1 + rng.below(16) as usize;
        let n = rng.below(9) as usize;
        let outs: Vec<EpochOutput> = (0..count).map(|_| random_output(&mut rng, n)).collect();
        let weights: Vec<u128> = (0..count)
            .map(|_| match rng.below(4) {
                0 => U64F64_ONE,
                1 => 0,
                _ => rng.next() as u128,
            })
            .collect();
        let got = fold(&outs.iter().collect::<Vec<_>>(), &weights);
        for i in 0..n {
            let (mut c, mut d, mut v, mut s, mut e) = (0u16, 0u16, 0u16, 0u16, 0u64);
            let (mut se, mut ve, mut st) = (0u64, 0u64, 0u64);
            let (mut a, mut p) = (false, false);
            for (o, &w) in outs.iter().zip(&weights) {
                let w = U64F64::from_bits(w);
                c = oracle_u16(c, o.consensus[i], w);
                d = oracle_u16(d, o.dividend[i], w);
                v = oracle_u16(v, o.validator_trust[i], w);
                s = oracle_u16(s, o.stake_weight[i], w);
                e = oracle_u64(e, o.emission[i], w);
                se = se.saturating_add(o.server_emission[i]);
                ve = ve.saturating_add(o.validator_emission[i]);
                st = st.saturating_add(o.stake[i]);
                a |= o.active[i];
                p |= o.new_validator_permit[i];
            }
            let inc = oracle_u16(0, outs[0].incentive[i], U64F64::from_bits(weights[0]));
            let t = &got;
            assert_eq!(
                (
                    t.consensus[i],
                    t.dividend[i],
                    t.validator_trust[i],
                    t.stake_weight[i],
                    t.emission[i],
                    t.incentive[i]
                ),
                (c, d, v, s, e, inc),
                "uid {i}"
            );
            assert_eq!(
                (
                    t.server_emission[i],
                    t.validator_emission[i],
                    t.stake[i],
                    t.active[i],
                    t.new_validator_permit[i]
                ),
                (se, ve, st, a, p),
                "uid {i}"
            );
        }
    }
}
