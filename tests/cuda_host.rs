//! Host differential test of the CUDA kernels (no GPU needed): the kernel sources
//! (`kernels/*.cu`, `fixed.cuh`, `batch.cuh`, all `__host__ __device__` code on
//! fixed-width integers) are compiled with the system C++ compiler together with
//! `tests/cuda_host/driver.cpp`, which emulates the grid (one block per epoch; blocks and
//! threads run one after another, forward or in reverse, at several block sizes). Packed
//! batches go through it via files and must unpack to exactly what the CPU path computes:
//! every conformance case (also against the chain's output) and seeded generated epochs.
//!
//! Needs a C++17 compiler (`$CXX`, else `g++`, `c++` or `clang++`); without one it skips
//! with one visible line, or fails when `YUMA_REQUIRE_CXX=1`.
//! `YUMA_HOST_CXXFLAGS` adds compiler flags (e.g. sanitizers).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use yuma::backend::EpochResult;
use yuma::backend::cuda::{
    finish, input_words, kernel_order, output_from_words, output_words, prepare,
};
use yuma::backend::pack::PackedBatch;
use yuma::fixed::{
    I32F32, I32F32Divisor, I64F64, I96F32, U96F32, exp, exp_safe, fixed_proportion_to_u16, ln,
    safe_exp, safe_ln, u16_proportion_to_fixed,
};
use yuma::model::{Case, EpochInput, EpochOutput, SparseMatrix};

/// Grid emulations every batch runs under: (threads per block, reverse order).
const GRIDS: [(u32, bool); 3] = [(1, false), (5, true), (256, false)];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory for this test process.
fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yuma-cuda-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The first C++ compiler that answers `--version`; `None` (after the skip line) when
/// there is none, unless `YUMA_REQUIRE_CXX=1` makes that a failure.
fn compiler() -> Option<&'static str> {
    static CXX: OnceLock<Option<String>> = OnceLock::new();
    let found = CXX.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("CXX")
            .into_iter()
            .chain(["g++", "c++", "clang++"].map(String::from))
            .collect();
        candidates.iter().find_map(|cxx| {
            Command::new(cxx)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
                .then(|| cxx.clone())
        })
    });
    if found.is_none() {
        common::skip::skip(
            "cuda_host",
            common::skip::CXX,
            "tried $CXX, g++, c++ and clang++",
        );
    }
    found.as_deref()
}

