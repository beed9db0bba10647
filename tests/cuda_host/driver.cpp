// Host driver for tests/cuda_host.rs: runs the CUDA kernel sources, compiled by a host
// C++ compiler, over a packed batch by emulating the grid (one block per epoch, blocks
// and threads one after another, in forward or reverse order).
//
// usage: driver IN OUT THREADS fwd|rev KERNEL...
// IN holds the pack.rs input buffers, OUT receives the output buffers and the status,
// each as a u64 byte length then the bytes, in the order of `Buffers` (kernels/batch.cuh).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "stake.cu"
#include "weights.cu"
#include "consensus.cu"
#include "bonds.cu"
#include "emission.cu"

typedef void (*Body)(const Buffers&, u32, u32, u32);

struct Named {
    const char* name;
    Body body;
};

#define K(name) {#name, name##_body}
static const Named KERNELS[] = {
    K(stake_total), K(stake_sum), K(stake_normalize), K(stake_permits), K(stake_active_sum),
    K(stake_active_normalize), K(weights_mask), K(consensus_use_stake), K(consensus_count),
    K(consensus_offsets), K(consensus_fill), K(consensus_median), K(consensus_clip), K(consensus_rank),
    K(consensus_rank_sum), K(consensus_incentive), K(bonds_read), K(bonds_scale_sums),
    K(bonds_scale_normalize), K(bonds_quantile), K(bonds_liquid_alpha_v1_fit), K(bonds_liquid_alpha_v1), K(bonds_ema), K(bonds_dividends), K(bonds_dividend_sum), K(bonds_finish),
    K(emission_sum), K(emission_split), K(emission_prune_max), K(emission_prune),
};

static void fail(const char* what) {
    std::fprintf(stderr, "driver: %s\n", what);
    std::exit(2);
}

// 16-byte aligned zeroed storage of `bytes` bytes (room for i128 scratch).
static void* zeroed(std::vector<std::vector<i128>>& keep, size_t bytes) {
    keep.emplace_back(bytes / 16 + 1);
    return keep.back().data();
}

static std::vector<u32> read_buffer(FILE* f) {
    u64 len = 0;
    if (std::fread(&len, 8, 1, f) != 1 || len % 4 != 0) fail("truncated input");
    std::vector<u32> v(len / 4);
    if (len && std::fread(v.data(), 1, len, f) != len) fail("truncated input");
    return v;
}

static void write_buffer(FILE* f, const u32* p, size_t words) {
    u64 len = words * 4;
    std::fwrite(&len, 8, 1, f);
    if (words) std::fwrite(p, 4, words, f);
}

int main(int argc, char** argv) {
    if (argc < 5) fail("usage: driver IN OUT THREADS fwd|rev KERNEL...");
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) fail("cannot open input");
    std::vector<std::vector<u32>> inputs;
    for (int i = 0; i < 14; i++) inputs.push_back(read_buffer(in));
    std::fclose(in);
    u32 threads = (u32)std::atoi(argv[3]);
    bool reverse = std::strcmp(argv[4], "rev") == 0;
    if (threads == 0) fail("THREADS must be positive");

    size_t E = inputs[0].size() * 4 / sizeof(EpochHeader), U = inputs[6].size();
    size_t W = inputs[8].size(), C = inputs[13].empty() ? 0 : inputs[13].back();
    std::vector<std::vector<i128>> keep;
    Buffers b;
    b.headers = (const EpochHeader*)inputs[0].data();
    b.alpha_stake = inputs[1].data();
    b.tao_stake = inputs[2].data();
    b.last_update = inputs[3].data();
    b.block_at_registration = inputs[4].data();
    b.commit_block = inputs[5].data();
    b.validator_permit = inputs[6].data();
    b.w_offsets = inputs[7].data();
    b.w_cols = inputs[8].data();
    b.w_vals = inputs[9].data();
    b.b_offsets = inputs[10].data();
    b.b_cols = inputs[11].data();
    b.b_vals = inputs[12].data();
    b.ob_offsets = inputs[13].data();
#define ALLOC(field, count) b.field = (decltype(b.field))zeroed(keep, (count) * sizeof(*b.field))
    ALLOC(active, U); ALLOC(stake, 2 * U); ALLOC(stake_weight, U); ALLOC(consensus, U);
    ALLOC(incentive, U); ALLOC(dividend, U); ALLOC(validator_trust, U); ALLOC(new_validator_permit, U);
    ALLOC(emission, 2 * U); ALLOC(server_emission, 2 * U); ALLOC(validator_emission, 2 * U);
    ALLOC(bond_len, U); ALLOC(bond_cols, C); ALLOC(bond_vals, C); ALLOC(trust, U); ALLOC(pruning_score, U);
    ALLOC(status, E);
    ALLOC(filtered, U); ALLOC(ep_wide, E); ALLOC(ep_scalar, EP_SLOTS * E); ALLOC(stake_fx, U);
    ALLOC(permit, U); ALLOC(active_stake, U); ALLOC(use_stake, U); ALLOC(consensus_fx, U);
    ALLOC(incentive_fx, U); ALLOC(dividend_fx, U); ALLOC(col_count, U); ALLOC(col_fill, U);
    ALLOC(colsum_a, 2 * U); ALLOC(colsum_b, 2 * U); ALLOC(colsum_c, 2 * U); ALLOC(colmax, U);
    ALLOC(wm_val, W); ALLOC(wm_keep, W); ALLOC(clip_val, W); ALLOC(clip_keep, W);
    ALLOC(cell_val, W); ALLOC(cell_row, W); ALLOC(wfb_col, C); ALLOC(wfb_val, C); ALLOC(wfb_len, U);
    ALLOC(old_col, C); ALLOC(old_val, C); ALLOC(old_vis, C); ALLOC(old_len, U);
    ALLOC(ema_col, C); ALLOC(ema_val, C); ALLOC(ema_len, U); ALLOC(comb_fx, U);
    ALLOC(la_col, U);

    for (int a = 5; a < argc; a++) {
        Body body = nullptr;
        for (const Named& k : KERNELS)
            if (std::strcmp(k.name, argv[a]) == 0) body = k.body;
        if (!body) {
            std::fprintf(stderr, "driver: unknown kernel %s\n", argv[a]);
            return 2;
        }
        for (size_t s = 0; s < E; s++) {
            u32 e = (u32)(reverse ? E - 1 - s : s);
            for (u32 t = 0; t < threads; t++) body(b, e, reverse ? threads - 1 - t : t, threads);
        }
    }

    FILE* out = std::fopen(argv[2], "wb");
    if (!out) fail("cannot open output");
    write_buffer(out, b.active, U);
    write_buffer(out, b.stake, 2 * U);
    write_buffer(out, b.stake_weight, U);
    write_buffer(out, b.consensus, U);
    write_buffer(out, b.incentive, U);
    write_buffer(out, b.dividend, U);
    write_buffer(out, b.validator_trust, U);
    write_buffer(out, b.new_validator_permit, U);
    write_buffer(out, b.emission, 2 * U);
    write_buffer(out, b.server_emission, 2 * U);
    write_buffer(out, b.validator_emission, 2 * U);
    write_buffer(out, b.bond_len, U);
    write_buffer(out, b.bond_cols, C);
    write_buffer(out, b.bond_vals, C);
    write_buffer(out, b.trust, U);
    write_buffer(out, b.pruning_score, U);
    write_buffer(out, b.status, E);
    return std::fclose(out) == 0 ? 0 : 2;
}
