//! Retry on the CPU: a GPU backend whose device fails mid-batch, or that cannot run an
//! epoch's rule set, hands that batch to the CPU path instead of failing it, when the
//! caller asked for that. Never a wrong number: such a batch yields no partial results, so
//! the whole batch is recomputed.

use tracing::warn;

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, BackendError, EpochResult};
use crate::model::EpochInput;

/// Wraps a backend so that a [`BackendError::Device`] or [`BackendError::Unsupported`]
/// reruns the batch on the CPU.
pub struct CpuFallback {
    primary: Box<dyn Backend>,
    cpu: CpuBackend,
}

impl CpuFallback {
    /// `primary`, with batches it fails on its device retried on the CPU.
    pub fn new(primary: Box<dyn Backend>) -> Self {
        Self {
            primary,
            cpu: CpuBackend::new(),
        }
    }
}

impl Backend for CpuFallback {
    fn describe(&self) -> String {
        format!("{} with CPU fallback", self.primary.describe())
    }

    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        match self.primary.run_batch(inputs) {
            Err(e @ BackendError::Device { .. }) => {
                warn!(error = %e, epochs = inputs.len(), "device failed; retrying the batch on the CPU");
                self.cpu.run_batch(inputs)
            }
            Err(e @ BackendError::Unsupported { .. }) => {
                warn!(error = %e, epochs = inputs.len(), "rule set not on this backend; running the batch on the CPU");
                self.cpu.run_batch(inputs)
            }
            other => other,
        }
    }

    fn default_max_wait(&self) -> std::time::Duration {
        self.primary.default_max_wait()
    }
}
