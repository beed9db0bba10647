//! The node client: reads the inputs of an epoch that ran in a block, and what the chain
//! stored after it, from a subtensor node over JSON-RPC (raw storage only, no metadata).
//!
//! `rpc` is the transport, `storage` the items and their keys, `snapshot` turns storage at
//! a block into an epoch input and the stored outputs.

pub mod check;
pub mod error;
pub mod fetch;
pub mod history;
pub mod records;
pub mod rpc;
pub mod snapshot;
pub mod storage;

pub use error::{ChainError, Result};
pub use rpc::{Node, Retry};
