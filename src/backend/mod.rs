//! Backends: one trait that runs a batch of epochs, with CPU, wgpu and CUDA
//! implementations. Nothing above this floor knows which one runs.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod fallback;
pub mod pack;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::time::Duration;

use thiserror::Error;

use crate::epoch::mechanisms::AnyResult;
use crate::model::subnet::AnyInput;
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
    /// The device failed while running a batch.
    #[error("{backend} failed: {reason}")]
    Device {
        /// Backend name.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Which backend to use; parsed from and shown as its lower-case name (`auto`, `cpu`,
/// `wgpu`, `cuda`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

impl BackendKind {
    /// Every kind, in the order `--help` lists them.
    pub const ALL: [BackendKind; 4] = [Self::Auto, Self::Cpu, Self::Wgpu, Self::Cuda];

    /// The name a command line or config file uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown backend `{s}` (expected auto, cpu, wgpu or cuda)"))
    }
}

/// Runs batches of epochs.
pub trait Backend: Send + Sync {
    /// Short name and device, e.g. `cpu (16 threads)`.
    fn describe(&self) -> String;

    /// Runs every epoch of `inputs`; results in input order. An invalid input fails only
    /// its own epoch; a device failure fails the whole batch.
    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError>;

    /// Runs inputs of either format in one batch: a subnet runs as one more epoch per
    /// mechanism, split and folded on the host ([`crate::epoch::mechanisms`]); results in
    /// input order.
    fn run_any(&self, inputs: Vec<AnyInput>) -> Result<Vec<AnyResult>, BackendError> {
        crate::epoch::mechanisms::run_any(inputs, |epochs| self.run_batch(epochs))
    }

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
        BackendKind::Auto => open(BackendKind::Cuda)
            .or_else(|e| {
                tracing::info!(%e, "auto backend: trying a hardware wgpu adapter");
                open_wgpu(false)
            })
            .or_else(|e| {
                tracing::info!(%e, "auto backend: using the CPU");
                open(BackendKind::Cpu)
            }),
        // Explicitly asked for: a software adapter (lavapipe) will do.
        BackendKind::Wgpu => open_wgpu(true),
        BackendKind::Cuda => open_cuda(),
    }
}

#[cfg(feature = "wgpu")]
fn open_wgpu(allow_software: bool) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(wgpu::WgpuBackend::new(allow_software)?))
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu(_allow_software: bool) -> Result<Box<dyn Backend>, BackendError> {
    Err(not_built("wgpu"))
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(cuda::CudaBackend::new()?))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Box<dyn Backend>, BackendError> {
    Err(not_built("cuda"))
}

/// The error for a backend whose cargo feature this build left out.
#[cfg(not(all(feature = "wgpu", feature = "cuda")))]
fn not_built(backend: &'static str) -> BackendError {
    BackendError::Unavailable {
        backend,
        reason: format!("this build has no `{backend}` cargo feature"),
    }
}

/// One line per backend kind: what it would run on, or why it cannot run here.
pub fn available() -> Vec<String> {
    let mut lines: Vec<String> = [BackendKind::Cpu, BackendKind::Wgpu, BackendKind::Cuda]
        .into_iter()
        .map(|k| {
            let name = k.name();
            match open(k) {
                Ok(b) => format!("{name:<5} available: {}", b.describe()),
                Err(e) => format!("{name:<5} {e}"),
            }
        })
        .collect();
    #[cfg(feature = "wgpu")]
    lines.extend(
        wgpu::adapters()
            .into_iter()
            .map(|a| format!("      wgpu adapter: {a}")),
    );
    lines.push("      features: wgpu kernels use u32-limb fixed point (no SHADER_INT64 needed); CUDA kernels compile at run time with NVRTC".into());
    lines
}
