// The batch layout of src/backend/pack.rs as the kernels see it, the scratch the epoch
// steps share, and the few primitives (atomics, the kernel wrapper, an in-place sort)
// that differ between the GPU and the host test build.
//
// Every kernel runs with one thread block per epoch; threads stride over that epoch's
// uids, rows or columns. A kernel never reads what another thread of the same launch
// writes, except through the atomics below, whose results are order-independent; so the
// host driver may run blocks and threads one after another in any order.
#pragma once
#include "fixed.cuh"

// One epoch's scalars and where its rows live (pack.rs `EpochHeader`, 26 u32 words).
struct EpochHeader {
    u32 n, flags, owner_uid, kappa, bonds_penalty, max_allowed_validators;
    u32 alpha_low, alpha_high;
    i32 alpha_sigmoid_steepness;
    u32 tempo, uid_base, row_base;
    u32 current_block[2], activity_cutoff[2], last_mechanism_step_block[2];
    u32 bonds_moving_average[2], stake_threshold[2], tao_weight[2], emission[2];
};
static_assert(sizeof(EpochHeader) == 104, "EpochHeader mirrors pack.rs");

#define FLAG_YUMA3 1u
#define FLAG_LIQUID_ALPHA 2u
#define FLAG_COMMIT_REVEAL 4u
#define FLAG_HAS_OWNER 8u
// Rule flags (src/epoch/rules.rs, FLAG_* in src/backend/pack.rs).
#define FLAG_OWNER_PERMIT 16u
#define FLAG_TOPK_ZERO 32u
#define FLAG_BONDS_OUTDATED 64u
#define FLAG_SIGMOID_STEEPNESS 128u
#define FLAG_EXP_UNCLAMPED 256u
#define FLAG_RANK_TRUST_PRUNING 512u
#define FLAG_LIQUID_ALPHA_V1 1024u

// Every buffer of one batch; each field is one 8-byte device pointer, in this order in
// src/backend/cuda.rs `Buffers`. Sizes: E epochs, U uids, R = U + E rows, W weight
// entries, B bond entries, C output bond capacity.
struct Buffers {
    // Inputs (pack.rs `PackedBatch`).
    const EpochHeader* headers;      // E
    const u32* alpha_stake;          // 2U
    const u32* tao_stake;            // 2U
    const u32* last_update;          // 2U
    const u32* block_at_registration; // 2U
    const u32* commit_block;         // 2U
    const u32* validator_permit;     // U
    const u32* w_offsets;            // R
    const u32* w_cols;               // W
    const u32* w_vals;               // W
    const u32* b_offsets;            // R
    const u32* b_cols;               // B
    const u32* b_vals;               // B
    const u32* ob_offsets;           // R
    // Outputs (pack.rs `PackedOutput`), then the per-epoch status.
    u32* active;                     // U
    u32* stake;                      // 2U
    u32* stake_weight;               // U
    u32* consensus;                  // U
    u32* incentive;                  // U
    u32* dividend;                   // U
    u32* validator_trust;            // U
    u32* new_validator_permit;       // U
    u32* emission;                   // 2U
    u32* server_emission;            // 2U
    u32* validator_emission;         // 2U
    u32* bond_len;                   // U
    u32* bond_cols;                  // C
    u32* bond_vals;                  // C
    u32* trust;                      // U: before spec 365
    u32* pruning_score;              // U: before spec 365
    u32* status;                     // E: 0, or 1 + the uid where the stake sum overflows
    // Scratch, zero-initialised.
    i128* filtered;                  // U: thresholded I64F64 stake
    i128* ep_wide;                   // E: I64F64 stake sum
    i64* ep_scalar;                  // 10E: per-epoch I32F32 scalars (EP_*)
    i64* stake_fx;                   // U
    u32* permit;                     // U
    i64* active_stake;               // U
    i64* use_stake;                  // U
    i64* consensus_fx;               // U
    i64* incentive_fx;               // U
    i64* dividend_fx;                // U
    u32* col_count;                  // U
    u32* col_fill;                   // U
    u64* colsum_a;                   // 2U: exact column sums as (lo, hi) words
    u64* colsum_b;                   // 2U
    u64* colsum_c;                   // 2U
    u64* colmax;                     // U
    i64* wm_val;                     // W: masked, row-normalised weights
    u32* wm_keep;                    // W
    i64* clip_val;                   // W
    u32* clip_keep;                  // W
    i64* cell_val;                   // W: weights by column (consensus)
    u32* cell_row;                   // W
    u32* wfb_col;                    // C: weights for bonds
    i64* wfb_val;                    // C
    u32* wfb_len;                    // U
    u32* old_col;                    // C: bonds as read, sorted by column
    i64* old_val;                    // C
    u32* old_vis;                    // C: seen by the ascending merge-walk
    u32* old_len;                    // U
    u32* ema_col;                    // C
    i64* ema_val;                    // C
    u32* ema_len;                    // U
    i64* comb_fx;                    // U: normalised combined emission (pruning scores)
    i64* la_col;                     // U: liquid alpha v1's alpha per column uid
};

// Slots of `ep_scalar`.
#define EP_ACTIVE_SUM 0
#define EP_STAKE_SUM 1
#define EP_MINORITY 2
#define EP_STAKED_ROWS 3
#define EP_INCENTIVE_SUM 4
#define EP_LIQUID 5
#define EP_DIVIDEND_SUM 6
#define EP_EMISSION_SUM 7
#define EP_ACTIVE_NORM_SUM 8
#define EP_PRUNE_MAX 9
// Liquid alpha v1: whether it runs, the sorted consensus values its quartiles interpolate
// between (lower quartile's pair, then the upper's), and the logistic's `a` and `b`.
#define EP_LA1 10
#define EP_QUART 11
#define EP_LA1_A 15
#define EP_LA1_B 16
#define EP_SLOTS 17

