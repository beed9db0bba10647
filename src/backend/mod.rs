//! Backends: one trait that runs a batch of epochs, with CPU, wgpu and CUDA
//! implementations. Nothing above this floor knows which one runs.

pub mod cpu;
pub mod cuda;
pub mod fallback;
pub mod pack;
pub mod wgpu;

use std::time::Duration;

use thiserror::Error;

use crate::model::{EpochInput, EpochOutput, InputError};

/// One epoch's result: its output, or why its input was rejected.
pub type EpochResult = Result<EpochOutput, InputError>;

/// A failure of the backend itself (not of one epoch's input).
#[derive(Debug, Error)]
pub enum BackendError {
    /// The requested backend cannot run here.
    #[error("{backend} unavailable: {reason}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// Why.
        reason: String,
    },
    /// An epoch's rule set (its `spec_version`) is one this backend cannot run; the CPU
    /// can (`--cpu-fallback` reruns the batch there).
    #[error("{backend} cannot run this batch: {reason}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// Which rule set, and what of it is missing.
        reason: String,
    },
    /// The device failed while running a batch.
    #[error("{backend} failed: {reason}")]
    Device {
        /// Backend name.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Which backend to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// CUDA, else a hardware wgpu adapter, else the CPU.
    Auto,
    /// The CPU path (rayon across epochs).
    Cpu,
    /// wgpu compute kernels (any Vulkan/Metal/DX12 adapter, software ones included).
    Wgpu,
    /// CUDA kernels via NVRTC.
    Cuda,
}

/// Runs batches of epochs.
pub trait Backend: Send + Sync {
    /// Short name and device, e.g. `cpu (16 threads)`.
    fn describe(&self) -> String;

    /// Runs every epoch of `inputs`; results in input order. An invalid input fails only
    /// its own epoch; a device failure fails the whole batch.
    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError>;

    /// How long a daemon batch should wait to fill when nothing else is said. A device
    /// batch costs about the same for one epoch as for a thousand, so waiting to fill it
    /// pays; backends whose cost grows with every epoch override this with zero.
    fn default_max_wait(&self) -> Duration {
        Duration::from_millis(2)
    }
}

/// Opens `kind`; with `cpu_fallback`, a GPU backend's device failures rerun the batch on
/// the CPU instead of failing it.
pub fn open_with(kind: BackendKind, cpu_fallback: bool) -> Result<Box<dyn Backend>, BackendError> {
    let b = open(kind)?;
    Ok(if cpu_fallback && kind != BackendKind::Cpu {
        Box::new(fallback::CpuFallback::new(b))
    } else {
        b
    })
}

/// Opens the backend `kind` names (`Auto` falls back down the list).
pub fn open(kind: BackendKind) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Cpu => Ok(Box::new(cpu::CpuBackend::new())),
        // CUDA first, then a hardware wgpu adapter, else the CPU.
        BackendKind::Auto => match cuda::CudaBackend::new() {
            Ok(b) => Ok(Box::new(b)),
            Err(e) => {
                tracing::info!(%e, "auto backend: trying a hardware wgpu adapter");
                match wgpu::WgpuBackend::new(false) {
                    Ok(b) => Ok(Box::new(b)),
                    Err(e) => {
                        tracing::info!(%e, "auto backend: using the CPU");
                        Ok(Box::new(cpu::CpuBackend::new()))
                    }
                }
            }
        },
        // Explicitly asked for: a software adapter (lavapipe) will do.
        BackendKind::Wgpu => Ok(Box::new(wgpu::WgpuBackend::new(true)?)),
        BackendKind::Cuda => Ok(Box::new(cuda::CudaBackend::new()?)),
    }
}

/// One line per backend kind: what it would run on, or why it cannot run here.
pub fn available() -> Vec<String> {
    let mut lines: Vec<String> = [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
        .into_iter()
        .map(|k| {
            let name = format!("{k:?}").to_lowercase();
            match open(k) {
                Ok(b) => format!("{name:<5} available: {}", b.describe()),
                Err(e) => format!("{name:<5} {e}"),
            }
        })
        .collect();
    lines.extend(
        wgpu::adapters()
            .into_iter()
            .map(|a| format!("      wgpu adapter: {a}")),
    );
    lines.push("      features: wgpu kernels use u32-limb fixed point (no SHADER_INT64 needed); CUDA kernels compile at run time with NVRTC".into());
    lines
}
