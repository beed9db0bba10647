// Steps 9-10 (src/epoch/bonds.rs): weights for bonds, the bonds EMA (Yuma3 with fixed or
// liquid alpha, and original Yuma) and dividends.
//
// Each row works in its own output bond range (capacity: weight row plus bond row), so
// rows never share scratch. Column sums accumulate exactly in 128 bits (every term is
// non-negative), which is what the sequential saturating sum gives once clamped.
#include "batch.cuh"

// Fixed EMA alpha `1 - bonds_moving_average / 1e6` (I64F64 quotient narrowed to I32F32).
YUMA_HD I32F32 fixed_alpha(u64 bonds_moving_average) {
    I64F64 bma = I64F64::saturating_from_u64(bonds_moving_average).safe_div(I64F64::saturating_from_u64(1000000));
    return I32F32::ONE().saturating_sub(I32F32::saturating_from_i64f64(bma));
}

// Liquid alpha parameters (`LiquidAlpha` in bonds.rs).
struct LiquidAlpha {
    I32F32 low, high, slope;
    bool clamped;

    static YUMA_HD LiquidAlpha of(const EpochHeader& h) {
        // 273-282: `-s (d - 1/2)`, exact as `(-s) (d - 1/2)`; from 283 `(s / -100) (d - 1/2)`.
        I32F32 slope = (h.flags & FLAG_SIGMOID_STEEPNESS)
                           ? I32F32::saturating_from_int(-(i64)h.alpha_sigmoid_steepness)
                           : I32F32::saturating_from_int(h.alpha_sigmoid_steepness)
                                 .saturating_div(I32F32::saturating_from_int(-100));
        return LiquidAlpha{u16_proportion_to_fixed(h.alpha_low), u16_proportion_to_fixed(h.alpha_high), slope,
                           (h.flags & FLAG_EXP_UNCLAMPED) == 0};
    }

    // `alpha_sigmoid(consensus, weight, bond)`.
    YUMA_HD I32F32 alpha(I32F32 consensus, I32F32 weight, I32F32 bond) const {
        I32F32 diff = weight.bits >= bond.bits ? weight.saturating_sub(consensus) : bond.saturating_sub(weight);
        diff = diff.min_of(I32F32::ONE()).max_of(I32F32::ZERO());
        I32F32 x = slope.saturating_mul(diff.saturating_sub(I32F32::HALF()));
        I32F32 ex;
        if (clamped) {
            ex = exp_safe(x);
        } else {
            // Before spec 365: `safe_exp`, unclamped, 0 where the series overflows.
            ex = safe_exp(x);
        }
        I32F32 sigmoid = I32F32::ONE().saturating_div(I32F32::ONE().saturating_add(ex));
        I32F32 a = low.saturating_add(sigmoid.saturating_mul(high.saturating_sub(low)));
        return a.min_of(high).max_of(low);
    }
};

