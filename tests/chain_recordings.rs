//! Replays real finney and test.finney JSON-RPC traffic (../shared/chain/recordings, copied
//! to tests/chain/recordings) through the chain client and asserts the decoded facts of
//! its README: storage keys built from the item table, paging, batched reads, SCALE values,
//! headers and runtime versions. The stand-in answers only what was recorded.
#![cfg(feature = "chain")]

mod standin;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use standin::{Block, Chain, StandIn};
use yuma::chain::storage::{self as st, Item};
use yuma::chain::{Node, Retry};

fn recording(name: &str) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/chain/recordings").join(name);
    let path = if shared.is_file() {
        shared
    } else {
        root.join("tests/chain/recordings").join(name)
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("recording is JSON")
}

fn hexb(v: &Value) -> Vec<u8> {
    const_hex::decode(v.as_str().expect("hex string").trim_start_matches("0x")).expect("hex")
}

/// The stand-in chain holding exactly the recorded storage, headers and versions.
fn replay_chain(rec: &Value) -> Chain {
    let spec = rec["spec_version"].as_u64().expect("spec") as u32;
    let mut chain = Chain {
        strict: true,
        ..Chain::default()
    };
    for b in rec["blocks"].as_array().expect("blocks") {
        let hash = b["hash"].as_str().expect("hash").to_string();
        let number = b["number"].as_u64().expect("number");
        chain.by_number.insert(number, hash.clone());
        chain.blocks.insert(
            hash,
            Block {
                number,
                parent: b["parent_hash"].as_str().unwrap_or_default().to_string(),
                spec: b["spec_version"].as_u64().map_or(spec, |s| s as u32),
                storage: Default::default(),
            },
        );
    }
    // Parents the block list leaves out come from the recorded headers.
    for c in rec["calls"].as_array().expect("calls") {
        if c["method"] == "chain_getHeader" {
            let hash = c["params"][0].as_str().expect("hash");
            if let Some(b) = chain.blocks.get_mut(hash) {
                b.parent = c["result"]["parentHash"]
                    .as_str()
                    .expect("parent")
                    .to_string();
            }
        }
    }
    let head = rec["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .find(|c| c["method"] == "chain_getHead")
        .map(|c| c["result"].as_str().expect("head").to_string())
        .unwrap_or_else(|| "0xbe57".to_string());
    chain.blocks.entry(head.clone()).or_insert_with(|| Block {
        spec,
        ..Block::default()
    });
    chain.head = Some(head.clone());
    for f in rec["facts"]["storage"].as_array().expect("storage facts") {
        let hash = f["block_hash"].as_str().unwrap_or(&head).to_string();
        let raw = f["raw"].as_str().map(|_| hexb(&f["raw"]));
        chain
            .blocks
            .get_mut(&hash)
            .unwrap_or_else(|| panic!("fact at unknown block {hash}"))
            .storage
            .insert(hexb(&f["key"]), raw);
    }
    chain
}

fn item(name: &str) -> Item {
    *st::ALL
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name} in the table"))
}

/// The key of a fact, built from the item table and the fact's map keys.
fn fact_key(f: &Value) -> Vec<u8> {
    let it = item(f["item"].as_str().expect("item"));
    let netuid = (f["netuid"].as_u64().expect("netuid") as u16).to_le_bytes();
    match f["uid"].as_u64() {
        Some(uid) => it.key(&[&netuid, &(uid as u16).to_le_bytes()]),
        None => it.key(&[&netuid]),
    }
}

/// Decodes a fact's value by its type and returns it as JSON for comparison.
fn decode(f: &Value, key: &[u8], raw: Option<&[u8]>) -> Value {
    let it = item(f["item"].as_str().expect("item"));
    let ty = f["value_type"].as_str().expect("type");
    let j = |r: yuma::chain::Result<Value>| r.unwrap_or_else(|e| panic!("{e}"));
    match ty {
        "bool" => j(it.decode(key, raw, false).map(Value::from)),
        "u16" => j(it.decode(key, raw, 0u16).map(Value::from)),
        "u64" => j(it.decode(key, raw, 0u64).map(Value::from)),
        t if t.starts_with("Vec<(u16") => j(it
            .decode::<Vec<(u16, u16)>>(key, raw, Vec::new())
            .map(|v| serde_json::to_value(v).expect("json"))),
        t => panic!("value type {t} not handled"),
    }
}

