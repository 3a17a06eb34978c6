//! How a bulk command's result goes into the run history.

use super::CliError;
use crate::customers::run::{RunEnd, RunProgress};

/// The end of a run that printed its report.
pub fn end(
    result: &Result<(), CliError>,
    progress: RunProgress,
    failed: u64,
    failures: Vec<serde_json::Value>,
) -> RunEnd {
    let (exit_code, interrupted) = status(result);
    RunEnd {
        exit_code,
        interrupted,
        progress,
        failed,
        failures,
    }
}

/// The end of a run that failed before it had a report (the database went away,
/// say): its error is its one failure.
pub fn end_without_report(err: &CliError, signal: Option<i32>, progress: RunProgress) -> RunEnd {
    RunEnd {
        exit_code: err.exit_status(),
        interrupted: signal.is_some(),
        progress,
        failed: 1,
        failures: vec![serde_json::json!({ "reason": err.to_string() })],
    }
}

fn status(result: &Result<(), CliError>) -> (u8, bool) {
    match result {
        Ok(()) => (0, false),
        Err(err) => (
            err.exit_status(),
            matches!(err, CliError::Interrupted { .. }),
        ),
    }
}
