//! Logs go to the console and to a daily file under `LOG_DIR`
//! (`stripe-sync.YYYY-MM-DD.log`, the last `LOG_MAX_FILES` kept), so operators can
//! `tail -f storage/logs/*.log | grep -i stripe`.
//!
//! The file never gets terminal colours, and each field appears once per line:
//! tracing-subscriber keeps one formatted copy of a span's fields per field
//! formatter *type*, so the file layer has a formatter type of its own
//! ([`PlainFields`]); sharing the console's made the file reuse its coloured text
//! and both layers append every recorded field to the same copy.

use std::fmt;
use std::io::IsTerminal as _;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{DefaultFields, Writer};
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Where console output goes: commands that print a report to stdout log to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    Stdout,
    Stderr,
    /// File only (the test suite, whose console belongs to the test runner).
    Off,
}

pub const LOG_FILE_PREFIX: &str = "stripe-sync";
pub const LOG_FILE_SUFFIX: &str = "log";
pub const DEFAULT_LOG_MAX_FILES: usize = 14;

/// What operators see without setting `RUST_LOG`: our info lines, others' warnings.
/// axum-login's per-request span (`call{user.id=…}`) is left out; our request
/// span carries `user_id`.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_sessions=warn,axum_login=warn";

/// The file layer's field formatter: the default text format, as a type of its own.
#[derive(Debug, Default)]
pub struct PlainFields(DefaultFields);

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

/// `LOG_FORMAT`: lines of text, or one JSON object a line for a log pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Where and how to log.
#[derive(Clone, Debug)]
pub struct LogSettings<'a> {
    pub dir: &'a Path,
    pub max_files: usize,
    pub format: LogFormat,
}

/// Installs the global subscriber. Keep the guard alive until exit so the file
/// writer flushes. Fails when a subscriber is already installed.
pub fn init(settings: &LogSettings<'_>, console: Console) -> std::io::Result<WorkerGuard> {
    let (log_dir, max_files) = (settings.dir, settings.max_files);
    std::fs::create_dir_all(log_dir)?;
    let file = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .filename_suffix(LOG_FILE_SUFFIX)
        .max_log_files(max_files.max(1))
        .build(log_dir)
        .map_err(std::io::Error::other)?;
    let (file_writer, guard) = tracing_appender::non_blocking(file);
    let filter =
        EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let colour = match console {
        Console::Stdout => std::io::stdout().is_terminal(),
        Console::Stderr => std::io::stderr().is_terminal(),
        Console::Off => false,
    };
    let console_writer = std::io::stdout
        .with_filter(move |_| console == Console::Stdout)
        .or_else(std::io::stderr.with_filter(move |_| console == Console::Stderr));
    let text = settings.format == LogFormat::Text;
    let text_layers = text.then(|| {
        let console = tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(console_writer);
        let file = tracing_subscriber::fmt::layer()
            .fmt_fields(PlainFields::default())
            .with_ansi(false)
            .with_writer(file_writer.clone());
        console.and_then(file)
    });
    // JSON layers may share their span fields: JsonFields merges each recorded
    // field into one object, and JSON carries no colour.
    let json_layers = (!text).then(|| {
        let console = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(console_writer);
        let file = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(file_writer);
        console.and_then(file)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text_layers)
        .with(json_layers)
        .try_init()
        .map_err(std::io::Error::other)?;
    Ok(guard)
}
