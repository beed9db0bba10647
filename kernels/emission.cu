// Steps 11-12 (src/epoch/emission.rs): server, validator and combined emission in rao,
// and the stored bond rows.
#include "batch.cuh"

// The wrapping sums of `incentive + dividend` and of the active stake.
YUMA_KERNEL(emission_sum) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    I32F32 sum = I32F32::ZERO(), active = I32F32::ZERO();
    for (u32 i = 0; i < h.n; i++) {
        u32 u = h.uid_base + i;
        sum = sum.wrapping_add(I32F32::of(b.incentive_fx[u]).saturating_add(I32F32::of(b.dividend_fx[u])));
        active = active.wrapping_add(I32F32::of(b.active_stake[u]));
    }
    i64* ep = b.ep_scalar + e * EP_SLOTS;
    ep[EP_EMISSION_SUM] = sum.bits;
    ep[EP_ACTIVE_NORM_SUM] = active.bits;
}

// A proportion of `rao` in I96F32, truncated to u64.
YUMA_HD u64 to_rao(I32F32 x, I96F32 rao) { return I96F32::from_i32f32(x).saturating_mul(rao).saturating_to_u64(); }

// Per uid: the three emissions (validators fall back to the active stake, or the stake,
// when incentive and dividend are all zero) and the stored bond row (new permits only).
YUMA_KERNEL(emission_split) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    const i64* ep = b.ep_scalar + e * EP_SLOTS;
    I32F32 sum = I32F32::of(ep[EP_EMISSION_SUM]);
    I32F32Divisor ds = I32F32Divisor::of(sum);
    bool active_zero = ep[EP_ACTIVE_NORM_SUM] == 0;
    I96F32 rao = I96F32::from_u64(join_u64(h.emission));
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        I32F32 inc = I32F32::of(b.incentive_fx[u]), div = I32F32::of(b.dividend_fx[u]);
        I32F32 server = inc, validator = div, combined = inc.saturating_add(div);
        if (sum.bits != 0) {
            server = ds.safe_div(server);
            validator = ds.safe_div(validator);
            combined = ds.safe_div(combined);
        } else {
            validator = combined = I32F32::of(active_zero ? b.stake_fx[u] : b.active_stake[u]);
        }
        b.comb_fx[u] = combined.bits;
        store_u64(b.emission, u, to_rao(combined, rao));
        store_u64(b.server_emission, u, to_rao(server, rao));
        store_u64(b.validator_emission, u, to_rao(validator, rao));

        u32 out = b.ob_offsets[h.row_base + i];
        u32 len = b.new_validator_permit[u] ? b.ema_len[u] : 0;
        for (u32 t = out; t < out + len; t++) {
            b.bond_cols[t] = b.ema_col[t];
            b.bond_vals[t] = fixed_proportion_to_u16(I32F32::of(b.ema_val[t]));
        }
        b.bond_len[u] = len;
    }
}

// Before spec 365: the largest normalised combined emission.
YUMA_KERNEL(emission_prune_max) {
    if (tid != 0 || b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (!(h.flags & FLAG_RANK_TRUST_PRUNING)) return;
    I32F32 m = I32F32::MIN();
    for (u32 i = 0; i < h.n; i++) m = m.max_of(I32F32::of(b.comb_fx[h.uid_base + i]));
    b.ep_scalar[e * EP_SLOTS + EP_PRUNE_MAX] = m.bits;
}

// Before spec 365, per uid: `vec_max_upscale_to_u16` of the normalised combined emission
// (pruning scores): scaled so the maximum reads 65535, rounded.
YUMA_KERNEL(emission_prune) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    if (!(h.flags & FLAG_RANK_TRUST_PRUNING)) return;
    I32F32 m = I32F32::of(b.ep_scalar[e * EP_SLOTS + EP_PRUNE_MAX]);
    I32F32 u16_max = I32F32::from_u16(0xffff);
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        I32F32 x = I32F32::of(b.comb_fx[u]);
        u32 score;
        if (m.bits == 0) {
            score = fixed_proportion_to_u16(x);
        } else if (m.bits > I32F32::from_u16(32768).bits) {
            score = x.saturating_mul(u16_max.safe_div(m)).round().saturating_to_u16();
        } else {
            score = x.saturating_mul(u16_max).safe_div(m).round().saturating_to_u16();
        }
        b.pruning_score[u] = score;
    }
}
