//! Subcommands of the `yuma` binary, one file each.

mod backends;
mod bench;
#[cfg(feature = "chain")]
mod check;
#[cfg(feature = "chain")]
mod fetch;
#[cfg(feature = "chain")]
mod history;
#[cfg(feature = "server")]
mod loadtest;
#[cfg(feature = "chain")]
mod progress;
#[cfg(feature = "chain")]
mod recompute;
mod run;
#[cfg(feature = "server")]
mod serve;
mod verify;

use std::process::ExitCode;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use yuma::backend::BackendKind;
use yuma::example::Variant;

/// Bittensor Yuma consensus epochs, bit-identical to the chain, on CPU and GPU.
#[derive(Parser)]
#[command(name = "yuma", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run epochs from a JSON file (or the built-in example) and print their outputs.
    Run(run::Args),
    /// Check every conformance case in a directory against its expected output.
    Verify(verify::Args),
    /// Measure epochs per second on a backend and on the CPU path, side by side.
    Bench(bench::Args),
    /// List the backends and devices available here.
    Backends(backends::Args),
    /// Read the inputs of the epoch that ran in a block (a format 2 case), or of every epoch
    /// in a block range (history files), from a node.
    #[cfg(feature = "chain")]
    Fetch(fetch::Args),
    /// Recompute the epoch of a block and compare it with what the chain stored.
    #[cfg(feature = "chain")]
    Check(check::Args),
    /// Recompute fetched history files on a backend and compare with what the chain stored.
    #[cfg(feature = "chain")]
    Recompute(recompute::Args),
    /// Run the gRPC daemon (cross-request batching).
    #[cfg(feature = "server")]
    Serve(serve::Args),
    /// Drive a running daemon with concurrent clients and compare with in-process runs.
    #[cfg(feature = "server")]
    Loadtest(loadtest::Args),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> anyhow::Result<ExitCode> {
    let command = Cli::parse().command;
    #[cfg(feature = "server")]
    let serving = matches!(command, Command::Serve(_));
    #[cfg(not(feature = "server"))]
    let serving = false;
    if !serving {
        quiet_on_closed_stdout();
    }
    match command {
        Command::Run(a) => run::main(a),
        Command::Verify(a) => verify::main(a),
        Command::Bench(a) => bench::main(a),
        Command::Backends(a) => backends::main(a),
        #[cfg(feature = "chain")]
        Command::Fetch(a) => fetch::main(a),
        #[cfg(feature = "chain")]
        Command::Check(a) => check::main(a),
        #[cfg(feature = "chain")]
        Command::Recompute(a) => recompute::main(a),
        #[cfg(feature = "server")]
        Command::Serve(a) => serve::main(a).map(|()| ExitCode::SUCCESS),
        #[cfg(feature = "server")]
        Command::Loadtest(a) => loadtest::main(a).map(|()| ExitCode::SUCCESS),
    }
}

/// Lets a printing command end quietly when its reader goes away (`yuma run --json | head`),
/// as Unix tools do, instead of panicking in `println!` on EPIPE. Not for `serve`: the
/// daemon keeps running whatever happens to its output.
fn quiet_on_closed_stdout() {
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `--backend`'s values: the library's names, listed by `--help`.
fn backend_kind() -> impl TypedValueParser<Value = BackendKind> {
    PossibleValuesParser::new(BackendKind::ALL.map(BackendKind::name))
        .try_map(|s| s.parse::<BackendKind>())
}

/// `--variant`'s values: the library's names, listed by `--help`.
fn variant() -> impl TypedValueParser<Value = Variant> {
    PossibleValuesParser::new(Variant::ALL.map(Variant::name)).try_map(|s| s.parse::<Variant>())
}
