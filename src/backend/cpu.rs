//! The CPU backend: the reference epoch, epochs spread over the rayon pool.

use std::time::Duration;

use crate::backend::{Backend, BackendError, EpochResult};
use crate::epoch;
use crate::model::EpochInput;

/// Runs epochs on the CPU with rayon.
#[derive(Debug, Default)]
pub struct CpuBackend;

impl CpuBackend {
    /// The CPU backend on the global rayon pool.
    pub fn new() -> Self {
        Self
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        format!("cpu ({} threads)", rayon::current_num_threads())
    }

    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        Ok(epoch::run_batch(inputs))
    }

    /// Zero: an epoch costs the same alone or batched here, so waiting only adds latency;
    /// epochs arriving while a batch runs still form the next batch.
    fn default_max_wait(&self) -> Duration {
        Duration::ZERO
    }
}
