//! The wgpu backend: the epoch as WGSL compute kernels on any Vulkan, Metal or DX12
//! adapter, software ones (Mesa lavapipe) included, bit-identical to the CPU path.
//!
//! What runs where: every step of the epoch runs on the GPU; the host only validates,
//! packs and unpacks. The stake steps 1-4 (`kernels/stake.wgsl`): activity, the I64F64
//! total stake with the U96F32 tao weight, the stake threshold, the checked I64F64 sum
//! in uid order (an overflow fails that epoch alone with [`InputError::StakeOverflow`]
//! and the CPU path's uid), normalisation narrowed to I32F32, `is_topk_nonzero` permits
//! by exact rank under the stable sort, and the normalised active stake; they write the
//! outputs `active`, `stake`, `stake_weight` and `new_validator_permit`. Then masked and
//! row-normalised weights (`weights.wgsl`), the weighted median, clipping, validator
//! trust and incentive (`consensus.wgsl`), weights for bonds, bonds as read, both bonds
//! EMAs (fixed alpha, and liquid alpha with the fixed-point `exp` port), column
//! normalisations, dividends and the stored bond rows (`bonds.wgsl`), and the emission
//! split (`emission.wgsl`).
//!
//! Past eras (`spec_version`, docs/eras.md): the rule set arrives as header flags (`FLAG_*`
//! in `pack.rs`), which switch the owner's permits, top-k with zero stakes, the outdated
//! bond mask, the 273 sigmoid and the unclamped exp; before 365 `server_trust` (in
//! `consensus.wgsl`) and `pruning_max`/`pruning` (in `emission.wgsl`) add trust and
//! pruning scores. Liquid alpha v1 (specs 233-272) ranks the consensus for its quartiles
//! (`quantile_rank`, `quantile`), fits the logistic with the fixed-point `ln` port
//! (`liquid_alpha_v1_fit`) and gives each column its alpha (`liquid_alpha_v1`), which the
//! original EMA then reads.
//!
//! Arithmetic uses u32 limbs only (`kernels/fixed.wgsl`: an I32F32 is `vec2<u32>`, an
//! I64F64 or U96F32 `vec4<u32>`; wide products are built from 16-bit partial products
//! up to 256 bits, quotients by shift-subtract division up to 256 by 128 bits), not
//! `SHADER_INT64`: that is an optional wgpu feature many adapters (web and mobile GPUs
//! among them) do not offer, and one portable path means one path to test, the same on
//! lavapipe in CI as on any GPU. The cost is speed, never exactness.
//!
//! Parallelism: kernels run across all epochs of a batch at once, one thread per uid row
//! or column (stake divisions, masking, median, clipping, EMAs, dividends), one thread
//! per uid and block of 2048 uids for the top-k ranks, one thread per matrix entry
//! (every per-entry division: row and column normalisations, max-upscale, liquid
//! alpha), and one thread per epoch only for O(n) sums (the ordered, checked stake sum
//! among them). Column sums and maxima use atomics, exact here because every summed
//! value is non-negative (a saturating sum of non-negative terms does not depend on
//! order) and 96-bit accumulators never wrap. Scatter order into median columns is
//! arbitrary; cumulative stakes are exact sums of normalised stake, so it cannot change
//! the median. A batch larger than the adapter's buffer or dispatch limits is split into
//! chunks of whole epochs.
//!
//! Mesa lavapipe caps loop iterations per invocation (65535 in Mesa 22, all loops of the
//! invocation together) and then silently leaves loops early. The kernels keep
//! per-invocation work small (divisions per entry, not per row), and every kernel ends with
//! a canary loop that flags an exhausted budget, which the host turns into
//! [`BackendError::Device`] rather than return wrong numbers. An epoch whose single row or
//! column needs more (a dense subnet of several thousand uids) can fail that way there.

use std::sync::{Arc, Mutex};

use bytemuck::{Pod, Zeroable};
use tracing::{debug, warn};

use crate::backend::pack::{EpochHeader, PackedBatch, PackedOutput, U64Words, pack, unpack};
use crate::backend::{Backend, BackendError, EpochResult};
use crate::model::{EpochInput, InputError};

const NAME: &str = "wgpu";
/// Invocations per workgroup (`WG` in kernels/pack.wgsl).
const WORKGROUP: u32 = 64;

