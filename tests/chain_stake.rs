//! The U96F32 operations the chain client's stake inheritance uses, and the inheritance
//! itself, against substrate-fixed 0.6.0 as the oracle (raw bits), on edge values and
//! seeded random inputs.
#![cfg(feature = "chain")]

use substrate_fixed::types::U96F32 as Up;
use yuma::chain::snapshot::inherited;
use yuma::fixed::U96F32;

struct Rng(u64);

impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform bits, a random bit length, or an edge value.
    fn value(&mut self) -> u64 {
        match self.u64() % 4 {
            0 => self.u64(),
            1 => self.u64() >> (self.u64() % 64),
            2 => [0, 1, u64::MAX, u64::MAX / 2, u64::MAX - 1, 1 << 32][(self.u64() % 6) as usize],
            _ => self.u64() % 1_000_000_000_000,
        }
    }

    fn raw(&mut self) -> u128 {
        let hi = self.value() as u128;
        let lo = self.u64() as u128;
        match self.u64() % 3 {
            0 => (hi << 64) | lo,
            1 => lo,
            _ => (hi << 32) | (lo & 0xffff_ffff),
        }
    }
}

#[test]
fn u96f32_ops_match_substrate_fixed() {
    let mut rng = Rng(96);
    for _ in 0..200_000 {
        let (a, b) = (rng.raw(), rng.raw());
        let (ua, ub) = (Up::from_bits(a), Up::from_bits(b));
        let (ya, yb) = (U96F32(a), U96F32(b));
        assert_eq!(
            ya.saturating_mul(yb).0,
            ua.saturating_mul(ub).to_bits(),
            "{a} * {b}"
        );
        assert_eq!(
            ya.saturating_add(yb).0,
            ua.saturating_add(ub).to_bits(),
            "{a} + {b}"
        );
        assert_eq!(
            ya.saturating_sub(yb).0,
            ua.saturating_sub(ub).to_bits(),
            "{a} - {b}"
        );
        assert_eq!(
            ya.saturating_to_u64(),
            ua.saturating_to_num::<u64>(),
            "{a} to u64"
        );
        let x = rng.value();
        assert_eq!(
            U96F32::from_u64(x).0,
            Up::saturating_from_num(x).to_bits(),
            "{x}"
        );
    }
}

/// `get_inherited_for_hotkey_on_subnet`, written with substrate-fixed as upstream does.
fn oracle(initial: u64, children: &[u64], parents: &[(u64, u64)]) -> u64 {
    let max = Up::saturating_from_num(u64::MAX);
    let share = |p: u64| {
        Up::saturating_from_num(p)
            .checked_div(max)
            .unwrap_or(Up::from_num(0))
    };
    let init = Up::saturating_from_num(initial);
    let mut to_children = Up::from_num(0);
    for &p in children {
        to_children = to_children.saturating_add(init.saturating_mul(share(p)));
    }
    let mut from_parents = Up::from_num(0);
    for &(p, stake) in parents {
        from_parents =
            from_parents.saturating_add(Up::saturating_from_num(stake).saturating_mul(share(p)));
    }
    init.saturating_sub(to_children)
        .saturating_add(from_parents)
        .saturating_to_num::<u64>()
}

#[test]
fn inherited_stake_matches_the_pallet() {
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let initial = rng.value();
        let children: Vec<u64> = (0..rng.u64() % 4).map(|_| rng.value()).collect();
        let parents: Vec<(u64, u64)> = (0..rng.u64() % 4)
            .map(|_| (rng.value(), rng.value()))
            .collect();
        let kids: Vec<(u64, [u8; 32])> = children.iter().map(|&p| (p, [1; 32])).collect();
        let mut ps = Vec::new();
        let mut stakes = std::collections::HashMap::new();
        for (i, &(p, s)) in parents.iter().enumerate() {
            let key = [i as u8 + 2; 32];
            ps.push((p, key));
            stakes.insert(key, s);
        }
        assert_eq!(
            inherited(initial, &kids, &ps, |k| stakes[k]),
            oracle(initial, &children, &parents),
            "initial {initial}, children {children:?}, parents {parents:?}"
        );
    }
}
