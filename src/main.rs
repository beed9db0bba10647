//! The `yuma` binary: parses arguments, sets up logging, runs the subcommand.

mod cli;

/// Keeps freed heap memory for reuse. A large daemon call allocates and frees hundreds of
/// MiB; glibc's defaults hand blocks over 128 KiB back to the kernel at once and fault them
/// in again on the next call, a fifth of the daemon's time at batch 1,024. Now blocks up to
/// 32 MiB come from the heap, which keeps up to 256 MiB free before trimming. An explicit
/// `GLIBC_TUNABLES` wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    // SAFETY: mallopt only sets allocator parameters, here before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

fn main() -> std::process::ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_malloc();
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