/// Kernel sources, each concatenated after the fixed-point helpers and the batch layout.
const FIXED_WGSL: &str = include_str!("../../kernels/fixed.wgsl");
const PACK_WGSL: &str = include_str!("../../kernels/pack.wgsl");
const STEPS: [(&str, &str); 5] = [
    ("stake", include_str!("../../kernels/stake.wgsl")),
    ("weights", include_str!("../../kernels/weights.wgsl")),
    ("consensus", include_str!("../../kernels/consensus.wgsl")),
    ("bonds", include_str!("../../kernels/bonds.wgsl")),
    ("emission", include_str!("../../kernels/emission.wgsl")),
];

/// Entry points and the step file each lives in.
const KERNELS: [(&str, &str); 44] = [
    ("stake", "stake_total"),
    ("stake", "stake_sum"),
    ("stake", "stake_normalize"),
    ("stake", "stake_rank"),
    ("stake", "stake_permits"),
    ("stake", "stake_active_sum"),
    ("stake", "stake_active_normalize"),
    ("weights", "masked_weights"),
    ("weights", "row_normalize"),
    ("consensus", "median_prepare"),
    ("consensus", "median_use_stake"),
    ("consensus", "median_minority"),
    ("consensus", "median_count"),
    ("consensus", "median_scan"),
    ("consensus", "median_scatter"),
    ("consensus", "median_solve"),
    ("consensus", "clip"),
    ("consensus", "incentive_sum"),
    ("consensus", "incentive"),
    ("consensus", "server_trust"),
    ("bonds", "weights_for_bonds"),
    ("bonds", "read_bonds"),
    ("bonds", "row_scale"),
    ("bonds", "col_sum"),
    ("bonds", "col_divide"),
    ("bonds", "col_max_high"),
    ("bonds", "col_max_low"),
    ("bonds", "col_max_upscale"),
    ("bonds", "quantile_rank"),
    ("bonds", "quantile"),
    ("bonds", "liquid_alpha_v1_fit"),
    ("bonds", "liquid_alpha_v1"),
    ("bonds", "liquid_walk"),
    ("bonds", "liquid_alpha"),
    ("bonds", "ema"),
    ("bonds", "copy_norm"),
    ("bonds", "dividends"),
    ("bonds", "dividends_sum"),
    ("bonds", "dividends_normalize"),
    ("bonds", "store_bonds"),
    ("emission", "emission_sum"),
    ("emission", "emission"),
    ("emission", "pruning_max"),
    ("emission", "pruning"),
];

/// Section bases (in u32 words) and matrix selection; mirrors `Params` in kernels/pack.wgsl.
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
#[repr(C)]
struct Params {
    n_epochs: u32,
    n_uids: u32,
    n_entries: u32,
    m_off: u32,
    m_len: u32,
    m_cols: u32,
    m_vals: u32,
    m_buf: u32,
    mode: u32,
    m_count: u32,
    m_row: u32,
    canary: u32,
    hdr: u32,
    uid_epoch: u32,
    lu: u32,
    reg: u32,
    commit: u32,
    permit: u32,
    new_permit: u32,
    stake: u32,
    astake: u32,
    use_stake: u32,
    cons: u32,
    inc: u32,
    div: u32,
    mw_len: u32,
    wfb_len: u32,
    old_len: u32,
    ema_len: u32,
    col_start: u32,
    estate: u32,
    row_sum: u32,
    w_off: u32,
    b_off: u32,
    ob_off: u32,
    out_cons: u32,
    out_inc: u32,
    out_div: u32,
    out_trust: u32,
    out_em: u32,
    out_srv: u32,
    out_val: u32,
    out_blen: u32,
    w_cols: u32,
    w_vals: u32,
    mw_cols: u32,
    mw_vals: u32,
    cl_vals: u32,
    cl_keep: u32,
    wfb_cols: u32,
    wfb_vals: u32,
    cells: u32,
    w_row: u32,
    la_walk_w: u32,
    la_walk_b: u32,
    la_bond: u32,
    la_set: u32,
    b_cols: u32,
    b_row: u32,
    ob_row: u32,
    b_vals: u32,
    old_cols: u32,
    old_vals: u32,
    ema_cols: u32,
    ema_vals: u32,
    norm_vals: u32,
    scr_cols: u32,
    scr_vals: u32,
    out_bcols: u32,
    out_bvals: u32,
    a_count: u32,
    a_fill: u32,
    a_rank: u32,
    a_csum: u32,
    a_cmax: u32,
    a_fault: u32,
    alpha: u32,
    tao: u32,
    s_wide: u32,
    out_active: u32,
    out_stake: u32,
    out_sw: u32,
    out_fail: u32,
    a_srank: u32,
    a_prerank: u32,
    comb: u32,
    out_strust: u32,
    out_prune: u32,
    la_col: u32,
}

