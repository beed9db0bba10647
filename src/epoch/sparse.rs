//! Sparse I32F32 matrices in CSR form and the row/column operations the epoch applies
//! to them, each with the exact arithmetic and entry order of its upstream counterpart.

use std::cell::RefCell;

use crate::fixed::{I32F32, I32F32Divisor};

/// Sparse matrix of I32F32 in CSR form; rows keep the order their entries were produced in.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Csr {
    /// `offsets[i]..offsets[i + 1]` indexes row i; length rows + 1.
    pub offsets: Vec<u32>,
    /// Column uid of each entry.
    pub cols: Vec<u16>,
    /// Value of each entry.
    pub vals: Vec<I32F32>,
}

impl Csr {
    /// A matrix with capacity for `rows` rows and `nnz` entries, no rows pushed yet.
    pub fn with_capacity(rows: usize, nnz: usize) -> Self {
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let mut offsets = reuse(&mut pool.offsets, rows + 1);
            offsets.push(0);
            Self {
                offsets,
                cols: reuse(&mut pool.cols, nnz),
                vals: reuse(&mut pool.vals, nnz),
            }
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Row `i` as (columns, values).
    pub fn row(&self, i: usize) -> (&[u16], &[I32F32]) {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (&self.cols[a..b], &self.vals[a..b])
    }

    /// Appends one entry to the row being built.
    pub fn push(&mut self, col: u16, val: I32F32) {
        self.cols.push(col);
        self.vals.push(val);
    }

    /// Closes the row being built.
    pub fn end_row(&mut self) {
        self.offsets.push(self.cols.len() as u32);
    }

    /// `inplace_col_normalize_sparse` over `n` columns: saturating column sums (entries of
    /// columns >= n are left as they are), then divide where the sum is non-zero.
    pub fn col_normalize(&mut self, n: usize) {
        let mut sums = vec![I32F32::ZERO; n];
        for (&c, &v) in self.cols.iter().zip(&self.vals) {
            if let Some(s) = sums.get_mut(c as usize) {
                *s = s.saturating_add(v);
            }
        }
        let divisors: Vec<I32F32Divisor> = sums.into_iter().map(I32F32Divisor::new).collect();
        for (&c, v) in self.cols.iter().zip(self.vals.iter_mut()) {
            if let Some(d) = divisors.get(c as usize)
                && d.divisor() != I32F32::ZERO
            {
                *v = d.safe_div(*v);
            }
        }
    }

    /// `inplace_col_max_upscale_sparse` over `n` columns: divide by the column maximum.
    pub fn col_max_upscale(&mut self, n: usize) {
        let mut maxes = vec![I32F32::ZERO; n];
        for (&c, &v) in self.cols.iter().zip(&self.vals) {
            if let Some(m) = maxes.get_mut(c as usize)
                && *m < v
            {
                *m = v;
            }
        }
        let divisors: Vec<I32F32Divisor> = maxes.into_iter().map(I32F32Divisor::new).collect();
        for (&c, v) in self.cols.iter().zip(self.vals.iter_mut()) {
            if let Some(d) = divisors.get(c as usize)
                && d.divisor() != I32F32::ZERO
            {
                *v = d.safe_div(*v);
            }
        }
    }
}

/// Buffers of dropped matrices kept per thread for the next ones: an epoch builds about ten
/// matrices of nnz entries, and fresh multi-megabyte allocations cost page faults each time.
#[derive(Default)]
struct Pool {
    offsets: Vec<Vec<u32>>,
    cols: Vec<Vec<u16>>,
    vals: Vec<Vec<I32F32>>,
}

impl Pool {
    /// Bytes the pooled buffers hold (at most 3 * POOL_KEEP of them).
    fn bytes(&self) -> usize {
        fn size<T>(list: &[Vec<T>]) -> usize {
            list.iter().map(|v| size_of::<T>() * v.capacity()).sum()
        }
        size(&self.offsets) + size(&self.cols) + size(&self.vals)
    }
}

/// Buffers kept per kind and thread: enough for every matrix one epoch holds at once.
const POOL_KEEP: usize = 12;

/// Bytes kept per thread at most, so that one huge epoch does not pin its memory for the
/// life of a daemon: enough for the ten or so matrices of an epoch with 2.5 million
/// entries.
const POOL_MAX_BYTES: usize = 256 << 20;

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// An empty vector with room for `cap`, from the pool when it has one.
fn reuse<T>(pool: &mut Vec<Vec<T>>, cap: usize) -> Vec<T> {
    match pool.pop() {
        Some(mut v) => {
            v.clear();
            v.reserve(cap);
            v
        }
        None => Vec::with_capacity(cap),
    }
}

/// Returns a buffer to the pool unless the pool is full or the buffer would take the
/// `held` bytes past the budget; `held` counts it in when kept.
fn recycle<T>(pool: &mut Vec<Vec<T>>, held: &mut usize, v: Vec<T>) {
    let size = size_of::<T>() * v.capacity();
    if pool.len() < POOL_KEEP && size > 0 && *held + size <= POOL_MAX_BYTES {
        *held += size;
        pool.push(v);
    }
}

impl Clone for Csr {
    fn clone(&self) -> Self {
        let mut out = Self::with_capacity(self.rows(), self.cols.len());
        out.offsets.clear();
        out.offsets.extend_from_slice(&self.offsets);
        out.cols.extend_from_slice(&self.cols);
        out.vals.extend_from_slice(&self.vals);
        out
    }
}

impl Drop for Csr {
    fn drop(&mut self) {
        // `try_with`: during thread teardown the pool may already be gone; then just free.
        let _ = POOL.try_with(|pool| {
            if let Ok(mut pool) = pool.try_borrow_mut() {
                let pool = &mut *pool;
                let mut held = pool.bytes();
                recycle(
                    &mut pool.offsets,
                    &mut held,
                    std::mem::take(&mut self.offsets),
                );
                recycle(&mut pool.cols, &mut held, std::mem::take(&mut self.cols));
                recycle(&mut pool.vals, &mut held, std::mem::take(&mut self.vals));
            }
        });
    }
}

/// `inplace_normalize`: divide by the (wrapping) sum unless it is zero.
pub fn normalize(x: &mut [I32F32]) {
    let sum = wrapping_sum(x);
    normalize_using_sum(x, sum);
}

/// `inplace_normalize_using_sum`.
pub fn normalize_using_sum(x: &mut [I32F32], sum: I32F32) {
    if sum != I32F32::ZERO {
        let d = I32F32Divisor::new(sum);
        x.iter_mut().for_each(|v| *v = d.safe_div(*v));
    }
}

/// Upstream `Iterator::sum` of I32F32 in a release build.
pub fn wrapping_sum(x: &[I32F32]) -> I32F32 {
    x.iter().fold(I32F32::ZERO, |s, &v| s.wrapping_add(v))
}

/// Dense scratch row reused across rows: values by column plus the list of touched columns.
pub struct Scratch {
    /// Value per column.
    pub vals: Vec<I32F32>,
    /// Whether a column holds a value.
    pub set: Vec<bool>,
    /// Columns touched since the last clear.
    pub touched: Vec<u16>,
}

impl Scratch {
    /// A scratch row of `n` columns.
    pub fn new(n: usize) -> Self {
        Self {
            vals: vec![I32F32::ZERO; n],
            set: vec![false; n],
            touched: Vec::new(),
        }
    }

