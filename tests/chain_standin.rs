//! The chain client against a JSON-RPC node stand-in whose storage is built by encoding
//! conformance cases (format 1 and 2, and the era vectors in their runtime's layout) into
//! subtensor's storage: the fetched input is the case's input, the case's outputs stored
//! at B check clean, a one-unit change of any stored output is caught, commits expire and
//! reveals land by the era's rules, and faults give clear errors.
#![cfg(feature = "chain")]

mod common;
mod standin;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use parity_scale_codec::{Decode, Encode};

use standin::{Chain, StandIn, encode};
use yuma::chain::check::{compare, infer_emission};
use yuma::chain::snapshot::{self, StoredOutputs, read_inputs, read_outputs};
use yuma::chain::storage::{self as st, storage_index};
use yuma::chain::{ChainError, Node, Retry};
use yuma::epoch::mechanisms::{combine, run_subnet};
use yuma::model::Case;
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

/// Asserts that the stored outputs match the case's outputs and the recomputation of
/// its input; returns the recomputation.
fn checks_clean(
    name: &str,
    stored: &StoredOutputs,
    input: &SubnetInput,
    output: &SubnetOutput,
) -> SubnetOutput {
    assert_eq!(
        compare(stored, output),
        vec![],
        "{name}: case outputs do not check clean"
    );
    let computed = run_subnet(input).expect("runs");
    assert_eq!(
        compare(stored, &computed),
        vec![],
        "{name}: recomputation differs"
    );
    computed
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
    change(chain, b, item, which % n as usize);
    Some(item.name)
}

/// Every output item the epoch of runtime `spec` stores.
fn stored_items(spec: u32) -> Vec<st::Item> {
    let mut items = vec![
        st::ACTIVE,
        st::EMISSION,
        st::CONSENSUS,
        st::DIVIDENDS,
        st::VALIDATOR_TRUST,
        st::VALIDATOR_PERMIT,
        st::INCENTIVE,
        st::BONDS,
    ];
    if !(320..323).contains(&spec) {
        items.push(st::STAKE_WEIGHT);
    }
    if spec < 365 {
        items.extend([st::RANK, st::TRUST, st::PRUNING_SCORES]);
    }
    items
}

