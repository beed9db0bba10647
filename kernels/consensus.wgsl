// Steps 6-8 (src/epoch/consensus.rs): stake-weighted median per column, clipping,
// validator trust and incentive.
//
// The median transposes the staked rows' entries into per-column cell lists (count,
// scan, scatter; scatter order is arbitrary), heap-sorts each column by score and walks
// it. Cumulative stakes are sums of normalised, non-negative stakes (at most 1), so
// they are exact whatever the order of equal scores.

// Per epoch: the wrapping sum and count of positive active stakes. Per-epoch kernels
// only sum; divisions run one thread per uid.
fn median_prepare_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I32F32_ZERO;
    var k = 0u;
    for (var i = 0u; i < n; i++) {
        let s = ld_u(P.astake, ub + i);
        if lt_i64(I32F32_ZERO, s) {
            sum = i32f32_wrapping_add(sum, s);
            k++;
        }
    }
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_POS_SUM] = sum.x;
    uw[es + ES_POS_SUM + 1u] = sum.y;
    uw[es + ES_K] = k;
}

@compute @workgroup_size(WG)
fn median_prepare(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_prepare_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: positive active stake re-normalised (0 for the other rows).
fn median_use_stake_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    let sum = vec2<u32>(uw[es + ES_POS_SUM], uw[es + ES_POS_SUM + 1u]);
    var s = ld_u(P.astake, u);
    if lt_i64(I32F32_ZERO, s) {
        if !is_zero64(sum) {
            s = i32f32_safe_div(s, sum);
        }
    } else {
        s = I32F32_ZERO;
    }
    st_u(P.use_stake, u, s);
}

@compute @workgroup_size(WG)
fn median_use_stake(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_use_stake_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: the re-normalised stakes' sum and the minority threshold.
fn median_minority_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var stake_sum = I32F32_ZERO;
    for (var i = 0u; i < n; i++) {
        stake_sum = i32f32_wrapping_add(stake_sum, ld_u(P.use_stake, ub + i));
    }
    let kappa = u16_proportion_to_fixed(hdr(e, H_KAPPA));
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_STAKE_SUM] = stake_sum.x;
    uw[es + ES_STAKE_SUM + 1u] = stake_sum.y;
    let minority = i32f32_saturating_sub(stake_sum, kappa);
    uw[es + ES_MINORITY] = minority.x;
    uw[es + ES_MINORITY + 1u] = minority.y;
}

@compute @workgroup_size(WG)
fn median_minority(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_minority_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Counts the staked rows' entries per column.
fn median_count_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !lt_i64(I32F32_ZERO, ld_u(P.astake, u)) {
        return;
    }
    let ub = hdr(e, H_UID_BASE);
    let start = uw[P.w_off + u + e];
    let len = uw[P.mw_len + u];
    for (var k = start; k < start + len; k++) {
        atomicAdd(&acc[P.a_count + ub + ww[P.mw_cols + k]], 1u);
    }
}

@compute @workgroup_size(WG)
fn median_count(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_count_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: column starts in the cell list (the epoch's own weight-entry range).
fn median_scan_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var at = uw[P.w_off + hdr(e, H_ROW_BASE)];
    for (var j = 0u; j < n; j++) {
        uw[P.col_start + ub + j] = at;
        atomicStore(&acc[P.a_fill + ub + j], at);
        at += atomicLoad(&acc[P.a_count + ub + j]);
    }
}

@compute @workgroup_size(WG)
fn median_scan(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_scan_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Scatters (score, stake) cells into their columns.
fn median_scatter_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if !lt_i64(I32F32_ZERO, ld_u(P.astake, u)) {
        return;
    }
    let ub = hdr(e, H_UID_BASE);
    let start = uw[P.w_off + u + e];
    let len = uw[P.mw_len + u];
    let s = ld_u(P.use_stake, u);
    for (var k = start; k < start + len; k++) {
        let slot = atomicAdd(&acc[P.a_fill + ub + ww[P.mw_cols + k]], 1u);
        let v = ld_w(P.mw_vals, k);
        let c = P.cells + 4u * slot;
        ww[c] = v.x;
        ww[c + 1u] = v.y;
        ww[c + 2u] = s.x;
        ww[c + 3u] = s.y;
    }
}

@compute @workgroup_size(WG)
fn median_scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_scatter_step(flat_id(gid, nwg));
    check_loop_budget();
}

fn cell_score(k: u32) -> vec2<u32> {
    return vec2<u32>(ww[P.cells + 4u * k], ww[P.cells + 4u * k + 1u]);
}

fn cell_stake(k: u32) -> vec2<u32> {
    return vec2<u32>(ww[P.cells + 4u * k + 2u], ww[P.cells + 4u * k + 3u]);
}

fn cell_swap(a: u32, b: u32) {
    for (var w = 0u; w < 4u; w++) {
        let t = ww[P.cells + 4u * a + w];
        ww[P.cells + 4u * a + w] = ww[P.cells + 4u * b + w];
        ww[P.cells + 4u * b + w] = t;
    }
}

// Heap sort of cells [base, base + len) ascending by score.
fn cells_sort(base: u32, len: u32) {
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
            cell_swap(base, base + end);
        }
        var root = start;
        loop {
            var child = 2u * root + 1u;
            if child >= end {
                break;
            }
            if child + 1u < end && lt_i64(cell_score(base + child), cell_score(base + child + 1u)) {
                child++;
            }
            if lt_i64(cell_score(base + root), cell_score(base + child)) {
                cell_swap(base + root, base + child);
                root = child;
            } else {
                break;
            }
        }
    }
}

