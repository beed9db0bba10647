//! Sorting the median's columns eight at a time with a sorting network: lane `l` of every
//! row of a block holds column `l`, so each compare-exchange is one vector min and max
//! over eight columns, with no data-dependent branch (a per-column sort mispredicts about
//! every other comparison, and the median spent most of its time there).
//!
//! Sorting integers has one answer, so the result equals `sort_unstable` exactly.

use std::sync::OnceLock;

/// Columns sorted together: one 512-bit vector of `i64`.
pub const LANES: usize = 8;

/// Longest column the networks sort; longer columns fall back to `sort_unstable`.
pub const MAX_LEN: usize = 256;

/// Batcher odd-even merge sort comparators `(i, j)`, `i < j`, for `size` (a power of two).
fn batcher(size: usize) -> Vec<(u16, u16)> {
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < size {
        let mut k = p;
        while k >= 1 {
            for j in (k % p..size - k).step_by(2 * k) {
                for i in 0..k.min(size - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.push(((i + j) as u16, (i + j + k) as u16));
                    }
                }
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

/// The network for `size` (a power of two up to [`MAX_LEN`]), built once.
fn network(size: usize) -> &'static [(u16, u16)] {
    // The cache is indexed by log2(size), and the vector code trusts the network's indices
    // to stay below the block length: any other size would break both.
    assert!(
        size.is_power_of_two() && size <= MAX_LEN,
        "no sorting network for {size} rows"
    );
    const SIZES: usize = MAX_LEN.trailing_zeros() as usize + 1;
    static NETS: [OnceLock<Vec<(u16, u16)>>; SIZES] = [const { OnceLock::new() }; SIZES];
    NETS[size.trailing_zeros() as usize].get_or_init(|| batcher(size))
}

/// Sorts each lane of `block` (length a power of two up to [`MAX_LEN`]) ascending.
fn sort_lanes(block: &mut [[i64; LANES]]) {
    let net = network(block.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature the function is compiled for.
            return unsafe { sort_lanes_avx512(block, net) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { sort_lanes_avx2(block, net) };
        }
    }
    apply(block, net);
}

/// One compare-exchange per instruction pair over all eight lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn sort_lanes_avx512(block: &mut [[i64; LANES]], net: &[(u16, u16)]) {
    use std::arch::x86_64::*;
    let base = block.as_mut_ptr();
    for &(i, j) in net {
        // SAFETY: the network for `block.len()` indexes below it; rows are 64 bytes.
        unsafe {
            let (pi, pj) = (base.add(i as usize).cast(), base.add(j as usize).cast());
            let (a, b) = (_mm512_loadu_si512(pi), _mm512_loadu_si512(pj));
            _mm512_storeu_si512(pi, _mm512_min_epi64(a, b));
            _mm512_storeu_si512(pj, _mm512_max_epi64(a, b));
        }
    }
}

/// As the AVX-512 version, on two 4-lane halves with a compare and blends.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sort_lanes_avx2(block: &mut [[i64; LANES]], net: &[(u16, u16)]) {
    use std::arch::x86_64::*;
    let base = block.as_mut_ptr().cast::<__m256i>();
    for &(i, j) in net {
        for half in 0..2 {
            // SAFETY: as above; each 64-byte row is two 32-byte halves.
            unsafe {
                let (pi, pj) = (
                    base.add(2 * i as usize + half),
                    base.add(2 * j as usize + half),
                );
                let (a, b) = (_mm256_loadu_si256(pi), _mm256_loadu_si256(pj));
                let a_gt = _mm256_cmpgt_epi64(a, b);
                _mm256_storeu_si256(pi, _mm256_blendv_epi8(a, b, a_gt));
                _mm256_storeu_si256(pj, _mm256_blendv_epi8(b, a, a_gt));
            }
        }
    }
}

/// The portable network.
fn apply(block: &mut [[i64; LANES]], net: &[(u16, u16)]) {
    for &(i, j) in net {
        let (a, b) = (block[i as usize], block[j as usize]);
        block[i as usize] = std::array::from_fn(|l| a[l].min(b[l]));
        block[j as usize] = std::array::from_fn(|l| a[l].max(b[l]));
    }
}

/// Sorts every lane of each consecutive `height`-row block of `blocks` (`height` a power
/// of two up to [`MAX_LEN`] dividing `blocks.len()`) ascending.
pub fn sort_blocks(blocks: &mut [[i64; LANES]], height: usize) {
    for block in blocks.chunks_exact_mut(height) {
        sort_lanes(block);
    }
}