// Per row: the bonds as read (registration filter; u16 proportions on Yuma3, raw u16
// otherwise), each flagged when the ascending merge-walk sees it, then sorted by column;
// and the weights for bonds (`interpolate_sparse`): ratio 0 or 1 keep one side in storage
// order, otherwise positive interpolations sorted by column.
YUMA_KERNEL(bonds_read) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    u64 lms = join_u64(h.last_mechanism_step_block), cb = join_u64(h.current_block);
    u64 last_tempo = lms == 0 ? (cb > h.tempo ? cb - h.tempo : 0) : (lms == YUMA_U64_MAX ? lms : lms + 1);
    bool proportion = (h.flags & FLAG_YUMA3) != 0;
    // Before spec 257 an entry is dropped when its row last updated at or before the
    // column's registration.
    bool outdated = (h.flags & FLAG_BONDS_OUTDATED) != 0;
    I32F32 ratio = I32F32::from_u16(h.bonds_penalty).safe_div(I32F32::from_u16(0xffff));
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, r = h.row_base + i, out = b.ob_offsets[r];
        u32 len = 0;
        i64 max_seen = -1;
        for (u32 k = b.b_offsets[r]; k < b.b_offsets[r + 1]; k++) {
            u32 c = b.b_cols[k];
            // A column uid >= n has no registration block: the chain reads it as 0.
            u64 registered = c < h.n ? load_u64(b.block_at_registration, h.uid_base + c) : 0;
            if (!((outdated ? load_u64(b.last_update, u) : last_tempo) > registered)) continue;
            b.old_col[out + len] = c;
            b.old_val[out + len] = (proportion ? u16_proportion_to_fixed(b.b_vals[k]) : I32F32::from_u16(b.b_vals[k])).bits;
            b.old_vis[out + len] = (i64)c > max_seen;
            if ((i64)c > max_seen) max_seen = c;
            len++;
        }
        heap_sort(b.old_col + out, b.old_val + out, b.old_vis + out, len);
        b.old_len[u] = len;

        len = 0;
        u32 start = b.w_offsets[r], end = b.w_offsets[r + 1];
        for (u32 k = start; k < end; k++) {
            I32F32 v;
            if (ratio.bits == 0) {
                if (!b.wm_keep[k]) continue;
                v = I32F32::of(b.wm_val[k]);
            } else if (ratio.bits == I32F32::ONE().bits) {
                if (!b.clip_keep[k]) continue;
                v = I32F32::of(b.clip_val[k]);
            } else {
                if (!b.wm_keep[k]) continue;
                I32F32 w = I32F32::of(b.wm_val[k]);
                I32F32 clip = b.clip_keep[k] ? I32F32::of(b.clip_val[k]) : I32F32::ZERO();
                v = w.saturating_add(ratio.saturating_mul(clip.saturating_sub(w)));
                if (v.bits <= 0) continue;
            }
            b.wfb_col[out + len] = b.w_cols[k];
            b.wfb_val[out + len] = v.bits;
            len++;
        }
        if (ratio.bits != 0 && ratio.bits != I32F32::ONE().bits) heap_sort(b.wfb_col + out, b.wfb_val + out, 0, len);
        b.wfb_len[u] = len;
    }
}

// Original Yuma, per row: column sums of the bonds read (columns < n), and the weights
// for bonds scaled by the row's active stake (`row_hadamard_sparse`) with their column sums.
YUMA_KERNEL(bonds_scale_sums) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (h.flags & FLAG_YUMA3) return;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, out = b.ob_offsets[h.row_base + i];
        for (u32 t = out; t < out + b.old_len[u]; t++)
            if (b.old_col[t] < h.n) colsum_add(b.colsum_a, h.uid_base + b.old_col[t], I32F32::of(b.old_val[t]));
        I32F32 s = I32F32::of(b.active_stake[u]);
        for (u32 t = out; t < out + b.wfb_len[u]; t++) {
            I32F32 v = I32F32::of(b.wfb_val[t]).saturating_mul(s);
            b.wfb_val[t] = v.bits;
            colsum_add(b.colsum_b, h.uid_base + b.wfb_col[t], v);
        }
    }
}

// Original Yuma, per row: `inplace_col_normalize_sparse` of both.
YUMA_KERNEL(bonds_scale_normalize) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (h.flags & FLAG_YUMA3) return;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, out = b.ob_offsets[h.row_base + i];
        for (u32 t = out; t < out + b.old_len[u]; t++) {
            if (b.old_col[t] >= h.n) continue;
            I32F32 s = colsum_get(b.colsum_a, h.uid_base + b.old_col[t]);
            if (s.bits != 0) b.old_val[t] = I32F32::of(b.old_val[t]).safe_div(s).bits;
        }
        for (u32 t = out; t < out + b.wfb_len[u]; t++) {
            I32F32 s = colsum_get(b.colsum_b, h.uid_base + b.wfb_col[t]);
            if (s.bits != 0) b.wfb_val[t] = I32F32::of(b.wfb_val[t]).safe_div(s).bits;
        }
    }
}

// Liquid alpha v1 (before spec 273, original Yuma with LiquidAlphaOn): whether epoch `h`
// asks for it (the consensus decides in `bonds_liquid_alpha_v1_fit` whether it runs).
YUMA_HD bool asks_liquid_alpha_v1(const EpochHeader& h) {
    return (h.flags & FLAG_LIQUID_ALPHA_V1) && (h.flags & FLAG_LIQUID_ALPHA) && !(h.flags & FLAG_YUMA3);
}

