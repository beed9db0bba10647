//! A long stretch of one subnet's epochs for range tests and benchmarks: a realistic
//! Yuma3 + liquid alpha subnet whose every epoch reads the same state and stores the same
//! outputs (activity cutoff beyond the stretch, everyone registered at block 0).

use yuma::chain::history::is_epoch_block;
use yuma::chain::snapshot::activity_cutoff;
use yuma::chain::storage as st;
use yuma::epoch::mechanisms::run_subnet;
use yuma::example::{Variant, realistic};
use yuma::model::subnet::SubnetInput;

use super::{Chain, Periodic, encode};

/// `ActivityCutoffFactorMilli` of the stretch: a cutoff far beyond any range.
const FACTOR: u32 = 4_000_000_000;

/// `epochs` epochs of subnet `netuid` (n uids, `validators` of them with full weight rows),
/// the first at the first epoch block at or after `start`.
pub fn periodic(
    netuid: u16,
    tempo: u16,
    start: u64,
    epochs: u64,
    n: u16,
    validators: u16,
) -> Periodic {
    let period = tempo as u64 + 1;
    let first = (start..)
        .find(|&b| is_epoch_block(netuid, tempo, b))
        .expect("a tempo above 0 has epoch blocks");
    let mut e = realistic(n, validators, Variant::Yuma3Liquid, 11);
    e.tempo = tempo;
    e.current_block = first;
    e.last_mechanism_step_block = first - period;
    e.activity_cutoff = activity_cutoff(FACTOR, tempo);
    e.last_update = vec![first - 2; n as usize];
    e.block_at_registration = vec![0; n as usize];
    e.commit_block = vec![None; n as usize];
    let input = SubnetInput::from_epoch(e);
    let output = run_subnet(&input).expect("a valid stretch");
    let mut chain = Chain::default();
    encode::write(&mut chain, netuid, &input, &output).expect("the chain holds it");
    let mut take = |b: u64| {
        std::mem::take(
            &mut chain
                .blocks
                .get_mut(&Chain::hash_of(b))
                .expect("written")
                .storage,
        )
    };
    Periodic {
        netuid,
        tempo,
        first,
        last: first + (epochs - 1) * period,
        spec: encode::SPEC,
        before: take(first - 1),
        at: take(first),
        counters: [
            st::LAST_MECHANISM_STEP_BLOCK.key(&[&netuid.to_le_bytes()]),
            st::SUBNET_EPOCH_INDEX.key(&[&netuid.to_le_bytes()]),
        ],
    }
}
