//! A JSON-RPC node stand-in for the chain client's tests: raw storage at a few blocks,
//! served over HTTP and WebSocket on localhost by a jsonrpsee server, with optional
//! latency on every call. Keys the stand-in does not know either read as absent (a built
//! chain) or give an error (a replayed recording answers only from what was recorded).
#![allow(dead_code)]

pub mod encode;
pub mod stretch;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonrpsee::server::{RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

/// One block of the stand-in chain.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Block number.
    pub number: u64,
    /// Parent hash (`0x…`).
    pub parent: String,
    /// Runtime spec version.
    pub spec: u32,
    /// Storage: key → value (`None`: recorded as absent).
    pub storage: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// A long stretch of chain where one subnet's epoch runs every `tempo + 1` blocks from
/// `first` to `last`, each on the same state: storage `before` at every other block, with
/// `at` laid over it at epoch blocks, and the epoch counters kept as the chain keeps them.
/// Blocks are made when asked for, so a range of any length costs no memory.
#[derive(Clone, Debug, Default)]
pub struct Periodic {
    /// The subnet.
    pub netuid: u16,
    /// Its tempo.
    pub tempo: u16,
    /// First epoch block.
    pub first: u64,
    /// Last epoch block.
    pub last: u64,
    /// Runtime spec of every block.
    pub spec: u32,
    /// Storage outside epoch blocks (the inputs).
    pub before: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Storage written by each epoch (the outputs).
    pub at: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The keys of the epoch counters, `LastMechansimStepBlock` and `SubnetEpochIndex`.
    pub counters: [Vec<u8>; 2],
}

impl Periodic {
    fn period(&self) -> u64 {
        self.tempo as u64 + 1
    }

    /// The last epoch block up to `number`, and how many epochs ran up to it.
    fn epochs_up_to(&self, number: u64) -> (u64, u64) {
        if number < self.first {
            return (self.first.saturating_sub(self.period()), 0);
        }
        let k = (number.min(self.last) - self.first) / self.period();
        (self.first + k * self.period(), k + 1)
    }

    /// The value of `key` at block `number`.
    fn get(&self, number: u64, key: &[u8]) -> Option<Option<Vec<u8>>> {
        use parity_scale_codec::Encode;
        let (last, count) = self.epochs_up_to(number);
        if key == self.counters[0] {
            return Some(Some(last.encode()));
        }
        if key == self.counters[1] {
            return Some(Some((1_000 + count).encode()));
        }
        let epoch = number >= self.first && number <= self.last && last == number;
        if epoch && let Some(v) = self.at.get(key) {
            return Some(v.clone());
        }
        self.before.get(key).cloned()
    }

    /// Whether the stretch has block `number`.
    fn covers(&self, number: u64) -> bool {
        number <= self.last + self.period()
    }
}

/// The stand-in chain.
#[derive(Debug, Default)]
pub struct Chain {
    /// A stretch of blocks made on demand (blocks in `blocks` take precedence).
    pub periodic: Option<Arc<Periodic>>,
    /// Blocks by hash.
    pub blocks: HashMap<String, Block>,
    /// Hash by number.
    pub by_number: BTreeMap<u64, String>,
    /// The best block's hash (answers requests without a block).
    pub head: Option<String>,
    /// Unknown keys give an error instead of reading as absent.
    pub strict: bool,
    /// Blocks whose state is "pruned".
    pub pruned: Vec<String>,
    /// Calls answered.
    pub calls: std::sync::atomic::AtomicU64,
}

impl Chain {
    /// The hash the stand-in gives block `number`.
    pub fn hash_of(number: u64) -> String {
        format!("0x{number:064x}")
    }