/// Changes `item` as stored at block `b` by one unit at `uid` (for Bonds, in the row of
/// `uid`); returns its key and the value it held.
fn change(chain: &mut Chain, b: u64, item: st::Item, uid: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    let block = chain.blocks.get_mut(&Chain::hash_of(b)).expect("block B");
    let nk = NETUID.to_le_bytes();
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
    let old = block.storage.insert(key.clone(), Some(new)).flatten();
    (key, old)
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

        let spec = state.spec_version;
        let stored = read_outputs(&node, NETUID, input.n, input.mechanisms.len(), spec, &at)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let computed = checks_clean(&name, &stored, &input, &output);

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
            let stored = read_outputs(&node, NETUID, input.n, input.mechanisms.len(), spec, &at)
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

    // A runtime before dTAO, or newer than yuma knows, is refused, naming the version.
    for spec in [232, 426] {
        standin
            .chain
            .write()
            .expect("lock")
            .blocks
            .get_mut(&prev)
            .expect("B-1")
            .spec = spec;
        let e = read_inputs(&node, NETUID, &at, false)
            .await
            .expect_err("unsupported runtime");
        assert!(
            matches!(e, ChainError::UnsupportedSpec { spec: s, .. } if s == spec)
                && e.to_string().contains(&spec.to_string()),
            "{e}"
        );
    }

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

/// An era case as a subnet input and output.
fn era_subnet(case: Case) -> Option<(SubnetInput, SubnetOutput)> {
    let o = case.output?;
    let e = case.input.emission;
    Some((
        SubnetInput::from_epoch(case.input),
        combine(e, &[e], vec![o]),
    ))
}

/// The era case `<era>/<file>.json` of the repository copy.
fn era_case(era: u32, file: &str) -> (SubnetInput, SubnetOutput) {
    let suffix = format!("eras/{era}/{file}.json");
    common::cases::era_cases()
        .into_iter()
        .find(|(name, _)| name.ends_with(&suffix))
        .and_then(|(_, case)| era_subnet(case))
        .unwrap_or_else(|| panic!("no era case {suffix}"))
}

/// Every era vector (FORMAT v1 with `spec_version`) encoded in its runtime's layout: the
/// fetch returns the case input, spec_version included; the stored outputs and the
/// recomputation check clean; a one-unit change of every item the era stored (Rank, Trust
/// and PruningScores before 365) is caught, while what it did not store is not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn era_cases_fetch_and_check_in_their_runtime_layout() {
    let mut seen = BTreeSet::new();
    let mut held: BTreeMap<u32, usize> = BTreeMap::new();
    let mut caught: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, case) in common::cases::era_cases() {
        let spec = case.input.spec_version.expect("an era case names its spec");
        // ../shared/conformance/eras holds copies of the repository's vectors.
        let file = Path::new(&name).file_name().map(|f| f.to_owned());
        if !seen.insert((spec, file)) {
            continue;
        }
        let Some((input, output)) = era_subnet(case) else {
            continue;
        };
        let mut chain = Chain::default();
        if encode::write(&mut chain, NETUID, &input, &output).is_none() {
            skipped.push(name);
            continue;
        }
        *held.entry(spec).or_default() += 1;
        let b = input.current_block;
        let standin = StandIn::start(chain, Duration::ZERO).await;
        let node = Node::connect(&standin.ws, quick()).await.expect("connects");
        let at = snapshot::epoch_block(&node, b).await.expect("block");
        let state = read_inputs(&node, NETUID, &at, false)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(state.spec_version, spec, "{name}");
        let mut fetched = state.input.clone();
        fetched.emission = input.emission;
        assert_eq!(
            fetched, input,
            "{name}: fetched input differs from the case"
        );

        let read = || read_outputs(&node, NETUID, input.n, 1, spec, &at);
        let stored = read().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(stored.rank.is_some(), spec < 365, "{name}: Rank read");
        assert_eq!(
            stored.stake_weight.is_some(),
            !(320..323).contains(&spec),
            "{name}: StakeWeight read"
        );
        let computed = checks_clean(&name, &stored, &input, &output);

        if input.n == 0 {
            continue;
        }
        for (k, item) in stored_items(spec).into_iter().enumerate() {
            let uid = (k * 7) % input.n as usize;
            let (key, old) = change(&mut standin.chain.write().expect("lock"), b, item, uid);
            let diffs = compare(&read().await.expect("reads"), &computed);
            assert!(
                diffs.iter().any(|d| d.item == item.name),
                "{name}: change of {} not caught: {diffs:?}",
                item.name
            );
            let mut chain = standin.chain.write().expect("lock");
            let block = chain.blocks.get_mut(&Chain::hash_of(b)).expect("B");
            block.storage.insert(key, old);
            *caught.entry(item.name).or_default() += 1;
        }
    }
    eprintln!("era cases held per era: {held:?}; not holdable: {skipped:?}");
    eprintln!("one-unit changes caught per item: {caught:?}");
    for era in [233, 252, 257, 273, 283, 297, 320, 365, 397] {
        assert!(
            held.get(&era).copied().unwrap_or(0) >= 8,
            "era {era}: {held:?}"
        );
    }
    for item in ["Rank", "Trust", "PruningScores", "StakeWeight", "Bonds"] {
        assert!(
            caught.get(item).copied().unwrap_or(0) >= 20,
            "{item}: {caught:?}"
        );
    }
}

/// A stand-in holding `input` and `output` at netuid 7, and a client connected to it.
async fn serve(
    input: &SubnetInput,
    output: &SubnetOutput,
) -> (StandIn, Node, snapshot::EpochBlock) {
    let mut chain = Chain::default();
    encode::write(&mut chain, NETUID, input, output).expect("holdable");
    let standin = StandIn::start(chain, Duration::ZERO).await;
    let node = Node::connect(&standin.http, quick())
        .await
        .expect("connects");
    let at = snapshot::epoch_block(&node, input.current_block)
        .await
        .expect("block");
    (standin, node, at)
}

/// Sets `item` at `parts` in block `number` of the stand-in.
fn set_at(standin: &StandIn, number: u64, item: st::Item, parts: &[&[u8]], value: impl Encode) {
    standin
        .chain
        .write()
        .expect("lock")
        .blocks
        .get_mut(&Chain::hash_of(number))
        .expect("block")
        .storage
        .insert(item.key(parts), Some(value.encode()));
}