YUMA_HD u64 load_u64(const u32* words, u32 i) { return (u64)words[2 * i] | ((u64)words[2 * i + 1] << 32); }
YUMA_HD u64 join_u64(const u32 w[2]) { return (u64)w[0] | ((u64)w[1] << 32); }
YUMA_HD void store_u64(u32* words, u32 i, u64 x) {
    words[2 * i] = (u32)x;
    words[2 * i + 1] = (u32)(x >> 32);
}

// Atomics: the hardware ones on the GPU; on the host the driver runs threads one at a
// time, so a plain read-modify-write is atomic.
YUMA_HD u32 atomic_add_u32(u32* p, u32 v) {
#ifdef __CUDA_ARCH__
    return atomicAdd(p, v);
#else
    u32 o = *p;
    *p = o + v;
    return o;
#endif
}

YUMA_HD u64 atomic_add_u64(u64* p, u64 v) {
#ifdef __CUDA_ARCH__
    return atomicAdd((unsigned long long*)p, (unsigned long long)v);
#else
    u64 o = *p;
    *p = o + v;
    return o;
#endif
}

YUMA_HD void atomic_max_u64(u64* p, u64 v) {
#ifdef __CUDA_ARCH__
    atomicMax((unsigned long long*)p, (unsigned long long)v);
#else
    if (*p < v) *p = v;
#endif
}

#ifdef YUMA_DEVICE
// Defines the kernel `name` and its body `name##_body(b, epoch, thread, threads)`, which
// the host driver calls directly.
#define YUMA_KERNEL(name)                                                                       \
    YUMA_HD void name##_body(const Buffers& b, u32 e, [[maybe_unused]] u32 tid, [[maybe_unused]] u32 nt);                        \
    extern "C" __global__ void name(Buffers b) { name##_body(b, blockIdx.x, threadIdx.x, blockDim.x); } \
    YUMA_HD void name##_body(const Buffers& b, u32 e, [[maybe_unused]] u32 tid, [[maybe_unused]] u32 nt)
#else
#define YUMA_KERNEL(name) YUMA_HD void name##_body(const Buffers& b, u32 e, [[maybe_unused]] u32 tid, [[maybe_unused]] u32 nt)
#endif

// Adds a non-negative I32F32 to an exact 128-bit column sum.
YUMA_HD void colsum_add(u64* sums, u32 u, I32F32 v) {
    u64 x = (u64)v.bits;
    u64 old = atomic_add_u64(&sums[2 * u], x);
    if (old + x < old) atomic_add_u64(&sums[2 * u + 1], 1);
}

// A column sum as the sequential saturating sum of its non-negative entries gives it:
// the exact sum clamped to I32F32::MAX (order cannot matter without negative terms).
YUMA_HD I32F32 colsum_get(const u64* sums, u32 u) {
    u64 lo = sums[2 * u], hi = sums[2 * u + 1];
    if (hi != 0 || lo > (u64)YUMA_I64_MAX) return I32F32::MAX();
    return I32F32::of((i64)lo);
}

// Heapsort of `keys[0..len)` ascending, carrying `vals` (and `extra` when non-null).
// In place and without recursion, for one thread's row or column.
YUMA_HD void heap_sift(u32* keys, i64* vals, u32* extra, u32 root, u32 len) {
    for (;;) {
        u32 child = 2 * root + 1;
        if (child >= len) return;
        if (child + 1 < len && keys[child + 1] > keys[child]) child++;
        if (keys[root] >= keys[child]) return;
        u32 tk = keys[root]; keys[root] = keys[child]; keys[child] = tk;
        i64 tv = vals[root]; vals[root] = vals[child]; vals[child] = tv;
        if (extra) { u32 te = extra[root]; extra[root] = extra[child]; extra[child] = te; }
        root = child;
    }
}

YUMA_HD void heap_sort(u32* keys, i64* vals, u32* extra, u32 len) {
    for (u32 i = len / 2; i-- > 0;) heap_sift(keys, vals, extra, i, len);
    for (u32 end = len; end-- > 1;) {
        u32 tk = keys[0]; keys[0] = keys[end]; keys[end] = tk;
        i64 tv = vals[0]; vals[0] = vals[end]; vals[end] = tv;
        if (extra) { u32 te = extra[0]; extra[0] = extra[end]; extra[end] = te; }
        heap_sift(keys, vals, extra, 0, end);
    }
}

// Heapsort of I32F32 `vals[0..len)` ascending, carrying `rows`.
YUMA_HD void heap_sift_vals(i64* vals, u32* rows, u32 root, u32 len) {
    for (;;) {
        u32 child = 2 * root + 1;
        if (child >= len) return;
        if (child + 1 < len && vals[child + 1] > vals[child]) child++;
        if (vals[root] >= vals[child]) return;
        i64 tv = vals[root]; vals[root] = vals[child]; vals[child] = tv;
        u32 tr = rows[root]; rows[root] = rows[child]; rows[child] = tr;
        root = child;
    }
}

YUMA_HD void heap_sort_vals(i64* vals, u32* rows, u32 len) {
    for (u32 i = len / 2; i-- > 0;) heap_sift_vals(vals, rows, i, len);
    for (u32 end = len; end-- > 1;) {
        i64 tv = vals[0]; vals[0] = vals[end]; vals[end] = tv;
        u32 tr = rows[0]; rows[0] = rows[end]; rows[end] = tr;
        heap_sift_vals(vals, rows, 0, end);
    }
}
