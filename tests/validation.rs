//! Bad input is rejected with an error naming the field (and uid where there is one),
//! never a panic; what the chain itself accepts is not rejected.

use serde_json::{Value, json};
use yuma::epoch::run_epoch;
use yuma::model::{EpochInput, InputError, decode};

/// A small valid input (three uids) as JSON.
fn base() -> Value {
    json!({
        "n": 3, "current_block": 1000, "tempo": 100, "activity_cutoff": 5000,
        "last_mechanism_step_block": 900, "kappa": 32767, "bonds_penalty": 65535,
        "bonds_moving_average": 900000, "max_allowed_validators": 64, "stake_threshold": "0",
        "tao_weight": "0", "owner_uid": null, "yuma3": true, "liquid_alpha": true,
        "alpha_low": 45875, "alpha_high": 58982, "alpha_sigmoid_steepness": 1000,
        "commit_reveal": false, "commit_block": [null, null, null], "emission": "1000000",
        "alpha_stake": ["100", "0", "50"], "tao_stake": ["0", "0", "0"],
        "last_update": [999, 999, 999], "block_at_registration": [1, 2, 3],
        "validator_permit": [true, false, true],
        "weights": [[[1, 65535], [2, 10]], [], [[1, 65535]]],
        "bonds": [[[1, 1000]], [], []]
    })
}

/// Runs the JSON through decode + epoch, returning the error text if rejected.
fn reject(v: &Value) -> String {
    let input: EpochInput = match decode(&v.to_string()) {
        Ok(i) => i,
        Err(e) => return e.to_string(),
    };
    match run_epoch(&input) {
        Ok(_) => panic!("accepted bad input: {v}"),
        Err(e) => e.to_string(),
    }
}

fn with(path: &str, value: Value) -> Value {
    let mut v = base();
    v[path] = value;
    v
}

#[test]
fn valid_base_runs() {
    let input: EpochInput = decode(&base().to_string()).unwrap();
    let out = run_epoch(&input).unwrap();
    assert_eq!(out.incentive.len(), 3);
    assert!(
        out.incentive[1] > 0,
        "uid 1 is the only miner rated: {:?}",
        out.incentive
    );
}

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            with("alpha_stake", json!(["1", "2"])),
            "`alpha_stake` has length 2, expected n = 3",
        ),
        (
            with("validator_permit", json!([true])),
            "`validator_permit` has length 1",
        ),
        (with("weights", json!([[], []])), "`weights` has length 2"),
        (
            with("commit_block", json!([null])),
            "`commit_block` has length 1",
        ),
        (
            with("owner_uid", json!(3)),
            "`owner_uid` is 3, not below n = 3",
        ),
        (
            with("bonds_moving_average", json!(1000001)),
            "`bonds_moving_average` is 1000001",
        ),
        (
            with("weights", json!([[[1, 5], [1, 6]], [], []])),
            "`weights` row of uid 0 holds column uid 1 twice",
        ),
        (
            with("bonds", json!([[], [], [[0, 1], [2, 2], [0, 3]]])),
            "`bonds` row of uid 2 holds column uid 0 twice",
        ),
        (with("n", json!(70000)), "`n`"),
        (with("kappa", json!(-1)), "`kappa`"),
        (with("alpha_stake", json!(["1", "x", "2"])), "alpha_stake"),
        (with("emission", json!("12.5")), "emission"),
        (
            with("weights", json!([[[70000, 1]], [], []])),
            "weights[0][0]",
        ),
        (with("weights", json!([[[1]], [], []])), "weights[0][0]"),
        (with("tempo", json!("soon")), "`tempo`"),
        (
            with(
                "alpha_stake",
                json!(["9223372036854775807", "9223372036854775807", "1"]),
            ),
            "total stake sum overflows I64F64 at uid 1",
        ),
    ];
    for (v, want) in cases {
        let got = reject(&v);
        assert!(
            got.contains(want),
            "expected an error containing {want:?}, got {got:?}"
        );
    }
    let mut extra = base();
    extra["surprise"] = json!(1);
    assert!(reject(&extra).contains("surprise"));
}

