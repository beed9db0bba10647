//! What can go wrong talking to a node: each error names the block, the storage item and
//! the key where there is one, so a user can look the value up themselves.

use thiserror::Error;

/// An error of the chain client.
#[derive(Debug, Error)]
pub enum ChainError {
    /// The node could not be reached (after retries).
    #[error("node {url} is unreachable: {reason}")]
    Unreachable {
        /// The node's URL.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// A URL that is neither http(s):// nor ws(s)://.
    #[error("node URL `{0}` must start with http://, https://, ws:// or wss://")]
    BadUrl(String),
    /// The node answered a call with an error.
    #[error("node answered `{method}` with an error: {reason}")]
    Rpc {
        /// JSON-RPC method.
        method: &'static str,
        /// The node's error message.
        reason: String,
    },
    /// The node no longer holds the state of a block (it is not an archive node).
    #[error(
        "node has pruned the state of block {block}: use an archive node (the node said: {reason})"
    )]
    Pruned {
        /// Block number or hash.
        block: String,
        /// The node's error message.
        reason: String,
    },
    /// A block the node does not know.
    #[error("node has no block {0}")]
    NoBlock(u64),
    /// An answer that is not what the method returns.
    #[error("node's answer to `{method}` is malformed: {reason}")]
    Malformed {
        /// JSON-RPC method.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A storage value that does not decode as the item's type.
    #[error("storage {item} at key {key} does not decode as {ty}: {reason}")]
    Decode {
        /// Storage item.
        item: &'static str,
        /// Hex storage key.
        key: String,
        /// Expected type.
        ty: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// The netuid is not registered at the block.
    #[error("subnet {netuid} does not exist at block {block} (NetworksAdded is false)")]
    NoSubnet {
        /// Netuid.
        netuid: u16,
        /// Block number.
        block: u64,
    },
    /// Storage values that contradict each other.
    #[error("node contradicts itself at block {block}: storage {item}: {detail}")]
    Contradiction {
        /// Block number.
        block: u64,
        /// Storage item.
        item: &'static str,
        /// What disagrees.
        detail: String,
    },
    /// A stored value that the epoch input cannot hold.
    #[error("storage {item} at block {block} holds {detail}")]
    Unrepresentable {
        /// Block number.
        block: u64,
        /// Storage item.
        item: &'static str,
        /// The value and why the input cannot hold it.
        detail: String,
    },
    /// The runtime ran rules this crate does not implement.
    #[error(
        "block {block} ran runtime specVersion {spec}, whose epoch rules yuma does not implement (supported: {supported})"
    )]
    UnsupportedSpec {
        /// Block number.
        block: u64,
        /// The runtime's specVersion.
        spec: u32,
        /// The supported range, as text.
        supported: &'static str,
    },
    /// No epoch of the subnet ran in the block.
    #[error("no epoch of subnet {netuid} ran in block {block}: {nearest}")]
    NoEpoch {
        /// Netuid.
        netuid: u16,
        /// Block number.
        block: u64,
        /// The last epoch block up to `block` (`LastMechansimStepBlock` there).
        last: u64,
        /// The nearest epoch blocks known, as text.
        nearest: String,
    },
    /// The stored emission cannot be reproduced by any total in the searched bracket.
    #[error(
        "subnet {netuid} block {block}: no total emission reproduces the stored Emission (sum {sum}); pass --emission"
    )]
    Emission {
        /// Netuid.
        netuid: u16,
        /// Block number.
        block: u64,
        /// Sum of the stored Emission vector.
        sum: u128,
    },
    /// The epoch itself rejected the fetched input.
    #[error("the fetched input is rejected: {0}")]
    Input(String),
}

/// Result of the chain client.
pub type Result<T> = std::result::Result<T, ChainError>;
