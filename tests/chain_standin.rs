//! The chain client against a JSON-RPC node stand-in whose storage is built by encoding
//! conformance cases (format 1 and 2) into subtensor's layout: the fetched input is the
//! case's input, the case's outputs stored at B check clean, a one-unit change of any
//! stored output is caught, and faults give clear errors.
#![cfg(feature = "chain")]

mod common;
mod standin;

use std::path::Path;
use std::time::Duration;

use standin::{Chain, StandIn, encode};
use yuma::chain::check::{compare, infer_emission};
use yuma::chain::snapshot::{self, read_inputs, read_outputs};
use yuma::chain::storage::{self as st, storage_index};
use yuma::chain::{ChainError, Node, Retry};
use yuma::epoch::mechanisms::{combine, run_subnet};
use yuma::model::case_files;
use yuma::model::subnet::{AnyCase, SubnetInput, SubnetOutput, decode_case};

const NETUID: u16 = 7;

/// Every case with an output, as a subnet input and output.
fn cases() -> Vec<(String, SubnetInput, SubnetOutput)> {
    let mut out = Vec::new();
    for (name, case) in common::cases::conformance_cases() {
        let Some(o) = case.output else { continue };
        let e = case.input.emission;
        out.push((
            name,
            SubnetInput::from_epoch(case.input),
            combine(e, &[e], vec![o]),
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        root.join("tests/conformance/mechanisms"),
        root.join("../shared/conformance/mechanisms"),
    ] {
        let Ok(files) = case_files(&dir) else {
            continue;
        };
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable");
            if let Ok(AnyCase::Subnet(c)) = decode_case(&text)
                && let Some(o) = c.output
            {
                out.push((f.display().to_string(), c.input, o));
            }
        }
    }
    out
}

fn quick() -> Retry {
    Retry {
        retries: 1,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(30),
    }
}

/// Changes one stored output of the epoch at `b` by one unit, chosen by `which`; returns
/// the item changed, or `None` when the epoch stored nothing to change.
fn perturb(chain: &mut Chain, b: u64, n: u16, which: usize) -> Option<&'static str> {
    if n == 0 {
        return None;
    }
    let block = chain.blocks.get_mut(&Chain::hash_of(b)).expect("block B");
    let nk = NETUID.to_le_bytes();
    let uid = which % n as usize;
    let items = [
        st::ACTIVE,
        st::EMISSION,
        st::CONSENSUS,
        st::DIVIDENDS,
        st::VALIDATOR_TRUST,
        st::VALIDATOR_PERMIT,
        st::STAKE_WEIGHT,
        st::INCENTIVE,
        st::BONDS,
    ];
    let item = items[which % items.len()];
    use parity_scale_codec::{Decode, Encode};
    let key = match item.name {
        "Incentive" => item.key(&[&storage_index(NETUID, 0).to_le_bytes()]),
        "Bonds" => item.key(&[
            &storage_index(NETUID, 0).to_le_bytes(),
            &(uid as u16).to_le_bytes(),
        ]),
        _ => item.key(&[&nk]),
    };
    let raw = block.storage.get(&key).cloned().flatten().expect("stored");
    let new = match item.ty {
        "Vec<bool>" => {
            let mut v = Vec::<bool>::decode(&mut &raw[..]).expect("bools");
            v[uid] = !v[uid];
            v.encode()
        }
        "Vec<u64>" => {
            let mut v = Vec::<u64>::decode(&mut &raw[..]).expect("u64s");
            v[uid] = if v[uid] == u64::MAX {
                v[uid] - 1
            } else {
                v[uid] + 1
            };
            v.encode()
        }
        "Vec<u16>" => {
            let mut v = Vec::<u16>::decode(&mut &raw[..]).expect("u16s");
            v[uid] = if v[uid] == u16::MAX {
                v[uid] - 1
            } else {
                v[uid] + 1
            };
            v.encode()
        }
        _ => {
            let mut v = Vec::<(u16, u16)>::decode(&mut &raw[..]).expect("row");
            match v.first_mut() {
                Some(e) => e.1 = if e.1 == u16::MAX { e.1 - 1 } else { e.1 + 1 },
                None => v.push((0, 1)),
            }
            v.encode()
        }
    };
    block.storage.insert(key, Some(new));
    Some(item.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_returns_every_case_input_and_check_passes_and_catches_one_unit() {
    let all = cases();
    assert!(all.len() >= 20, "only {} cases found", all.len());
    let (mut held, mut skipped, mut caught) = (0, Vec::new(), 0);
    let (mut inferred, mut not_inferred) = (0, Vec::new());
    for (i, (name, input, output)) in all.into_iter().enumerate() {
        let mut chain = Chain::default();
        if encode::write(&mut chain, NETUID, &input, &output).is_none() {
            skipped.push(name);
            continue;
        }
        held += 1;
        let b = input.current_block;
        let standin = StandIn::start(chain, Duration::ZERO).await;
        let url = if i % 2 == 0 {
            &standin.http
        } else {
            &standin.ws
        };
        let node = Node::connect(url, quick()).await.expect("connects");
        let at = snapshot::epoch_block(&node, b).await.expect("block");
        assert_eq!(
            snapshot::epoch_ran(&node, NETUID, &at)
                .await
                .expect("ran")
                .0,
            b,
            "{name}"
        );
        let calls0 = node.calls();
        let state = read_inputs(&node, NETUID, &at, false)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if input.n <= 256 && input.mechanisms.len() == 1 {
            // Round trips: 3 block-level calls, then up to 4 batched rounds (chunks concurrent).
            assert!(
                node.calls() - calls0 <= 12,
                "{name}: {} calls",
                node.calls() - calls0
            );
        }
        let mut fetched = state.input.clone();
        fetched.emission = input.emission;
        assert_eq!(
            fetched, input,
            "{name}: fetched input differs from the case"
        );

        let stored = read_outputs(&node, NETUID, input.n, input.mechanisms.len(), &at)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            compare(&stored, &output),
            vec![],
            "{name}: case outputs do not check clean"
        );
        let computed = run_subnet(&input).expect("runs");
        assert_eq!(
            compare(&stored, &computed),
            vec![],
            "{name}: recomputation differs"
        );

        // The inferred emission reproduces the stored Emission.
        match infer_emission(&state.input, &stored.emission).expect("runs") {
            Some(e) => {
                let mut again = state.input.clone();
                again.emission = e;
                let out = run_subnet(&again).expect("runs");
                assert_eq!(out.subnet.emission, stored.emission, "{name}");
                assert!(e <= input.emission, "{name}: {e} is not the smallest");
                inferred += 1;
            }
            None => not_inferred.push(name.clone()),
        }

        // (The lock is released before the stand-in must answer again.)
        let changed = perturb(&mut standin.chain.write().expect("lock"), b, input.n, i);
        if let Some(item) = changed {
            let stored = read_outputs(&node, NETUID, input.n, input.mechanisms.len(), &at)
                .await
                .expect("reads");
            let diffs = compare(&stored, &computed);
            assert!(
                diffs.iter().any(|d| d.item == item),
                "{name}: change of {item} not caught: {diffs:?}"
            );
            caught += 1;
        }
    }
    eprintln!(
        "{held} cases held by the stand-in, {caught} one-unit changes caught; not holdable: {skipped:?}"
    );
    eprintln!("emission inferred for {inferred} subnets");
    assert!(held >= 20 && caught >= 20);
    assert_eq!(not_inferred, Vec::<String>::new(), "emission not inferred");
}

/// A stand-in chain holding the first case at netuid 7.
async fn one_case() -> (StandIn, u64) {
    let (_, input, output) = cases().into_iter().find(|c| c.1.n >= 4).expect("a case");
    let mut chain = Chain::default();
    encode::write(&mut chain, NETUID, &input, &output).expect("holdable");
    (
        StandIn::start(chain, Duration::ZERO).await,
        input.current_block,
    )
}

#[tokio::test]
async fn faults_give_clear_errors() {
    let (standin, b) = one_case().await;
    let node = Node::connect(&standin.http, quick())
        .await
        .expect("connects");
    let at = snapshot::epoch_block(&node, b).await.expect("block");

    // A netuid that does not exist.
    let e = read_inputs(&node, 99, &at, false)
        .await
        .expect_err("no subnet");
    assert!(matches!(e, ChainError::NoSubnet { netuid: 99, .. }), "{e}");

    // A block the node does not have.
    let e = snapshot::epoch_block(&node, 1 << 40)
        .await
        .expect_err("no block");
    assert!(matches!(e, ChainError::NoBlock(_)), "{e}");

    let prev = Chain::hash_of(b - 1);
    let nk = NETUID.to_le_bytes();
    let set = |item: st::Item, parts: &[&[u8]], raw: Vec<u8>| {
        standin
            .chain
            .write()
            .expect("lock")
            .blocks
            .get_mut(&prev)
            .expect("B-1")
            .storage
            .insert(item.key(parts), Some(raw));
    };
    // A value that does not decode names the item and the key.
    let tempo_key = st::TEMPO.key(&[&nk]);
    let good_tempo = standin.chain.read().expect("lock").blocks[&prev].storage[&tempo_key].clone();
    set(st::TEMPO, &[&nk], vec![1, 2, 3]);
    let e = read_inputs(&node, NETUID, &at, false)
        .await
        .expect_err("bad bytes");
    let text = e.to_string();
    assert!(
        text.contains("Tempo") && text.contains(&yuma::chain::rpc::to_hex(&tempo_key)),
        "{text}"
    );
    set(st::TEMPO, &[&nk], good_tempo.expect("stored"));

    // A node that contradicts itself: LastUpdate shorter than n.
    let ix = storage_index(NETUID, 0).to_le_bytes();
    use parity_scale_codec::Encode;
    set(st::LAST_UPDATE, &[&ix], vec![1u64].encode());
    let e = read_inputs(&node, NETUID, &at, false)
        .await
        .expect_err("contradiction");
    assert!(
        matches!(
            e,
            ChainError::Contradiction {
                item: "LastUpdate",
                ..
            }
        ),
        "{e}"
    );

    // Pruned state.
    standin
        .chain
        .write()
        .expect("lock")
        .pruned
        .push(prev.clone());
    let e = read_inputs(&node, NETUID, &at, false)
        .await
        .expect_err("pruned");
    assert!(matches!(e, ChainError::Pruned { .. }), "{e}");
    standin.chain.write().expect("lock").pruned.clear();

    // A runtime whose rules yuma does not implement is refused, naming the version.
    standin
        .chain
        .write()
        .expect("lock")
        .blocks
        .get_mut(&prev)
        .expect("B-1")
        .spec = 300;
    let e = read_inputs(&node, NETUID, &at, false)
        .await
        .expect_err("old runtime");
    assert!(
        matches!(e, ChainError::UnsupportedSpec { spec: 300, .. }) && e.to_string().contains("300"),
        "{e}"
    );

    // An unreachable node, after its retries.
    let e = match Node::connect("ws://127.0.0.1:9", quick()).await {
        Err(e) => e,
        Ok(_) => panic!("port 9 answered"),
    };
    assert!(matches!(e, ChainError::Unreachable { .. }), "{e}");
    let http = Node::connect("http://127.0.0.1:9", quick())
        .await
        .expect("http connects lazily");
    let e = http.block_hash(1).await.expect_err("unreachable");
    assert!(matches!(e, ChainError::Unreachable { .. }), "{e}");
}

#[tokio::test]
async fn stake_is_inherited_through_child_and_parent_keys() {
    let (standin, b) = one_case().await;
    let prev = Chain::hash_of(b - 1);
    let nk = NETUID.to_le_bytes();
    use parity_scale_codec::Encode;
    // uid 0 gives half its stake to uid 1; an outside hotkey gives a quarter of its own.
    let (p, c) = (encode::hotkey(NETUID, 0), encode::hotkey(NETUID, 1));
    let outside = [0x77u8; 32];
    let half = u64::MAX / 2;
    let quarter = u64::MAX / 4;
    {
        let mut chain = standin.chain.write().expect("lock");
        let s = &mut chain.blocks.get_mut(&prev).expect("B-1").storage;
        s.insert(
            st::CHILD_KEYS.key(&[&p, &nk]),
            Some(vec![(half, c)].encode()),
        );
        s.insert(
            st::PARENT_KEYS.key(&[&c, &nk]),
            Some(vec![(half, p), (quarter, outside)].encode()),
        );
        s.insert(
            st::TOTAL_HOTKEY_ALPHA.key(&[&outside, &nk]),
            Some(4_000_000u64.encode()),
        );
        s.insert(
            st::TOTAL_HOTKEY_ALPHA.key(&[&outside, &0u16.to_le_bytes()]),
            Some(8_000u64.encode()),
        );
    }
    let node = Node::connect(&standin.ws, quick()).await.expect("connects");
    let at = snapshot::epoch_block(&node, b).await.expect("block");
    let before = cases().into_iter().find(|c| c.1.n >= 4).expect("a case").1;
    let got = read_inputs(&node, NETUID, &at, false)
        .await
        .expect("reads")
        .input;
    let own = |v: &[u64], u: usize| v[u];
    let expect_alpha0 = snapshot::inherited(own(&before.alpha_stake, 0), &[(half, c)], &[], |_| 0);
    let expect_alpha1 = snapshot::inherited(
        own(&before.alpha_stake, 1),
        &[],
        &[(half, p), (quarter, outside)],
        |k| {
            if *k == p {
                before.alpha_stake[0]
            } else {
                4_000_000
            }
        },
    );
    assert_eq!(got.alpha_stake[0], expect_alpha0);
    assert_eq!(got.alpha_stake[1], expect_alpha1);
    let expect_tao1 = snapshot::inherited(
        own(&before.tao_stake, 1),
        &[],
        &[(half, p), (quarter, outside)],
        |k| if *k == p { before.tao_stake[0] } else { 8_000 },
    );
    assert_eq!(got.tao_stake[1], expect_tao1);
    // Half of a stake, computed as U96F32 does: stake * (half / u64::MAX), truncated.
    let s0 = before.alpha_stake[0];
    assert!(
        got.alpha_stake[0] >= s0 / 2 && got.alpha_stake[0] <= s0 / 2 + 1,
        "{} of {s0}",
        got.alpha_stake[0]
    );
}

/// The emission model the inference searches with gives, for any total, exactly the
/// `Emission` a whole subnet epoch gives.
#[test]
fn emission_model_is_the_epoch_for_any_total() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut checked = 0;
    for (name, input, _) in cases() {
        let Ok(model) = yuma::chain::check::EmissionModel::new(&input) else {
            continue;
        };
        let r = next();
        for e in [0, 1, 1 << 32, input.emission, r >> (r % 64), u64::MAX] {
            let mut at = input.clone();
            at.emission = e;
            let full = run_subnet(&at).expect("runs");
            assert_eq!(model.emission(e), full.subnet.emission, "{name} at E = {e}");
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} totals checked");
}