async fn check_storage_facts(rec: &Value, node: &Node) -> usize {
    let head = node.best_hash().await.expect("best block");
    let mut checked = 0;
    for f in rec["facts"]["storage"].as_array().expect("storage facts") {
        let key = fact_key(f);
        assert_eq!(
            yuma::chain::rpc::to_hex(&key),
            f["key"].as_str().expect("key"),
            "key of {f}"
        );
        let hash = f["block_hash"]
            .as_str()
            .map_or(head.clone(), str::to_string);
        let raw = if f["via"] == "state_queryStorageAt" {
            let mut v = node
                .storage_many(std::slice::from_ref(&key), &hash)
                .await
                .expect("reads");
            v.pop().expect("one value")
        } else {
            node.storage(&key, &hash).await.expect("reads")
        };
        let expected_raw = f["raw"].as_str().map(|_| hexb(&f["raw"]));
        assert_eq!(raw, expected_raw, "raw value of {f}");
        assert_eq!(
            decode(f, &key, raw.as_deref()),
            f["value"],
            "decoded value of {f}"
        );
        checked += 1;
    }
    checked
}

/// Reads a double map's rows under `netuid` by listing its keys, as the snapshot reader
/// lists timelocked commits: uid → row.
async fn rows(node: &Node, it: Item, netuid: u16, hash: &str) -> Vec<(u16, Vec<(u16, u16)>)> {
    let prefix = it.key(&[&netuid.to_le_bytes()]);
    let keys = node.keys(&prefix, hash).await.expect("lists keys");
    let vals = node.storage_many(&keys, hash).await.expect("reads");
    keys.iter()
        .zip(vals)
        .map(|(k, v)| {
            let uid = it.last_key(k, &prefix).expect("uid key");
            let uid = u16::from_le_bytes(uid.try_into().expect("two bytes"));
            (
                uid,
                it.decode(k, v.as_deref(), Vec::new()).expect("decodes"),
            )
        })
        .collect()
}