#[test]
fn chain_accepted_oddities_are_not_errors() {
    // Unsorted rows, explicit zeros and column uids >= n are what the chain stores.
    let v = with(
        "weights",
        json!([[[2, 0], [1, 65535], [7, 4]], [], [[65535, 1], [1, 65535]]]),
    );
    let v = {
        let mut v = v;
        v["bonds"] = json!([[[9, 100], [1, 1000]], [], [[3, 5]]]);
        v
    };
    let input: EpochInput = decode(&v.to_string()).unwrap();
    let out = run_epoch(&input).unwrap();
    assert!(
        out.bonds.cols.iter().all(|&c| c < 3),
        "no bond column >= n is emitted"
    );
}

#[test]
fn mutated_inputs_never_panic() {
    // Splice random bytes into a real case and truncate it: every result is Ok or Err.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/conformance/cases/n16-oob-uids-y3-la.json"
    ))
    .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let input = v["input"].to_string();
    let bytes = input.as_bytes();
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    };
    let (mut accepted, mut rejected) = (0, 0);
    for _ in 0..3000 {
        let mut m = bytes.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() % m.len() as u64) as usize;
            m[at] = b"0123456789[],-\" e"[(next() % 17) as usize];
        }
        if next() % 5 == 0 {
            m.truncate((next() % m.len() as u64) as usize);
        }
        let Ok(s) = String::from_utf8(m) else {
            continue;
        };
        let r: Result<EpochInput, InputError> = decode(&s);
        match r.map(|i| run_epoch(&i)) {
            Ok(Ok(_)) => accepted += 1,
            Ok(Err(_)) | Err(_) => rejected += 1,
        }
    }
    eprintln!("mutations: {accepted} accepted, {rejected} rejected, no panic");
    assert!(rejected > 0 && accepted + rejected >= 2900);
}

#[test]
fn era_inputs_are_refused_where_the_era_could_not_hold_them() {
    let cases: Vec<(Value, &str)> = vec![
        (
            with("spec_version", json!(232)),
            "field `spec_version` is 232, below 233",
        ),
        (with("spec_version", json!(-1)), "spec_version"),
        (
            {
                let mut v = with("spec_version", json!(300));
                v["activity_cutoff"] = json!(70_000);
                v
            },
            "field `activity_cutoff` is 70000, above 65535",
        ),
        (
            {
                let mut v = with("spec_version", json!(280));
                v["alpha_sigmoid_steepness"] = json!(-5);
                v
            },
            "field `alpha_sigmoid_steepness` is -5, negative",
        ),
        (
            {
                let mut v = with("spec_version", json!(319));
                v["bonds"] = json!([[[7, 1000]], [], []]);
                v
            },
            "field `bonds` row of uid 0 holds column uid 7, not below n = 3",
        ),
        (
            with("spec_versio", json!(300)),
            "unknown field `spec_versio`",
        ),
    ];
    for (v, want) in cases {
        let got = reject(&v);
        assert!(got.contains(want), "expected `{want}` in `{got}`");
    }
    // What today's rules take, a later era takes too.
    let mut v = with("spec_version", json!(423));
    v["activity_cutoff"] = json!(70_000);
    let input: EpochInput = decode(&v.to_string()).unwrap();
    assert!(run_epoch(&input).is_ok());
}

#[test]
fn an_era_without_spec_version_is_today() {
    let input: EpochInput = decode(&base().to_string()).unwrap();
    let today = run_epoch(&input).unwrap();
    let mut at = input.clone();
    at.spec_version = Some(425);
    assert_eq!(run_epoch(&at).unwrap(), today);
    at.spec_version = Some(300);
    let past = run_epoch(&at).unwrap();
    assert!(past.stake.is_none() && past.rank.is_some() && past.trust.is_some());
    assert_eq!(past.pruning_score.as_ref().map(Vec::len), Some(3));
}