/// Before 423 a commit expires when the epoch of its block, `(block + netuid + 1) / (tempo
/// + 1)`, plus RevealPeriodEpochs is behind the current one; WeightCommits holds (hash,
/// commit_block, ..) and the epoch reads the era's timelocked queue entry by entry.
#[tokio::test]
async fn commit_blocks_before_423_expire_by_their_block() {
    let nk = NETUID.to_le_bytes();
    let hk = |u: u16| encode::hotkey(NETUID, u);

    // Era 297: WeightCommits and CRV3WeightCommitsV2.
    let (input, output) = era_case(297, "rule297-commit-reveal-mask");
    let b = input.current_block;
    let tempo = input.tempo;
    let committed: Vec<usize> = (0..input.n as usize)
        .filter(|&u| input.mechanisms[0].commit_block[u].is_some())
        .collect();
    let c = input.mechanisms[0].commit_block[committed[0]].expect("a commit");
    let now = encode::block_epoch(NETUID, tempo, b);
    let period = now - encode::block_epoch(NETUID, tempo, c);
    let (standin, node, at) = serve(&input, &output).await;
    let fetch = || async {
        read_inputs(&node, NETUID, &at, false)
            .await
            .expect("reads")
            .input
    };
    assert_eq!(
        fetch().await.mechanisms[0].commit_block,
        input.mechanisms[0].commit_block
    );

    // An expired commit ahead of an unexpired one: the first unexpired counts.
    let stale = b - (period + 2) * (tempo as u64 + 1);
    let u = committed[0] as u16;
    let queue: Vec<([u8; 32], u64, u64, u64)> = vec![([1; 32], stale, 0, 0), ([2; 32], c, 0, 0)];
    set_at(&standin, b - 1, st::WEIGHT_COMMITS, &[&nk, &hk(u)], queue);
    // Timelocked entries count one by one, whatever their epoch key: an unexpired one
    // before the WeightCommits block wins; expired ones and those of block B do not.
    let (v, w) = (committed[1] as u16, 0u16);
    assert!(input.mechanisms[0].commit_block[w as usize].is_none());
    let tl: Vec<([u8; 32], u64, Vec<u8>, u64)> = vec![
        (hk(v), c - 5, vec![1, 2], 9),
        (hk(w), stale, vec![], 9),
        (hk(w), b, vec![], 9),
    ];
    set_at(
        &standin,
        b,
        st::CRV3_WEIGHT_COMMITS_V2,
        &[&nk, &3u64.to_le_bytes()],
        tl,
    );
    // TimelockedWeightCommits came with 320: not read in 297.
    let later: Vec<([u8; 32], u64, Vec<u8>, u64)> = vec![(hk(w), c, vec![], 9)];
    set_at(
        &standin,
        b,
        st::TIMELOCKED_WEIGHT_COMMITS,
        &[&nk, &now.to_le_bytes()],
        later,
    );
    let got = fetch().await.mechanisms[0].commit_block.clone();
    let mut want = input.mechanisms[0].commit_block.clone();
    want[v as usize] = Some(c - 5);
    assert_eq!(got, want);

    // A period one epoch shorter expires the case's commits and the timelocked one, made
    // in the same epoch.
    assert_eq!(
        encode::block_epoch(NETUID, tempo, c - 5),
        encode::block_epoch(NETUID, tempo, c)
    );
    set_at(
        &standin,
        b - 1,
        st::REVEAL_PERIOD_EPOCHS,
        &[&nk],
        period - 1,
    );
    assert_eq!(
        fetch().await.mechanisms[0].commit_block,
        vec![None; input.n as usize]
    );

    // Era 320: TimelockedWeightCommits, still entry by entry by block; CRV3WeightCommitsV2
    // is no longer read.
    let (input, output) = era_case(320, "n16-orig");
    let b = input.current_block;
    let (standin, node, at) = serve(&input, &output).await;
    set_at(
        &standin,
        b - 1,
        st::COMMIT_REVEAL_WEIGHTS_ENABLED,
        &[&nk],
        true,
    );
    let fresh = b - 10;
    let tl: Vec<([u8; 32], u64, Vec<u8>, u64)> = vec![(hk(2), fresh, vec![], 1)];
    // An epoch key long past: from 423 the whole queue would have expired.
    set_at(
        &standin,
        b,
        st::TIMELOCKED_WEIGHT_COMMITS,
        &[&nk, &1u64.to_le_bytes()],
        tl,
    );
    let v2: Vec<([u8; 32], u64, Vec<u8>, u64)> = vec![(hk(3), fresh, vec![], 1)];
    set_at(
        &standin,
        b,
        st::CRV3_WEIGHT_COMMITS_V2,
        &[&nk, &1u64.to_le_bytes()],
        v2,
    );
    let got = read_inputs(&node, NETUID, &at, false)
        .await
        .expect("reads")
        .input;
    assert!(got.commit_reveal);
    let mut want = vec![None; input.n as usize];
    want[2] = Some(fresh);
    assert_eq!(got.mechanisms[0].commit_block, want);

    // Era 233: no commit mask; the input says so whatever is stored.
    let (input, output) = era_case(233, "n16-orig");
    let b = input.current_block;
    let (standin, node, at) = serve(&input, &output).await;
    let queue: Vec<([u8; 32], u64, u64, u64)> = vec![([1; 32], b - 10, 0, 0)];
    set_at(&standin, b - 1, st::WEIGHT_COMMITS, &[&nk, &hk(2)], queue);
    let got = read_inputs(&node, NETUID, &at, false)
        .await
        .expect("reads")
        .input;
    assert!(!got.commit_reveal);
    assert_eq!(got.mechanisms[0].commit_block, vec![None; input.n as usize]);
}

