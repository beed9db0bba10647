// Steps 6-8 (src/epoch/consensus.rs): stake-weighted median consensus per column,
// clipping, validator trust and incentive.
//
// The masked weights of staked rows are transposed into per-column cells (counts and
// slots by atomics, so cell order within a column is arbitrary); each column is then
// sorted by score. Everything summed per column is a saturating sum of non-negative
// terms, which equals the exact sum clamped and so cannot depend on order.
#include "batch.cuh"

// Re-normalises the positive active stakes (`use_stake`) and derives the median's
// `stake_sum`, `minority` and number of staked rows, in uid order.
YUMA_KERNEL(consensus_use_stake) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::ZERO();
    for (u32 i = 0; i < h.n; i++) {
        I32F32 a = I32F32::of(b.active_stake[h.uid_base + i]);
        if (a.bits > 0) sum = sum.wrapping_add(a);
    }
    I32F32Divisor d = I32F32Divisor::of(sum);
    I32F32 stake_sum = I32F32::ZERO();
    i64 rows = 0;
    for (u32 i = 0; i < h.n; i++) {
        u32 u = h.uid_base + i;
        I32F32 a = I32F32::of(b.active_stake[u]);
        I32F32 s = I32F32::ZERO();
        if (a.bits > 0) {
            s = sum.bits != 0 ? d.safe_div(a) : a;
            stake_sum = stake_sum.wrapping_add(s);
            rows++;
        }
        b.use_stake[u] = s.bits;
    }
    I32F32 kappa = I32F32::from_u16(h.kappa).safe_div(I32F32::from_u16(0xffff));
    i64* ep = b.ep_scalar + e * EP_SLOTS;
    ep[EP_STAKE_SUM] = stake_sum.bits;
    ep[EP_MINORITY] = stake_sum.saturating_sub(kappa).bits;
    ep[EP_STAKED_ROWS] = rows;
}

// Counts the kept entries of staked rows per column.
YUMA_KERNEL(consensus_count) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    for (u32 i = tid; i < h.n; i += nt) {
        if (b.active_stake[h.uid_base + i] <= 0) continue;
        for (u32 k = b.w_offsets[h.row_base + i]; k < b.w_offsets[h.row_base + i + 1]; k++)
            if (b.wm_keep[k]) atomic_add_u32(&b.col_count[h.uid_base + b.w_cols[k]], 1);
    }
}

// Column starts within the epoch's own range of entry slots.
YUMA_KERNEL(consensus_offsets) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    u32 at = b.w_offsets[h.row_base];
    for (u32 j = 0; j < h.n; j++) {
        b.col_fill[h.uid_base + j] = at;
        at += b.col_count[h.uid_base + j];
    }
}

// Scatters the kept entries of staked rows into their column's cells; afterwards
// `col_fill` holds each column's end.
YUMA_KERNEL(consensus_fill) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    for (u32 i = tid; i < h.n; i += nt) {
        if (b.active_stake[h.uid_base + i] <= 0) continue;
        for (u32 k = b.w_offsets[h.row_base + i]; k < b.w_offsets[h.row_base + i + 1]; k++) {
            if (!b.wm_keep[k]) continue;
            u32 slot = atomic_add_u32(&b.col_fill[h.uid_base + b.w_cols[k]], 1);
            b.cell_val[slot] = b.wm_val[k];
            b.cell_row[slot] = i;
        }
    }
}

// `weighted_median_col_sparse` for one column whose cells are sorted by score: the
// smallest score whose cumulative stake exceeds `minority`, rows without an entry
// scoring 0; the largest score when none does.
YUMA_HD I32F32 column_median(const i64* vals, const u32* rows, u32 len, const i64* use_stake, i64 staked_rows,
                             I32F32 stake_sum, I32F32 minority) {
    u32 first_pos = 0;
    while (first_pos < len && vals[first_pos] <= 0) first_pos++;
    I32F32 pos_stake = I32F32::ZERO();
    for (u32 t = first_pos; t < len; t++) pos_stake = pos_stake.saturating_add(I32F32::of(use_stake[rows[t]]));
    I32F32 cum = stake_sum.saturating_sub(pos_stake);
    i64 zero_rows = staked_rows - (i64)(len - first_pos);
    if (zero_rows > 0 && cum.bits > minority.bits) return I32F32::ZERO();
    u32 t = first_pos;
    while (t < len) {
        i64 v = vals[t];
        while (t < len && vals[t] == v) {
            cum = cum.saturating_add(I32F32::of(use_stake[rows[t]]));
            t++;
        }
        if (cum.bits > minority.bits) return I32F32::of(v);
    }
    return len > first_pos ? I32F32::of(vals[len - 1]) : I32F32::ZERO();
}

