//! The CUDA backend: the epoch as CUDA kernels (`kernels/*.cu`, one file per
//! `src/epoch/` stage, fixed-point helpers in `kernels/fixed.cuh`), compiled at run time by
//! NVRTC and launched through the CUDA driver API (`cudarc`, both libraries loaded
//! dynamically, so no CUDA toolkit is needed to build).
//!
//! Status: compiled (NVRTC) and host-tested, not yet run on hardware. Every kernel
//! function is `__host__ __device__` over fixed-width integers, so `tests/cuda_host.rs`
//! compiles the same sources with a host C++ compiler and checks them bit for bit against
//! the CPU path; `tests/cuda_nvrtc.rs` compiles them with NVRTC; `tests/cuda_device.rs`
//! runs them on a GPU when there is one.
//!
//! A batch is packed once ([`pack`]), uploaded once, run as one launch per kernel (one
//! thread block per epoch) and downloaded once.

use std::sync::{Arc, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{Ptx, result as nvrtc, sys as nvrtc_sys};

use crate::backend::pack::{PackedBatch, PackedOutput, U64Words, pack, unpack};
use crate::backend::{Backend, BackendError, EpochResult};
use crate::model::{EpochInput, InputError};

/// `kernels/fixed.cuh`.
const FIXED_CUH: &str = include_str!("../../kernels/fixed.cuh");
/// `kernels/batch.cuh`.
const BATCH_CUH: &str = include_str!("../../kernels/batch.cuh");

/// The kernel files (named like the `src/epoch/` stage each mirrors), their sources and
/// their kernels, in launch order.
pub const STEPS: [(&str, &str, &[&str]); 5] = [
    (
        "stake.cu",
        include_str!("../../kernels/stake.cu"),
        &[
            "stake_total",
            "stake_sum",
            "stake_normalize",
            "stake_permits",
            "stake_active_sum",
            "stake_active_normalize",
        ],
    ),
    (
        "weights.cu",
        include_str!("../../kernels/weights.cu"),
        &["weights_mask"],
    ),
    (
        "consensus.cu",
        include_str!("../../kernels/consensus.cu"),
        &[
            "consensus_use_stake",
            "consensus_count",
            "consensus_offsets",
            "consensus_fill",
            "consensus_median",
            "consensus_clip",
            "consensus_rank",
            "consensus_rank_sum",
            "consensus_incentive",
        ],
    ),
    (
        "bonds.cu",
        include_str!("../../kernels/bonds.cu"),
        &[
            "bonds_read",
            "bonds_scale_sums",
            "bonds_scale_normalize",
            "bonds_quantile",
            "bonds_liquid_alpha_v1_fit",
            "bonds_liquid_alpha_v1",
            "bonds_ema",
            "bonds_dividends",
            "bonds_dividend_sum",
            "bonds_finish",
        ],
    ),
    (
        "emission.cu",
        include_str!("../../kernels/emission.cu"),
        &[
            "emission_sum",
            "emission_split",
            "emission_prune_max",
            "emission_prune",
        ],
    ),
];

/// Every kernel name in launch order.
pub fn kernel_order() -> Vec<&'static str> {
    STEPS
        .iter()
        .flat_map(|(_, _, k)| k.iter().copied())
        .collect()
}

/// Threads per block (one block per epoch).
const THREADS: u32 = 256;
/// Per-epoch scalar slots (`EP_SLOTS` in `kernels/batch.cuh`).
const EP_SLOTS: usize = 17;

/// A kernel file with its headers inlined: NVRTC compiles one string, without a file system.
pub fn kernel_source(file_source: &str) -> String {
    let fixed = FIXED_CUH.replace("#pragma once", "");
    let batch = BATCH_CUH
        .replace("#pragma once", "")
        .replace("#include \"fixed.cuh\"", &fixed);
    file_source.replace("#include \"batch.cuh\"", &batch)
}

/// One kernel file compiled by NVRTC.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// Kernel file name.
    pub file: &'static str,
    /// PTX text.
    pub ptx: String,
    /// Size of the CUBIN NVRTC built for the same architecture (non-zero: SASS generated).
    pub cubin_bytes: usize,
    /// NVRTC's log (warnings); empty for a clean compile.
    pub log: String,
}

