//! JSON read and write throughput of epoch inputs and outputs (issue 12 item 4): the
//! 4,096-uid Yuma3 + liquid alpha subnet with 64 full validator rows, compact and pretty.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use yuma::example::{Variant, realistic};
use yuma::model::{EpochInput, EpochOutput, decode};

fn json(c: &mut Criterion) {
    let input = realistic(4096, 64, Variant::Yuma3Liquid, 7);
    let output = yuma::epoch::run_epoch(&input).expect("valid example");
    let mut g = c.benchmark_group("json_4096");
    g.sample_size(10);
    for pretty in [false, true] {
        let style = if pretty { "pretty" } else { "compact" };
        let write = |v: &dyn erased::Ser| v.text(pretty);
        let in_text = write(&input);
        let out_text = write(&output);
        g.throughput(Throughput::Bytes(in_text.len() as u64));
        g.bench_function(format!("input_read/{style}"), |b| {
            b.iter(|| decode::<EpochInput>(black_box(&in_text)).expect("decodes"))
        });
        g.bench_function(format!("input_write/{style}"), |b| {
            b.iter(|| write(black_box(&input)))
        });
        g.throughput(Throughput::Bytes(out_text.len() as u64));
        g.bench_function(format!("output_read/{style}"), |b| {
            b.iter(|| decode::<EpochOutput>(black_box(&out_text)).expect("decodes"))
        });
        g.bench_function(format!("output_write/{style}"), |b| {
            b.iter(|| write(black_box(&output)))
        });
    }
    g.finish();
}

/// Compact or pretty JSON of either type through one closure.
mod erased {
    pub trait Ser {
        fn text(&self, pretty: bool) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn text(&self, pretty: bool) -> String {
            if pretty {
                serde_json::to_string_pretty(self).expect("serialises")
            } else {
                serde_json::to_string(self).expect("serialises")
            }
        }
    }
}

criterion_group!(benches, json);
criterion_main!(benches);
