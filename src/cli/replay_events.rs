//! `stripe-sync stripe:replay-events`: applies the events no webhook brought,
//! read back from Stripe's Events API, at the same rate limit and with the same
//! retries, progress, report and exit codes as `stripe:sync-customers`.

use std::sync::Arc;

use super::CliError;
use super::progress::Progress;
use super::report;
use super::signals::Stop;
use crate::config::Config;
use crate::events::replay::{
    MAX_SLICE_EVENTS, ReplayOptions, ReplayReport, ReplayTally, parse_since,
};
use crate::events::{EventError, Events};
use crate::startup::App;
use crate::stripe::{RateLimiter, RetryPolicy};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start this far back (90s, 15m, 1h, 2d) or at this RFC 3339 time
    /// [default: where the last run ended, else 3 days back]
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events of this type (`customer.*` for every customer event); repeatable.
    /// A run limited to some types leaves the checkpoint where it was
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Report what would be applied; write nothing anywhere
    #[arg(long)]
    pub dry_run: bool,
    /// Print the final report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rates: super::sync_customers::Rates,
}

pub async fn run(config: Config, args: Args) -> Result<(), CliError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let since = args
        .since
        .as_deref()
        .map(|since| parse_since(since, now))
        .transpose()
        .map_err(CliError::Usage)?;
    let retention_days = config.events_retention_days;
    if let Some(since) = since {
        let reach = i64::from(retention_days.min(30)) * 86_400;
        if since < now - reach {
            return Err(CliError::Usage(format!(
                "--since reaches back further than {} days: Stripe keeps events for 30 days, \
                 and applied events are remembered for STRIPE_EVENTS_RETENTION_DAYS ({retention_days})",
                retention_days.min(30)
            )));
        }
    }
    let plan = args.rates.plan(&config);
    let app = App::build(config).await?;
    if !app.sync.is_configured() {
        return Err(report::stripe_not_configured());
    }
    let limiter = Arc::new(RateLimiter::new(plan));
    let sync = app.sync.for_bulk(limiter.clone(), RetryPolicy::bulk());
    let stop = Stop::on_signals();
    let options = ReplayOptions {
        since,
        types: args.types,
        dry_run: args.dry_run,
        retention_days,
        max_slice_events: MAX_SLICE_EVENTS,
    };
    tracing::info!(?options, ?plan, "stripe:replay-events starting");
    let tally = Arc::new(ReplayTally::default());
    let shown = tally.clone();
    let display = Progress::start(None, "events", move || (shown.listed.get(), counts(&shown)));
    let share = sync
        .share_account("stripe:replay-events", limiter)
        .await
        .map_err(|err| CliError::failed("database", err))?;
    let result = Events::new(sync)
        .replay_events(&options, tally, stop.flag.clone())
        .await;
    share.finish().await;
    display.finish();
    let report = result.map_err(|err| match err {
        EventError::NotConfigured => report::stripe_not_configured(),
        other => CliError::failed("stripe:replay-events", other),
    })?;
    tracing::info!(
        listed = report.listed,
        applied = report.applied,
        duplicate = report.duplicate,
        failed = report.failed,
        checkpoint_moved = report.checkpoint_moved,
        "stripe:replay-events finished"
    );
    print_report(&report, args.json);
    if let Some(signal) = stop.signal() {
        return Err(CliError::Interrupted {
            signal,
            detail: "stopped before every event was applied; run it again to continue".into(),
        });
    }
    if report.complete() {
        return Ok(());
    }
    Err(CliError::Reported(format!(
        "failed events: {}; the checkpoint stays before the first, so the next run tries \
         them again",
        report.failed
    )))
}

fn counts(tally: &ReplayTally) -> String {
    format!(
        "applied {} · unchanged {} · already applied {} · ignored {} · failed {}",
        tally.applied.get(),
        tally.unchanged.get(),
        tally.duplicate.get(),
        tally.ignored.get(),
        tally.failed.get(),
    )
}

fn print_report(report: &ReplayReport, json: bool) {
    if report::printed_as_json(report, json) {
        return;
    }
    let when = |at: i64| {
        time::OffsetDateTime::from_unix_timestamp(at)
            .ok()
            .and_then(|at| {
                at.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| at.to_string())
    };
    report::print_heading(
        "stripe:replay-events",
        report.interrupted,
        report.elapsed_seconds,
        report.dry_run,
    );
    println!(
        "  events created from {} to {}{}",
        when(report.from),
        when(report.until),
        if report.from_checkpoint {
            " (from the checkpoint)"
        } else {
            ""
        }
    );
    let applied = if report.dry_run {
        "would apply"
    } else {
        "applied"
    };
    report::print_counts(&[
        ("listed", report.listed),
        (applied, report.applied),
        ("unchanged", report.unchanged),
        ("already applied", report.duplicate),
        ("ignored", report.ignored),
        ("failed", report.failed),
    ]);
    match (&report.checkpoint, report.checkpoint_moved) {
        (Some(checkpoint), true) => println!(
            "Checkpoint moved to {} ({}): the next run without --since continues there.",
            checkpoint.event_id,
            when(checkpoint.event_created)
        ),
        (Some(checkpoint), false) => println!(
            "Checkpoint unchanged at {} ({}).",
            checkpoint.event_id,
            when(checkpoint.event_created)
        ),
        (None, _) => {}
    }
    if report.pruned > 0 {
        println!(
            "Forgot {} applied events past the retention period.",
            report.pruned
        );
    }
    report::print_failures("events", &report.failures);
}
