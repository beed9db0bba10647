//! Writes `yuma::example::realistic(n, validators, variant, seed)` as compact JSON to
//! standard output: the inputs of the end-to-end `yuma run` figures in docs/benchmarks.md.
//!
//! `cargo run --release --example realistic_json -- [n] [validators] [variant] [seed]
//! [--subnet]`, defaults 4096 64 y3-la 7; `--subnet` writes the format 2 (one mechanism)
//! form.

use std::io::Write;

use yuma::example::{Variant, realistic};
use yuma::model::subnet::SubnetInput;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let subnet = args.iter().any(|a| a == "--subnet");
    let mut pos = args.iter().filter(|a| *a != "--subnet");
    let n: u16 = pos.next().map_or(Ok(4096), |s| s.parse())?;
    let validators: u16 = pos.next().map_or(Ok(64), |s| s.parse())?;
    let variant: Variant = pos.next().map_or(Ok(Variant::Yuma3Liquid), |s| s.parse())?;
    let seed: u64 = pos.next().map_or(Ok(7), |s| s.parse())?;
    let input = realistic(n, validators, variant, seed);
    let json = if subnet {
        serde_json::to_string(&SubnetInput::from_epoch(input))?
    } else {
        serde_json::to_string(&input)?
    };
    let mut out = std::io::stdout().lock();
    out.write_all(json.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}