// Per column: sorts its cells and takes the median (the `consensus` output).
YUMA_KERNEL(consensus_median) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    const i64* ep = b.ep_scalar + e * EP_SLOTS;
    for (u32 j = tid; j < h.n; j += nt) {
        u32 u = h.uid_base + j;
        u32 len = b.col_count[u], start = b.col_fill[u] - len;
        heap_sort_vals(b.cell_val + start, b.cell_row + start, len);
        I32F32 m = ep[EP_STAKED_ROWS] == 0
                       ? I32F32::ZERO()
                       : column_median(b.cell_val + start, b.cell_row + start, len, b.use_stake + h.uid_base,
                                       ep[EP_STAKED_ROWS], I32F32::of(ep[EP_STAKE_SUM]), I32F32::of(ep[EP_MINORITY]));
        b.consensus_fx[u] = m.bits;
        b.consensus[u] = fixed_proportion_to_u16(m);
    }
}

// `col_clip_sparse` of one entry: above the consensus it takes it, or vanishes when the
// consensus is not positive. Returns whether the entry stays.
YUMA_HD bool clip_entry(I32F32 v, I32F32 th, I32F32* out) {
    if (th.bits < v.bits) {
        *out = th;
        return th.bits > 0;
    }
    *out = v;
    return true;
}

// Per row: clipped weights and their wrapping row sum (the `validator_trust` output).
YUMA_KERNEL(consensus_clip) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    for (u32 i = tid; i < h.n; i += nt) {
        I32F32 trust = I32F32::ZERO();
        for (u32 k = b.w_offsets[h.row_base + i]; k < b.w_offsets[h.row_base + i + 1]; k++) {
            I32F32 c = I32F32::ZERO();
            bool keep = b.wm_keep[k] && clip_entry(I32F32::of(b.wm_val[k]), I32F32::of(b.consensus_fx[h.uid_base + b.w_cols[k]]), &c);
            b.clip_keep[k] = keep;
            b.clip_val[k] = keep ? c.bits : 0;
            if (keep) trust = trust.wrapping_add(c);
        }
        b.validator_trust[h.uid_base + i] = fixed_proportion_to_u16(trust);
    }
}

// Per column: `rank_j = sum_i clipped_ij * active_stake_i` over the column's cells (rows
// without stake add zero products); before spec 365 also trust, the clipped rank over the
// unclipped one (`vecdiv`).
YUMA_KERNEL(consensus_rank) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    bool trust = (h.flags & FLAG_RANK_TRUST_PRUNING) != 0;
    for (u32 j = tid; j < h.n; j += nt) {
        u32 u = h.uid_base + j;
        u32 len = b.col_count[u], start = b.col_fill[u] - len;
        I32F32 th = I32F32::of(b.consensus_fx[u]);
        I32F32 rank = I32F32::ZERO(), prerank = I32F32::ZERO();
        for (u32 t = start; t < start + len; t++) {
            I32F32 s = I32F32::of(b.active_stake[h.uid_base + b.cell_row[t]]);
            if (trust) prerank = prerank.saturating_add(s.saturating_mul(I32F32::of(b.cell_val[t])));
            I32F32 c = I32F32::ZERO();
            if (!clip_entry(I32F32::of(b.cell_val[t]), th, &c)) continue;
            rank = rank.saturating_add(s.saturating_mul(c));
        }
        b.incentive_fx[u] = rank.bits;
        if (trust) b.trust[u] = fixed_proportion_to_u16(rank.safe_div(prerank));
    }
}

// The ranks' wrapping sum, and whether liquid alpha applies (some consensus non-zero).
YUMA_KERNEL(consensus_rank_sum) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::ZERO();
    i64 any_consensus = 0;
    for (u32 j = 0; j < h.n; j++) {
        sum = sum.wrapping_add(I32F32::of(b.incentive_fx[h.uid_base + j]));
        any_consensus |= b.consensus_fx[h.uid_base + j] != 0;
    }
    i64* ep = b.ep_scalar + e * EP_SLOTS;
    ep[EP_INCENTIVE_SUM] = sum.bits;
    ep[EP_LIQUID] = (h.flags & FLAG_LIQUID_ALPHA) && any_consensus;
}

// `inplace_normalize` of the ranks (the `incentive` output).
YUMA_KERNEL(consensus_incentive) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::of(b.ep_scalar[e * EP_SLOTS + EP_INCENTIVE_SUM]);
    I32F32Divisor d = I32F32Divisor::of(sum);
    for (u32 j = tid; j < h.n; j += nt) {
        u32 u = h.uid_base + j;
        I32F32 x = I32F32::of(b.incentive_fx[u]);
        if (sum.bits != 0) x = d.safe_div(x);
        b.incentive_fx[u] = x.bits;
        b.incentive[u] = fixed_proportion_to_u16(x);
    }
}
