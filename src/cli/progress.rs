//! Progress of a long command: a bar on a terminal, a plain line every few
//! seconds otherwise; both on stderr, so stdout carries only the report.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(3);

pub struct Progress {
    ticker: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `read` tells how many `unit`s are done and a line of counts; with no
    /// `total` (not known in advance) the display counts up.
    pub fn start<F>(total: Option<u64>, unit: &'static str, read: F) -> Self
    where
        F: Fn() -> (u64, String) + Send + 'static,
    {
        let started = Instant::now();
        if std::io::stderr().is_terminal() {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::new(total),
                    format!(
                        "{{bar:30.cyan/blue}} {{pos}}/{{len}} {unit}  {{per_sec}}  ETA {{eta}}  {{msg}}"
                    ),
                ),
                None => (
                    ProgressBar::new_spinner(),
                    format!("{{spinner}} {{pos}} {unit}  {{per_sec}}  {{msg}}"),
                ),
            };
            bar.set_style(ProgressStyle::with_template(&template).expect("valid template"));
            let shown = bar.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    let (done, message) = read();
                    shown.set_position(done);
                    shown.set_message(message);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            return Progress {
                ticker,
                bar: Some(bar),
            };
        }
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(PLAIN_PROGRESS_EVERY).await;
                let (done, message) = read();
                let per_second = done as f64 / started.elapsed().as_secs_f64().max(0.001);
                let of_total = total.map(|total| format!("/{total}")).unwrap_or_default();
                eprintln!("progress: {done}{of_total} {unit}, {message}, {per_second:.1} {unit}/s");
            }
        });
        Progress { ticker, bar: None }
    }

    pub fn finish(self) {
        self.ticker.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