/// Block B's reveals reach its epoch in every era, from the era's queue: CRV3WeightCommits
/// (233-296), CRV3WeightCommitsV2 (297-319), TimelockedWeightCommits (from 320), of the
/// epoch `index - reveal_period`, one later before 320.
#[tokio::test]
async fn reveals_of_block_b_come_from_the_era_queue() {
    let nk = NETUID.to_le_bytes();
    for (era, item, lag_less) in [
        (233, st::CRV3_WEIGHT_COMMITS, 1),
        (297, st::CRV3_WEIGHT_COMMITS_V2, 1),
        (320, st::TIMELOCKED_WEIGHT_COMMITS, 0),
    ] {
        let (input, output) = era_case(era, "n16-orig");
        let b = input.current_block;
        let (standin, node, at) = serve(&input, &output).await;
        let period = 3u64;
        set_at(&standin, b - 1, st::REVEAL_PERIOD_EPOCHS, &[&nk], period);
        set_at(
            &standin,
            b - 1,
            st::COMMIT_REVEAL_WEIGHTS_ENABLED,
            &[&nk],
            false,
        );
        let now = encode::block_epoch(NETUID, input.tempo, b);
        let reveal = now - (period - lag_less);
        let (u, v) = (4u16, 5u16);
        let entries = |who: &[u16]| -> Vec<u8> {
            let hks: Vec<[u8; 32]> = who.iter().map(|&x| encode::hotkey(NETUID, x)).collect();
            if item == st::CRV3_WEIGHT_COMMITS {
                hks.into_iter()
                    .map(|h| (h, vec![7u8], 1u64))
                    .collect::<Vec<_>>()
                    .encode()
            } else {
                hks.into_iter()
                    .map(|h| (h, b - 400, vec![7u8], 1u64))
                    .collect::<Vec<_>>()
                    .encode()
            }
        };
        let put_raw = |number: u64, epoch: u64, raw: Option<Vec<u8>>| {
            let mut chain = standin.chain.write().expect("lock");
            let block = chain
                .blocks
                .get_mut(&Chain::hash_of(number))
                .expect("block");
            block
                .storage
                .insert(item.key(&[&nk, &epoch.to_le_bytes()]), raw);
        };
        // u's commit of the reveal epoch is taken at B; v's, of another epoch, is only
        // cleaned up, which is no reveal.
        put_raw(b - 1, reveal, Some(entries(&[u])));
        put_raw(b - 1, reveal - 1, Some(entries(&[v])));
        put_raw(b, reveal, None);
        put_raw(b, reveal - 1, None);
        let row = vec![(0u16, 11u16), (1, 22)];
        let ix = NETUID.to_le_bytes();
        for who in [u, v] {
            set_at(
                &standin,
                b,
                st::WEIGHTS,
                &[&ix, &who.to_le_bytes()],
                row.clone(),
            );
        }
        let mut last = input.mechanisms[0].last_update.clone();
        last[u as usize] = b;
        last[v as usize] = b;
        set_at(&standin, b, st::LAST_UPDATE, &[&ix], last);
        let got = read_inputs(&node, NETUID, &at, false)
            .await
            .unwrap_or_else(|e| panic!("era {era}: {e}"))
            .input;
        let m = &got.mechanisms[0];
        let want = &input.mechanisms[0];
        assert_eq!(
            m.weights.row_pairs(u as usize).collect::<Vec<_>>(),
            row,
            "era {era}"
        );
        assert_eq!(m.last_update[u as usize], b, "era {era}");
        assert_eq!(
            m.weights.row_pairs(v as usize).collect::<Vec<_>>(),
            want.weights.row_pairs(v as usize).collect::<Vec<_>>(),
            "era {era}"
        );
        assert_eq!(
            m.last_update[v as usize], want.last_update[v as usize],
            "era {era}"
        );
    }
}

