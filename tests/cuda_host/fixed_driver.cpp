// Host driver for tests/cuda_host.rs: evaluates every kernels/fixed.cuh function on
// operand records, for comparison with src/fixed.rs.
//
// usage: fixed_driver IN OUT
// IN: records of 5 little-endian words: a (i64), b (i64), x (u64), A (i128 as lo, hi),
// B (i128 as lo, hi), i.e. 7 u64 words each. OUT: per record, the results in the order of
// `fixed_results` in tests/cuda_host.rs, each an i128 as (lo, hi) u64 words; an Option is
// two results, 0/1 then its value (0 when empty).
#include <cstdio>
#include <vector>

#include "fixed.cuh"

static std::vector<i128> out;

static void put(i128 v) { out.push_back(v); }
static void put(I32F32 v) { put((i128)v.bits); }
static void put(I64F64 v) { put(v.bits); }
static void put(I96F32 v) { put(v.bits); }
static void put(U96F32 v) { put(as_i128(v.bits)); }
template <class T> static void put(Option<T> v) {
    put((i128)v.some);
    if (v.some) put(v.value); else put((i128)0);
}

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) return 2;
    u64 w[7];
    while (std::fread(w, 8, 7, in) == 7) {
        I32F32 a = I32F32::of((i64)w[0]), b = I32F32::of((i64)w[1]);
        u64 x = w[2];
        i128 A = as_i128(((u128)w[4] << 64) | w[3]), B = as_i128(((u128)w[6] << 64) | w[5]);
        put(I32F32::from_u16((u32)(x & 0xffff)));
        put(I32F32::saturating_from_int((i64)w[1]));
        put(I32F32::saturating_from_i64f64(I64F64::of(A)));
        put(a.saturating_add(b));
        put(a.saturating_sub(b));
        put(a.wrapping_add(b));
        put(a.checked_add(b));
        put(a.checked_neg());
        put(a.checked_mul(b));
        put(a.saturating_mul(b));
        put(a.checked_div(b));
        put(a.saturating_div(b));
        put(a.safe_div(b));
        put((i128)a.saturating_to_u16());
        put((i128)a.saturating_to_u64());
        put(a.max_of(b));
        put(a.min_of(b));
        I32F32Divisor d = I32F32Divisor::of(b);
        put(d.checked_div(a));
        put(d.safe_div(a));
        put(d.divisor());
        put(u16_proportion_to_fixed((u32)(x & 0xffff)));
        put((i128)fixed_proportion_to_u16(a));
        put(exp(a));
        put(exp_safe(a));
        put(safe_exp(a));
        put(ln(a));
        put(safe_ln(a));
        I64F64 P = I64F64::of(A), Q = I64F64::of(B);
        put(I64F64::saturating_from_u64(x));
        put(I64F64::saturating_from_u96f32(U96F32::of((u128)A)));
        put(P.saturating_add(Q));
        put(P.checked_add(Q));
        put(P.saturating_mul(Q));
        put(P.checked_div(Q));
        put(P.safe_div(Q));
        put((i128)P.saturating_to_u64());
        put(I96F32::from_i32f32(a));
        put(I96F32::from_u64(x));
        put(I96F32::of(A).saturating_mul(I96F32::of(B)));
        put((i128)I96F32::of(A).saturating_to_u64());
        put(U96F32::from_u64(x));
        put(U96F32::of((u128)A).checked_div(U96F32::of((u128)B)));
        put(U96F32::of((u128)A).safe_div(U96F32::of((u128)B)));
    }
    std::fclose(in);
    FILE* f = std::fopen(argv[2], "wb");
    if (!f) return 2;
    for (i128 v : out) {
        u64 lo = (u64)(u128)v, hi = (u64)((u128)v >> 64);
        std::fwrite(&lo, 8, 1, f);
        std::fwrite(&hi, 8, 1, f);
    }
    return std::fclose(f) == 0 ? 0 : 2;
}