    /// Adds (or returns) block `number`, its parent hash chained by number.
    pub fn block(&mut self, number: u64, spec: u32) -> &mut Block {
        let hash = Self::hash_of(number);
        self.by_number.insert(number, hash.clone());
        self.blocks.entry(hash).or_insert_with(|| Block {
            number,
            parent: Self::hash_of(number.saturating_sub(1)),
            spec,
            storage: BTreeMap::new(),
        })
    }
}

/// A running stand-in.
pub struct StandIn {
    /// Shared chain state (tests may change it while the server runs).
    pub chain: Arc<RwLock<Chain>>,
    /// `http://127.0.0.1:port`.
    pub http: String,
    /// `ws://127.0.0.1:port`.
    pub ws: String,
    _handle: ServerHandle,
}

const METHODS: &[&str] = &[
    "chain_getBlockHash",
    "chain_getHead",
    "chain_getHeader",
    "state_getRuntimeVersion",
    "chain_getRuntimeVersion",
    "state_getStorage",
    "state_getStorageAt",
    "state_queryStorageAt",
    "state_getKeysPaged",
    "state_getKeysPagedAt",
];

impl StandIn {
    /// Serves `chain` with `latency` added to every call.
    pub async fn start(chain: Chain, latency: Duration) -> StandIn {
        let chain = Arc::new(RwLock::new(chain));
        let mut module = RpcModule::new(chain.clone());
        for &m in METHODS {
            module
                .register_async_method(m, move |params, ctx, _| async move {
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    let params: Vec<Value> = params.parse().unwrap_or_default();
                    answer(&ctx, m, params)
                })
                .expect("registers");
        }
        let config = ServerConfig::builder()
            .max_response_body_size(512 << 20)
            .max_request_body_size(512 << 20)
            .max_connections(10_000)
            .build();
        let server = Server::builder()
            .set_config(config)
            .build("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = server.local_addr().expect("bound");
        let handle = server.start(module);
        StandIn {
            chain,
            http: format!("http://{addr}"),
            ws: format!("ws://{addr}"),
            _handle: handle,
        }
    }
}

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn hex_bytes(v: &Value) -> Result<Vec<u8>, ErrorObjectOwned> {
    let s = v.as_str().ok_or_else(|| err(-32602, "expected hex"))?;
    const_hex::decode(s.trim_start_matches("0x")).map_err(|e| err(-32602, e.to_string()))
}

fn hex(b: &[u8]) -> String {
    const_hex::encode_prefixed(b)
}

fn answer(
    chain: &RwLock<Chain>,
    method: &str,
    mut p: Vec<Value>,
) -> Result<Value, ErrorObjectOwned> {
    let c = chain.read().expect("lock");
    c.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    while p.last().is_some_and(Value::is_null) {
        p.pop();
    }
    let c = &*c;
    let block_at = |i: usize| -> Result<View<'_>, ErrorObjectOwned> {
        let hash = match p.get(i) {
            Some(v) => v
                .as_str()
                .ok_or_else(|| err(-32602, "bad hash"))?
                .to_string(),
            None => c.head.clone().ok_or_else(|| err(-32602, "no head"))?,
        };
        if c.pruned.contains(&hash) {
            return Err(err(4003, format!("State already discarded for {hash}")));
        }
        if let Some(b) = c.blocks.get(&hash) {
            return Ok(View::Stored(b));
        }
        let number = u64::from_str_radix(hash.trim_start_matches("0x"), 16).ok();
        match (&c.periodic, number) {
            (Some(per), Some(n)) if Chain::hash_of(n) == hash && per.covers(n) => {
                Ok(View::Made(per, n))
            }
            _ => Err(err(4003, format!("Unknown block {hash}"))),
        }
    };
    let read = |b: &View, key: &[u8]| -> Result<Option<Vec<u8>>, ErrorObjectOwned> {
        match b.get(key) {
            Some(v) => Ok(v),
            None if c.strict => Err(err(-32602, format!("not recorded: {}", hex(key)))),
            None => Ok(None),
        }
    };
    match method {
        "chain_getBlockHash" | "chain_getHead" => match p.first() {
            None => Ok(json!(c.head)),
            Some(n) => {
                let n = n.as_u64().ok_or_else(|| err(-32602, "bad number"))?;
                let made = c.periodic.as_ref().is_some_and(|p| p.covers(n));
                match c.by_number.get(&n) {
                    Some(h) => Ok(json!(h)),
                    None if made => Ok(json!(Chain::hash_of(n))),
                    None => Ok(Value::Null),
                }
            }
        },
        "chain_getHeader" => {
            let b = block_at(0)?;
            Ok(json!({"number": format!("0x{:x}", b.number()), "parentHash": b.parent()}))
        }
        "state_getRuntimeVersion" | "chain_getRuntimeVersion" => {
            let b = block_at(0)?;
            Ok(json!({"specName": "node-subtensor", "specVersion": b.spec()}))
        }
        "state_getStorage" | "state_getStorageAt" => {
            let key = hex_bytes(p.first().ok_or_else(|| err(-32602, "no key"))?)?;
            let b = block_at(1)?;
            Ok(json!(read(&b, &key)?.map(|v| hex(&v))))
        }
        "state_queryStorageAt" => {
            let keys = p
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| err(-32602, "no keys"))?;
            let b = block_at(1)?;
            let hash = Chain::hash_of(b.number());
            let mut changes = Vec::with_capacity(keys.len());
            for k in keys {
                let key = hex_bytes(k)?;
                changes.push(json!([hex(&key), read(&b, &key)?.map(|v| hex(&v))]));
            }
            Ok(json!([{"block": hash, "changes": changes}]))
        }
        "state_getKeysPaged" | "state_getKeysPagedAt" => {
            let prefix = hex_bytes(p.first().ok_or_else(|| err(-32602, "no prefix"))?)?;
            let count = p.get(1).and_then(Value::as_u64).unwrap_or(1000) as usize;
            let start = match p.get(2) {
                Some(v) if !v.is_null() => hex_bytes(v)?,
                _ => prefix.clone(),
            };
            let b = block_at(3)?;
            let keys: Vec<String> = b
                .keys_after(&start, count)
                .into_iter()
                .take_while(|k| k.starts_with(&prefix))
                .take(count)
                .map(|k| hex(&k))
                .collect();
            Ok(json!(keys))
        }
        _ => Err(err(-32601, format!("method {method} not served"))),
    }
}

