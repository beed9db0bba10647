// Step 5 (src/epoch/weights.rs): weights as the chain reads them, masked and
// row-normalised. Masking runs one thread per uid row (entries keep their storage
// order) and also takes the row's wrapping sum; the division runs one thread per entry.

fn masked_weights_step(u: u32) {
    if u >= P.n_uids {
        return;
    }
    let e = uw[P.uid_epoch + u];
    let n = hdr(e, H_N);
    let ub = hdr(e, H_UID_BASE);
    let i = u - ub;
    let out0 = uw[P.w_off + u + e];
    var len = 0u;
    if uw[P.permit + u] != 0u {
        let flags = hdr(e, H_FLAGS);
        let has_owner = (flags & FLAG_HAS_OWNER) != 0u;
        let owner = hdr(e, H_OWNER);
        let updated = ld_u(P.lu, u);
        // No unexpired commit reads as u64::MAX: it masks nothing.
        var commit = vec2<u32>(0xffffffffu, 0xffffffffu);
        if (flags & FLAG_COMMIT_REVEAL) != 0u {
            commit = ld_u(P.commit, u);
        }
        let end = uw[P.w_off + u + e + 1u];
        for (var k = out0; k < end; k++) {
            let j = ww[P.w_cols + k];
            if j >= n {
                continue;
            }
            let reg = ld_u(P.reg, ub + j);
            let keep = (j != i || (has_owner && owner == j)) && lt_u64(reg, updated) && !lt_u64(commit, reg);
            if keep {
                ww[P.mw_cols + out0 + len] = j;
                st_w(P.mw_vals, out0 + len, i32f32_from_u16(ww[P.w_vals + k]));
                len++;
            }
        }
    }
    uw[P.mw_len + u] = len;
    var sum = I32F32_ZERO;
    for (var k = 0u; k < len; k++) {
        sum = i32f32_wrapping_add(sum, ld_w(P.mw_vals, out0 + k));
    }
    st_u(P.row_sum, u, sum);
}

@compute @workgroup_size(WG)
fn masked_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    masked_weights_step(flat_id(gid, nwg));
    check_loop_budget();
}

// inplace_row_normalize_sparse: each entry divided by its row's sum when that is positive.
fn row_normalize_step(k: u32) {
    if k >= P.n_entries {
        return;
    }
    let u = ww[P.w_row + k];
    let e = uw[P.uid_epoch + u];
    if k - uw[P.w_off + u + e] >= uw[P.mw_len + u] {
        return;
    }
    let sum = ld_u(P.row_sum, u);
    if lt_i64(I32F32_ZERO, sum) {
        st_w(P.mw_vals, k, i32f32_safe_div(ld_w(P.mw_vals, k), sum));
    }
}

@compute @workgroup_size(WG)
fn row_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    row_normalize_step(flat_id(gid, nwg));
    check_loop_budget();
}
