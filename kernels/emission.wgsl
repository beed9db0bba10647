// Step 11 (src/epoch/emission.rs): server, validator and combined emission in rao.
// One thread per epoch sums; one thread per uid divides and converts.

// Per epoch: the wrapping sum of incentive + dividend, and whether active stake is all
// zero (the validators' fallback).
fn emission_sum_step(e: u32) {
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var sum = I32F32_ZERO;
    var astake_sum = I32F32_ZERO;
    for (var i = 0u; i < n; i++) {
        let u = ub + i;
        sum = i32f32_wrapping_add(sum, i32f32_saturating_add(ld_u(P.inc, u), ld_u(P.div, u)));
        astake_sum = i32f32_wrapping_add(astake_sum, ld_u(P.astake, u));
    }
    let es = P.estate + e * ES_WORDS;
    uw[es + ES_EM_SUM] = sum.x;
    uw[es + ES_EM_SUM + 1u] = sum.y;
    uw[es + ES_ASTAKE_ZERO] = select(0u, 1u, is_zero64(astake_sum));
}

@compute @workgroup_size(WG)
fn emission_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    emission_sum_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid: shares normalised by the sum (or the stake fallback), times the emission in
// I96F32, truncated to u64.
fn emission_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let es = P.estate + e * ES_WORDS;
    let sum = vec2<u32>(uw[es + ES_EM_SUM], uw[es + ES_EM_SUM + 1u]);
    let rao = hdr64(e, H_EMISSION);
    var server = ld_u(P.inc, u);
    var validator = ld_u(P.div, u);
    var combined = i32f32_saturating_add(server, validator);
    if !is_zero64(sum) {
        server = i32f32_safe_div(server, sum);
        validator = i32f32_safe_div(validator, sum);
        combined = i32f32_safe_div(combined, sum);
    } else {
        // Nothing earned: validators are paid by active stake, or by stake.
        validator = select(ld_u(P.astake, u), ld_u(P.stake, u), uw[es + ES_ASTAKE_ZERO] != 0u);
        combined = validator;
    }
    st_u(P.comb, u, combined);
    st_u(P.out_em, u, i96f32_mul_to_u64(combined, rao));
    st_u(P.out_srv, u, i96f32_mul_to_u64(server, rao));
    st_u(P.out_val, u, i96f32_mul_to_u64(validator, rao));
}

@compute @workgroup_size(WG)
fn emission(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    emission_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per epoch, before spec 365: the largest normalised combined emission.
fn pruning_max_step(e: u32) {
    if e >= P.n_epochs || (hdr(e, H_FLAGS) & FLAG_RANK_TRUST_PRUNING) == 0u {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    var m = I32F32_MIN;
    for (var i = 0u; i < n; i++) {
        m = i32f32_max_of(m, ld_u(P.comb, ub + i));
    }
    let es = P.estate + e * ES_WORDS + ES_PRUNE_MAX;
    uw[es] = m.x;
    uw[es + 1u] = m.y;
}

@compute @workgroup_size(WG)
fn pruning_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pruning_max_step(flat_id(gid, nwg));
    check_loop_budget();
}

// Per uid, before spec 365: `vec_max_upscale_to_u16` of the normalised combined emission
// (pruning scores): scaled so the maximum reads 65535, rounded.
fn pruning_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    if (hdr(e, H_FLAGS) & FLAG_RANK_TRUST_PRUNING) == 0u {
        return;
    }
    let es = P.estate + e * ES_WORDS + ES_PRUNE_MAX;
    let m = vec2<u32>(uw[es], uw[es + 1u]);
    let x = ld_u(P.comb, u);
    let u16_max = i32f32_from_u16(65535u);
    var score: u32;
    if is_zero64(m) {
        score = fixed_proportion_to_u16(x);
    } else if lt_i64(i32f32_from_u16(32768u), m) {
        score = i32f32_saturating_to_u16(i32f32_round(i32f32_saturating_mul(x, i32f32_safe_div(u16_max, m))));
    } else {
        score = i32f32_saturating_to_u16(i32f32_round(i32f32_safe_div(i32f32_saturating_mul(x, u16_max), m)));
    }
    uw[P.out_prune + u] = score;
}

@compute @workgroup_size(WG)
fn pruning(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    pruning_step(flat_id(gid, nwg));
    check_loop_budget();
}