/// A block as the stand-in answers for it: stored, or made by a [`Periodic`] stretch.
enum View<'a> {
    Stored(&'a Block),
    Made(&'a Periodic, u64),
}

impl View<'_> {
    fn number(&self) -> u64 {
        match self {
            View::Stored(b) => b.number,
            View::Made(_, n) => *n,
        }
    }

    fn parent(&self) -> String {
        match self {
            View::Stored(b) => b.parent.clone(),
            View::Made(_, n) => Chain::hash_of(n.saturating_sub(1)),
        }
    }

    fn spec(&self) -> u32 {
        match self {
            View::Stored(b) => b.spec,
            View::Made(p, _) => p.spec,
        }
    }

    /// `Some(value)` when the block knows the key (`None` inside: recorded as absent).
    fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        match self {
            View::Stored(b) => b.storage.get(key).cloned(),
            View::Made(p, n) => p.get(*n, key),
        }
    }

    /// The first `limit` present keys after `start`, in order.
    fn keys_after(&self, start: &[u8], limit: usize) -> Vec<Vec<u8>> {
        let after = |m: &BTreeMap<Vec<u8>, Option<Vec<u8>>>| -> Vec<Vec<u8>> {
            m.range(start.to_vec()..)
                .filter(|(k, v)| k.as_slice() != start && v.is_some())
                .take(limit)
                .map(|(k, _)| k.clone())
                .collect()
        };
        match self {
            View::Stored(b) => after(&b.storage),
            View::Made(p, _) => {
                let mut all: Vec<Vec<u8>> = after(&p.before);
                all.extend(after(&p.at));
                all.sort();
                all.dedup();
                all
            }
        }
    }
}