    /// Marks column `c` touched (once) and returns its cell.
    pub fn cell(&mut self, c: u16) -> &mut I32F32 {
        let ci = c as usize;
        if !self.set[ci] {
            self.set[ci] = true;
            self.touched.push(c);
        }
        &mut self.vals[ci]
    }

    /// Resets every touched column.
    pub fn clear(&mut self) {
        for &c in &self.touched {
            self.vals[c as usize] = I32F32::ZERO;
            self.set[c as usize] = false;
        }
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the pool of this thread holds.
    fn held() -> usize {
        POOL.with(|p| p.borrow().bytes())
    }

    #[test]
    fn the_pool_keeps_no_more_than_its_budget() {
        // Each of these holds over half the budget (capacity only: no page is touched).
        let entry = size_of::<u16>() + size_of::<I32F32>();
        let big = POOL_MAX_BYTES / entry / 2 + 1;
        let (a, b) = (Csr::with_capacity(1, big), Csr::with_capacity(1, big));
        drop(a);
        drop(b);
        let bytes = held();
        assert!(bytes <= POOL_MAX_BYTES, "{bytes} bytes pooled");
        assert!(bytes >= entry * big, "the first matrix should be kept");
        // Reusing takes buffers out of the pool; dropping keeps it within the budget.
        let c = Csr::with_capacity(1, 1);
        assert!(held() < bytes);
        drop(c);
        assert!(held() <= POOL_MAX_BYTES);
    }
}
