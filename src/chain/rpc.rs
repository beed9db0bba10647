//! JSON-RPC transport to a subtensor node: HTTP(S) or WebSocket through `jsonrpsee`, raw
//! storage calls only, batched key reads, and retries with backoff on transient errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::try_join_all;
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ArrayParams;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::RwLock;

use super::error::{ChainError, Result};

/// Keys per `state_queryStorageAt` call; larger key sets go out as concurrent calls.
const KEYS_PER_CALL: usize = 2048;
/// Keys per `state_getKeysPaged` page.
const PAGE: u32 = 1000;
/// Largest answer accepted (a 4,096-uid subnet's weight rows are a few MiB).
const MAX_RESPONSE: u32 = 512 << 20;

/// A block hash as the node writes it (`0x` and 64 hex digits).
pub type BlockHash = String;

/// How a call is retried after a transient error (connection lost, timeout).
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// Tries after the first one.
    pub retries: u32,
    /// Wait before the first retry; doubled after each.
    pub backoff: Duration,
    /// Time limit of one call.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            retries: 5,
            backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(60),
        }
    }
}

enum Transport {
    Http(HttpClient),
    Ws(WsClient),
}

/// A connection to one node.
pub struct Node {
    url: String,
    retry: Retry,
    transport: RwLock<Arc<Transport>>,
    calls: AtomicU64,
}

/// The fields of a block header that the client reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Block number.
    pub number: u64,
    /// Parent block's hash.
    pub parent_hash: BlockHash,
}

impl Node {
    /// Connects to `url` (http://, https://, ws:// or wss://), retrying as `retry` says.
    pub async fn connect(url: &str, retry: Retry) -> Result<Self> {
        let transport = Self::open(url, retry).await?;
        Ok(Self {
            url: url.to_string(),
            retry,
            transport: RwLock::new(Arc::new(transport)),
            calls: AtomicU64::new(0),
        })
    }

