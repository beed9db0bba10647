//! The `yuma` binary: parses arguments, sets up logging, runs the subcommand.

mod cli;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // `yuma serve` logs its startup and shutdown lines at info; the rest stays quiet.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,yuma::cli::serve=info,yuma::server=info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files or journald.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
