//! CPU epoch benchmarks: one epoch on one thread at n = 64..4096 (64 validators with full
//! weight rows, warm bonds), Yuma3 + liquid alpha and original Yuma; and a batch of 128
//! subnets of n = 256 across all cores; and n = 256 with and without dense blocks.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use yuma::epoch::Layout;
use yuma::example::{Variant, realistic};

fn single_epoch(c: &mut Criterion) {
    let mut g = c.benchmark_group("epoch_single_thread");
    for variant in [Variant::Yuma3Liquid, Variant::Original] {
        for n in [64u16, 256, 1024, 4096] {
            let input = realistic(n, 64, variant, 7);
            let name = format!("{variant:?}");
            if n >= 1024 {
                g.sample_size(10);
            }
            g.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
                b.iter(|| yuma::epoch::run_epoch(black_box(input)).expect("valid example"))
            });
        }
    }
    g.finish();
}

/// The same epochs with dense blocks allowed (`Auto`) and forbidden (`Sparse`), side by
/// side in one run.
fn layouts(c: &mut Criterion) {
    let mut g = c.benchmark_group("epoch_layout");
    for variant in [Variant::Yuma3Liquid, Variant::Original] {
        let input = realistic(256, 64, variant, 7);
        for layout in [Layout::Auto, Layout::Sparse] {
            g.bench_with_input(
                BenchmarkId::new(format!("{variant:?}/{layout:?}"), 256),
                &input,
                |b, input| {
                    b.iter(|| {
                        yuma::epoch::run_epoch_with(black_box(input), layout)
                            .expect("valid example")
                    })
                },
            );
        }
    }
    g.finish();
}

fn batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("epoch_batch_all_cores");
    g.sample_size(10);
    for variant in [Variant::Yuma3Liquid, Variant::Original] {
        let inputs: Vec<_> = (0..128).map(|s| realistic(256, 64, variant, s)).collect();
        g.throughput(Throughput::Elements(inputs.len() as u64));
        g.bench_with_input(
            BenchmarkId::new(format!("{variant:?}"), "128x256"),
            &inputs,
            |b, inputs| b.iter(|| yuma::epoch::run_batch(black_box(inputs))),
        );
    }
    g.finish();
}

criterion_group!(benches, single_epoch, layouts, batch);
criterion_main!(benches);
