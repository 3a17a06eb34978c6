//! Logs go to the console and to a daily file under `LOG_DIR`, so operators can
//! `tail -f storage/logs/*.log | grep -i stripe`.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Where console output goes: commands that print a report to stdout log to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    Stdout,
    Stderr,
    /// File only (the test suite, whose console belongs to the test runner).
    Off,
}

pub const LOG_FILE_PREFIX: &str = "stripe-sync.log";

/// Installs the global subscriber. Keep the guard alive until exit so the file
/// writer flushes. Fails when a subscriber is already installed.
pub fn init(log_dir: &Path, console: Console) -> std::io::Result<WorkerGuard> {
    std::fs::create_dir_all(log_dir)?;
    let file = tracing_appender::rolling::daily(log_dir, LOG_FILE_PREFIX);
    let (file_writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        // stripe_webhook logs an error for every event its own types cannot parse;
        // we verify signatures with it and parse events ourselves, so that is noise.
        EnvFilter::new("info,sqlx=warn,tower_sessions=warn,stripe_webhook=off")
    });
    let console_layer = tracing_subscriber::fmt::layer().with_writer(
        std::io::stdout
            .with_filter(move |_| console == Console::Stdout)
            .or_else(std::io::stderr.with_filter(move |_| console == Console::Stderr)),
    );
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(file_writer);
    tracing_subscriber::registry()
        .with(filter)
        .with(console_layer)
        .with(file_layer)
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(guard)
}
