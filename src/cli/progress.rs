//! Progress of long runs: an indicatif bar with rate and ETA on a terminal; elsewhere (logs,
//! CI, cron) a plain line every few seconds with the same figures.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is printed when standard error is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// A progress bar over `unit`s.
pub struct Bar {
    bar: ProgressBar,
    unit: &'static str,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// A bar of `len` `unit`s (the length may grow later).
    pub fn new(len: u64, unit: &'static str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{msg}}"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = (!std::io::stderr().is_terminal()).then(|| {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            let (bar, stop) = (bar.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut waited = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    waited += Duration::from_millis(100);
                    if waited >= PLAIN_EVERY {
                        waited = Duration::ZERO;
                        eprintln!("{}", line(&bar, unit));
                    }
                }
            })
        });
        Self {
            bar,
            unit,
            stop,
            ticker,
        }
    }

    /// The indicatif bar (cheap to clone, safe to share across threads).
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Ends the bar and prints the final count, elapsed time and rate.
    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
        let secs = self.bar.elapsed().as_secs_f64();
        eprintln!(
            "{} {} in {:.2} s ({:.1} {}/s)",
            self.bar.position(),
            self.unit,
            secs,
            self.bar.position() as f64 / secs.max(1e-9),
            self.unit
        );
    }
}

/// The plain progress line.
fn line(bar: &ProgressBar, unit: &str) -> String {
    format!(
        "{}/{} {unit}, {:.1} {unit}/s, ETA {} s",
        bar.position(),
        bar.length().unwrap_or(0),
        bar.per_sec(),
        bar.eta().as_secs()
    )
}
