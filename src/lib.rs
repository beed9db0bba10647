//! yuma: Bittensor's Yuma consensus epoch computed off-chain, bit-identical to the chain.
//!
//! Floors, each using only those below it: [`fixed`] (fixed-point arithmetic on raw
//! integers), [`model`] (inputs, outputs, validation), [`epoch`] (the CPU epoch) and
//! [`example`] (a built-in realistic subnet).

pub mod backend;
#[cfg(feature = "chain")]
pub mod chain;
pub mod epoch;
pub mod example;
pub mod fixed;
pub mod model;
#[cfg(feature = "server")]
pub mod server;
