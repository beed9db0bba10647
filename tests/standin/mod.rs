//! A JSON-RPC node stand-in for the chain client's tests: raw storage at a few blocks,
//! served over HTTP and WebSocket on localhost by a jsonrpsee server, with optional
//! latency on every call. Keys the stand-in does not know either read as absent (a built
//! chain) or give an error (a replayed recording answers only from what was recorded).
#![allow(dead_code)]

pub mod encode;

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

/// The stand-in chain.
#[derive(Debug, Default)]
pub struct Chain {
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
    pub calls: u64,
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
    hex::decode(s.trim_start_matches("0x")).map_err(|e| err(-32602, e.to_string()))
}

fn hex(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn answer(
    chain: &RwLock<Chain>,
    method: &str,
    mut p: Vec<Value>,
) -> Result<Value, ErrorObjectOwned> {
    let mut c = chain.write().expect("lock");
    c.calls += 1;
    while p.last().is_some_and(Value::is_null) {
        p.pop();
    }
    let c = &*c;
    let block_at = |i: usize| -> Result<&Block, ErrorObjectOwned> {
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
        c.blocks
            .get(&hash)
            .ok_or_else(|| err(4003, format!("Unknown block {hash}")))
    };
    let read = |b: &Block, key: &[u8]| -> Result<Option<Vec<u8>>, ErrorObjectOwned> {
        match b.storage.get(key) {
            Some(v) => Ok(v.clone()),
            None if c.strict => Err(err(-32602, format!("not recorded: {}", hex(key)))),
            None => Ok(None),
        }
    };
    match method {
        "chain_getBlockHash" | "chain_getHead" => match p.first() {
            None => Ok(json!(c.head)),
            Some(n) => {
                let n = n.as_u64().ok_or_else(|| err(-32602, "bad number"))?;
                Ok(json!(c.by_number.get(&n)))
            }
        },
        "chain_getHeader" => {
            let b = block_at(0)?;
            Ok(json!({"number": format!("0x{:x}", b.number), "parentHash": b.parent}))
        }
        "state_getRuntimeVersion" | "chain_getRuntimeVersion" => {
            let b = block_at(0)?;
            Ok(json!({"specName": "node-subtensor", "specVersion": b.spec}))
        }
        "state_getStorage" | "state_getStorageAt" => {
            let key = hex_bytes(p.first().ok_or_else(|| err(-32602, "no key"))?)?;
            let b = block_at(1)?;
            Ok(json!(read(b, &key)?.map(|v| hex(&v))))
        }
        "state_queryStorageAt" => {
            let keys = p
                .first()
                .and_then(Value::as_array)
                .ok_or_else(|| err(-32602, "no keys"))?;
            let b = block_at(1)?;
            let hash = c.by_number.get(&b.number).cloned();
            let mut changes = Vec::with_capacity(keys.len());
            for k in keys {
                let key = hex_bytes(k)?;
                changes.push(json!([hex(&key), read(b, &key)?.map(|v| hex(&v))]));
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
                .storage
                .range(start.clone()..)
                .filter(|(k, v)| **k != start && v.is_some())
                .take_while(|(k, _)| k.starts_with(&prefix))
                .take(count)
                .map(|(k, _)| hex(k))
                .collect();
            Ok(json!(keys))
        }
        _ => Err(err(-32601, format!("method {method} not served"))),
    }
}
