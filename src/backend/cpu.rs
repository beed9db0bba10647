//! The CPU backend: the reference epoch, epochs spread over the rayon pool.

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
}
