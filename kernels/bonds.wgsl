// Steps 9-10 (src/epoch/bonds.rs): weights for bonds, bonds as read, the bonds EMA
// (Yuma3 fixed or liquid alpha, original Yuma), column normalisations, dividends and
// the stored bond rows. Row kernels run one thread per uid row; column sums and maxima
// go through atomics over non-negative values, where order cannot change the result.

// Heap sort by column of bw scratch records (scr_cols low 16 bits, scr_vals) in
// [base, base + len).
fn scr_key(k: u32) -> u32 {
    return bw[P.scr_cols + k] & 0xffffu;
}

fn scr_swap(a: u32, b: u32) {
    let c = bw[P.scr_cols + a];
    bw[P.scr_cols + a] = bw[P.scr_cols + b];
    bw[P.scr_cols + b] = c;
    let v = ld_b(P.scr_vals, a);
    st_b(P.scr_vals, a, ld_b(P.scr_vals, b));
    st_b(P.scr_vals, b, v);
}

fn scr_sort(base: u32, len: u32) {
    if len < 2u {
        return;
    }
    var start = len / 2u;
    var end = len;
    loop {
        if start > 0u {
            start--;
        } else {
            end--;
            if end == 0u {
                break;
            }
            scr_swap(base, base + end);
        }
        var root = start;
        loop {
            var child = 2u * root + 1u;
            if child >= end {
                break;
            }
            if child + 1u < end && scr_key(base + child) < scr_key(base + child + 1u) {
                child++;
            }
            if scr_key(base + root) < scr_key(base + child) {
                scr_swap(base + root, base + child);
                root = child;
            } else {
                break;
            }
        }
    }
}

// Heap sort of a weights-for-bonds row by column (columns are distinct within a row).
fn wfb_swap(a: u32, b: u32) {
    let c = ww[P.wfb_cols + a];
    ww[P.wfb_cols + a] = ww[P.wfb_cols + b];
    ww[P.wfb_cols + b] = c;
    let v = ld_w(P.wfb_vals, a);
    st_w(P.wfb_vals, a, ld_w(P.wfb_vals, b));
    st_w(P.wfb_vals, b, v);
}

fn wfb_sort(base: u32, len: u32) {
    if len < 2u {
        return;
    }
    var start = len / 2u;
    var end = len;
    loop {
        if start > 0u {
            start--;
        } else {
            end--;
            if end == 0u {
                break;
            }
            wfb_swap(base, base + end);
        }
        var root = start;
        loop {
            var child = 2u * root + 1u;
            if child >= end {
                break;
            }
            if child + 1u < end && ww[P.wfb_cols + base + child] < ww[P.wfb_cols + base + child + 1u] {
                child++;
            }
            if ww[P.wfb_cols + base + root] < ww[P.wfb_cols + base + child] {
                wfb_swap(base + root, base + child);
                root = child;
            } else {
                break;
            }
        }
    }
}

// interpolate_sparse(weights, clipped, bonds_penalty): ratio 0 and 1 pass one side on
// unchanged; otherwise w + ratio * (c - w), positive only, ascending.
fn weights_for_bonds_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let ratio = u16_proportion_to_fixed(hdr(e, H_BONDS_PENALTY));
    let start = uw[P.w_off + u + e];
    let len = uw[P.mw_len + u];
    var out = 0u;
    for (var k = start; k < start + len; k++) {
        let w = ld_w(P.mw_vals, k);
        let keep = ww[P.cl_keep + k] != 0u;
        var v = w;
        var emit = true;
        if all(ratio == I32F32_ONE) {
            v = ld_w(P.cl_vals, k);
            emit = keep;
        } else if !is_zero64(ratio) {
            let c = select(I32F32_ZERO, ld_w(P.cl_vals, k), keep);
            v = i32f32_saturating_add(w, i32f32_saturating_mul(ratio, i32f32_saturating_sub(c, w)));
            emit = lt_i64(I32F32_ZERO, v);
        }
        if emit {
            ww[P.wfb_cols + start + out] = ww[P.mw_cols + k];
            st_w(P.wfb_vals, start + out, v);
            out++;
        }
    }
    if !is_zero64(ratio) && !all(ratio == I32F32_ONE) {
        wfb_sort(start, out);
    }
    uw[P.wfb_len + u] = out;
}

