// Steps 1-4 (src/epoch/stake.rs): activity, total stake, stake threshold, normalised
// stake, validator permits and active stake.
#include "batch.cuh"

// `get_tao_weight` widened to I64F64: `raw / u64::MAX` in U96F32.
YUMA_HD I64F64 tao_weight(u64 raw) {
    return I64F64::saturating_from_u96f32(U96F32::from_u64(raw).safe_div(U96F32::from_u64(YUMA_U64_MAX)));
}

// Per uid: activity, total stake (the `stake` output) and the thresholded stake.
YUMA_KERNEL(stake_total) {
    const EpochHeader& h = b.headers[e];
    u64 cb = join_u64(h.current_block), cutoff = join_u64(h.activity_cutoff);
    u64 threshold = join_u64(h.stake_threshold);
    I64F64 tw = tao_weight(join_u64(h.tao_weight));
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        u64 lu = load_u64(b.last_update, u);
        u64 until = lu + cutoff < lu ? YUMA_U64_MAX : lu + cutoff;
        b.active[u] = until >= cb;
        I64F64 total = I64F64::saturating_from_u64(load_u64(b.alpha_stake, u))
                           .saturating_add(I64F64::saturating_from_u64(load_u64(b.tao_stake, u)).saturating_mul(tw));
        store_u64(b.stake, u, total.saturating_to_u64());
        bool owner = (h.flags & FLAG_HAS_OWNER) && (h.flags & FLAG_OWNER_PERMIT) && h.owner_uid == i;
        b.filtered[u] = !owner && total.saturating_to_u64() < threshold ? 0 : total.bits;
    }
}

// The stake sum in uid order; an overflow (the chain's sum would wrap) fails the epoch.
YUMA_KERNEL(stake_sum) {
    if (tid != 0) return;
    const EpochHeader& h = b.headers[e];
    I64F64 sum = I64F64::ZERO();
    for (u32 i = 0; i < h.n; i++) {
        Option<I64F64> s = sum.checked_add(I64F64::of(b.filtered[h.uid_base + i]));
        if (!s.some) {
            b.status[e] = i + 1;
            return;
        }
        sum = s.value;
    }
    b.ep_wide[e] = sum.bits;
}

// Normalised stake, narrowed to I32F32 (the `stake_weight` output).
YUMA_KERNEL(stake_normalize) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I64F64 sum = I64F64::of(b.ep_wide[e]);
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        I64F64 f = I64F64::of(b.filtered[u]);
        if (sum.bits != 0) f = f.safe_div(sum);
        I32F32 s = I32F32::saturating_from_i64f64(f);
        b.stake_fx[u] = s.bits;
        b.stake_weight[u] = fixed_proportion_to_u16(s);
    }
}

// `is_topk_nonzero` by rank under the stable ascending sort (ties rank the lower uid
// first), the owner's forced permits, and the active stake before normalising.
YUMA_KERNEL(stake_permits) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    u32 n = h.n, k = h.max_allowed_validators;
    const i64* stake = b.stake_fx + h.uid_base;
    for (u32 i = tid; i < n; i += nt) {
        u32 u = h.uid_base + i;
        i64 x = stake[i];
        // Before spec 273 (`is_topk`) zero stakes take permits too.
        bool keep = x != 0 || (h.flags & FLAG_TOPK_ZERO);
        if (n >= k) {
            u32 rank = 0;
            for (u32 j = 0; j < n; j++) rank += stake[j] < x || (stake[j] == x && j < i);
            if (rank < n - k) keep = false;
        }
        bool owner = (h.flags & FLAG_HAS_OWNER) && (h.flags & FLAG_OWNER_PERMIT) && h.owner_uid == i;
        bool permit = b.validator_permit[u] != 0 || owner;
        b.new_validator_permit[u] = keep || owner;
        b.permit[u] = permit;
        b.active_stake[u] = b.active[u] && permit ? x : 0;
    }
}

// The active stake's wrapping sum.
YUMA_KERNEL(stake_active_sum) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::ZERO();
    for (u32 i = 0; i < h.n; i++) sum = sum.wrapping_add(I32F32::of(b.active_stake[h.uid_base + i]));
    b.ep_scalar[e * EP_SLOTS + EP_ACTIVE_SUM] = sum.bits;
}

// `inplace_normalize` of the active stake.
YUMA_KERNEL(stake_active_normalize) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::of(b.ep_scalar[e * EP_SLOTS + EP_ACTIVE_SUM]);
    if (sum.bits == 0) return;
    I32F32Divisor d = I32F32Divisor::of(sum);
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        b.active_stake[u] = d.safe_div(I32F32::of(b.active_stake[u])).bits;
    }
}