    async fn open(url: &str, retry: Retry) -> Result<Transport> {
        let lower = url.to_ascii_lowercase();
        let unreachable = |e: ClientError| ChainError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        };
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let client = HttpClientBuilder::default()
                .max_response_size(MAX_RESPONSE)
                .max_request_size(MAX_RESPONSE)
                .request_timeout(retry.timeout)
                .build(url)
                .map_err(unreachable)?;
            Ok(Transport::Http(client))
        } else if lower.starts_with("ws://") || lower.starts_with("wss://") {
            let mut wait = retry.backoff;
            let mut attempt = 0;
            loop {
                let built = WsClientBuilder::default()
                    .max_response_size(MAX_RESPONSE)
                    .max_request_size(MAX_RESPONSE)
                    .request_timeout(retry.timeout)
                    .connection_timeout(retry.timeout)
                    .build(url)
                    .await;
                match built {
                    Ok(client) => return Ok(Transport::Ws(client)),
                    Err(e) if attempt >= retry.retries => return Err(unreachable(e)),
                    Err(e) => tracing::warn!("connecting to {url}: {e}; retrying in {wait:?}"),
                }
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        } else {
            Err(ChainError::BadUrl(url.to_string()))
        }
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls made so far (each `state_queryStorageAt` chunk counts once).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One call, retried with backoff on transient errors; a lost WebSocket is reopened.
    async fn call<R: DeserializeOwned>(
        &self,
        method: &'static str,
        params: Vec<Value>,
        block: Option<&str>,
    ) -> Result<R> {
        let mut wait = self.retry.backoff;
        let mut attempt = 0;
        loop {
            let mut p = ArrayParams::new();
            for v in &params {
                p.insert(v).map_err(|e| ChainError::Malformed {
                    method,
                    reason: e.to_string(),
                })?;
            }
            let transport = self.transport.read().await.clone();
            self.calls.fetch_add(1, Ordering::Relaxed);
            let result = match &*transport {
                Transport::Http(c) => c.request::<R, _>(method, p).await,
                Transport::Ws(c) => c.request::<R, _>(method, p).await,
            };
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let transient = matches!(
                err,
                ClientError::Transport(_)
                    | ClientError::RestartNeeded(_)
                    | ClientError::RequestTimeout
                    | ClientError::ServiceDisconnect
            );
            if !transient {
                return Err(self.classify(method, err, block));
            }
            if attempt >= self.retry.retries {
                return Err(ChainError::Unreachable {
                    url: self.url.clone(),
                    reason: format!("`{method}` failed {} times: {err}", attempt + 1),
                });
            }
            tracing::warn!("{method} on {}: {err}; retrying in {wait:?}", self.url);
            tokio::time::sleep(wait).await;
            wait *= 2;
            attempt += 1;
            if matches!(*transport, Transport::Ws(_))
                && matches!(
                    err,
                    ClientError::RestartNeeded(_) | ClientError::ServiceDisconnect
                )
            {
                // Reopen once for everyone waiting on the same dead connection.
                let mut slot = self.transport.write().await;
                if Arc::ptr_eq(&slot, &transport)
                    && let Ok(fresh) = Self::open(&self.url, self.retry).await
                {
                    *slot = Arc::new(fresh);
                }
            }
        }
    }

    /// Maps a node's error answer: pruned state is told apart from other refusals.
    fn classify(&self, method: &'static str, err: ClientError, block: Option<&str>) -> ChainError {
        let reason = match &err {
            ClientError::Call(e) => e.message().to_string(),
            ClientError::ParseError(e) => {
                return ChainError::Malformed {
                    method,
                    reason: e.to_string(),
                };
            }
            other => other.to_string(),
        };
        let lower = reason.to_ascii_lowercase();
        if lower.contains("discarded")
            || lower.contains("pruned")
            || lower.contains("unknown block")
        {
            return ChainError::Pruned {
                block: block.unwrap_or("?").to_string(),
                reason,
            };
        }
        ChainError::Rpc { method, reason }
    }

    /// Hash of block `number`.
    pub async fn block_hash(&self, number: u64) -> Result<BlockHash> {
        let hash: Option<String> = self
            .call("chain_getBlockHash", vec![number.into()], None)
            .await?;
        hash.ok_or(ChainError::NoBlock(number))
    }

    /// Hash of the node's best block.
    pub async fn best_hash(&self) -> Result<BlockHash> {
        const M: &str = "chain_getBlockHash";
        let hash: Option<String> = self.call(M, vec![], None).await?;
        hash.ok_or(ChainError::Malformed {
            method: M,
            reason: "no best block".into(),
        })
    }

    /// The header of the block `hash`.
    pub async fn header(&self, hash: &str) -> Result<Header> {
        const M: &str = "chain_getHeader";
        let v: Option<Value> = self.call(M, vec![hash.into()], Some(hash)).await?;
        let v = v.ok_or_else(|| ChainError::Malformed {
            method: M,
            reason: format!("no header for {hash}"),
        })?;
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| ChainError::Malformed {
                    method: M,
                    reason: format!("header has no string `{name}`"),
                })
        };
        let number = field("number")?;
        let number = u64::from_str_radix(number.trim_start_matches("0x"), 16).map_err(|e| {
            ChainError::Malformed {
                method: M,
                reason: format!("header number `{number}`: {e}"),
            }
        })?;
        Ok(Header {
            number,
            parent_hash: field("parentHash")?.to_string(),
        })
    }

    /// The runtime's `specVersion` at block `hash`.
    pub async fn spec_version(&self, hash: &str) -> Result<u32> {
        const M: &str = "state_getRuntimeVersion";
        let v: Value = self.call(M, vec![hash.into()], Some(hash)).await?;
        v.get("specVersion")
            .and_then(Value::as_u64)
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| ChainError::Malformed {
                method: M,
                reason: "no u32 `specVersion`".into(),
            })
    }

    /// One storage value at block `hash` (`None`: absent).
    pub async fn storage(&self, key: &[u8], hash: &str) -> Result<Option<Vec<u8>>> {
        const M: &str = "state_getStorage";
        let v: Option<String> = self
            .call(M, vec![to_hex(key).into(), hash.into()], Some(hash))
            .await?;
        v.map(|s| from_hex(M, &s)).transpose()
    }

    /// Many storage values at block `hash`, in the order of `keys` (`None`: absent).
    /// Large key sets go out as concurrent `state_queryStorageAt` calls.
    pub async fn storage_many(&self, keys: &[Vec<u8>], hash: &str) -> Result<Vec<Option<Vec<u8>>>> {
        let chunks = try_join_all(
            keys.chunks(KEYS_PER_CALL)
                .map(|chunk| self.query_storage_at(chunk, hash)),
        )
        .await?;
        Ok(chunks.into_iter().flatten().collect())
    }

    async fn query_storage_at(&self, keys: &[Vec<u8>], hash: &str) -> Result<Vec<Option<Vec<u8>>>> {
        const M: &str = "state_queryStorageAt";
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let hex_keys: Vec<String> = keys.iter().map(|k| to_hex(k)).collect();
        let sets: Vec<ChangeSet> = self
            .call(
                M,
                vec![
                    serde_json::to_value(&hex_keys).expect("strings"),
                    hash.into(),
                ],
                Some(hash),
            )
            .await?;
        // Nodes answer in the order asked: match by position, by key only when that fails.
        let mut out: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        let mut changes = sets.into_iter().flat_map(|s| s.changes).peekable();
        let mut i = 0;
        while let Some((k, v)) = changes.peek() {
            if i < hex_keys.len() && k.eq_ignore_ascii_case(&hex_keys[i]) {
                out[i] = v.as_deref().map(|s| from_hex(M, s)).transpose()?;
                changes.next();
                i += 1;
            } else {
                break;
            }
        }
        if changes.peek().is_some() {
            let at: std::collections::HashMap<String, usize> = hex_keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.to_ascii_lowercase(), i))
                .collect();
            for (k, v) in changes {
                // A key the node was not asked for is ignored; one it leaves out is absent.
                if let Some(&i) = at.get(&k.to_ascii_lowercase()) {
                    out[i] = v.as_deref().map(|s| from_hex(M, s)).transpose()?;
                }
            }
        }
        Ok(out)
    }

    /// Every key under `prefix` at block `hash`, page by page.
    pub async fn keys(&self, prefix: &[u8], hash: &str) -> Result<Vec<Vec<u8>>> {
        const M: &str = "state_getKeysPaged";
        let prefix_hex = to_hex(prefix);
        let mut out = Vec::new();
        let mut start = prefix_hex.clone();
        loop {
            let page: Vec<String> = self
                .call(
                    M,
                    vec![
                        prefix_hex.clone().into(),
                        PAGE.into(),
                        start.clone().into(),
                        hash.into(),
                    ],
                    Some(hash),
                )
                .await?;
            let full = page.len() as u32 >= PAGE;
            for k in &page {
                let key = from_hex(M, k)?;
                if !key.starts_with(prefix) {
                    return Err(ChainError::Malformed {
                        method: M,
                        reason: format!("key {k} is not under the prefix {prefix_hex}"),
                    });
                }
                out.push(key);
            }
            match page.last() {
                Some(last) if full => start = last.clone(),
                _ => return Ok(out),
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct ChangeSet {
    changes: Vec<(String, Option<String>)>,
}

/// `0x`-prefixed lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const_hex::encode_prefixed(bytes)
}

fn from_hex(method: &'static str, s: &str) -> Result<Vec<u8>> {
    const_hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|e| ChainError::Malformed {
        method,
        reason: format!("`{s}` is not hex: {e}"),
    })
}