@compute @workgroup_size(WG)
fn weights_for_bonds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    weights_for_bonds_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Bonds as read: every stored entry minus columns registered at or after the last
// tempo; u16 proportions (Yuma3) or raw u16 (original).
fn read_bonds_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let lms = hdr64(e, H_LAST_MECH_STEP);
    var last_tempo: vec2<u32>;
    if is_zero64(lms) {
        let cb = hdr64(e, H_CURRENT_BLOCK);
        let tempo = vec2<u32>(hdr(e, H_TEMPO), 0u);
        last_tempo = select(wrapping_sub64(cb, tempo), vec2<u32>(0u), lt_u64(cb, tempo));
    } else {
        let all_ones = lms.x == 0xffffffffu && lms.y == 0xffffffffu;
        last_tempo = select(wrapping_add64(lms, vec2<u32>(1u, 0u)), lms, all_ones);
    }
    let proportion = is_yuma3(e);
    // Before spec 257 an entry is dropped when its row last updated at or before the
    // column's registration.
    let outdated = (hdr(e, H_FLAGS) & FLAG_BONDS_OUTDATED) != 0u;
    let updated = ld_u(P.lu, u);
    let start = uw[P.b_off + u + e];
    let end = uw[P.b_off + u + e + 1u];
    var out = 0u;
    for (var k = start; k < end; k++) {
        let j = bw[P.b_cols + k];
        // A column uid >= n has no registration block: the chain reads it as 0.
        var registered = vec2<u32>(0u);
        if j < n {
            registered = ld_u(P.reg, ub + j);
        }
        if lt_u64(registered, select(last_tempo, updated, outdated)) {
            let b = bw[P.b_vals + k];
            bw[P.old_cols + start + out] = j;
            st_b(P.old_vals, start + out, select(i32f32_from_u16(b), u16_proportion_to_fixed(b), proportion));
            out++;
        }
    }
    uw[P.old_len + u] = out;
}

@compute @workgroup_size(WG)
fn read_bonds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    read_bonds_step(flat_id(gid, nwg));
    check_loop_budget();
}

// row_hadamard_sparse (original Yuma): weights for bonds scaled by the row's active stake.
fn row_scale_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if is_yuma3(e) {
        return;
    }
    let s = ld_u(P.astake, u);
    let start = uw[P.w_off + u + e];
    for (var k = start; k < start + uw[P.wfb_len + u]; k++) {
        st_w(P.wfb_vals, k, i32f32_saturating_mul(ld_w(P.wfb_vals, k), s));
    }
}

@compute @workgroup_size(WG)
fn row_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    row_scale_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Column sums of the selected matrix (columns < n) into 96-bit accumulators.
fn col_sum_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !mode_selects(e) {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let r = mat_row(u, e);
    for (var k = r.x; k < r.y; k++) {
        let c = mat_col(k);
        if c < n {
            acc_add96(P.a_csum + 3u * (ub + c), mat_val(k));
        }
    }
}

