//! `yuma backends`: what can run here.

use std::process::ExitCode;

/// Arguments of `yuma backends` (none).
#[derive(clap::Args)]
pub struct Args {}

/// Prints one line per backend: its devices and features, or why it is unavailable.
pub fn main(_args: Args) -> anyhow::Result<ExitCode> {
    for line in yuma::backend::available() {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