/// Matrix selection for the generic column kernels.
const MODE_YUMA3: u32 = 1;
const MODE_ORIGINAL: u32 = 2;
/// Which word buffer holds a matrix's entries.
const BUF_W: u32 = 0;
const BUF_B: u32 = 1;

/// What one kernel thread handles.
#[derive(Clone, Copy)]
enum Per {
    Uid,
    /// One per uid and block of `RANK_BLOCK` uids of the largest epoch.
    UidBlock,
    Epoch,
    Entry,
    Bond,
    OutBond,
}

/// Words per epoch header and per-epoch state (kernels/pack.wgsl).
const HDR_WORDS: usize = std::mem::size_of::<EpochHeader>() / 4;
const ES_WORDS: usize = 38;
/// Uids one `stake_rank` or `quantile_rank` invocation compares (`RANK_BLOCK` in
/// kernels/pack.wgsl).
const RANK_BLOCK: u64 = 2048;

/// Word counts of one chunk's buffers: (uw, ww, bw, acc).
fn buffer_words(e: u64, u: u64, nw: u64, nb: u64, nob: u64) -> [u64; 4] {
    [
        (HDR_WORDS + ES_WORDS + 1) as u64 * e + 57 * u + 3 * (u + e),
        16 * nw,
        6 * nb + 11 * nob,
        14 * u + 1,
    ]
}

/// Bump allocator of sections in one word buffer.
struct Sections(u32);

impl Sections {
    fn take(&mut self, words: usize) -> u32 {
        let at = self.0;
        self.0 += words as u32;
        at
    }
}

/// Lays out every section for a packed chunk; returns the params and the word counts.
fn layout(b: &PackedBatch) -> (Params, [usize; 4]) {
    let (e, u) = (b.headers.len(), b.total_uids());
    let (nw, nb, nob) = (b.w_cols.len(), b.b_cols.len(), b.bond_capacity());
    let mut p = Params {
        n_epochs: e as u32,
        n_uids: u as u32,
        n_entries: nw as u32,
        canary: 2,
        ..Params::default()
    };
    let mut s = Sections(0);
    p.hdr = s.take(HDR_WORDS * e);
    p.estate = s.take(ES_WORDS * e);
    p.row_sum = s.take(2 * u);
    p.uid_epoch = s.take(u);
    p.alpha = s.take(2 * u);
    p.tao = s.take(2 * u);
    p.s_wide = s.take(4 * u);
    p.lu = s.take(2 * u);
    p.reg = s.take(2 * u);
    p.commit = s.take(2 * u);
    p.permit = s.take(u);
    p.stake = s.take(2 * u);
    p.astake = s.take(2 * u);
    p.use_stake = s.take(2 * u);
    p.cons = s.take(2 * u);
    p.inc = s.take(2 * u);
    p.div = s.take(2 * u);
    p.mw_len = s.take(u);
    p.wfb_len = s.take(u);
    p.old_len = s.take(u);
    p.ema_len = s.take(u);
    p.col_start = s.take(u);
    p.comb = s.take(2 * u);
    p.w_off = s.take(u + e);
    p.b_off = s.take(u + e);
    p.ob_off = s.take(u + e);
    p.la_col = s.take(2 * u);
    // Outputs last and contiguous: one copy reads them back.
    p.out_cons = s.take(u);
    p.out_inc = s.take(u);
    p.out_div = s.take(u);
    p.out_trust = s.take(u);
    p.out_em = s.take(2 * u);
    p.out_srv = s.take(2 * u);
    p.out_val = s.take(2 * u);
    p.out_blen = s.take(u);
    p.out_active = s.take(u);
    p.out_stake = s.take(2 * u);
    p.out_sw = s.take(u);
    p.new_permit = s.take(u);
    p.out_fail = s.take(e);
    p.out_strust = s.take(u);
    p.out_prune = s.take(u);
    let uw = s.0 as usize;
    let mut s = Sections(0);
    p.w_cols = s.take(nw);
    p.w_vals = s.take(nw);
    p.mw_cols = s.take(nw);
    p.mw_vals = s.take(2 * nw);
    p.cl_vals = s.take(2 * nw);
    p.cl_keep = s.take(nw);
    p.wfb_cols = s.take(nw);
    p.wfb_vals = s.take(2 * nw);
    p.cells = s.take(4 * nw);
    p.w_row = s.take(nw);
    // Liquid alpha's per-entry words reuse sections dead by then: the median's cells
    // (read last by median_solve) and the clipped weights (read last by weights_for_bonds).
    p.la_walk_w = p.cells;
    p.la_walk_b = p.cells + 2 * nw as u32;
    p.la_bond = p.cl_vals;
    p.la_set = p.cl_keep;
    let ww = s.0 as usize;
    let mut s = Sections(0);
    p.b_cols = s.take(nb);
    p.b_vals = s.take(nb);
    p.b_row = s.take(nb);
    p.ob_row = s.take(nob);
    p.old_cols = s.take(nb);
    p.old_vals = s.take(2 * nb);
    p.ema_cols = s.take(nob);
    p.ema_vals = s.take(2 * nob);
    p.norm_vals = s.take(2 * nob);
    p.scr_cols = s.take(nob);
    p.scr_vals = s.take(2 * nob);
    p.out_bcols = s.take(nob);
    p.out_bvals = s.take(nob);
    let bw = s.0 as usize;
    let mut s = Sections(0);
    p.a_count = s.take(u);
    p.a_fill = s.take(u);
    p.a_rank = s.take(3 * u);
    p.a_csum = s.take(3 * u);
    p.a_cmax = s.take(2 * u);
    p.a_fault = s.take(1);
    p.a_srank = s.take(u);
    p.a_prerank = s.take(3 * u);
    let acc = s.0 as usize;
    debug_assert_eq!(
        [uw, ww, bw, acc].map(|x| x as u64),
        buffer_words(e as u64, u as u64, nw as u64, nb as u64, nob as u64)
    );
    (p, [uw, ww, bw, acc])
}