@compute @workgroup_size(WG)
fn col_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    col_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// inplace_col_normalize_sparse: divide by the column sum where it is non-zero (one
// thread per entry of the selected matrix).
fn col_divide_step(k: u32) {
    if k >= P.m_count {
        return;
    }
    let u = mat_entry_row(k);
    let e = uw[P.uid_epoch + u];
    if !mode_selects(e) || k >= mat_row(u, e).y {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let c = mat_col(k);
    if c < n {
        let s = acc_load96(P.a_csum + 3u * (ub + c));
        if !is_zero64(s) {
            mat_set_val(k, i32f32_safe_div(mat_val(k), s));
        }
    }
}

@compute @workgroup_size(WG)
fn col_divide(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    col_divide_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Column maxima, high words first (values are non-negative, so unsigned order holds).
fn col_max_high_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !mode_selects(e) {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let r = mat_row(u, e);
    for (var k = r.x; k < r.y; k++) {
        let c = mat_col(k);
        if c < n {
            atomicMax(&acc[P.a_cmax + 2u * (ub + c) + 1u], mat_val(k).y);
        }
    }
}

@compute @workgroup_size(WG)
fn col_max_high(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    col_max_high_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Column maxima, low words among the entries holding the maximal high word.
fn col_max_low_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !mode_selects(e) {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let r = mat_row(u, e);
    for (var k = r.x; k < r.y; k++) {
        let c = mat_col(k);
        if c < n {
            let v = mat_val(k);
            if v.y == atomicLoad(&acc[P.a_cmax + 2u * (ub + c) + 1u]) {
                atomicMax(&acc[P.a_cmax + 2u * (ub + c)], v.x);
            }
        }
    }
}

@compute @workgroup_size(WG)
fn col_max_low(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    col_max_low_step(flat_id(gid, nwg));
    check_loop_budget();
}

// inplace_col_max_upscale_sparse: divide by the column maximum where it is non-zero
// (one thread per entry).
fn col_max_upscale_step(k: u32) {
    if k >= P.m_count {
        return;
    }
    let u = mat_entry_row(k);
    let e = uw[P.uid_epoch + u];
    if !mode_selects(e) || k >= mat_row(u, e).y {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let c = mat_col(k);
    if c < n {
        let m = vec2<u32>(atomicLoad(&acc[P.a_cmax + 2u * (ub + c)]), atomicLoad(&acc[P.a_cmax + 2u * (ub + c) + 1u]));
        if !is_zero64(m) {
            mat_set_val(k, i32f32_safe_div(mat_val(k), m));
        }
    }
}

@compute @workgroup_size(WG)
fn col_max_upscale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    col_max_upscale_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Fixed EMA alpha: 1 - bonds_moving_average / 1e6 (bma <= 1e6 is validated, so the
// upstream I64F64 quotient narrowed to I32F32 equals the I32F32 quotient).
fn fixed_alpha(e: u32) -> vec2<u32> {
    let bma = hdr64(e, H_BMA);
    let q = i32f32_safe_div(vec2<u32>(0u, bma.x), i32f32_from_int(1000000));
    return i32f32_saturating_sub(I32F32_ONE, q);
}

// alpha_sigmoid(consensus, weight, bond) with the epoch's liquid alpha parameters.
fn alpha_sigmoid(e: u32, consensus: vec2<u32>, weight: vec2<u32>, bond: vec2<u32>) -> vec2<u32> {
    let low = u16_proportion_to_fixed(hdr(e, H_ALPHA_LOW));
    let high = u16_proportion_to_fixed(hdr(e, H_ALPHA_HIGH));
    let steep = bitcast<i32>(hdr(e, H_STEEPNESS));
    let flags = hdr(e, H_FLAGS);
    // 273-282: `-s (d - 1/2)`, exact as `(-s) (d - 1/2)`; from 283 `(s / -100) (d - 1/2)`.
    var slope = i32f32_saturating_div(i32f32_from_int(steep), i32f32_from_int(-100));
    if (flags & FLAG_SIGMOID_STEEPNESS) != 0u {
        slope = i32f32_from_int(-steep);
    }
    var diff: vec2<u32>;
    if !lt_i64(weight, bond) {
        diff = i32f32_saturating_sub(weight, consensus);
    } else {
        diff = i32f32_saturating_sub(bond, weight);
    }
    diff = i32f32_max_of(i32f32_min_of(diff, I32F32_ONE), I32F32_ZERO);
    let x = i32f32_saturating_mul(slope, i32f32_saturating_sub(diff, I32F32_HALF));
    var ex: vec2<u32>;
    if (flags & FLAG_EXP_UNCLAMPED) != 0u {
        // Before spec 365: `safe_exp`, unclamped, 0 where the series overflows.
        ex = safe_exp(x);
    } else {
        ex = exp_safe(x);
    }
    let sigmoid = i32f32_saturating_div(I32F32_ONE, i32f32_saturating_add(I32F32_ONE, ex));
    let alpha = i32f32_saturating_add(low, i32f32_saturating_mul(sigmoid, i32f32_saturating_sub(high, low)));
    return i32f32_max_of(i32f32_min_of(alpha, high), low);
}

// Binary search of column c among sorted scratch records [base, base + len).
fn scr_find(base: u32, len: u32, c: u32) -> i32 {
    var lo = 0u;
    var hi = len;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if scr_key(base + mid) < c {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    if lo < len && scr_key(base + lo) == c {
        return i32(base + lo);
    }
    return -1;
}

// Liquid alpha, first pass (one thread per row): for each entry of the new row, the
// weight and bond upstream's ascending merge-walk sees (an entry counts only when its uid
// exceeds every uid before it in its row), and the true bond the EMA decays.
fn liquid_walk_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if uw[P.estate + e * ES_WORDS + ES_LIQUID] == 0u {
        return;
    }
    let n = hdr(e, H_N);
    let ob = uw[P.ob_off + u + e];
    let bstart = uw[P.b_off + u + e];
    let blen = uw[P.old_len + u];
    // Old entries of columns < n into scratch, bit 31 marking walk-visible ones.
    var m = 0u;
    var max_seen = -1;
    for (var k = bstart; k < bstart + blen; k++) {
        let c = bw[P.old_cols + k];
        if c < n {
            let walk = i32(c) > max_seen;
            bw[P.scr_cols + ob + m] = c | select(0u, 0x80000000u, walk);
            st_b(P.scr_vals, ob + m, ld_b(P.old_vals, k));
            m++;
        }
        max_seen = max(max_seen, i32(c));
    }
    scr_sort(ob, m);
    let wstart = uw[P.w_off + u + e];
    let wlen = uw[P.wfb_len + u];
    max_seen = -1;
    for (var k = wstart; k < wstart + wlen; k++) {
        let c = ww[P.wfb_cols + k];
        let w = ld_w(P.wfb_vals, k);
        st_w(P.la_walk_w, k, select(I32F32_ZERO, w, i32(c) > max_seen));
        max_seen = max(max_seen, i32(c));
        let at = scr_find(ob, m, c);
        var bond = I32F32_ZERO;
        var walk_bond = I32F32_ZERO;
        if at >= 0 {
            bond = ld_b(P.scr_vals, u32(at));
            if (bw[P.scr_cols + u32(at)] & 0x80000000u) != 0u {
                walk_bond = bond;
            }
        }
        st_w(P.la_walk_b, k, walk_bond);
        st_w(P.la_bond, k, bond);
        ww[P.la_set + k] = select(0u, 1u, at >= 0);
    }
}

@compute @workgroup_size(WG)
fn liquid_walk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    liquid_walk_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Liquid alpha, second pass (one thread per weight entry): alpha_sigmoid of the entry's
// consensus, walk weight and walk bond, written over the walk weight.
fn liquid_alpha_step(k: u32) {
    if k >= P.n_entries {
        return;
    }
    let u = ww[P.w_row + k];
    let e = uw[P.uid_epoch + u];
    if uw[P.estate + e * ES_WORDS + ES_LIQUID] == 0u {
        return;
    }
    let start = uw[P.w_off + u + e];
    if k - start >= uw[P.wfb_len + u] {
        return;
    }
    let c = ww[P.wfb_cols + k];
    let cons = ld_u(P.cons, hdr(e, H_UID_BASE) + c);
    st_w(P.la_walk_w, k, alpha_sigmoid(e, cons, ld_w(P.la_walk_w, k), ld_w(P.la_walk_b, k)));
}

@compute @workgroup_size(WG)
fn liquid_alpha(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    liquid_alpha_step(flat_id(gid, nwg));
    check_loop_budget();
}

// mat_ema_alpha_sparse with liquid alpha: entries of the new row only, in its order.
fn ema_liquid_row(u: u32, e: u32) {
    let ob = uw[P.ob_off + u + e];
    let wstart = uw[P.w_off + u + e];
    let wlen = uw[P.wfb_len + u];
    var out = 0u;
    for (var k = wstart; k < wstart + wlen; k++) {
        let w = ld_w(P.wfb_vals, k);
        let alpha = ld_w(P.la_walk_w, k);
        var decayed = I32F32_ZERO;
        if ww[P.la_set + k] != 0u {
            decayed = i32f32_saturating_mul(i32f32_saturating_sub(I32F32_ONE, alpha), ld_w(P.la_bond, k));
        }
        let inc = i32f32_max_of(i32f32_saturating_mul(alpha, w), I32F32_ZERO);
        let v = i32f32_min_of(i32f32_saturating_add(decayed, inc), I32F32_ONE);
        if lt_i64(I32F32_ZERO, v) {
            bw[P.ema_cols + ob + out] = ww[P.wfb_cols + k];
            st_b(P.ema_vals, ob + out, v);
            out++;
        }
    }
    uw[P.ema_len + u] = out;
}

// Liquid alpha v1 (before spec 273, original Yuma with LiquidAlphaOn): whether epoch e
// asks for it (the consensus decides in `liquid_alpha_v1_fit` whether it runs).
fn asks_liquid_alpha_v1(e: u32) -> bool {
    let f = hdr(e, H_FLAGS);
    return (f & FLAG_LIQUID_ALPHA_V1) != 0u && (f & FLAG_LIQUID_ALPHA) != 0u && (f & FLAG_YUMA3) == 0u;
}

// `quantile`, first pass (one thread per uid and block of RANK_BLOCK uids): how many
// consensus values of the block sort before this uid's (ties by uid), summed into its
// position in the sorted consensus.
fn quantile_rank_step(t: u32) {
    if P.n_uids == 0u {
        return;
    }
    let u = t % P.n_uids;
    let block = t / P.n_uids;
    let e = uw[P.uid_epoch + u];
    if !asks_liquid_alpha_v1(e) {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let i = u - ub;
    if block >= (n + RANK_BLOCK - 1u) / RANK_BLOCK {
        return;
    }
    let start = block * RANK_BLOCK;
    let end = min(n, start + RANK_BLOCK);
    let x = ld_u(P.cons, u);
    var rank = 0u;
    for (var j = start; j < end; j++) {
        let y = ld_u(P.cons, ub + j);
        if lt_i64(y, x) || (all(y == x) && j < i) {
            rank++;
        }
    }
    atomicAdd(&acc[P.a_srank + u], rank);
}

@compute @workgroup_size(WG)
fn quantile_rank(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    quantile_rank_step(flat_id(gid, nwg));
    check_loop_budget();
}

// `quantile`, second pass (one thread per uid): the uid at a sorted position a quartile
// reads (`q / 4 * (n - 1)` and the one after) writes its consensus there.
fn quantile_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !asks_liquid_alpha_v1(e) {
        return;
    }
    let n = hdr(e, H_N);
    let r = atomicLoad(&acc[P.a_srank + u]);
    let c = ld_u(P.cons, u);
    for (var slot = 0u; slot < 2u; slot++) {
        let low = (2u * slot + 1u) * (n - 1u) / 4u;
        let at = P.estate + e * ES_WORDS + ES_QUART + 4u * slot;
        if r == low {
            uw[at] = c.x;
            uw[at + 1u] = c.y;
        } else if r == low + 1u {
            uw[at + 2u] = c.x;
            uw[at + 3u] = c.y;
        }
    }
}

@compute @workgroup_size(WG)
fn quantile(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    quantile_step(flat_id(gid, nwg));
    check_loop_budget();
}

// `quantile(consensus, q / 4)` for slot 0 (q = 1) or 1 (q = 3): the sorted values at the
// position's floor interpolated by its fraction, a whole number of quarters.
fn quartile(e: u32, slot: u32) -> vec2<u32> {
    let n = hdr(e, H_N);
    let frac = (2u * slot + 1u) * (n - 1u) % 4u;
    let at = P.estate + e * ES_WORDS + ES_QUART + 4u * slot;
    let lo = vec2<u32>(uw[at], uw[at + 1u]);
    if frac == 0u {
        return lo;
    }
    let hi = vec2<u32>(uw[at + 2u], uw[at + 3u]);
    let weight = vec2<u32>(frac << 30u, 0u);
    return i32f32_saturating_add(lo, i32f32_saturating_mul(i32f32_saturating_sub(hi, lo), weight));
}

// `ln(1 / alpha - 1)`, the logistic's log-odds at an alpha bound.
fn ln_odds(alpha: vec2<u32>) -> vec2<u32> {
    return safe_ln(i32f32_saturating_sub(i32f32_safe_div(I32F32_ONE, alpha), I32F32_ONE));
}

// `liquid_alpha_v1`, fit (one thread per epoch): whether it runs (some consensus is
// non-zero and upstream's quartile guard passes), and the logistic's `a` and `b` through
// (lower quartile, alpha_low) and (upper quartile, alpha_high).
fn liquid_alpha_v1_fit_step(e: u32) {
    if e >= P.n_epochs || !asks_liquid_alpha_v1(e) {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var any_cons = false;
    for (var i = 0u; i < n; i++) {
        any_cons = any_cons || !is_zero64(ld_u(P.cons, ub + i));
    }
    if !any_cons {
        return;
    }
    let high_q = quartile(e, 1u);
    let low_q = quartile(e, 0u);
    if !(lt_i64(low_q, high_q) || !is_zero64(high_q) || is_neg(low_q)) {
        return;
    }
    let u16_max = i32f32_from_u16(65535u);
    let alpha_low = i32f32_safe_div(i32f32_from_u16(hdr(e, H_ALPHA_LOW)), u16_max);
    let alpha_high = i32f32_safe_div(i32f32_from_u16(hdr(e, H_ALPHA_HIGH)), u16_max);
    var a = I32F32_ZERO;
    var b = I32F32_ZERO;
    if lt_i64(low_q, high_q) && !is_zero64(alpha_low) && !is_zero64(alpha_high) {
        a = i32f32_safe_div(
            i32f32_saturating_sub(ln_odds(alpha_high), ln_odds(alpha_low)),
            i32f32_saturating_sub(low_q, high_q),
        );
        b = i32f32_saturating_add(ln_odds(alpha_low), i32f32_saturating_mul(a, low_q));
    }
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_LA1] = 1u;
    uw[es + ES_LA1_A] = a.x;
    uw[es + ES_LA1_A + 1u] = a.y;
    uw[es + ES_LA1_B] = b.x;
    uw[es + ES_LA1_B + 1u] = b.y;
}

@compute @workgroup_size(WG)
fn liquid_alpha_v1_fit(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    liquid_alpha_v1_fit_step(flat_id(gid, nwg));
    check_loop_budget();
}

// `liquid_alpha_v1`, per column uid j: `1 / (1 + exp(b - a * consensus_j))` clamped to
// [alpha_low, alpha_high].
fn liquid_alpha_v1_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    if uw[es + ES_LA1] == 0u {
        return;
    }
    let a = vec2<u32>(uw[es + ES_LA1_A], uw[es + ES_LA1_A + 1u]);
    let b = vec2<u32>(uw[es + ES_LA1_B], uw[es + ES_LA1_B + 1u]);
    let u16_max = i32f32_from_u16(65535u);
    let alpha_low = i32f32_safe_div(i32f32_from_u16(hdr(e, H_ALPHA_LOW)), u16_max);
    let alpha_high = i32f32_safe_div(i32f32_from_u16(hdr(e, H_ALPHA_HIGH)), u16_max);
    let ex = safe_exp(i32f32_saturating_sub(b, i32f32_saturating_mul(a, ld_u(P.cons, u))));
    let alpha = i32f32_safe_div(I32F32_ONE, i32f32_saturating_add(I32F32_ONE, ex));
    st_u(P.la_col, u, i32f32_max_of(i32f32_min_of(alpha, alpha_high), alpha_low));
}

@compute @workgroup_size(WG)
fn liquid_alpha_v1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    liquid_alpha_v1_step(flat_id(gid, nwg));
    check_loop_budget();
}

// mat_ema_sparse: alpha * new + (1 - alpha) * old per column < n, ascending, positive
// only. Terms are non-negative, so summing a column's terms after a sort is exact.
fn ema_fixed_row(u: u32, e: u32, n: u32) {
    let fixed = fixed_alpha(e);
    // Liquid alpha v1 (`mat_ema_alpha_vec_sparse`): the column's own alpha instead.
    let by_column = uw[P.estate + e * ES_WORDS + ES_LA1] != 0u;
    let ub = hdr(e, H_UID_BASE);
    let ob = uw[P.ob_off + u + e];
    var m = 0u;
    let wstart = uw[P.w_off + u + e];
    for (var k = wstart; k < wstart + uw[P.wfb_len + u]; k++) {
        let c = ww[P.wfb_cols + k];
        if c < n {
            var alpha = fixed;
            if by_column {
                alpha = ld_u(P.la_col, ub + c);
            }
            bw[P.scr_cols + ob + m] = c;
            st_b(P.scr_vals, ob + m, i32f32_saturating_mul(alpha, ld_w(P.wfb_vals, k)));
            m++;
        }
    }
    let bstart = uw[P.b_off + u + e];
    for (var k = bstart; k < bstart + uw[P.old_len + u]; k++) {
        let c = bw[P.old_cols + k];
        if c < n {
            var alpha = fixed;
            if by_column {
                alpha = ld_u(P.la_col, ub + c);
            }
            let one_minus = i32f32_saturating_sub(I32F32_ONE, alpha);
            bw[P.scr_cols + ob + m] = c;
            st_b(P.scr_vals, ob + m, i32f32_saturating_mul(one_minus, ld_b(P.old_vals, k)));
            m++;
        }
    }
    scr_sort(ob, m);
    var out = 0u;
    var x = 0u;
    while x < m {
        let c = scr_key(ob + x);
        var v = I32F32_ZERO;
        while x < m && scr_key(ob + x) == c {
            v = i32f32_saturating_add(v, ld_b(P.scr_vals, ob + x));
            x++;
        }
        if lt_i64(I32F32_ZERO, v) {
            bw[P.ema_cols + ob + out] = c;
            st_b(P.ema_vals, ob + out, v);
            out++;
        }
    }
    uw[P.ema_len + u] = out;
}

// The bonds EMA of one row: liquid alpha where the epoch uses it, else fixed alpha.
fn ema_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    if uw[P.estate + e * ES_WORDS + ES_LIQUID] != 0u {
        ema_liquid_row(u, e);
    } else {
        ema_fixed_row(u, e, n);
    }
}

@compute @workgroup_size(WG)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    ema_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Yuma3: a copy of the EMA values to column-normalise for the dividends.
fn copy_norm_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let ob = uw[P.ob_off + u + e];
    for (var k = ob; k < ob + uw[P.ema_len + u]; k++) {
        st_b(P.norm_vals, k, ld_b(P.ema_vals, k));
    }
}

@compute @workgroup_size(WG)
fn copy_norm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    copy_norm_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Dividends before normalisation. Yuma3: active_stake_i * wrapping sum of
// norm_b_ij * incentive_j (checked product, 0 on overflow). Original: saturating sum of
// incentive_j * b_ij.
fn dividends_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let ob = uw[P.ob_off + u + e];
    let len = uw[P.ema_len + u];
    var d = I32F32_ZERO;
    if is_yuma3(e) {
        var total = I32F32_ZERO;
        for (var k = ob; k < ob + len; k++) {
            let c = bw[P.ema_cols + k];
            if c < n {
                total = i32f32_wrapping_add(total, i32f32_saturating_mul(ld_b(P.norm_vals, k), ld_u(P.inc, ub + c)));
            }
        }
        let p = i32f32_checked_mul(total, ld_u(P.astake, u));
        d = select(I32F32_ZERO, p.v, p.ok);
    } else {
        for (var k = ob; k < ob + len; k++) {
            let c = bw[P.ema_cols + k];
            var x = I32F32_ZERO;
            if c < n {
                x = ld_u(P.inc, ub + c);
            }
            d = i32f32_saturating_add(d, i32f32_saturating_mul(x, ld_b(P.ema_vals, k)));
        }
    }
    st_u(P.div, u, d);
}

