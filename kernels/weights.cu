// Step 5 (src/epoch/weights.rs): weights as the chain reads them, masked and
// row-normalised, kept in the input's entry slots with a keep flag.
#include "batch.cuh"

// Per row: drops rows without a permit, the diagonal except the owner's self-weight,
// columns >= n, outdated entries and (commit-reveal) entries registered after the
// earliest unexpired commit; then divides by the row's wrapping sum when positive.
YUMA_KERNEL(weights_mask) {
    if (b.status[e]) return;
    const EpochHeader& h = b.headers[e];
    bool has_owner = (h.flags & FLAG_HAS_OWNER) != 0;
    bool commit_reveal = (h.flags & FLAG_COMMIT_REVEAL) != 0;
    for (u32 i = tid; i < h.n; i += nt) {
        u32 u = h.uid_base + i;
        u32 start = b.w_offsets[h.row_base + i], end = b.w_offsets[h.row_base + i + 1];
        bool permit = b.permit[u] != 0;
        u64 updated = load_u64(b.last_update, u);
        // No unexpired commit is packed as u64::MAX: it masks nothing.
        u64 commit = commit_reveal ? load_u64(b.commit_block, u) : YUMA_U64_MAX;
        I32F32 sum = I32F32::ZERO();
        for (u32 k = start; k < end; k++) {
            u32 c = b.w_cols[k];
            bool keep = permit && c < h.n && (c != i || (has_owner && h.owner_uid == c));
            if (keep) {
                u64 reg = load_u64(b.block_at_registration, h.uid_base + c);
                keep = updated > reg && commit >= reg;
            }
            I32F32 v = keep ? I32F32::from_u16(b.w_vals[k]) : I32F32::ZERO();
            b.wm_keep[k] = keep;
            b.wm_val[k] = v.bits;
            sum = sum.wrapping_add(v);
        }
        if (sum.bits > 0) {
            I32F32Divisor d = I32F32Divisor::of(sum);
            for (u32 k = start; k < end; k++)
                if (b.wm_keep[k]) b.wm_val[k] = d.safe_div(I32F32::of(b.wm_val[k])).bits;
        }
    }
}