// `quantile`, per uid: its consensus's position in the sorted consensus (ties by uid);
// the uid at a position a quartile reads (`q / 4 * (n - 1)` and the one after) writes its
// consensus there.
YUMA_KERNEL(bonds_quantile) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (!asks_liquid_alpha_v1(h)) return;
    i64* ep = b.ep_scalar + e * EP_SLOTS;
    for (u32 i = tid; i < h.n; i += nt) {
        i64 x = b.consensus_fx[h.uid_base + i];
        u32 rank = 0;
        for (u32 j = 0; j < h.n; j++) {
            i64 y = b.consensus_fx[h.uid_base + j];
            rank += y < x || (y == x && j < i);
        }
        for (u32 slot = 0; slot < 2; slot++) {
            u32 low = (2 * slot + 1) * (h.n - 1) / 4;
            if (rank == low) ep[EP_QUART + 2 * slot] = x;
            if (rank == low + 1) ep[EP_QUART + 2 * slot + 1] = x;
        }
    }
}

// `quantile(consensus, q / 4)` for slot 0 (q = 1) or 1 (q = 3): the sorted values at the
// position's floor interpolated by its fraction, a whole number of quarters.
YUMA_HD I32F32 quartile(const i64* ep, u32 n, u32 slot) {
    u32 frac = (2 * slot + 1) * (n - 1) % 4;
    I32F32 lo = I32F32::of(ep[EP_QUART + 2 * slot]);
    if (frac == 0) return lo;
    I32F32 hi = I32F32::of(ep[EP_QUART + 2 * slot + 1]);
    return lo.saturating_add(hi.saturating_sub(lo).saturating_mul(I32F32::of((i64)frac << 30)));
}

// `ln(1 / alpha - 1)`, the logistic's log-odds at an alpha bound.
YUMA_HD I32F32 ln_odds(I32F32 alpha) {
    return safe_ln(I32F32::ONE().safe_div(alpha).saturating_sub(I32F32::ONE()));
}

// `liquid_alpha_v1`, fit (one thread per epoch): whether it runs (some consensus is
// non-zero and upstream's quartile guard passes), and the logistic's `a` and `b` through
// (lower quartile, alpha_low) and (upper quartile, alpha_high).
YUMA_KERNEL(bonds_liquid_alpha_v1_fit) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (!asks_liquid_alpha_v1(h)) return;
    bool any_consensus = false;
    for (u32 j = 0; j < h.n; j++) any_consensus |= b.consensus_fx[h.uid_base + j] != 0;
    if (!any_consensus) return;
    i64* ep = b.ep_scalar + e * EP_SLOTS;
    I32F32 high_q = quartile(ep, h.n, 1), low_q = quartile(ep, h.n, 0);
    if (!(high_q.bits > low_q.bits || high_q.bits != 0 || low_q.bits < 0)) return;
    I32F32 u16_max = I32F32::from_u16(0xffff);
    I32F32 alpha_low = I32F32::from_u16(h.alpha_low).safe_div(u16_max);
    I32F32 alpha_high = I32F32::from_u16(h.alpha_high).safe_div(u16_max);
    I32F32 a = I32F32::ZERO(), bb = I32F32::ZERO();
    if (high_q.bits > low_q.bits && alpha_low.bits != 0 && alpha_high.bits != 0) {
        a = ln_odds(alpha_high).saturating_sub(ln_odds(alpha_low)).safe_div(low_q.saturating_sub(high_q));
        bb = ln_odds(alpha_low).saturating_add(a.saturating_mul(low_q));
    }
    ep[EP_LA1] = 1;
    ep[EP_LA1_A] = a.bits;
    ep[EP_LA1_B] = bb.bits;
}

// `liquid_alpha_v1`, per column uid j: `1 / (1 + exp(b - a * consensus_j))` clamped to
// [alpha_low, alpha_high].
YUMA_KERNEL(bonds_liquid_alpha_v1) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    const i64* ep = b.ep_scalar + e * EP_SLOTS;
    if (!ep[EP_LA1]) return;
    I32F32 a = I32F32::of(ep[EP_LA1_A]), bb = I32F32::of(ep[EP_LA1_B]);
    I32F32 u16_max = I32F32::from_u16(0xffff);
    I32F32 alpha_low = I32F32::from_u16(h.alpha_low).safe_div(u16_max);
    I32F32 alpha_high = I32F32::from_u16(h.alpha_high).safe_div(u16_max);
    for (u32 j = tid; j < h.n; j += nt) {
        u32 u = h.uid_base + j;
        I32F32 ex = safe_exp(bb.saturating_sub(a.saturating_mul(I32F32::of(b.consensus_fx[u]))));
        I32F32 alpha = I32F32::ONE().safe_div(I32F32::ONE().saturating_add(ex));
        b.la_col[u] = alpha.min_of(alpha_high).max_of(alpha_low).bits;
    }
}