@compute @workgroup_size(WG)
fn dividends(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dividends_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: the dividends' wrapping sum (inplace_normalize, first half).
fn dividends_sum_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I32F32_ZERO;
    for (var i = 0u; i < n; i++) {
        sum = i32f32_wrapping_add(sum, ld_u(P.div, ub + i));
    }
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_DIV_SUM] = sum.x;
    uw[es + ES_DIV_SUM + 1u] = sum.y;
}

@compute @workgroup_size(WG)
fn dividends_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dividends_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: the dividend divided by the sum unless it is zero.
fn dividends_normalize_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    let sum = vec2<u32>(uw[es + ES_DIV_SUM], uw[es + ES_DIV_SUM + 1u]);
    var d = ld_u(P.div, u);
    if !is_zero64(sum) {
        d = i32f32_safe_div(d, sum);
    }
    st_u(P.div, u, d);
    uw[P.out_div + u] = fixed_proportion_to_u16(d);
}

@compute @workgroup_size(WG)
fn dividends_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    dividends_normalize_step(flat_id(gid, nwg));
    check_loop_budget();
}

// The stored bond rows: the EMA row as u16 proportions for uids with a new permit,
// an empty row otherwise.
fn store_bonds_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let ob = uw[P.ob_off + u + e];
    var len = 0u;
    if uw[P.new_permit + u] != 0u {
        len = uw[P.ema_len + u];
        for (var k = ob; k < ob + len; k++) {
            bw[P.out_bcols + k] = bw[P.ema_cols + k];
            bw[P.out_bvals + k] = fixed_proportion_to_u16(ld_b(P.ema_vals, k));
        }
    }
    uw[P.out_blen + u] = len;
}

@compute @workgroup_size(WG)
fn store_bonds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    store_bonds_step(flat_id(gid, nwg));
    check_loop_budget();
}