async fn testnet(url: impl Fn(&StandIn) -> String) {
    let rec = recording("testnet-sn23-spec208.json");
    let standin = StandIn::start(replay_chain(&rec), Duration::ZERO).await;
    let node = Node::connect(&url(&standin), Retry::default())
        .await
        .expect("connects");

    for (name, prefix) in rec["facts"]["item_prefixes"].as_object().expect("prefixes") {
        assert_eq!(
            yuma::chain::rpc::to_hex(&item(name).prefix()),
            prefix.as_str().expect("hex"),
            "{name}"
        );
    }
    assert_eq!(check_storage_facts(&rec, &node).await, 150);

    // Weights(23, ·): one row, uid 10 → [(10, 65535)], at both blocks.
    for number in [3_264_155u64, 3_264_158] {
        let hash = node.block_hash(number).await.expect("hash");
        assert_eq!(
            rows(&node, st::WEIGHTS, 23, &hash).await,
            vec![(10, vec![(10, 65_535)])]
        );
    }
    // Bonds(23, ·): 19 rows, uids 0–18, all empty.
    for number in [3_264_154u64, 3_264_156] {
        let hash = node.block_hash(number).await.expect("hash");
        let got = rows(&node, st::BONDS, 23, &hash).await;
        let want: Vec<(u16, Vec<(u16, u16)>)> = (0..19).map(|u| (u, Vec::new())).collect();
        assert_eq!(got, want);
    }
    // Scalars of netuid 23 at their blocks.
    let scalar = |it: Item, number: u64| {
        let node = &node;
        async move {
            let hash = node.block_hash(number).await.expect("hash");
            let key = it.key(&[&23u16.to_le_bytes()]);
            let raw = node.storage(&key, &hash).await.expect("reads");
            it.decode::<u64>(&key, raw.as_deref(), 0)
                .or_else(|_| it.decode::<u16>(&key, raw.as_deref(), 0).map(u64::from))
        }
    };
    assert_eq!(scalar(st::TEMPO, 3_264_150).await.expect("u16"), 1000);
    assert_eq!(
        scalar(st::IMMUNITY_PERIOD, 3_264_149).await.expect("u16"),
        5000
    );
    assert_eq!(
        scalar(st::MIN_ALLOWED_WEIGHTS, 3_264_152)
            .await
            .expect("u16"),
        1
    );
    assert_eq!(
        scalar(st::MAX_WEIGHTS_LIMIT, 3_264_152).await.expect("u16"),
        65_535
    );
    assert_eq!(
        scalar(st::DIFFICULTY, 3_264_161).await.expect("u64"),
        10_000_000
    );
    assert_eq!(scalar(st::BURN, 3_264_162).await.expect("u64"), 1);
    let head = node.best_hash().await.expect("head");
    let key = st::NETWORKS_ADDED.key(&[&23u16.to_le_bytes()]);
    let raw = node.storage(&key, &head).await.expect("reads");
    assert!(
        st::NETWORKS_ADDED
            .decode(&key, raw.as_deref(), false)
            .expect("bool")
    );

    // NetworksAdded listing at #3,264,157: netuids 0–99, all true.
    let hash = node.block_hash(3_264_157).await.expect("hash");
    let prefix = st::NETWORKS_ADDED.prefix();
    let keys = node.keys(&prefix, &hash).await.expect("lists");
    let vals = node.storage_many(&keys, &hash).await.expect("reads");
    let mut added: Vec<u16> = Vec::new();
    for (k, v) in keys.iter().zip(vals) {
        let netuid = u16::from_le_bytes(k[32..].try_into().expect("u16 key"));
        assert!(
            st::NETWORKS_ADDED
                .decode(k, v.as_deref(), false)
                .expect("bool")
        );
        added.push(netuid);
    }
    added.sort_unstable();
    assert_eq!(added, (0..100).collect::<Vec<u16>>());

    // A read the recording does not hold is an error naming the method, never a value.
    let unrecorded = st::KAPPA.key(&[&23u16.to_le_bytes()]);
    let e = node
        .storage(&unrecorded, &hash)
        .await
        .expect_err("not recorded");
    assert!(e.to_string().contains("state_getStorage"), "{e}");
}

async fn mainnet(url: impl Fn(&StandIn) -> String) {
    let rec = recording("mainnet-sn1-subnetwork-n-spec315.json");
    let standin = StandIn::start(replay_chain(&rec), Duration::ZERO).await;
    let node = Node::connect(&url(&standin), Retry::default())
        .await
        .expect("connects");
    assert_eq!(check_storage_facts(&rec, &node).await, 2);
    let head = node.best_hash().await.expect("head");
    assert_eq!(head, rec["block_hash"].as_str().expect("hash"));
    let key = st::SUBNETWORK_N.key(&[&1u16.to_le_bytes()]);
    let raw = node.storage(&key, &head).await.expect("reads");
    assert_eq!(
        st::SUBNETWORK_N
            .decode(&key, raw.as_deref(), 0u16)
            .expect("u16"),
        1024
    );
    // Every recorded header and runtime version: number, parent and spec 315.
    let mut seen = 0;
    for c in rec["calls"].as_array().expect("calls") {
        if c["method"] == "chain_getHeader" {
            let hash = c["params"][0].as_str().expect("hash");
            let h = node.header(hash).await.expect("header");
            let number = u64::from_str_radix(
                c["result"]["number"]
                    .as_str()
                    .expect("number")
                    .trim_start_matches("0x"),
                16,
            )
            .expect("hex number");
            assert_eq!(h.number, number);
            assert_eq!(
                h.parent_hash,
                c["result"]["parentHash"].as_str().expect("parent")
            );
            assert_eq!(node.spec_version(hash).await.expect("version"), 315);
            seen += 1;
        }
    }
    assert_eq!(seen, 24);
}

#[tokio::test]
async fn testnet_recording_over_http() {
    testnet(|s| s.http.clone()).await;
}

#[tokio::test]
async fn testnet_recording_over_websocket() {
    testnet(|s| s.ws.clone()).await;
}

#[tokio::test]
async fn mainnet_recording_over_http_and_websocket() {
    mainnet(|s| s.http.clone()).await;
    mainnet(|s| s.ws.clone()).await;
}