/// Makes NVRTC loadable: `YUMA_NVRTC_LIB`, when set, names the library file, loaded
/// globally so the dynamic loader finds it by its soname; otherwise the usual search
/// (`LD_LIBRARY_PATH`, system paths) applies, and last the copy that
/// `pip install nvidia-cuda-nvrtc-cu12` put beside `python3`.
pub fn nvrtc_available() -> Result<(), String> {
    static PRELOAD: OnceLock<Result<(), String>> = OnceLock::new();
    PRELOAD
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("YUMA_NVRTC_LIB") {
                preload_global(&path)
                    .map_err(|e| format!("YUMA_NVRTC_LIB={}: {e}", path.to_string_lossy()))?;
            }
            // SAFETY: only probes whether the library can be opened.
            if unsafe { nvrtc_sys::is_culib_present() } {
                return Ok(());
            }
            let pip = pip_nvrtc().ok_or(
                "libnvrtc not found (set YUMA_NVRTC_LIB or LD_LIBRARY_PATH, or \
                 `python3 -m pip install nvidia-cuda-nvrtc-cu12`)",
            )?;
            preload_global(pip.as_os_str())
                .map_err(|e| format!("pip's NVRTC {}: {e}", pip.display()))?;
            // SAFETY: as above.
            if unsafe { nvrtc_sys::is_culib_present() } {
                Ok(())
            } else {
                Err(format!(
                    "pip's NVRTC {} loaded, but not found by soname",
                    pip.display()
                ))
            }
        })
        .clone()
}

/// The `libnvrtc.so*` of the `nvidia-cuda-nvrtc-cu12` wheel, asking `python3` where its
/// package lives (pip installs it outside every library path); `None` without one.
fn pip_nvrtc() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, nvidia.cuda_nvrtc as m; print(os.path.join(list(m.__path__)[0], 'lib'))",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let dir = std::path::PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    let mut libs: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libnvrtc.so"))
        })
        .collect();
    // `libnvrtc.so.12` before any builtins or versioned variants.
    libs.sort_by_key(|p| p.as_os_str().len());
    libs.into_iter().next()
}

/// Loads a shared library for the rest of the process, its symbols global.
#[cfg(unix)]
fn preload_global(path: &std::ffi::OsStr) -> Result<(), String> {
    use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_NOW};
    // SAFETY: NVRTC's initialisers have no preconditions; the handle is kept for the
    // process's lifetime so cudarc's later lookup by soname finds this copy.
    let lib =
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_GLOBAL) }.map_err(|e| e.to_string())?;
    std::mem::forget(lib);
    Ok(())
}

/// Loads a shared library for the rest of the process (non-unix: plain load).
#[cfg(not(unix))]
fn preload_global(path: &std::ffi::OsStr) -> Result<(), String> {
    // SAFETY: as above.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| e.to_string())?;
    std::mem::forget(lib);
    Ok(())
}

/// NVRTC's version, as (major, minor).
pub fn nvrtc_version() -> Result<(i32, i32), String> {
    nvrtc_available()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: plain out-parameters.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| format!("{e:?}"))?;
    Ok((major, minor))
}

/// Compiles every kernel file for `arch` (e.g. `sm_90`); an error carries NVRTC's log.
pub fn compile_all(arch: &str) -> Result<Vec<Compiled>, String> {
    nvrtc_available()?;
    STEPS
        .iter()
        .map(|&(file, src, _)| compile_one(file, &kernel_source(src), arch))
        .collect()
}