/// Sets the runtime spec of blocks `numbers` of the stand-in.
fn set_spec(standin: &StandIn, numbers: &[u64], spec: u32) {
    let mut chain = standin.chain.write().expect("lock");
    for &number in numbers {
        chain
            .blocks
            .get_mut(&Chain::hash_of(number))
            .expect("block")
            .spec = spec;
    }
}

/// Absent items read their runtime's default (Tempo 99 before 244, BondsPenalty 0 before
/// 257, CommitRevealWeightsEnabled false before 306); AlphaSigmoidSteepness is a u16 in
/// 273-282; the coming epoch's emission is PendingEmission + PendingAlphaSwapped before
/// 365.
#[tokio::test]
async fn each_runtime_reads_its_own_defaults_types_and_pending_items() {
    let nk = NETUID.to_le_bytes();
    let (input, output) = era_case(297, "n16-orig");
    let b = input.current_block;
    let (standin, node, at) = serve(&input, &output).await;
    {
        let mut chain = standin.chain.write().expect("lock");
        chain.block(b - 2, 297);
        let s = &mut chain
            .blocks
            .get_mut(&Chain::hash_of(b - 1))
            .expect("B-1")
            .storage;
        for item in [
            st::TEMPO,
            st::BONDS_PENALTY,
            st::COMMIT_REVEAL_WEIGHTS_ENABLED,
        ] {
            s.remove(&item.key(&[&nk]));
        }
    }
    for (spec, tempo, penalty, commit_reveal) in [
        (243, 99, 0, false),
        (244, 360, 0, false),
        (256, 360, 0, false),
        (257, 360, u16::MAX, false),
        (305, 360, u16::MAX, false),
        (306, 360, u16::MAX, true),
    ] {
        set_spec(&standin, &[b - 1, b], spec);
        let got = read_inputs(&node, NETUID, &at, false)
            .await
            .unwrap_or_else(|e| panic!("spec {spec}: {e}"))
            .input;
        assert_eq!(
            (got.tempo, got.bonds_penalty, got.commit_reveal),
            (tempo, penalty, commit_reveal && spec >= 297),
            "spec {spec}"
        );
    }

    // 40000 stored as a u16 in 273-282 fits no i16; from 283 the bytes are the i16 -25536.
    set_at(&standin, b - 1, st::YUMA3_ON, &[&nk], true);
    set_at(
        &standin,
        b - 1,
        st::ALPHA_SIGMOID_STEEPNESS,
        &[&nk],
        40_000u16,
    );
    set_spec(&standin, &[b - 1, b], 282);
    let e = read_inputs(&node, NETUID, &at, false)
        .await
        .expect_err("steepness above i16");
    assert!(
        matches!(
            e,
            ChainError::Unrepresentable {
                item: "AlphaSigmoidSteepness",
                ..
            }
        ) && e.to_string().contains("40000"),
        "{e}"
    );
    set_spec(&standin, &[b - 1, b], 283);
    let got = read_inputs(&node, NETUID, &at, false)
        .await
        .expect("reads")
        .input;
    assert_eq!((got.yuma3, got.alpha_sigmoid_steepness), (true, -25_536));
    set_spec(&standin, &[b - 1, b], 272);
    let got = read_inputs(&node, NETUID, &at, false)
        .await
        .expect("reads")
        .input;
    assert_eq!((got.yuma3, got.alpha_sigmoid_steepness), (false, 1000));

    // The coming epoch after B − 1 (state of B − 1): its pending emission.
    let pending = [
        (st::PENDING_EMISSION, 1u64),
        (st::PENDING_ALPHA_SWAPPED, 20),
        (st::PENDING_SERVER_EMISSION, 300),
        (st::PENDING_VALIDATOR_EMISSION, 4_000),
        (st::PENDING_ROOT_ALPHA_DIVS, 50_000),
    ];
    for (item, value) in pending {
        set_at(&standin, b - 1, item, &[&nk], value);
    }
    let before = snapshot::epoch_block(&node, b - 1).await.expect("block");
    for (spec, pending) in [(364, 21), (365, 54_300)] {
        set_spec(&standin, &[b - 2, b - 1, b], spec);
        let state = read_inputs(&node, NETUID, &before, true)
            .await
            .expect("reads");
        assert_eq!(state.pending_emission, pending, "spec {spec}");
    }
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