/// The uid row of every entry of a CSR laid out by `offsets`, for the per-entry kernels.
fn row_map(batch: &PackedBatch, offsets: &[u32]) -> Vec<u32> {
    let mut rows = vec![0u32; offsets.last().copied().unwrap_or(0) as usize];
    for h in &batch.headers {
        for i in 0..h.n as usize {
            let r = h.row_base as usize + i;
            rows[offsets[r] as usize..offsets[r + 1] as usize].fill(h.uid_base + i as u32);
        }
    }
    rows
}

/// Runs epochs as WGSL compute kernels on one wgpu adapter.
pub struct WgpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    layout: wgpu::BindGroupLayout,
    pipelines: Vec<(&'static str, wgpu::ComputePipeline)>,
    /// The first uncaptured device error or device loss, reported by the next batch.
    fault: Arc<Mutex<Option<String>>>,
}

fn device_err(reason: impl std::fmt::Display) -> BackendError {
    BackendError::Device {
        backend: NAME,
        reason: reason.to_string(),
    }
}

fn unavailable(reason: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable {
        backend: NAME,
        reason: reason.to_string(),
    }
}

/// Preference among adapters: hardware first, software (CPU) last.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn describe_info(info: &wgpu::AdapterInfo) -> String {
    let kind = if info.device_type == wgpu::DeviceType::Cpu {
        "software"
    } else {
        "hardware"
    };
    format!(
        "{} ({:?}, {:?}, {kind})",
        info.name, info.backend, info.device_type
    )
}

/// Every adapter wgpu finds here, described as `name (backend, type, hardware|software)`.
pub fn adapters() -> Vec<String> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| describe_info(&a.get_info()))
        .collect()
}

impl WgpuBackend {
    /// Opens the best adapter: hardware first; a software (CPU) adapter only when
    /// `allow_software`. Compiles every kernel.
    pub fn new(allow_software: bool) -> Result<Self, BackendError> {
        let mut found = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
        found.retain(|a| allow_software || a.get_info().device_type != wgpu::DeviceType::Cpu);
        found.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = found.into_iter().next().ok_or_else(|| {
            unavailable(if allow_software {
                "no wgpu adapter found"
            } else {
                "no hardware wgpu adapter found"
            })
        })?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("yuma"),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| unavailable(format!("{}: {e}", info.name)))?;

