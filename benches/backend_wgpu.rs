//! A batch of 128 Yuma3 + liquid alpha epochs of 256 uids (half-dense weights), on the
//! wgpu backend and on the CPU backend. Without a wgpu adapter only the CPU side runs,
//! after a loud notice.

#[path = "../tests/common/epochgen.rs"]
#[allow(dead_code)]
mod epochgen;

use criterion::{Criterion, criterion_group, criterion_main};
use yuma::backend::Backend;
use yuma::backend::cpu::CpuBackend;
use yuma::backend::wgpu::WgpuBackend;
use yuma::model::EpochInput;

fn batch() -> Vec<EpochInput> {
    let mut rng = epochgen::Rng::new(0xBE7C_0128);
    (0..128)
        .map(|_| {
            let shape = epochgen::Shape {
                n: 256,
                density: 50,
                yuma3: true,
                liquid_alpha: true,
                bonds_penalty: 65_535,
            };
            epochgen::epoch(&mut rng, shape)
        })
        .collect()
}

fn backends(c: &mut Criterion) {
    let inputs = batch();
    let mut group = c.benchmark_group("batch128_n256_yuma3_liquid");
    group.sample_size(10);
    let cpu = CpuBackend::new();
    group.bench_function("cpu", |b| {
        b.iter(|| cpu.run_batch(&inputs).expect("cpu batch"))
    });
    match WgpuBackend::new(true) {
        Ok(gpu) => {
            eprintln!("wgpu bench on {}", gpu.describe());
            group.bench_function("wgpu", |b| {
                b.iter(|| gpu.run_batch(&inputs).expect("wgpu batch"))
            });
        }
        Err(e) => eprintln!("SKIPPED: wgpu side of the bench: {e}"),
    }
    group.finish();
}

criterion_group!(benches, backends);
criterion_main!(benches);
