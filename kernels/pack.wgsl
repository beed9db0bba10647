// The batch layout shared by every kernel (mirrors src/backend/pack.rs and the section
// table in src/backend/wgpu.rs). Three u32 word buffers hold the sections: `uw` per
// epoch and per uid, `ww` per weight entry, `bw` per bond and output-bond entry; `acc`
// holds the atomic accumulators. `P` gives each section's base word and, for the
// generic column kernels, which matrix and which epochs (MODE_*) they act on.

struct Params {
    n_epochs: u32,
    n_uids: u32,
    n_entries: u32,
    // Matrix selection for the generic column kernels: where its row offsets, row
    // lengths, columns and values live, and which buffer holds its entries (0 ww, 1 bw).
    m_off: u32,
    m_len: u32,
    m_cols: u32,
    m_vals: u32,
    m_buf: u32,
    mode: u32,
    m_count: u32,
    m_row: u32,
    canary: u32,
    // uw sections.
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
    // ww sections.
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
    // bw sections.
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
    // acc sections.
    a_count: u32,
    a_fill: u32,
    a_rank: u32,
    a_csum: u32,
    a_cmax: u32,
    a_fault: u32,
    // Stake step (kernels/stake.wgsl): inputs, the thresholded I64F64 stake, outputs
    // (uw) and the top-k ranks (acc).
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
    // Liquid alpha v1's alpha per column uid.
    la_col: u32,
}

@group(0) @binding(0) var<storage, read_write> uw: array<u32>;
@group(0) @binding(1) var<storage, read_write> ww: array<u32>;
@group(0) @binding(2) var<storage, read_write> bw: array<u32>;
@group(0) @binding(3) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(4) var<uniform> P: Params;

// Invocations per workgroup (WORKGROUP in src/backend/wgpu.rs).
const WG: u32 = 64u;

// Dispatches wider than the per-dimension limit spread over y: the flat thread index.
fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

const FLAG_YUMA3: u32 = 1u;
const FLAG_LIQUID_ALPHA: u32 = 2u;
const FLAG_COMMIT_REVEAL: u32 = 4u;
const FLAG_HAS_OWNER: u32 = 8u;
// Rule flags (src/epoch/rules.rs, FLAG_* in src/backend/pack.rs).
const FLAG_OWNER_PERMIT: u32 = 16u;
const FLAG_TOPK_ZERO: u32 = 32u;
const FLAG_BONDS_OUTDATED: u32 = 64u;
const FLAG_SIGMOID_STEEPNESS: u32 = 128u;
const FLAG_EXP_UNCLAMPED: u32 = 256u;
const FLAG_RANK_TRUST_PRUNING: u32 = 512u;
const FLAG_LIQUID_ALPHA_V1: u32 = 1024u;

// Words per header, and the header fields' word offsets (EpochHeader in pack.rs).
const HDR_WORDS: u32 = 26u;
const H_N: u32 = 0u;
const H_FLAGS: u32 = 1u;
const H_OWNER: u32 = 2u;
const H_KAPPA: u32 = 3u;
const H_BONDS_PENALTY: u32 = 4u;
const H_MAX_VALIDATORS: u32 = 5u;
const H_ALPHA_LOW: u32 = 6u;
const H_ALPHA_HIGH: u32 = 7u;
const H_STEEPNESS: u32 = 8u;
const H_TEMPO: u32 = 9u;
const H_UID_BASE: u32 = 10u;
const H_ROW_BASE: u32 = 11u;
const H_CURRENT_BLOCK: u32 = 12u;
const H_ACTIVITY_CUTOFF: u32 = 14u;
const H_LAST_MECH_STEP: u32 = 16u;
const H_BMA: u32 = 18u;
const H_STAKE_THRESHOLD: u32 = 20u;
const H_TAO_WEIGHT: u32 = 22u;
const H_EMISSION: u32 = 24u;

// Per-epoch state: word offsets of its sums and flags.
const ES_WORDS: u32 = 38u;
const ES_STAKE_SUM: u32 = 0u;
const ES_MINORITY: u32 = 2u;
const ES_K: u32 = 4u;
const ES_LIQUID: u32 = 5u;
const ES_POS_SUM: u32 = 6u;
const ES_RANK_SUM: u32 = 8u;
const ES_DIV_SUM: u32 = 10u;
const ES_EM_SUM: u32 = 12u;
const ES_ASTAKE_ZERO: u32 = 14u;
const ES_STAKE_WIDE: u32 = 16u;
const ES_ACTIVE_SUM: u32 = 20u;
const ES_PRUNE_MAX: u32 = 22u;
// Liquid alpha v1: whether the epoch runs it, the four sorted consensus values its
// quartiles interpolate between (lower quartile's pair, then the upper's), and the
// logistic's `a` and `b`.
const ES_LA1: u32 = 24u;
const ES_QUART: u32 = 26u;
const ES_LA1_A: u32 = 34u;
const ES_LA1_B: u32 = 36u;