// weighted_median_col_sparse for one column: the smallest score whose cumulative stake
// over scores <= it exceeds minority, rows without an entry scoring 0.
fn median_solve_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    let stake_sum = vec2<u32>(uw[es + ES_STAKE_SUM], uw[es + ES_STAKE_SUM + 1u]);
    let minority = vec2<u32>(uw[es + ES_MINORITY], uw[es + ES_MINORITY + 1u]);
    let k = uw[es + ES_K];
    var median = I32F32_ZERO;
    let base = uw[P.col_start + u];
    let len = atomicLoad(&acc[P.a_count + u]);
    if k > 0u {
        cells_sort(base, len);
        var first_pos = 0u;
        while first_pos < len && !lt_i64(I32F32_ZERO, cell_score(base + first_pos)) {
            first_pos++;
        }
        var pos_stake = I32F32_ZERO;
        for (var x = first_pos; x < len; x++) {
            pos_stake = i32f32_saturating_add(pos_stake, cell_stake(base + x));
        }
        var cum = i32f32_saturating_sub(stake_sum, pos_stake);
        let zero_rows = k - (len - first_pos);
        if zero_rows > 0u && lt_i64(minority, cum) {
            median = I32F32_ZERO;
        } else {
            var idx = first_pos;
            var found = false;
            while idx < len {
                let v = cell_score(base + idx);
                while idx < len && all(cell_score(base + idx) == v) {
                    cum = i32f32_saturating_add(cum, cell_stake(base + idx));
                    idx++;
                }
                if lt_i64(minority, cum) {
                    median = v;
                    found = true;
                    break;
                }
            }
            if !found && len > first_pos {
                median = cell_score(base + len - 1u);
            }
        }
    }
    st_u(P.cons, u, median);
    uw[P.out_cons + u] = fixed_proportion_to_u16(median);
}

@compute @workgroup_size(WG)
fn median_solve(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    median_solve_step(flat_id(gid, nwg));
    check_loop_budget();
}

// col_clip_sparse, validator trust (wrapping row sum of the clipped row) and the rank
// products accumulated per column (non-negative, so the 96-bit sum is exact).
fn clip_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let ub = hdr(e, H_UID_BASE);
    let start = uw[P.w_off + u + e];
    let len = uw[P.mw_len + u];
    let s = ld_u(P.astake, u);
    let preranks = (hdr(e, H_FLAGS) & FLAG_RANK_TRUST_PRUNING) != 0u;
    var trust = I32F32_ZERO;
    for (var k = start; k < start + len; k++) {
        let c = ww[P.mw_cols + k];
        let v = ld_w(P.mw_vals, k);
        if preranks {
            // Before spec 365: the unclipped ranks that trust divides by.
            acc_add96(P.a_prerank + 3u * (ub + c), i32f32_saturating_mul(s, v));
        }
        let th = ld_u(P.cons, ub + c);
        var keep = true;
        var out = v;
        if lt_i64(th, v) {
            keep = lt_i64(I32F32_ZERO, th);
            out = th;
        }
        ww[P.cl_keep + k] = select(0u, 1u, keep);
        st_w(P.cl_vals, k, out);
        if keep {
            trust = i32f32_wrapping_add(trust, out);
            acc_add96(P.a_rank + 3u * (ub + c), i32f32_saturating_mul(s, out));
        }
    }
    uw[P.out_trust + u] = fixed_proportion_to_u16(trust);
}

@compute @workgroup_size(WG)
fn clip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    clip_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: the ranks' wrapping sum; whether liquid alpha applies.
fn incentive_sum_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I32F32_ZERO;
    var any_cons = false;
    for (var i = 0u; i < n; i++) {
        sum = i32f32_wrapping_add(sum, acc_load96(P.a_rank + 3u * (ub + i)));
        any_cons = any_cons || !is_zero64(ld_u(P.cons, ub + i));
    }
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_RANK_SUM] = sum.x;
    uw[es + ES_RANK_SUM + 1u] = sum.y;
    let flags = hdr(e, H_FLAGS);
    let liquid = (flags & FLAG_YUMA3) != 0u && (flags & FLAG_LIQUID_ALPHA) != 0u && any_cons;
    uw[es + ES_LIQUID] = select(0u, 1u, liquid);
}

@compute @workgroup_size(WG)
fn incentive_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    incentive_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid, before spec 365: trust, the clipped rank over the unclipped one (`vecdiv`).
fn server_trust_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if (hdr(e, H_FLAGS) & FLAG_RANK_TRUST_PRUNING) == 0u {
        return;
    }
    let t = i32f32_safe_div(acc_load96(P.a_rank + 3u * u), acc_load96(P.a_prerank + 3u * u));
    uw[P.out_strust + u] = fixed_proportion_to_u16(t);
}

@compute @workgroup_size(WG)
fn server_trust(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    server_trust_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: rank normalised into incentive.
fn incentive_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    let sum = vec2<u32>(uw[es + ES_RANK_SUM], uw[es + ES_RANK_SUM + 1u]);
    var r = acc_load96(P.a_rank + 3u * u);
    if !is_zero64(sum) {
        r = i32f32_safe_div(r, sum);
    }
    st_u(P.inc, u, r);
    uw[P.out_inc + u] = fixed_proportion_to_u16(r);
}

@compute @workgroup_size(WG)
fn incentive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    incentive_step(flat_id(gid, nwg));
    check_loop_budget();
}