        let fault = Arc::new(Mutex::new(None));
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            warn!("wgpu error: {e}");
            f.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| e.to_string());
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            f.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(|| format!("device lost ({reason:?}): {msg}"));
        });

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let storage = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("yuma batch"),
            entries: &[
                storage(0),
                storage(1),
                storage(2),
                storage(3),
                wgpu::BindGroupLayoutEntry {
                    binding: 4,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("yuma"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let modules: Vec<(&str, wgpu::ShaderModule)> = STEPS
            .iter()
            .map(|&(step, src)| {
                let source = format!("{FIXED_WGSL}\n{PACK_WGSL}\n{src}");
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(step),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                (step, module)
            })
            .collect();
        let mut pipelines = Vec::new();
        for &(step, entry) in &KERNELS {
            let module = &modules
                .iter()
                .find(|(s, _)| *s == step)
                .expect("every step has a module")
                .1;
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            pipelines.push((entry, pipeline));
        }
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(unavailable(format!(
                "kernels do not compile on {}: {e}",
                info.name
            )));
        }
        debug!("wgpu backend on {}", describe_info(&info));
        Ok(Self {
            device,
            queue,
            info,
            limits,
            layout,
            pipelines,
            fault,
        })
    }

    /// Whether the adapter is a software (CPU) implementation such as lavapipe.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    fn pipeline(&self, entry: &str) -> &wgpu::ComputePipeline {
        &self
            .pipelines
            .iter()
            .find(|(e, _)| *e == entry)
            .expect("every kernel has a pipeline")
            .1
    }

    /// Whether a chunk of these totals, its largest epoch of `max_n` uids, fits the
    /// adapter's limits.
    fn fits(&self, e: u64, u: u64, nw: u64, nb: u64, nob: u64, max_n: u64) -> bool {
        let max_binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size);
        let ranks = u * max_n.div_ceil(RANK_BLOCK);
        let groups = u
            .max(e)
            .max(nw)
            .max(nob)
            .max(ranks)
            .div_ceil(WORKGROUP as u64);
        let per_dim = self.limits.max_compute_workgroups_per_dimension as u64;
        buffer_words(e, u, nw, nb, nob)
            .iter()
            .all(|&w| w * 4 <= max_binding && w < u32::MAX as u64)
            && groups <= per_dim * per_dim
    }

    /// Splits valid epochs into chunks that fit the adapter, in order.
    fn chunks(&self, epochs: &[&EpochInput]) -> Result<Vec<std::ops::Range<usize>>, BackendError> {
        let mut out = Vec::new();
        let (mut start, mut t, mut max_n) = (0, [0u64; 5], 0);
        for (i, x) in epochs.iter().enumerate() {
            let (nw, nb) = (x.weights.nnz() as u64, x.bonds.nnz() as u64);
            let add = [1, x.n as u64, nw, nb, nw + nb];
            let next: Vec<u64> = t.iter().zip(add).map(|(a, b)| a + b).collect();
            if self.fits(
                next[0],
                next[1],
                next[2],
                next[3],
                next[4],
                max_n.max(add[1]),
            ) {
                t.copy_from_slice(&next);
                max_n = max_n.max(add[1]);
                continue;
            }
            if !self.fits(add[0], add[1], add[2], add[3], add[4], add[1]) {
                return Err(device_err(format!(
                    "epoch of n = {} with {nw} weights and {nb} bonds exceeds the adapter's limits \
                     ({} bytes per storage binding)",
                    x.n,
                    self.limits
                        .max_storage_buffer_binding_size
                        .min(self.limits.max_buffer_size)
                )));
            }
            out.push(start..i);
            start = i;
            t = add;
            max_n = add[1];
        }
        if start < epochs.len() {
            out.push(start..epochs.len());
        }
        Ok(out)
    }

    /// Runs one chunk of valid epochs; an epoch whose stake sum overflows fails alone.
    fn run_chunk(&self, epochs: &[&EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        let inputs: Vec<EpochInput> = epochs.iter().map(|x| (*x).clone()).collect();
        let batch = pack(&inputs);
        let (p, sizes) = layout(&batch);
        let (e, u) = (batch.headers.len(), batch.total_uids());

        let mut uw = vec![0u32; sizes[0]];
        let mut ww = vec![0u32; sizes[1]];
        let mut bw = vec![0u32; sizes[2]];
        let put = |dst: &mut [u32], at: u32, src: &[u32]| {
            dst[at as usize..at as usize + src.len()].copy_from_slice(src)
        };
        let flat = |v: &[U64Words]| -> Vec<u32> { bytemuck::cast_slice(v).to_vec() };
        put(&mut uw, p.hdr, bytemuck::cast_slice(&batch.headers));
        let uid_epoch: Vec<u32> = batch
            .headers
            .iter()
            .enumerate()
            .flat_map(|(i, h)| std::iter::repeat_n(i as u32, h.n as usize))
            .collect();
        put(&mut uw, p.uid_epoch, &uid_epoch);
        put(&mut uw, p.lu, &flat(&batch.last_update));
        put(&mut uw, p.reg, &flat(&batch.block_at_registration));
        put(&mut uw, p.commit, &flat(&batch.commit_block));
        put(&mut uw, p.alpha, &flat(&batch.alpha_stake));
        put(&mut uw, p.tao, &flat(&batch.tao_stake));
        // The permits held before; stake_total forces the owner's on.
        put(&mut uw, p.permit, &batch.validator_permit);
        put(&mut uw, p.w_off, &batch.w_offsets);
        put(&mut uw, p.b_off, &batch.b_offsets);
        put(&mut uw, p.ob_off, &batch.ob_offsets);
        put(&mut ww, p.w_cols, &batch.w_cols);
        put(&mut ww, p.w_vals, &batch.w_vals);
        let w_row = row_map(&batch, &batch.w_offsets);
        put(&mut ww, p.w_row, &w_row);
        put(&mut bw, p.b_row, &row_map(&batch, &batch.b_offsets));
        put(&mut bw, p.ob_row, &row_map(&batch, &batch.ob_offsets));
        put(&mut bw, p.b_cols, &batch.b_cols);
        put(&mut bw, p.b_vals, &batch.b_vals);

        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let storage = |label: &str, data: &[u32]| {
            use wgpu::util::DeviceExt;
            // wgpu rejects empty bindings: pad to one word.
            let pad = [0u32];
            let data = if data.is_empty() { &pad[..] } else { data };
            self.device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents: bytemuck::cast_slice(data),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                })
        };
        let uw_buf = storage("uw", &uw);
        let ww_buf = storage("ww", &ww);
        let bw_buf = storage("bw", &bw);
        let acc_buf = storage("acc", &vec![0u32; sizes[3]]);
        let bind = |params: Params| {
            use wgpu::util::DeviceExt;
            let ubuf = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("params"),
                    contents: bytemuck::bytes_of(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("yuma batch"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: uw_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: ww_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: bw_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: acc_buf.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: ubuf.as_entire_binding(),
                    },
                ],
            })
        };
        let (nw, nb, nob) = (
            batch.w_cols.len(),
            batch.b_cols.len(),
            batch.bond_capacity(),
        );
        let mat = |(off, len, cols, vals, buf, count, row), mode| Params {
            m_off: off,
            m_len: len,
            m_cols: cols,
            m_vals: vals,
            m_buf: buf,
            m_count: count as u32,
            m_row: row,
            mode,
            ..p
        };
        let old = (
            p.b_off, p.old_len, p.old_cols, p.old_vals, BUF_B, nb, p.b_row,
        );
        let wfb = (
            p.w_off, p.wfb_len, p.wfb_cols, p.wfb_vals, BUF_W, nw, p.w_row,
        );
        let ema = (
            p.ob_off, p.ema_len, p.ema_cols, p.ema_vals, BUF_B, nob, p.ob_row,
        );
        let norm = (
            p.ob_off,
            p.ema_len,
            p.ema_cols,
            p.norm_vals,
            BUF_B,
            nob,
            p.ob_row,
        );
        let base = bind(p);
        let old_orig = bind(mat(old, MODE_ORIGINAL));
        let wfb_orig = bind(mat(wfb, MODE_ORIGINAL));
        let ema_orig = bind(mat(ema, MODE_ORIGINAL));
        let norm_y3 = bind(mat(norm, MODE_YUMA3));

        let mut enc = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("epoch"),
            });
        let groups_of = |x: usize| (x as u32).div_ceil(WORKGROUP);
        let per_dim = self.limits.max_compute_workgroups_per_dimension.max(1);
        let (uid_groups, epoch_groups, entry_groups) = (groups_of(u), groups_of(e), groups_of(nw));
        let max_n = batch.headers.iter().map(|h| h.n as u64).max().unwrap_or(0);
        let rank_groups = groups_of(u * max_n.div_ceil(RANK_BLOCK) as usize);
        // One pass per dispatch: each step reads what the one before wrote.
        let run =
            |enc: &mut wgpu::CommandEncoder, entry: &str, group: &wgpu::BindGroup, per: Per| {
                let groups = match per {
                    Per::Uid => uid_groups,
                    Per::UidBlock => rank_groups,
                    Per::Epoch => epoch_groups,
                    Per::Entry => entry_groups,
                    Per::Bond => groups_of(nb),
                    Per::OutBond => groups_of(nob),
                };
                if groups == 0 {
                    return;
                }
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(entry),
                    timestamp_writes: None,
                });
                pass.set_pipeline(self.pipeline(entry));
                pass.set_bind_group(0, group, &[]);
                // Wider than one dimension allows: spread over y (`flat_id` in pack.wgsl).
                let (x, y) = if groups <= per_dim {
                    (groups, 1)
                } else {
                    (per_dim, groups.div_ceil(per_dim))
                };
                pass.dispatch_workgroups(x, y, 1);
            };
        let csum = (p.a_csum as u64 * 4, 3 * u as u64 * 4);
        let clear_csum = |enc: &mut wgpu::CommandEncoder| {
            if csum.1 > 0 {
                enc.clear_buffer(&acc_buf, csum.0, Some(csum.1));
            }
        };
        run(&mut enc, "stake_total", &base, Per::Uid);
        run(&mut enc, "stake_sum", &base, Per::Epoch);
        run(&mut enc, "stake_normalize", &base, Per::Uid);
        run(&mut enc, "stake_rank", &base, Per::UidBlock);
        run(&mut enc, "stake_permits", &base, Per::Uid);
        run(&mut enc, "stake_active_sum", &base, Per::Epoch);
        run(&mut enc, "stake_active_normalize", &base, Per::Uid);
        run(&mut enc, "masked_weights", &base, Per::Uid);
        run(&mut enc, "row_normalize", &base, Per::Entry);
        run(&mut enc, "median_prepare", &base, Per::Epoch);
        run(&mut enc, "median_use_stake", &base, Per::Uid);
        run(&mut enc, "median_minority", &base, Per::Epoch);
        run(&mut enc, "median_count", &base, Per::Uid);
        run(&mut enc, "median_scan", &base, Per::Epoch);
        run(&mut enc, "median_scatter", &base, Per::Uid);
        run(&mut enc, "median_solve", &base, Per::Uid);
        run(&mut enc, "clip", &base, Per::Uid);
        run(&mut enc, "incentive_sum", &base, Per::Epoch);
        run(&mut enc, "incentive", &base, Per::Uid);
        run(&mut enc, "server_trust", &base, Per::Uid);
        run(&mut enc, "weights_for_bonds", &base, Per::Uid);
        run(&mut enc, "read_bonds", &base, Per::Uid);
        // Original Yuma: old bonds and stake-scaled weights column-normalised.
        run(&mut enc, "col_sum", &old_orig, Per::Uid);
        run(&mut enc, "col_divide", &old_orig, Per::Bond);
        clear_csum(&mut enc);
        run(&mut enc, "row_scale", &base, Per::Uid);
        run(&mut enc, "col_sum", &wfb_orig, Per::Uid);
        run(&mut enc, "col_divide", &wfb_orig, Per::Entry);
        clear_csum(&mut enc);
        // Liquid alpha v1: the consensus quartiles by rank (the stake ranks' counters are
        // dead since stake_permits), then one alpha per column.
        if u > 0 {
            enc.clear_buffer(&acc_buf, p.a_srank as u64 * 4, Some(u as u64 * 4));
        }
        run(&mut enc, "quantile_rank", &base, Per::UidBlock);
        run(&mut enc, "quantile", &base, Per::Uid);
        run(&mut enc, "liquid_alpha_v1_fit", &base, Per::Epoch);
        run(&mut enc, "liquid_alpha_v1", &base, Per::Uid);
        run(&mut enc, "liquid_walk", &base, Per::Uid);
        run(&mut enc, "liquid_alpha", &base, Per::Entry);
        run(&mut enc, "ema", &base, Per::Uid);
        run(&mut enc, "copy_norm", &base, Per::Uid);
        // Disjoint epochs: the Yuma3 copy and the original EMA share the accumulators.
        run(&mut enc, "col_sum", &norm_y3, Per::Uid);
        run(&mut enc, "col_sum", &ema_orig, Per::Uid);
        run(&mut enc, "col_divide", &norm_y3, Per::OutBond);
        run(&mut enc, "col_divide", &ema_orig, Per::OutBond);
        run(&mut enc, "dividends", &base, Per::Uid);
        run(&mut enc, "dividends_sum", &base, Per::Epoch);
        run(&mut enc, "dividends_normalize", &base, Per::Uid);
        run(&mut enc, "col_max_high", &ema_orig, Per::Uid);
        run(&mut enc, "col_max_low", &ema_orig, Per::Uid);
        run(&mut enc, "col_max_upscale", &ema_orig, Per::OutBond);
        run(&mut enc, "store_bonds", &base, Per::Uid);
        run(&mut enc, "emission_sum", &base, Per::Epoch);
        run(&mut enc, "emission", &base, Per::Uid);
        run(&mut enc, "pruning_max", &base, Per::Epoch);
        run(&mut enc, "pruning", &base, Per::Uid);

        let out_u = (
            p.out_cons as u64 * 4,
            (sizes[0] as u64 - p.out_cons as u64) * 4,
        );
        let out_b = (
            p.out_bcols as u64 * 4,
            (sizes[2] as u64 - p.out_bcols as u64) * 4,
        );
        let staging = |size: u64| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: size.max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let (read_u, read_b, read_f) = (staging(out_u.1), staging(out_b.1), staging(4));
        enc.copy_buffer_to_buffer(&acc_buf, p.a_fault as u64 * 4, &read_f, 0, 4);
        if out_u.1 > 0 {
            enc.copy_buffer_to_buffer(&uw_buf, out_u.0, &read_u, 0, out_u.1);
        }
        if out_b.1 > 0 {
            enc.copy_buffer_to_buffer(&bw_buf, out_b.0, &read_b, 0, out_b.1);
        }
        self.queue.submit([enc.finish()]);
        if let Some(err) = pollster::block_on(oom.pop()) {
            return Err(device_err(err));
        }
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(device_err(err));
        }
        let got_u = self.read(&read_u, out_u.1)?;
        let got_b = self.read(&read_b, out_b.1)?;
        if self.read(&read_f, 4)?.first() != Some(&0) {
            return Err(device_err(
                "a kernel ran out of the driver's loop budget per invocation (Mesa lavapipe caps it) \
                 and would have returned wrong results; split the epochs or use a hardware adapter",
            ));
        }
        if let Some(f) = self.fault.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(device_err(f));
        }

        let mut out = PackedOutput::zeroed(&batch);
        let sect = |base: u32, len: usize| -> &[u32] {
            let at = (base - p.out_cons) as usize;
            &got_u[at..at + len]
        };
        let pairs = |base: u32| -> Vec<U64Words> {
            sect(base, 2 * u)
                .chunks_exact(2)
                .map(|w| [w[0], w[1]])
                .collect()
        };
        out.consensus = sect(p.out_cons, u).to_vec();
        out.incentive = sect(p.out_inc, u).to_vec();
        out.dividend = sect(p.out_div, u).to_vec();
        out.validator_trust = sect(p.out_trust, u).to_vec();
        out.emission = pairs(p.out_em);
        out.server_emission = pairs(p.out_srv);
        out.validator_emission = pairs(p.out_val);
        out.bond_len = sect(p.out_blen, u).to_vec();
        let cap = batch.bond_capacity();
        out.bond_cols = got_b[..cap].to_vec();
        out.bond_vals = got_b[(p.out_bvals - p.out_bcols) as usize..][..cap].to_vec();
        out.active = sect(p.out_active, u).to_vec();
        out.stake = pairs(p.out_stake);
        out.stake_weight = sect(p.out_sw, u).to_vec();
        out.new_validator_permit = sect(p.new_permit, u).to_vec();
        out.trust = sect(p.out_strust, u).to_vec();
        out.pruning_score = sect(p.out_prune, u).to_vec();
        let fail = sect(p.out_fail, e);
        Ok(unpack(&batch, &out)
            .into_iter()
            .zip(fail)
            .map(|(out, &f)| match f {
                0 => Ok(out),
                f => Err(InputError::StakeOverflow {
                    uid: f as usize - 1,
                }),
            })
            .collect())
    }

    /// Maps a readback buffer and copies out its first `len` bytes as words.
    fn read(&self, buf: &wgpu::Buffer, len: u64) -> Result<Vec<u32>, BackendError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        buf.slice(..len).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(device_err)?;
        rx.recv().map_err(device_err)?.map_err(device_err)?;
        let view = buf.slice(..len).get_mapped_range().map_err(device_err)?;
        let words = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        buf.unmap();
        Ok(words)
    }
}

impl Backend for WgpuBackend {
    fn describe(&self) -> String {
        format!("wgpu on {}", describe_info(&self.info))
    }

    fn run_batch(&self, inputs: &[EpochInput]) -> Result<Vec<EpochResult>, BackendError> {
        // Validation on the host, every step on the GPU; invalid epochs fail alone.
        let mut results: Vec<Option<EpochResult>> = Vec::with_capacity(inputs.len());
        let mut valid = Vec::new();
        let mut slots = Vec::new();
        for (k, x) in inputs.iter().enumerate() {
            match crate::epoch::validate(x) {
                Ok(_) => {
                    valid.push(x);
                    slots.push(k);
                    results.push(None);
                }
                Err(err) => results.push(Some(Err(err))),
            }
        }
        let mut done = 0;
        for range in self.chunks(&valid)? {
            for out in self.run_chunk(&valid[range])? {
                results[slots[done]] = Some(out);
                done += 1;
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| device_err("an epoch got no result")))
            .collect()
    }
}