/// Sorts every column of `cells`, column `j` being `cells[starts[j]..starts[j + 1]]`;
/// values must be below `i64::MAX` (the padding).
pub fn sort_columns(cells: &mut [u64], starts: &[u32]) {
    let columns = starts.len().saturating_sub(1);
    let mut block = Vec::new();
    for first in (0..columns).step_by(LANES) {
        let last = (first + LANES).min(columns);
        let span = |j: usize| starts[j] as usize..starts[j + 1] as usize;
        let longest = (first..last).map(|j| span(j).len()).max().unwrap_or(0);
        if longest > MAX_LEN {
            for j in first..last {
                cells[span(j)].sort_unstable();
            }
            continue;
        }
        if longest < 2 {
            continue;
        }
        block.clear();
        block.resize(longest.next_power_of_two(), [i64::MAX; LANES]);
        for j in first..last {
            for (row, &c) in block.iter_mut().zip(&cells[span(j)]) {
                row[j - first] = c as i64;
            }
        }
        sort_lanes(&mut block);
        for j in first..last {
            for (c, row) in cells[span(j)].iter_mut().zip(&block) {
                *c = row[j - first] as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every network sorts every 0-1 input (the 0-1 principle: then it sorts anything).
    #[test]
    fn networks_sort_every_zero_one_input() {
        for size in [1, 2, 4, 8, 16] {
            let net = batcher(size);
            for bits in 0u32..1 << size {
                let mut v: Vec<u8> = (0..size).map(|b| (bits >> b & 1) as u8).collect();
                for &(i, j) in &net {
                    let (i, j) = (i as usize, j as usize);
                    if v[i] > v[j] {
                        v.swap(i, j);
                    }
                }
                assert!(
                    v.windows(2).all(|w| w[0] <= w[1]),
                    "size {size} input {bits:b}"
                );
            }
        }
    }

    /// A size without a network is refused, never served another size's comparators.
    #[test]
    #[should_panic(expected = "no sorting network for 6 rows")]
    fn sizes_other_than_powers_of_two_are_refused() {
        network(6);
    }

    /// Each implementation this CPU can run, on random blocks of every size.
    #[test]
    fn every_implementation_sorts_lanes() {
        type Network = fn(&mut [[i64; LANES]], &[(u16, u16)]);
        let mut runs: Vec<(&str, Network)> = vec![("portable", apply)];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: only called when the feature is present.
                runs.push(("avx2", |b, n| unsafe { sort_lanes_avx2(b, n) }));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: as above.
                runs.push(("avx512", |b, n| unsafe { sort_lanes_avx512(b, n) }));
            }
        }
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for (name, run) in runs {
            for size in (0..=MAX_LEN.trailing_zeros()).map(|k| 1usize << k) {
                let mut block: Vec<[i64; LANES]> = (0..size)
                    .map(|_| {
                        std::array::from_fn(|_| {
                            seed ^= seed << 13;
                            seed ^= seed >> 7;
                            seed ^= seed << 17;
                            // Negative, duplicate and extreme values too.
                            [seed as i64, (seed % 5) as i64, i64::MIN, i64::MAX]
                                [(seed >> 60) as usize % 4]
                        })
                    })
                    .collect();
                let mut want = block.clone();
                for l in 0..LANES {
                    let mut lane: Vec<i64> = want.iter().map(|r| r[l]).collect();
                    lane.sort_unstable();
                    want.iter_mut().zip(lane).for_each(|(r, v)| r[l] = v);
                }
                run(&mut block, network(size));
                assert_eq!(block, want, "{name}, size {size}");
            }
        }
    }

    #[test]
    fn columns_sort_like_sort_unstable() {
        // Lengths 0..=300 cover every network size, padding and the long-column fallback.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..40 {
            let lens: Vec<usize> = (0..19).map(|_| next() as usize % 301).collect();
            let mut starts = vec![0u32];
            for l in &lens {
                starts.push(starts.last().unwrap() + *l as u32);
            }
            // Small ranges force duplicates; the top value is the largest allowed.
            let range = [4, 1 << 20, i64::MAX as u64][round % 3];
            let mut cells: Vec<u64> = (0..*starts.last().unwrap())
                .map(|_| (next() % range).min(i64::MAX as u64 - 1))
                .collect();
            let mut want = cells.clone();
            for j in 0..lens.len() {
                want[starts[j] as usize..starts[j + 1] as usize].sort_unstable();
            }
            sort_columns(&mut cells, &starts);
            assert_eq!(cells, want, "round {round}, lengths {lens:?}");
        }
    }
}
