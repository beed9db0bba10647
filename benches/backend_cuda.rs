//! Batches of Yuma3 + liquid alpha epochs on the CUDA backend and on the CPU backend:
//! 1,024 subnets of n = 256 (the throughput target) and one n = 4,096 epoch (the latency
//! target). Without a CUDA device only the CPU side runs, after a loud notice.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use yuma::backend::Backend;
use yuma::backend::cpu::CpuBackend;
use yuma::backend::cuda::CudaBackend;
use yuma::example::{Variant, realistic};

fn backends(c: &mut Criterion) {
    let cuda = match CudaBackend::new() {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("SKIPPED: CUDA side of the bench: {e}");
            None
        }
    };
    let cpu = CpuBackend::new();
    let cases = [
        (
            "batch1024_n256_y3la",
            (0..1024)
                .map(|s| realistic(256, 64, Variant::Yuma3Liquid, s))
                .collect::<Vec<_>>(),
        ),
        (
            "single_n4096_y3la",
            vec![realistic(4096, 64, Variant::Yuma3Liquid, 1)],
        ),
    ];
    for (name, inputs) in &cases {
        let mut group = c.benchmark_group(*name);
        group.sample_size(10);
        group.throughput(Throughput::Elements(inputs.len() as u64));
        group.bench_function("cpu", |b| {
            b.iter(|| cpu.run_batch(inputs).expect("cpu batch"))
        });
        if let Some(gpu) = &cuda {
            group.bench_function("cuda", |b| {
                b.iter(|| gpu.run_batch(inputs).expect("cuda batch"))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