// `mat_ema_sparse` of one row: both rows' columns < n tagged (new before old), sorted,
// then each column's `alpha * new + (1 - alpha) * old`, positive results ascending. With
// liquid alpha v1 (`mat_ema_alpha_vec_sparse`, `col_alpha` non-null) each column its own
// alpha.
YUMA_HD u32 ema_fixed_row(const Buffers& b, u32 n, u32 out, u32 wfb_len, u32 old_len, I32F32 fixed,
                          const i64* col_alpha) {
    u32 m = 0;
    for (u32 t = out; t < out + wfb_len; t++) {
        I32F32 alpha = col_alpha ? I32F32::of(col_alpha[b.wfb_col[t]]) : fixed;
        b.ema_col[out + m] = b.wfb_col[t] * 2;
        b.ema_val[out + m] = alpha.saturating_mul(I32F32::of(b.wfb_val[t])).bits;
        m++;
    }
    for (u32 t = out; t < out + old_len; t++) {
        if (b.old_col[t] >= n) continue;
        I32F32 alpha = col_alpha ? I32F32::of(col_alpha[b.old_col[t]]) : fixed;
        b.ema_col[out + m] = b.old_col[t] * 2 + 1;
        b.ema_val[out + m] = I32F32::ONE().saturating_sub(alpha).saturating_mul(I32F32::of(b.old_val[t])).bits;
        m++;
    }
    heap_sort(b.ema_col + out, b.ema_val + out, 0, m);
    u32 w = 0;
    for (u32 t = 0; t < m;) {
        u32 c = b.ema_col[out + t] >> 1;
        I32F32 acc = I32F32::ZERO().saturating_add(I32F32::of(b.ema_val[out + t]));
        t++;
        if (t < m && (b.ema_col[out + t] >> 1) == c) {
            acc = acc.saturating_add(I32F32::of(b.ema_val[out + t]));
            t++;
        }
        if (acc.bits > 0) {
            b.ema_col[out + w] = c;
            b.ema_val[out + w] = acc.bits;
            w++;
        }
    }
    return w;
}

// `mat_ema_alpha_sparse` of one row: entries of the new row only, in its order; the alpha
// reads the weight and bond the ascending merge-walk sees, the EMA the true values.
YUMA_HD u32 ema_liquid_row(const Buffers& b, const EpochHeader& h, u32 out, u32 wfb_len, u32 old_len,
                           const LiquidAlpha& la) {
    u32 w = 0;
    i64 max_seen = -1;
    for (u32 t = out; t < out + wfb_len; t++) {
        u32 c = b.wfb_col[t];
        I32F32 wv = I32F32::of(b.wfb_val[t]);
        I32F32 walk_w = (i64)c > max_seen ? wv : I32F32::ZERO();
        if ((i64)c > max_seen) max_seen = c;
        // Binary search of the bond row, sorted by column.
        u32 lo = out, hi = out + old_len;
        while (lo < hi) {
            u32 mid = lo + (hi - lo) / 2;
            if (b.old_col[mid] < c) lo = mid + 1;
            else hi = mid;
        }
        bool set = lo < out + old_len && b.old_col[lo] == c;
        I32F32 bond = set ? I32F32::of(b.old_val[lo]) : I32F32::ZERO();
        I32F32 walk_bond = set && b.old_vis[lo] ? bond : I32F32::ZERO();
        I32F32 alpha = la.alpha(I32F32::of(b.consensus_fx[h.uid_base + c]), walk_w, walk_bond);
        I32F32 decayed = set ? I32F32::ONE().saturating_sub(alpha).saturating_mul(bond) : I32F32::ZERO();
        I32F32 inc = alpha.saturating_mul(wv).max_of(I32F32::ZERO());
        I32F32 v = decayed.saturating_add(inc).min_of(I32F32::ONE());
        if (v.bits > 0) {
            b.ema_col[out + w] = c;
            b.ema_val[out + w] = v.bits;
            w++;
        }
    }
    return w;
}