/// Compiles `tests/cuda_host/<source>` with the kernel headers into `<name>`.
fn build(source: &str, name: &str) -> PathBuf {
    let cxx = compiler().expect("each test checks for a compiler first");
    let exe = work_dir().join(name);
    let out = Command::new(cxx)
        .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-I"])
        .arg(root().join("kernels"))
        // Extra flags, e.g. sanitizers: YUMA_HOST_CXXFLAGS="-fsanitize=undefined,address".
        .args(
            std::env::var("YUMA_HOST_CXXFLAGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .args(["-x", "c++"])
        .arg(root().join("tests/cuda_host").join(source))
        .arg("-o")
        .arg(&exe)
        .output()
        .unwrap_or_else(|e| panic!("running {cxx}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cxx} failed to compile {source} with the kernels:\n{stderr}"
    );
    if !stderr.trim().is_empty() {
        eprintln!("{cxx} warnings:\n{stderr}");
    }
    eprintln!("cuda host: {source} compiled with {cxx}");
    exe
}

/// Builds the grid driver once per test process.
fn driver() -> &'static Path {
    static DRIVER: OnceLock<PathBuf> = OnceLock::new();
    DRIVER.get_or_init(|| build("driver.cpp", "driver"))
}

/// Runs a batch through the host-compiled kernels: one result per input, in order.
fn run_host(inputs: &[EpochInput], threads: u32, reverse: bool, tag: &str) -> Vec<EpochResult> {
    let prepared = prepare(inputs);
    let dir = work_dir();
    let (input, output) = (
        dir.join(format!("{tag}.in")),
        dir.join(format!("{tag}.out")),
    );
    std::fs::write(&input, encode(&prepared.batch)).expect("write batch");
    let status = Command::new(driver())
        .arg(&input)
        .arg(&output)
        .arg(threads.to_string())
        .arg(if reverse { "rev" } else { "fwd" })
        .args(kernel_order())
        .status()
        .expect("run driver");
    assert!(status.success(), "driver failed on {tag}");
    let bufs = decode_buffers(&std::fs::read(&output).expect("read output"));
    let expected: Vec<usize> = output_words(&prepared.batch).to_vec();
    assert_eq!(
        bufs.iter().map(Vec::len).collect::<Vec<_>>(),
        expected,
        "output buffer sizes"
    );
    let (out, st) = output_from_words(bufs);
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    finish(prepared, &out, &st)
}

/// The input buffers, each as a little-endian u64 byte length then its words.
fn encode(batch: &PackedBatch) -> Vec<u8> {
    let mut bytes = Vec::new();
    for words in input_words(batch) {
        bytes.extend_from_slice(&(words.len() as u64 * 4).to_le_bytes());
        words
            .iter()
            .for_each(|w| bytes.extend_from_slice(&w.to_le_bytes()));
    }
    bytes
}

fn decode_buffers(mut bytes: &[u8]) -> Vec<Vec<u32>> {
    let mut bufs = Vec::new();
    while !bytes.is_empty() {
        let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let body = &bytes[8..8 + len];
        bufs.push(
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        );
        bytes = &bytes[8 + len..];
    }
    bufs
}

/// Compares every grid emulation's results with the CPU path (and `chain`, when given);
/// returns the failures.
fn compare(label: &str, inputs: &[EpochInput], chain: &[Option<&EpochOutput>]) -> Vec<String> {
    let cpu: Vec<EpochResult> = inputs.iter().map(yuma::epoch::run_epoch).collect();
    let mut failures = Vec::new();
    for (threads, reverse) in GRIDS {
        let tag = format!("{label}-{threads}-{}", if reverse { "rev" } else { "fwd" });
        let got = run_host(inputs, threads, reverse, &tag);
        assert_eq!(got.len(), inputs.len());
        for (i, (g, c)) in got.iter().zip(&cpu).enumerate() {
            let what = |m: String| format!("{tag} epoch {i} (n = {}): {m}", inputs[i].n);
            match (g, c) {
                (Ok(g), Ok(c)) => {
                    if let Some(m) = c.first_difference(g) {
                        failures.push(what(format!("vs CPU: {m}")));
                    }
                    if let Some(Some(m)) =
                        chain.get(i).map(|w| w.and_then(|w| w.first_difference(g)))
                    {
                        failures.push(what(format!("vs chain: {m}")));
                    }
                }
                (g, c) if g == c => {}
                (g, c) => failures.push(what(format!("got {g:?}, CPU {c:?}"))),
            }
        }
    }
    failures
}

#[test]
fn host_kernels_match_every_conformance_case() {
    if compiler().is_none() {
        return;
    }
    let cases: Vec<Case> = common::cases::conformance_cases()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    let inputs: Vec<EpochInput> = cases.iter().map(|c| c.input.clone()).collect();
    let chain: Vec<Option<&EpochOutput>> = cases.iter().map(|c| c.output.as_ref()).collect();
    let with_chain = chain.iter().filter(|c| c.is_some()).count();
    let failures = compare("conformance", &inputs, &chain);
    common::report(
        &format!(
            "cuda host: {} conformance cases ({with_chain} with chain outputs) x {} grid emulations, {} mismatches",
            cases.len(),
            GRIDS.len(),
            failures.len()
        ),
        &failures,
    );
}

/// Every era case, liquid alpha v1 (specs 233-272) included, against the CPU and the
/// chain's outputs.
#[test]
fn host_kernels_match_every_era_case() {
    if compiler().is_none() {
        return;
    }
    let cases = common::cases::era_cases();
    let liquid_v1 = cases
        .iter()
        .filter(|(_, c)| c.input.liquid_alpha && c.input.spec_version.is_some_and(|s| s < 273))
        .count();
    assert!(liquid_v1 > 0, "no liquid alpha v1 era case found");
    let inputs: Vec<EpochInput> = cases.iter().map(|(_, c)| c.input.clone()).collect();
    let chain: Vec<Option<&EpochOutput>> = cases.iter().map(|(_, c)| c.output.as_ref()).collect();
    let failures = compare("eras", &inputs, &chain);
    common::report(
        &format!(
            "cuda host: {} era cases ({liquid_v1} with liquid alpha v1) x {} grid emulations, {} mismatches",
            cases.len(),
            GRIDS.len(),
            failures.len()
        ),
        &failures,
    );
}

/// Random epochs under every era's rule set (liquid alpha v1 included).
#[test]
fn host_kernels_match_cpu_in_every_era() {
    if compiler().is_none() {
        return;
    }
    let mut rng = common::epochgen::Rng::new(0x5EED_E4A1);
    let mut failures = Vec::new();
    for &spec in &yuma::epoch::rules::ERAS {
        let inputs: Vec<EpochInput> = (0..24)
            .map(|_| {
                let n = rng.pick(&[0, 1, 2, 7, 16, 33]);
                let density = rng.pick(&[0, 10, 50, 100]);
                let shape = common::epochgen::shape(&mut rng, n, density);
                common::epochgen::era_epoch(&mut rng, shape, spec)
            })
            .collect();
        failures.extend(compare(&format!("spec{spec}"), &inputs, &[]));
    }
    common::report(
        &format!(
            "cuda host: random era epochs, {} mismatches",
            failures.len()
        ),
        &failures,
    );
}

/// Every format 2 case: all mechanisms' epochs in one host-emulated CUDA batch per grid,
/// split and fold on the host, exactly the chain's outputs.
#[test]
fn host_kernels_match_every_subnet_case() {
    if compiler().is_none() {
        return;
    }
    for (threads, reverse) in GRIDS {
        let tag = format!("subnets-{threads}-{}", if reverse { "rev" } else { "fwd" });
        common::cases::check_subnets(&format!("cuda host {tag}"), |epochs| {
            run_host(epochs, threads, reverse, &tag)
        });
    }
}

/// xorshift64*: a small seeded generator, so every run checks the same epochs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            xs.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

/// Rows of distinct columns from `0..n + 3` (so some are >= n), possibly unsorted, with
/// tie-heavy values and explicit zeros; `dense` rows hold every column below n.
fn rows(rng: &mut Rng, n: usize, dense: bool, values: &[u16]) -> SparseMatrix {
    let rows: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|_| {
            let mut cols: Vec<u16> = if dense {
                (0..n as u16).collect()
            } else if rng.chance(15) {
                Vec::new()
            } else {
                let mut all: Vec<u16> = (0..n as u16 + 3).collect();
                rng.shuffle(&mut all);
                all.truncate(rng.below(n as u64 + 4).min(48) as usize);
                all
            };
            if rng.chance(50) {
                cols.sort_unstable();
            } else if dense && rng.chance(20) {
                rng.shuffle(&mut cols);
            }
            cols.into_iter()
                .map(|c| {
                    let v = if rng.chance(20) {
                        rng.below(65536) as u16
                    } else {
                        rng.pick(values)
                    };
                    (c, v)
                })
                .collect()
        })
        .collect();
    SparseMatrix::from_rows(&rows)
}

/// One random epoch of size `n`.
fn epoch(rng: &mut Rng, n: usize, dense: bool) -> EpochInput {
    let current_block = 5_000 + rng.below(1_000_000);
    let all_zero_stake = rng.chance(8);
    let stake = |rng: &mut Rng| -> u64 {
        if all_zero_stake || rng.chance(25) {
            0
        } else if rng.chance(3) {
            // Large, yet 512 of them still sum below I64F64's 2^63 integer limit.
            1 << 53
        } else {
            let scale = rng.pick(&[1_000, 1_000_000_000, 1 << 50]);
            rng.below(scale)
        }
    };
    let alpha_stake: Vec<u64> = (0..n).map(|_| stake(rng)).collect();
    let tao_stake: Vec<u64> = (0..n).map(|_| stake(rng)).collect();
    let last_update: Vec<u64> = (0..n)
        .map(|_| current_block.saturating_sub(rng.below(10_000)) + rng.below(3))
        .collect();
    let block_at_registration: Vec<u64> = (0..n)
        .map(|_| current_block.saturating_sub(rng.below(20_000)))
        .collect();
    let commit_block: Vec<Option<u64>> = (0..n)
        .map(|_| {
            rng.chance(40)
                .then(|| current_block.saturating_sub(rng.below(20_000)))
        })
        .collect();
    // Random draws for the scalar choices below.
    let (r16, r64, lms) = (
        rng.below(65536) as u16,
        rng.next(),
        current_block.saturating_sub(rng.below(500)),
    );
    let (bma, threshold) = (rng.below(1_000_001), rng.below(1 << 40));
    let owner = (n > 0 && rng.chance(60)).then(|| rng.below(n as u64) as u16);
    let weights = rows(rng, n, dense, &[0, 1, 100, 32768, 65535]);
    let dense_bonds = dense && rng.chance(50);
    let bonds = rows(rng, n, dense_bonds, &[0, 1, 65535, 40000]);
    EpochInput {
        n: n as u16,
        current_block,
        tempo: rng.pick(&[0, 1, 99, 360, 65535]),
        activity_cutoff: rng.pick(&[0, 1, 100, 5_000, u64::MAX]),
        last_mechanism_step_block: rng.pick(&[0, lms, current_block]),
        kappa: rng.pick(&[32767, 0, 65535, r16]),
        bonds_penalty: rng.pick(&[0, 65535, r16 / 2 + 1]),
        bonds_moving_average: rng.pick(&[0, 1_000_000, 900_000, 975_000, bma]),
        max_allowed_validators: rng.pick(&[0, 1, (n / 2) as u16, n as u16, n as u16 + 3, 64]),
        stake_threshold: rng.pick(&[0, 1_000, threshold]),
        tao_weight: rng.pick(&[0, u64::MAX, r64, 0x3333_3333_3333_3333]),
        owner_uid: owner,
        yuma3: rng.chance(65),
        liquid_alpha: rng.chance(60),
        alpha_low: rng.pick(&[45875, 0, r16 / 3]),
        alpha_high: rng.pick(&[58982, 65535, r16]),
        alpha_sigmoid_steepness: rng.pick(&[1000, 0, -1000, r64 as i16]),
        commit_reveal: rng.chance(40),
        commit_block,
        emission: rng.pick(&[0, u64::MAX, 1_000_000_000, r64 >> 3]),
        alpha_stake,
        tao_stake,
        last_update,
        block_at_registration,
        validator_permit: (0..n).map(|_| rng.chance(70)).collect(),
        weights,
        bonds,
        spec_version: None,
    }
}

/// Three equal validators, kappa = 1/3: the cumulative stake of the two lowest scores of
/// column 3 equals `minority` exactly, where `>` and `>=` pick different medians.
fn minority_tie_epoch(rng: &mut Rng, yuma3: bool) -> EpochInput {
    let mut x = epoch(rng, 4, false);
    x.alpha_stake = vec![1_000_000, 1_000_000, 1_000_000, 0];
    x.tao_stake = vec![0; 4];
    x.stake_threshold = 0;
    x.kappa = 21845;
    x.activity_cutoff = u64::MAX;
    x.block_at_registration = vec![0; 4];
    x.last_update = vec![x.current_block; 4];
    x.validator_permit = vec![true, true, true, false];
    x.max_allowed_validators = 3;
    x.commit_reveal = false;
    x.owner_uid = None;
    x.yuma3 = yuma3;
    x.weights = SparseMatrix::from_rows(&[
        vec![(3, 1000), (1, 1000)],
        vec![(3, 1000), (0, 3000)],
        vec![(3, 3000), (0, 1000)],
        vec![],
    ]);
    x
}

#[test]
fn host_kernels_match_cpu_on_generated_epochs() {
    if compiler().is_none() {
        return;
    }
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let sizes = [0usize, 1, 1, 2, 3, 4, 5, 8, 16, 17, 33, 64, 100, 257];
    let mut batches: Vec<Vec<EpochInput>> = Vec::new();
    for b in 0..6 {
        let mut batch: Vec<EpochInput> = (0..40)
            .map(|_| {
                let n = rng.pick(&sizes);
                epoch(&mut rng, n, false)
            })
            .collect();
        // A stake sum that overflows I64F64 fails its epoch only.
        let mut overflow = epoch(&mut rng, 4, false);
        overflow.alpha_stake = vec![u64::MAX; 4];
        overflow.stake_threshold = 0;
        batch.insert(rng.below(batch.len() as u64) as usize, overflow);
        // An invalid input fails its epoch only.
        let mut invalid = epoch(&mut rng, 8, false);
        invalid.last_update.pop();
        batch.insert(rng.below(batch.len() as u64) as usize, invalid);
        batch.push(minority_tie_epoch(&mut rng, b % 2 == 0));
        batches.push(batch);
    }
    // Dense 1,024-uid subnets: Yuma3 with liquid alpha and original Yuma, mixed with small ones.
    let mut dense: Vec<EpochInput> = Vec::new();
    for (yuma3, liquid) in [(true, true), (false, false), (true, false)] {
        let mut x = epoch(&mut rng, 1024, true);
        x.yuma3 = yuma3;
        x.liquid_alpha = liquid;
        dense.push(x);
        let n = rng.pick(&sizes);
        dense.push(epoch(&mut rng, n, false));
    }
    batches.push(dense);

    let (mut total, mut ok, mut rejected, mut failures) = (0, 0, 0, Vec::new());
    for (b, batch) in batches.iter().enumerate() {
        failures.extend(compare(&format!("generated{b}"), batch, &[]));
        for x in batch {
            total += 1;
            match yuma::epoch::run_epoch(x) {
                Ok(_) => ok += 1,
                Err(_) => rejected += 1,
            }
        }
    }
    common::report(
        &format!(
            "cuda host: {total} generated epochs ({ok} valid, {rejected} rejected, sizes 0 to 1024) in {} batches \
             x {} grid emulations, {} mismatches",
            batches.len(),
            GRIDS.len(),
            failures.len()
        ),
        &failures,
    );
}

/// Original Yuma on 40,000 uids whose bond column 0 holds 65535 in every row: its raw
/// column sum (40,000 * 65535 as I32F32) passes i64::MAX, so the column normalisation
/// divides by the saturated sum. One grid emulation: the epoch alone is large.
#[test]
fn host_kernels_match_cpu_on_a_saturating_bond_column() {
    if compiler().is_none() {
        return;
    }
    let mut rng = Rng(0x5A7_0B0D);
    let n = 40_000usize;
    let mut x = epoch(&mut rng, 0, false);
    x.n = n as u16;
    x.yuma3 = false;
    x.current_block = 1_000_000;
    x.last_mechanism_step_block = 999_000;
    x.activity_cutoff = 5_000;
    x.stake_threshold = 0;
    x.max_allowed_validators = 256;
    x.bonds_moving_average = 900_000;
    x.commit_reveal = false;
    x.owner_uid = Some(7);
    x.alpha_stake = (0..n).map(|_| rng.below(1 << 40)).collect();
    x.tao_stake = vec![0; n];
    x.last_update = (0..n).map(|_| 1_000_000 - rng.below(8_000)).collect();
    x.block_at_registration = (0..n as u64).collect();
    x.commit_block = vec![None; n];
    x.validator_permit = (0..n).map(|_| rng.chance(2)).collect();
    let weight_rows: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|i| {
            let mut cols: Vec<u16> = (0..4)
                .map(|_| rng.below(n as u64 + 2) as u16)
                .filter(|&c| c as usize != i)
                .collect();
            cols.sort_unstable();
            cols.dedup();
            cols.into_iter()
                .map(|c| (c, rng.pick(&[1, 100, 65535])))
                .collect()
        })
        .collect();
    x.weights = SparseMatrix::from_rows(&weight_rows);
    let bond_rows: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|i| {
            if i % 3 == 0 {
                vec![(1, 65535), (0, 65535)]
            } else {
                vec![(0, 65535)]
            }
        })
        .collect();
    x.bonds = SparseMatrix::from_rows(&bond_rows);
    let inputs = [x];
    let cpu = yuma::epoch::run_epoch(&inputs[0]).expect("valid epoch");
    let got = run_host(&inputs, 256, false, "saturating");
    match &got[0] {
        Ok(g) => assert_eq!(
            cpu.first_difference(g),
            None,
            "host kernels differ from the CPU"
        ),
        Err(e) => panic!("host kernels rejected the epoch: {e}"),
    }
    let stored = cpu.bonds.to_rows().iter().filter(|r| !r.is_empty()).count();
    eprintln!(
        "cuda host: saturating bond column sum epoch (n = {n}, {stored} stored bond rows) matched"
    );
}