// Uids one rank invocation compares: keeps each under lavapipe's loop budget
// (RANK_BLOCK in src/backend/wgpu.rs).
const RANK_BLOCK: u32 = 2048u;

// Which epochs a generic kernel touches.
const MODE_YUMA3: u32 = 1u;
const MODE_ORIGINAL: u32 = 2u;

fn hdr(e: u32, f: u32) -> u32 {
    return uw[P.hdr + e * HDR_WORDS + f];
}

fn hdr64(e: u32, f: u32) -> vec2<u32> {
    return vec2<u32>(hdr(e, f), hdr(e, f + 1u));
}

fn ld_u(base: u32, i: u32) -> vec2<u32> {
    return vec2<u32>(uw[base + 2u * i], uw[base + 2u * i + 1u]);
}

fn st_u(base: u32, i: u32, v: vec2<u32>) {
    uw[base + 2u * i] = v.x;
    uw[base + 2u * i + 1u] = v.y;
}

fn ld_w(base: u32, i: u32) -> vec2<u32> {
    return vec2<u32>(ww[base + 2u * i], ww[base + 2u * i + 1u]);
}

fn st_w(base: u32, i: u32, v: vec2<u32>) {
    ww[base + 2u * i] = v.x;
    ww[base + 2u * i + 1u] = v.y;
}

fn ld_b(base: u32, i: u32) -> vec2<u32> {
    return vec2<u32>(bw[base + 2u * i], bw[base + 2u * i + 1u]);
}

fn st_b(base: u32, i: u32, v: vec2<u32>) {
    bw[base + 2u * i] = v.x;
    bw[base + 2u * i + 1u] = v.y;
}

fn is_yuma3(e: u32) -> bool {
    return (hdr(e, H_FLAGS) & FLAG_YUMA3) != 0u;
}

// Whether epoch `e` is one the current generic dispatch acts on.
fn mode_selects(e: u32) -> bool {
    return select(P.mode == MODE_ORIGINAL, P.mode == MODE_YUMA3, is_yuma3(e));
}

// Adds a non-negative I32F32 into a 96-bit accumulator of three atomic words; the carry
// of each word is detected from the value it held, so the total is exact in any order.
fn acc_add96(base: u32, v: vec2<u32>) {
    let old0 = atomicAdd(&acc[base], v.x);
    let carry = select(0u, 1u, old0 + v.x < old0);
    let add1 = v.y + carry;
    let old1 = atomicAdd(&acc[base + 1u], add1);
    if old1 + add1 < old1 {
        atomicAdd(&acc[base + 2u], 1u);
    }
}

// A 96-bit accumulator read back as I32F32, saturating at MAX: equal to the saturating
// sum of its non-negative terms in any order.
fn acc_load96(base: u32) -> vec2<u32> {
    let v = vec2<u32>(atomicLoad(&acc[base]), atomicLoad(&acc[base + 1u]));
    if atomicLoad(&acc[base + 2u]) != 0u || is_neg(v) {
        return I32F32_MAX;
    }
    return v;
}

// The matrix selected by P: row range of global uid `u` in epoch `e`.
fn mat_row(u: u32, e: u32) -> vec2<u32> {
    let start = uw[P.m_off + u + e];
    return vec2<u32>(start, start + uw[P.m_len + u]);
}

fn mat_col(k: u32) -> u32 {
    return select(ww[P.m_cols + k], bw[P.m_cols + k], P.m_buf == 1u);
}

fn mat_val(k: u32) -> vec2<u32> {
    if P.m_buf == 1u {
        return ld_b(P.m_vals, k);
    }
    return ld_w(P.m_vals, k);
}

fn mat_set_val(k: u32, v: vec2<u32>) {
    if P.m_buf == 1u {
        st_b(P.m_vals, k, v);
    } else {
        st_w(P.m_vals, k, v);
    }
}

// Row (global uid) of entry k of the selected matrix.
fn mat_entry_row(k: u32) -> u32 {
    return select(ww[P.m_row + k], bw[P.m_row + k], P.m_buf == 1u);
}

// Mesa lavapipe (llvmpipe) caps the loop iterations of one invocation, all loops
// together (65535 in Mesa 22), then leaves every loop early without any error. A loop of
// P.canary (2) iterations, which no compiler can unroll, runs short exactly when that
// budget is spent: the batch is flagged and the host reports a device error instead of
// returning wrong results.
fn check_loop_budget() {
    var c = 0u;
    for (var t = 0u; t < P.canary; t++) {
        c++;
    }
    if c != P.canary {
        atomicOr(&acc[P.a_fault], 1u);
    }
}
