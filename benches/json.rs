//! JSON read and write throughput of epoch inputs and outputs (issue 12): format 1
//! (`EpochInput`/`EpochOutput`) and format 2 (`SubnetInput`/`SubnetOutput`, one mechanism)
//! of the Yuma3 + liquid alpha subnet with 64 full validator rows and warm bonds, at 4,096
//! and 256 uids, compact and pretty; and the 256-uid format 2 case line that a JSONL
//! stream carries, read through `decode_case` and its output written compact. Each type is
//! read by the hand-written reader and written pretty by the hand-written writer (`hand`),
//! and by serde_json alone (`serde`), side by side.

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hint::black_box;
use yuma::example::{Variant, realistic};
use yuma::model::subnet::{CaseKind, SubnetCase, SubnetInput, SubnetOutput, decode_case};
use yuma::model::{EpochInput, EpochOutput, FromJson, ToJson};

/// Compact or pretty JSON by serde_json, as `yuma run` (pretty) and a JSONL stream
/// (compact) write it.
fn text<T: Serialize>(v: &T, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(v).expect("serialises")
    } else {
        serde_json::to_string(v).expect("serialises")
    }
}

/// Reads and writes `v` in both styles, throughput in bytes of its JSON text.
fn read_write<T: Serialize + DeserializeOwned + FromJson + ToJson>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    what: &str,
    v: &T,
) {
    for pretty in [false, true] {
        let style = if pretty { "pretty" } else { "compact" };
        let json = text(v, pretty);
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(format!("{what}_read/{style}/hand"), |b| {
            b.iter(|| T::from_json(black_box(&json)).expect("decodes"))
        });
        g.bench_function(format!("{what}_read/{style}/serde"), |b| {
            b.iter(|| serde_json::from_str::<T>(black_box(&json)).expect("decodes"))
        });
        if pretty {
            // Compact `to_json` is serde_json's own.
            g.bench_function(format!("{what}_write/{style}/hand"), |b| {
                b.iter(|| black_box(v).to_json(pretty))
            });
        }
        g.bench_function(format!("{what}_write/{style}/serde"), |b| {
            b.iter(|| text(black_box(v), pretty))
        });
    }
}

fn json(c: &mut Criterion) {
    for n in [4096, 256] {
        let input = realistic(n, 64, Variant::Yuma3Liquid, 7);
        let output = yuma::epoch::run_epoch(&input).expect("valid example");
        let subnet = SubnetInput::from_epoch(input.clone());
        let subnet_out = yuma::epoch::mechanisms::run_subnet(&subnet).expect("valid example");

        let mut g = c.benchmark_group(format!("json_{n}"));
        g.sample_size(10);
        read_write::<EpochInput>(&mut g, "epoch_input", &input);
        read_write::<EpochOutput>(&mut g, "epoch_output", &output);
        read_write::<SubnetInput>(&mut g, "subnet_input", &subnet);
        read_write::<SubnetOutput>(&mut g, "subnet_output", &subnet_out);
        g.finish();

        if n == 256 {
            // One JSONL line of `yuma recompute`: a whole format 2 case in, its output out.
            let line = text(
                &SubnetCase {
                    format: 2,
                    kind: CaseKind::Subnet,
                    name: "realistic-256".into(),
                    description: String::new(),
                    input: subnet.clone(),
                    output: None,
                },
                false,
            );
            let mut g = c.benchmark_group("jsonl_256");
            g.throughput(Throughput::Bytes(line.len() as u64));
            g.bench_function("case_line_read", |b| {
                b.iter(|| decode_case(black_box(&line)).expect("decodes"))
            });
            let out_line = text(&subnet_out, false);
            g.throughput(Throughput::Bytes(out_line.len() as u64));
            g.bench_function("output_line_write", |b| {
                b.iter(|| black_box(&subnet_out).to_json(false))
            });
            g.finish();
        }
    }
}

criterion_group!(benches, json);
criterion_main!(benches);
