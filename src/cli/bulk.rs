//! What both bulk commands (`stripe:sync-customers`, `stripe:replay-events`) do
//! around their work: the plan's rate limiter, the customers service paced by it
//! and patient as a bulk run is, the signals that stop it, its record in the run
//! history (beating with its progress, sharing the account); and, at the end, the
//! command's result written into that record.

use std::sync::Arc;

use super::CliError;
use super::signals::Stop;
use crate::context::Context;
use crate::customers::Customers;
use crate::runs::history::{ProgressFn, Run, RunEnd, RunProgress, RunStart};
use crate::startup::App;
use crate::stripe::{RateLimiter, RatePlan, RetryPolicy};

/// A bulk command under way.
pub struct Bulk {
    /// Paces every Stripe call of the run.
    pub limiter: Arc<RateLimiter>,
    /// What the run's services are built on: Stripe paced by [`Bulk::limiter`],
    /// with the bulk retry policy.
    pub context: Context,
    /// The customers service on that context.
    pub customers: Customers,
    pub stop: Stop,
}

/// What the history records of a run at its start.
pub struct Recorded {
    pub command: &'static str,
    pub kind: &'static str,
    pub flags: String,
    /// Whether it takes a share of the account (a dry run calls no Stripe).
    pub shares: bool,
}

impl Bulk {
    /// The limiter for `plan`, the service paced by it, and the signals listened to.
    pub fn new(app: &App, plan: RatePlan) -> Self {
        let limiter = Arc::new(RateLimiter::new(plan));
        let context = app.context.for_bulk(limiter.clone(), RetryPolicy::bulk());
        Bulk {
            limiter,
            customers: Customers::new(context.clone()),
            context,
            stop: Stop::on_signals(),
        }
    }
}

/// Records the run paced by `limiter` in the history, beating with what
/// `progress` says.
pub async fn record(
    app: &App,
    limiter: &Arc<RateLimiter>,
    recorded: Recorded,
    progress: ProgressFn,
) -> Result<Run, CliError> {
    let start = RunStart {
        command: recorded.command,
        kind: recorded.kind,
        flags: recorded.flags,
        limiter: limiter.clone(),
        shares: recorded.shares,
        keep_days: app.config.run_history_days,
        progress,
    };
    app.history
        .start(start)
        .await
        .map_err(|err| CliError::failed("database", err))
}

/// The end of a run that printed its report.
pub fn end(
    result: &Result<(), CliError>,
    progress: RunProgress,
    failed: u64,
    failures: Vec<serde_json::Value>,
) -> RunEnd {
    let (exit_code, interrupted) = match result {
        Ok(()) => (0, false),
        Err(err) => (
            err.exit_status(),
            matches!(err, CliError::Interrupted { .. }),
        ),
    };
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

/// Writes the run's end into the history and gives back the command's result.
pub async fn finish(
    run: Run,
    (result, end): (Result<(), CliError>, RunEnd),
) -> Result<(), CliError> {
    run.finish(end).await;
    result
}
