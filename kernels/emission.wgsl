// Step 11 (src/epoch/emission.rs): server, validator and combined emission in rao.
// One thread per epoch: three O(n) passes around one wrapping sum.

fn to_rao(u: u32, base: u32, x: vec2<u32>, rao: vec2<u32>) {
    st_u(base, u, i96f32_mul_to_u64(x, rao));
}

@compute @workgroup_size(64)
fn emission(@builtin(global_invocation_id) gid: vec3<u32>) {
    let e = gid.x;
    if e >= P.n_epochs {
        return;
    }
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let rao = hdr64(e, H_EMISSION);
    var sum = I32F32_ZERO;
    var astake_sum = I32F32_ZERO;
    for (var i = 0u; i < n; i++) {
        let u = ub + i;
        sum = i32f32_wrapping_add(sum, i32f32_saturating_add(ld_u(P.inc, u), ld_u(P.div, u)));
        astake_sum = i32f32_wrapping_add(astake_sum, ld_u(P.astake, u));
    }
    let fallback_stake = is_zero64(astake_sum);
    for (var i = 0u; i < n; i++) {
        let u = ub + i;
        var server = ld_u(P.inc, u);
        var validator = ld_u(P.div, u);
        var combined = i32f32_saturating_add(server, validator);
        if !is_zero64(sum) {
            server = i32f32_safe_div(server, sum);
            validator = i32f32_safe_div(validator, sum);
            combined = i32f32_safe_div(combined, sum);
        } else {
            // Nothing earned: validators are paid by active stake, or by stake.
            validator = select(ld_u(P.astake, u), ld_u(P.stake, u), fallback_stake);
            combined = validator;
        }
        to_rao(u, P.out_em, combined, rao);
        to_rao(u, P.out_srv, server, rao);
        to_rao(u, P.out_val, validator, rao);
    }
}