/// Compiles one source with NVRTC, returning its PTX and the size of its CUBIN.
fn compile_one(file: &'static str, source: &str, arch: &str) -> Result<Compiled, String> {
    let src = std::ffi::CString::new(source).map_err(|_| format!("{file}: NUL in source"))?;
    let name = std::ffi::CString::new(file).map_err(|_| format!("{file}: NUL in name"))?;
    let prog = nvrtc::create_program(&src, Some(&name)).map_err(|e| format!("{file}: {e:?}"))?;
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".into(),
        "--device-int128".into(),
    ];
    // SAFETY: `prog` is live until the destroy below; `src` and `name` outlive it.
    let outcome = unsafe {
        match nvrtc::compile_program(prog, &options) {
            Err(e) => {
                let log = nvrtc::get_program_log(prog)
                    .map(|l| c_chars_to_string(&l))
                    .unwrap_or_default();
                Err(format!("{file}: NVRTC {e:?} for {arch}:\n{log}"))
            }
            Ok(()) => {
                let ptx = nvrtc::get_ptx(prog).map_err(|e| format!("{file}: {e:?}"))?;
                let mut cubin_bytes = 0usize;
                nvrtc_sys::nvrtcGetCUBINSize(prog, &mut cubin_bytes)
                    .result()
                    .map_err(|e| format!("{file}: {e:?}"))?;
                let log = nvrtc::get_program_log(prog)
                    .map(|l| c_chars_to_string(&l))
                    .unwrap_or_default();
                Ok(Compiled {
                    file,
                    ptx: c_chars_to_string(&ptx),
                    cubin_bytes,
                    log: log.trim().to_string(),
                })
            }
        }
    };
    // SAFETY: created above, destroyed once.
    let _ = unsafe { nvrtc::destroy_program(prog) };
    outcome
}

