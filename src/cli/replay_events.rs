//! `stripe-sync stripe:replay-events`: applies the events no webhook brought,
//! read back from Stripe's Events API, at the same rate limit and with the same
//! retries, progress, report and exit codes as `stripe:sync-customers`.

use std::sync::Arc;

use super::CliError;
use super::bulk::{self, Bulk, Recorded};
use super::progress::Progress;
use super::report;
use crate::config::Config;
use crate::events::replay::{
    MAX_HELD_EVENTS, ReplayOptions, ReplayReport, ReplayTally, parse_since,
};
use crate::events::{EventError, Events};
use crate::runs::history::{RunProgress, failure_json};
use crate::startup::App;

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
    if !app.customers.is_configured() {
        return Err(report::stripe_not_configured());
    }
    let Bulk {
        limiter,
        context,
        stop,
        ..
    } = Bulk::new(&app, plan);
    let options = ReplayOptions {
        since,
        types: args.types.clone(),
        dry_run: args.dry_run,
        retention_days,
        max_held_events: MAX_HELD_EVENTS,
    };
    tracing::info!(?options, ?plan, "stripe:replay-events starting");
    let tally = Arc::new(ReplayTally::default());
    let shown = tally.clone();
    let recorded = Recorded {
        command: "stripe:replay-events",
        kind: args.kind(),
        flags: args.flags(),
        shares: true,
    };
    let progress = Arc::new(move || live_progress(&shown));
    let run = bulk::record(&app, &limiter, recorded, progress).await?;
    let shown = tally.clone();
    let display = Progress::start(None, "events", move || (shown.listed.get(), counts(&shown)));
    let result = Events::new(context)
        .replay_events(&options, tally.clone(), stop.flag.clone())
        .await;
    display.finish();
    let report = match result {
        Ok(report) => report,
        Err(err) => {
            let err = match err {
                EventError::NotConfigured => report::stripe_not_configured(),
                other => CliError::failed("stripe:replay-events", other),
            };
            let end = bulk::end_without_report(&err, stop.signal(), live_progress(&tally));
            return bulk::finish(run, (Err(err), end)).await;
        }
    };
    tracing::info!(
        listed = report.listed,
        applied = report.applied,
        duplicate = report.duplicate,
        failed = report.failed,
        checkpoint_moved = report.checkpoint_moved,
        "stripe:replay-events finished"
    );
    print_report(&report, args.json);
    let result = outcome(&report, stop.signal());
    let failures = report.failures.listed().iter().map(failure_json).collect();
    let progress = live_progress(&tally);
    let end = bulk::end(&result, progress, report.failed, failures);
    bulk::finish(run, (result, end)).await
}

fn outcome(report: &ReplayReport, signal: Option<i32>) -> Result<(), CliError> {
    if let Some(signal) = signal {
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

impl Args {
    /// What the run does, for the history and its metrics: a run of every type
    /// (from the checkpoint or `--since`) moves the checkpoint, one limited to some
    /// types or a dry run does not.
    fn kind(&self) -> &'static str {
        match self {
            Args { dry_run: true, .. } => "dry-run",
            Args { types, .. } if !types.is_empty() => "types",
            _ => "replay",
        }
    }

    /// The flags as given, for the history.
    fn flags(&self) -> String {
        let mut flags = Vec::new();
        if let Some(since) = &self.since {
            flags.push(format!("--since={since}"));
        }
        flags.extend(self.types.iter().map(|kind| format!("--type={kind}")));
        for (set, flag) in [(self.dry_run, "--dry-run"), (self.json, "--json")] {
            if set {
                flags.push(flag.to_string());
            }
        }
        flags.extend(self.rates.flags());
        flags.join(" ")
    }
}

fn live_progress(tally: &ReplayTally) -> RunProgress {
    RunProgress {
        done: Some(tally.listed.get()),
        total: None,
        counts: vec![
            ("listed", tally.listed.get()),
            ("applied", tally.applied.get()),
            ("unchanged", tally.unchanged.get()),
            ("duplicate", tally.duplicate.get()),
            ("ignored", tally.ignored.get()),
            ("failed", tally.failed.get()),
        ],
    }
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