// Per row: the EMA (liquid on Yuma3 when on and some consensus is non-zero, else fixed
// alpha) and its column sums.
YUMA_KERNEL(bonds_ema) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    bool liquid = (h.flags & FLAG_YUMA3) && b.ep_scalar[e * EP_SLOTS + EP_LIQUID];
    I32F32 alpha = fixed_alpha(join_u64(h.bonds_moving_average));
    LiquidAlpha la = LiquidAlpha::of(h);
    const i64* col_alpha = b.ep_scalar[e * EP_SLOTS + EP_LA1] ? b.la_col + h.uid_base : nullptr;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, out = b.ob_offsets[h.row_base + i];
        u32 len = liquid ? ema_liquid_row(b, h, out, b.wfb_len[u], b.old_len[u], la)
                         : ema_fixed_row(b, h.n, out, b.wfb_len[u], b.old_len[u], alpha, col_alpha);
        b.ema_len[u] = len;
        for (u32 t = out; t < out + len; t++) colsum_add(b.colsum_c, h.uid_base + b.ema_col[t], I32F32::of(b.ema_val[t]));
    }
}

// Per row, dividends before normalising. Yuma3: `active_stake_i * sum_j norm_b_ij *
// incentive_j` over a column-normalised copy. Original: the EMA column-normalised in
// place, `sum_j b_ij * incentive_j`, and the column maxima for the upscale.
YUMA_KERNEL(bonds_dividends) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    bool yuma3 = (h.flags & FLAG_YUMA3) != 0;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, out = b.ob_offsets[h.row_base + i];
        I32F32 total = I32F32::ZERO();
        for (u32 t = out; t < out + b.ema_len[u]; t++) {
            u32 c = h.uid_base + b.ema_col[t];
            I32F32 v = I32F32::of(b.ema_val[t]);
            I32F32 s = colsum_get(b.colsum_c, c);
            if (s.bits != 0) v = v.safe_div(s);
            I32F32 inc = I32F32::of(b.incentive_fx[c]);
            if (yuma3) {
                total = total.wrapping_add(v.saturating_mul(inc));
            } else {
                b.ema_val[t] = v.bits;
                total = total.saturating_add(inc.saturating_mul(v));
                atomic_max_u64(&b.colmax[c], (u64)v.bits);
            }
        }
        if (yuma3) {
            Option<I32F32> d = total.checked_mul(I32F32::of(b.active_stake[u]));
            total = d.some ? d.value : I32F32::ZERO();
        }
        b.dividend_fx[u] = total.bits;
    }
}

// The dividends' wrapping sum.
YUMA_KERNEL(bonds_dividend_sum) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::ZERO();
    for (u32 i = 0; i < h.n; i++) sum = sum.wrapping_add(I32F32::of(b.dividend_fx[h.uid_base + i]));
    b.ep_scalar[e * EP_SLOTS + EP_DIVIDEND_SUM] = sum.bits;
}

// Per row: normalised dividends (the `dividend` output); original Yuma's column max upscale.
YUMA_KERNEL(bonds_finish) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::of(b.ep_scalar[e * EP_SLOTS + EP_DIVIDEND_SUM]);
    I32F32Divisor ds = I32F32Divisor::of(sum);
    bool yuma3 = (h.flags & FLAG_YUMA3) != 0;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i, out = b.ob_offsets[h.row_base + i];
        I32F32 d = I32F32::of(b.dividend_fx[u]);
        if (sum.bits != 0) d = ds.safe_div(d);
        b.dividend_fx[u] = d.bits;
        b.dividend[u] = fixed_proportion_to_u16(d);
        if (yuma3) continue;
        for (u32 t = out; t < out + b.ema_len[u]; t++) {
            I32F32 m = I32F32::of((i64)b.colmax[h.uid_base + b.ema_col[t]]);
            if (m.bits != 0) b.ema_val[t] = I32F32::of(b.ema_val[t]).safe_div(m).bits;
        }
    }
}