/// A NUL-terminated C string buffer as text.
fn c_chars_to_string(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Inputs validated and packed: the batch of the valid ones, and where each input went.
pub struct Prepared {
    /// The packed valid inputs.
    pub batch: PackedBatch,
    /// Per input: its epoch index in `batch`, or why it was rejected.
    pub slots: Vec<Result<usize, InputError>>,
}

/// Validates every input and packs the valid ones (an invalid input fails only itself).
pub fn prepare(inputs: &[EpochInput]) -> Prepared {
    let checks: Vec<Result<(), InputError>> = inputs
        .iter()
        .map(|x| crate::epoch::validate(x).map(|_| ()))
        .collect();
    let batch = if checks.iter().all(Result::is_ok) {
        pack(inputs)
    } else {
        let valid: Vec<EpochInput> = inputs
            .iter()
            .zip(&checks)
            .filter(|(_, c)| c.is_ok())
            .map(|(x, _)| x.clone())
            .collect();
        pack(&valid)
    };
    let mut next = 0;
    let slots = checks
        .into_iter()
        .map(|c| {
            c.map(|()| {
                next += 1;
                next - 1
            })
        })
        .collect();
    Prepared { batch, slots }
}

/// The input buffers in `Buffers` order (kernels/batch.cuh), as u32 words.
pub fn input_words(b: &PackedBatch) -> [&[u32]; 14] {
    [
        bytemuck::cast_slice(&b.headers),
        bytemuck::cast_slice(&b.alpha_stake),
        bytemuck::cast_slice(&b.tao_stake),
        bytemuck::cast_slice(&b.last_update),
        bytemuck::cast_slice(&b.block_at_registration),
        bytemuck::cast_slice(&b.commit_block),
        &b.validator_permit,
        &b.w_offsets,
        &b.w_cols,
        &b.w_vals,
        &b.b_offsets,
        &b.b_cols,
        &b.b_vals,
        &b.ob_offsets,
    ]
}

/// Sizes in u32 words of the output buffers in `Buffers` order, the per-epoch status last.
pub fn output_words(b: &PackedBatch) -> [usize; 17] {
    let (e, u, c) = (b.headers.len(), b.total_uids(), b.bond_capacity());
    [
        u,
        2 * u,
        u,
        u,
        u,
        u,
        u,
        u,
        2 * u,
        2 * u,
        2 * u,
        u,
        c,
        c,
        u,
        u,
        e,
    ]
}

/// Sizes in bytes of the zeroed scratch buffers in `Buffers` order.
fn scratch_bytes(b: &PackedBatch) -> [usize; 34] {
    let (e, u, w, c) = (
        b.headers.len(),
        b.total_uids(),
        b.w_cols.len(),
        b.bond_capacity(),
    );
    [
        16 * u,           // filtered
        16 * e,           // ep_wide
        8 * EP_SLOTS * e, // ep_scalar
        8 * u,            // stake_fx
        4 * u,            // permit
        8 * u,            // active_stake
        8 * u,            // use_stake
        8 * u,            // consensus_fx
        8 * u,            // incentive_fx
        8 * u,            // dividend_fx
        4 * u,            // col_count
        4 * u,            // col_fill
        16 * u,           // colsum_a
        16 * u,           // colsum_b
        16 * u,           // colsum_c
        8 * u,            // colmax
        8 * w,            // wm_val
        4 * w,            // wm_keep
        8 * w,            // clip_val
        4 * w,            // clip_keep
        8 * w,            // cell_val
        4 * w,            // cell_row
        4 * c,            // wfb_col
        8 * c,            // wfb_val
        4 * u,            // wfb_len
        4 * c,            // old_col
        8 * c,            // old_val
        4 * c,            // old_vis
        4 * u,            // old_len
        4 * c,            // ema_col
        8 * c,            // ema_val
        4 * u,            // ema_len
        8 * u,            // comb_fx
        8 * u,            // la_col
    ]
}

/// Rebuilds the output from downloaded buffers (in [`output_words`] order) and returns it
/// with the per-epoch status.
pub fn output_from_words(mut bufs: Vec<Vec<u32>>) -> (PackedOutput, Vec<u32>) {
    let status = bufs.pop().unwrap_or_default();
    let mut it = bufs.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let pairs =
        |v: Vec<u32>| -> Vec<U64Words> { v.chunks_exact(2).map(|p| [p[0], p[1]]).collect() };
    let out = PackedOutput {
        active: next(),
        stake: pairs(next()),
        stake_weight: next(),
        consensus: next(),
        incentive: next(),
        dividend: next(),
        validator_trust: next(),
        new_validator_permit: next(),
        emission: pairs(next()),
        server_emission: pairs(next()),
        validator_emission: pairs(next()),
        bond_len: next(),
        bond_cols: next(),
        bond_vals: next(),
        trust: next(),
        pruning_score: next(),
    };
    (out, status)
}

/// Per input: the unpacked output, its validation error, or the stake overflow the
/// kernels reported (status `1 + uid`).
pub fn finish(prepared: Prepared, out: &PackedOutput, status: &[u32]) -> Vec<EpochResult> {
    let mut outputs: Vec<Option<_>> = unpack(&prepared.batch, out).into_iter().map(Some).collect();
    prepared
        .slots
        .into_iter()
        .map(|slot| {
            let e = slot?;
            match status.get(e).copied().unwrap_or(0) {
                0 => Ok(outputs[e].take().expect("each epoch is unpacked once")),
                s => Err(InputError::StakeOverflow {
                    uid: s as usize - 1,
                }),
            }
        })
        .collect()
}

/// The kernels compiled once per process (PTX per file, for the architecture of the first
/// device opened).
static PTX: OnceLock<Result<Vec<Compiled>, String>> = OnceLock::new();

/// Runs epochs on a CUDA device.
pub struct CudaBackend {
    stream: Arc<CudaStream>,
    functions: Vec<CudaFunction>,
    device: String,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.device)
            .finish()
    }
}

fn unavailable(reason: impl Into<String>) -> BackendError {
    BackendError::Unavailable {
        backend: "cuda",
        reason: reason.into(),
    }
}

fn device_error(reason: impl std::fmt::Debug) -> BackendError {
    BackendError::Device {
        backend: "cuda",
        reason: format!("{reason:?}"),
    }
}

