//! Subcommands of the `yuma` binary, one file each.

pub mod loadtest;
pub mod serve;

/// Bittensor Yuma consensus epochs, bit-identical to the chain.
#[derive(clap::Parser, Debug)]
#[command(name = "yuma", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Run the gRPC daemon.
    Serve(serve::Args),
    /// Drive a running daemon with concurrent clients and compare with in-process runs.
    Loadtest(loadtest::Args),
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::main(args),
        Command::Loadtest(args) => loadtest::main(args),
    }
}
