// Steps 1-4 (src/epoch/stake.rs): activity, total stake, stake threshold, normalised
// stake, validator permits and active stake. Divisions and ranks run one thread per
// uid (ranks per uid and block of uids); only the ordered checked sum and the active
// stake's wrapping sum run one thread per epoch.

fn ld_wide(u: u32) -> vec4<u32> {
    let at = P.s_wide + 4u * u;
    return vec4<u32>(uw[at], uw[at + 1u], uw[at + 2u], uw[at + 3u]);
}

// The owner's threshold exemption and permits (from spec 397).
fn is_owner(e: u32, i: u32) -> bool {
    let f = hdr(e, H_FLAGS);
    return (f & FLAG_HAS_OWNER) != 0u && (f & FLAG_OWNER_PERMIT) != 0u && hdr(e, H_OWNER) == i;
}

// `get_tao_weight` widened to I64F64: `raw / u64::MAX` in U96F32.
fn tao_weight(raw: vec2<u32>) -> vec4<u32> {
    let max = u96f32_from_u64(vec2<u32>(0xffffffffu, 0xffffffffu));
    return i64f64_saturating_from_u96f32(u96f32_safe_div(u96f32_from_u64(raw), max));
}

// Per uid: activity, total stake (the `stake` output), the thresholded stake (the
// owner's always kept) and the permits held before, the owner's forced on.
fn stake_total_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let i = u - hdr(e, H_UID_BASE);
    let lu = ld_u(P.lu, u);
    var until = wrapping_add64(lu, hdr64(e, H_ACTIVITY_CUTOFF));
    if lt_u64(until, lu) {
        until = vec2<u32>(0xffffffffu, 0xffffffffu);
    }
    uw[P.out_active + u] = select(0u, 1u, !lt_u64(until, hdr64(e, H_CURRENT_BLOCK)));
    let tw = tao_weight(hdr64(e, H_TAO_WEIGHT));
    let total = i64f64_saturating_add(
        i64f64_saturating_from_u64(ld_u(P.alpha, u)),
        i64f64_saturating_mul(i64f64_saturating_from_u64(ld_u(P.tao, u)), tw),
    );
    let whole = i64f64_saturating_to_u64(total);
    st_u(P.out_stake, u, whole);
    let owner = is_owner(e, i);
    var kept = total;
    if !owner && lt_u64(whole, hdr64(e, H_STAKE_THRESHOLD)) {
        kept = I64F64_ZERO;
    }
    let at = P.s_wide + 4u * u;
    uw[at] = kept.x;
    uw[at + 1u] = kept.y;
    uw[at + 2u] = kept.z;
    uw[at + 3u] = kept.w;
    if owner {
        uw[P.permit + u] = 1u;
    }
}

@compute @workgroup_size(WG)
fn stake_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_total_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: the thresholded stakes' checked sum in uid order. Where the chain's sum
// would wrap, the epoch fails with `1 + uid` in `out_fail` and its sum reads as 0.
fn stake_sum_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I64F64_ZERO;
    var fail = 0u;
    for (var i = 0u; i < n && fail == 0u; i++) {
        let c = i64f64_checked_add(sum, ld_wide(ub + i));
        sum = c.v;
        fail = select(i + 1u, 0u, c.ok);
    }
    if fail != 0u {
        sum = I64F64_ZERO;
    }
    uw[P.out_fail + e] = fail;
    let es = P.estate + e * ES_WORDS + ES_STAKE_WIDE;
    uw[es] = sum.x;
    uw[es + 1u] = sum.y;
    uw[es + 2u] = sum.z;
    uw[es + 3u] = sum.w;
}

@compute @workgroup_size(WG)
fn stake_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: the stake normalised by the sum when that is non-zero, narrowed to I32F32
// (the `stake_weight` output). A failed epoch gets zero stake: its results are dropped,
// and zeros keep its remaining steps cheap.
fn stake_normalize_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS + ES_STAKE_WIDE;
    let sum = vec4<u32>(uw[es], uw[es + 1u], uw[es + 2u], uw[es + 3u]);
    var s = ld_wide(u);
    if uw[P.out_fail + e] != 0u {
        s = I64F64_ZERO;
    } else if !is_zero128(sum) {
        s = i64f64_safe_div(s, sum);
    }
    let narrow = i32f32_saturating_from_i64f64(s);
    st_u(P.stake, u, narrow);
    uw[P.out_sw + u] = fixed_proportion_to_u16(narrow);
}

@compute @workgroup_size(WG)
fn stake_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_normalize_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per (uid, block of RANK_BLOCK uids): how many uids of the block precede this one
// under `is_topk_nonzero`'s stable ascending sort (smaller stake, or equal stake and a
// lower uid), added into the uid's rank.
fn stake_rank_step(t: u32) {
    if P.n_uids == 0u {
        return;
    }
    let u = t % P.n_uids;
    let block = t / P.n_uids;
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let i = u - ub;
    if block >= (n + RANK_BLOCK - 1u) / RANK_BLOCK {
        return;
    }
    let start = block * RANK_BLOCK;
    let x = ld_u(P.stake, u);
    let end = min(n, start + RANK_BLOCK);
    var rank = 0u;
    for (var j = start; j < end; j++) {
        let y = ld_u(P.stake, ub + j);
        if lt_i64(y, x) || (all(y == x) && j < i) {
            rank++;
        }
    }
    atomicAdd(&acc[P.a_srank + u], rank);
}

@compute @workgroup_size(WG)
fn stake_rank(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_rank_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: `is_topk_nonzero` (non-zero, and not among the `n - k` first of the sort when
// n >= k), the owner's permit forced on, and the stake of active permitted uids.
fn stake_permits_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    let k = hdr(e, H_MAX_VALIDATORS);
    let i = u - hdr(e, H_UID_BASE);
    let s = ld_u(P.stake, u);
    // Before spec 273 (`is_topk`) zero stakes take permits too.
    var keep = !is_zero64(s) || (hdr(e, H_FLAGS) & FLAG_TOPK_ZERO) != 0u;
    if n >= k && atomicLoad(&acc[P.a_srank + u]) < n - k {
        keep = false;
    }
    uw[P.new_permit + u] = select(0u, 1u, keep || is_owner(e, i));
    let staked = uw[P.out_active + u] != 0u && uw[P.permit + u] != 0u;
    st_u(P.astake, u, select(I32F32_ZERO, s, staked));
}

@compute @workgroup_size(WG)
fn stake_permits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_permits_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch: the active stake's wrapping sum.
fn stake_active_sum_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I32F32_ZERO;
    for (var i = 0u; i < n; i++) {
        sum = i32f32_wrapping_add(sum, ld_u(P.astake, ub + i));
    }
    let es = P.estate + e * ES_WORDS + ES_ACTIVE_SUM;
    uw[es] = sum.x;
    uw[es + 1u] = sum.y;
}

@compute @workgroup_size(WG)
fn stake_active_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_active_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: `inplace_normalize` of the active stake.
fn stake_active_normalize_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS + ES_ACTIVE_SUM;
    let sum = vec2<u32>(uw[es], uw[es + 1u]);
    if !is_zero64(sum) {
        st_u(P.astake, u, i32f32_safe_div(ld_u(P.astake, u), sum));
    }
}

@compute @workgroup_size(WG)
fn stake_active_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    stake_active_normalize_step(flat_id(gid, nwg));
    check_loop_budget();
}