impl CudaBackend {
    /// Opens device 0 and loads the kernels; `Unavailable` when libcuda, NVRTC or a device
    /// is missing (checked before cudarc is asked, since cudarc panics on a missing library).
    pub fn new() -> Result<Self, BackendError> {
        // SAFETY: only probes whether the library can be opened.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(unavailable("libcuda (the NVIDIA driver) not found"));
        }
        nvrtc_available().map_err(unavailable)?;
        // Last resort: cudarc panics when the installed driver lacks a symbol its bindings
        // expect (a driver older than CUDA 12); that is "unavailable" too, not a crash.
        let ctx = std::panic::catch_unwind(|| CudaContext::new(0))
            .map_err(|_| {
                unavailable("the NVIDIA driver is too old for CUDA 12 (missing driver API symbols)")
            })?
            .map_err(|e| unavailable(format!("no usable device: {e:?}")))?;
        let device = ctx.name().unwrap_or_else(|_| "unknown device".into());
        let cc = |a| {
            ctx.attribute(a)
                .map_err(|e| unavailable(format!("device attribute: {e:?}")))
        };
        use cudarc::driver::sys::CUdevice_attribute as A;
        let arch = format!(
            "sm_{}{}",
            cc(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            cc(A::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?
        );
        let compiled = PTX
            .get_or_init(|| {
                tracing::info!(%arch, "compiling CUDA kernels with NVRTC");
                compile_all(&arch)
            })
            .clone()
            .map_err(|e| unavailable(format!("kernel compilation failed: {e}")))?;
        let mut functions = Vec::new();
        for ((_, _, names), c) in STEPS.iter().zip(&compiled) {
            let module = ctx
                .load_module(Ptx::from_src(c.ptx.clone()))
                .map_err(device_error)?;
            for name in names.iter() {
                functions.push(module.load_function(name).map_err(device_error)?);
            }
        }
        Ok(Self {
            stream: ctx.default_stream(),
            functions,
            device: format!("{device} ({arch})"),
        })
    }

    /// Uploads, launches every kernel and downloads one packed batch.
    fn run_packed(&self, batch: &PackedBatch) -> Result<(PackedOutput, Vec<u32>), BackendError> {
        let s = &self.stream;
        // Zero-length allocations are avoided: every buffer holds at least one word.
        let upload = |words: &[u32]| -> Result<CudaSlice<u32>, BackendError> {
            if words.is_empty() {
                s.alloc_zeros::<u32>(1)
            } else {
                s.clone_htod(words)
            }
            .map_err(device_error)
        };
        let inputs: Vec<CudaSlice<u32>> = input_words(batch)
            .iter()
            .map(|w| upload(w))
            .collect::<Result<_, _>>()?;
        let outputs: Vec<CudaSlice<u32>> = output_words(batch)
            .iter()
            .map(|&n| s.alloc_zeros::<u32>(n.max(1)).map_err(device_error))
            .collect::<Result<_, _>>()?;
        let scratch: Vec<CudaSlice<u128>> = scratch_bytes(batch)
            .iter()
            .map(|&n| {
                s.alloc_zeros::<u128>(n.div_ceil(16).max(1))
                    .map_err(device_error)
            })
            .collect::<Result<_, _>>()?;
        {
            let mut ptrs = [0u64; 65];
            let mut guards = Vec::with_capacity(65);
            for (slot, (p, g)) in ptrs.iter_mut().zip(
                inputs
                    .iter()
                    .chain(&outputs)
                    .map(|x| x.device_ptr(s))
                    .chain(scratch.iter().map(|x| x.device_ptr(s))),
            ) {
                *slot = p;
                guards.push(g);
            }
            let cfg = LaunchConfig {
                grid_dim: (batch.headers.len() as u32, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            for f in &self.functions {
                let mut launch = s.launch_builder(f);
                launch.arg(&ptrs);
                // SAFETY: every kernel takes one `Buffers` (65 device pointers, in this
                // order) and touches only the ranges `pack` laid out for its epoch.
                unsafe { launch.launch(cfg) }.map_err(device_error)?;
            }
        }
        let words = output_words(batch);
        let mut host = Vec::with_capacity(words.len());
        for (buf, &n) in outputs.iter().zip(&words) {
            let mut v = s.clone_dtoh(buf).map_err(device_error)?;
            v.truncate(n);
            host.push(v);
        }
        s.synchronize().map_err(device_error)?;
        Ok(output_from_words(host))
    }
}

impl Backend for CudaBackend {
    fn describe(&self) -> String {
        format!("cuda ({})", self.device)
    }

    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        let prepared = prepare(inputs);
        if prepared.batch.headers.is_empty() {
            return Ok(finish(prepared, &PackedOutput::default(), &[]));
        }
        let (out, status) = self.run_packed(&prepared.batch)?;
        Ok(finish(prepared, &out, &status))
    }
}