/// Every `kernels/fixed.cuh` function on one operand record, as src/fixed.rs computes it,
/// in the order `tests/cuda_host/fixed_driver.cpp` writes them.
fn fixed_results(a: i64, b: i64, x: u64, wa: i128, wb: i128) -> Vec<(&'static str, i128)> {
    let mut r: Vec<(&'static str, i128)> = Vec::new();
    fn opt<T>(
        r: &mut Vec<(&'static str, i128)>,
        name: &'static str,
        v: Option<T>,
        f: impl Fn(T) -> i128,
    ) {
        r.push((name, v.is_some() as i128));
        r.push((name, v.map_or(0, f)));
    }
    let (fa, fb) = (I32F32(a), I32F32(b));
    let (p, q) = (I64F64(wa), I64F64(wb));
    r.push(("I32F32::from_u16", I32F32::from_u16(x as u16).0 as i128));
    r.push((
        "I32F32::saturating_from_int",
        I32F32::saturating_from_int(b).0 as i128,
    ));
    r.push((
        "I32F32::saturating_from_i64f64",
        I32F32::saturating_from_i64f64(p).0 as i128,
    ));
    r.push(("I32F32::saturating_add", fa.saturating_add(fb).0 as i128));
    r.push(("I32F32::saturating_sub", fa.saturating_sub(fb).0 as i128));
    r.push(("I32F32::wrapping_add", fa.wrapping_add(fb).0 as i128));
    opt(&mut r, "I32F32::checked_add", fa.checked_add(fb), |v| {
        v.0 as i128
    });
    opt(&mut r, "I32F32::checked_neg", fa.checked_neg(), |v| {
        v.0 as i128
    });
    opt(&mut r, "I32F32::checked_mul", fa.checked_mul(fb), |v| {
        v.0 as i128
    });
    r.push(("I32F32::saturating_mul", fa.saturating_mul(fb).0 as i128));
    opt(&mut r, "I32F32::checked_div", fa.checked_div(fb), |v| {
        v.0 as i128
    });
    r.push(("I32F32::saturating_div", fa.saturating_div(fb).0 as i128));
    r.push(("I32F32::safe_div", fa.safe_div(fb).0 as i128));
    r.push(("I32F32::saturating_to_u16", fa.saturating_to_u16() as i128));
    r.push(("I32F32::saturating_to_u64", fa.saturating_to_u64() as i128));
    r.push(("I32F32::max_of", fa.max_of(fb).0 as i128));
    r.push(("I32F32::min_of", fa.min_of(fb).0 as i128));
    let d = I32F32Divisor::new(fb);
    opt(
        &mut r,
        "I32F32Divisor::checked_div",
        d.checked_div(fa),
        |v| v.0 as i128,
    );
    r.push(("I32F32Divisor::safe_div", d.safe_div(fa).0 as i128));
    r.push(("I32F32Divisor::divisor", d.divisor().0 as i128));
    r.push((
        "u16_proportion_to_fixed",
        u16_proportion_to_fixed(x as u16).0 as i128,
    ));
    r.push((
        "fixed_proportion_to_u16",
        fixed_proportion_to_u16(fa) as i128,
    ));
    opt(&mut r, "exp", exp(fa), |v| v.0 as i128);
    r.push(("exp_safe", exp_safe(fa).0 as i128));
    r.push(("safe_exp", safe_exp(fa).0 as i128));
    opt(&mut r, "ln", ln(fa), |v| v.0 as i128);
    r.push(("safe_ln", safe_ln(fa).0 as i128));
    r.push((
        "I64F64::saturating_from_u64",
        I64F64::saturating_from_u64(x).0,
    ));
    r.push((
        "I64F64::saturating_from_u96f32",
        I64F64::saturating_from_u96f32(U96F32(wa as u128)).0,
    ));
    r.push(("I64F64::saturating_add", p.saturating_add(q).0));
    opt(&mut r, "I64F64::checked_add", p.checked_add(q), |v| v.0);
    r.push(("I64F64::saturating_mul", p.saturating_mul(q).0));
    opt(&mut r, "I64F64::checked_div", p.checked_div(q), |v| v.0);
    r.push(("I64F64::safe_div", p.safe_div(q).0));
    r.push(("I64F64::saturating_to_u64", p.saturating_to_u64() as i128));
    r.push(("I96F32::from_i32f32", I96F32::from_i32f32(fa).0));
    r.push(("I96F32::from_u64", I96F32::from_u64(x).0));
    r.push((
        "I96F32::saturating_mul",
        I96F32(wa).saturating_mul(I96F32(wb)).0,
    ));
    r.push((
        "I96F32::saturating_to_u64",
        I96F32(wa).saturating_to_u64() as i128,
    ));
    r.push(("U96F32::from_u64", U96F32::from_u64(x).0 as i128));
    opt(
        &mut r,
        "U96F32::checked_div",
        U96F32(wa as u128).checked_div(U96F32(wb as u128)),
        |v| v.0 as i128,
    );
    r.push((
        "U96F32::safe_div",
        U96F32(wa as u128).safe_div(U96F32(wb as u128)).0 as i128,
    ));
    r
}

#[test]
fn host_fixed_point_matches_src_fixed() {
    if compiler().is_none() {
        return;
    }
    let exe = build("fixed_driver.cpp", "fixed_driver");
    let mut rng = Rng(0x000F_17ED_C0DE);
    const ONE: i64 = 1 << 32;
    let edges64: [i64; 16] = [
        0,
        1,
        -1,
        ONE,
        -ONE,
        ONE / 2,
        i64::MAX,
        i64::MIN,
        i64::MAX - 1,
        i64::MIN + 1,
        65535 * ONE,
        20 * ONE,
        -20 * ONE,
        21 * ONE,
        3 * ONE + 7,
        -(1 << 62),
    ];
    let edges128: [i128; 10] = [
        0,
        1,
        -1,
        1 << 64,
        -(1 << 64),
        i128::MAX,
        i128::MIN,
        1 << 95,
        (1 << 95) - 1,
        u64::MAX as i128,
    ];
    let edges_u64 = [
        0,
        1,
        65535,
        65536,
        u64::MAX,
        i64::MAX as u64,
        1 << 63,
        1_000_000,
    ];
    let mut records: Vec<(i64, i64, u64, i128, i128)> = Vec::new();
    for (i, &a) in edges64.iter().enumerate() {
        for (j, &b) in edges64.iter().enumerate() {
            let k = i * edges64.len() + j;
            let (wa, wb) = (
                edges128[k % edges128.len()],
                edges128[(k / edges128.len()) % edges128.len()],
            );
            records.push((a, b, edges_u64[k % edges_u64.len()], wa, wb));
        }
    }
    for _ in 0..20_000 {
        let i64s = |rng: &mut Rng| -> i64 {
            if rng.chance(15) {
                rng.pick(&edges64)
            } else {
                (rng.next() as i64) >> rng.below(64)
            }
        };
        let (a, b) = (i64s(&mut rng), i64s(&mut rng));
        let x = if rng.chance(20) {
            rng.pick(&edges_u64)
        } else {
            rng.next() >> rng.below(64)
        };
        let i128s = |rng: &mut Rng| -> i128 {
            if rng.chance(15) {
                rng.pick(&edges128)
            } else {
                (((rng.next() as u128) << 64 | rng.next() as u128) as i128) >> rng.below(128)
            }
        };
        let (wa, wb) = (i128s(&mut rng), i128s(&mut rng));
        records.push((a, b, x, wa, wb));
    }
    let mut bytes = Vec::new();
    for &(a, b, x, wa, wb) in &records {
        for w in [
            a as u64,
            b as u64,
            x,
            wa as u64,
            (wa >> 64) as u64,
            wb as u64,
            (wb >> 64) as u64,
        ] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
    }
    let dir = work_dir();
    let (input, output) = (dir.join("fixed.in"), dir.join("fixed.out"));
    std::fs::write(&input, bytes).expect("write operands");
    let status = Command::new(&exe)
        .arg(&input)
        .arg(&output)
        .status()
        .expect("run fixed driver");
    assert!(status.success(), "fixed driver failed");
    let got: Vec<i128> = std::fs::read(&output)
        .expect("read results")
        .chunks_exact(16)
        .map(|c| i128::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut at = 0;
    let mut failures = Vec::new();
    let mut checked = 0;
    for &(a, b, x, wa, wb) in &records {
        for (name, want) in fixed_results(a, b, x, wa, wb) {
            let g = *got
                .get(at)
                .unwrap_or_else(|| panic!("fixed driver wrote too few results"));
            if g != want && failures.len() < 20 {
                failures.push(format!(
                    "{name}(a = {a}, b = {b}, x = {x}, A = {wa}, B = {wb}): got {g}, want {want}"
                ));
            }
            at += 1;
            checked += 1;
        }
    }
    assert_eq!(
        at,
        got.len(),
        "fixed driver wrote a different number of results"
    );
    common::report(
        &format!(
            "cuda host: fixed.cuh vs src/fixed.rs: {} operand records, {checked} results compared",
            records.len()
        ),
        &failures,
    );
}
