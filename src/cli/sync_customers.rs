//! `stripe-sync stripe:sync-customers`: bulk create and update at Stripe's rate
//! limit, with progress, a final report, and `--check` for drift.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;
use crate::config::Config;
use crate::db::users;
use crate::startup::App;
use crate::stripe::{RateLimiter, RetryPolicy};
use crate::sync::bulk::{BulkOptions, BulkReport, Tally};
use crate::sync::{SyncError, SyncService};

/// Stripe allows 100 requests/s in live mode and 25/s in test mode; stay below.
const LIVE_DEFAULT_RATE: u32 = 80;
const TEST_DEFAULT_RATE: u32 = 20;
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(3);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Create customers for users who have none
    #[arg(long)]
    pub create: bool,
    /// Push local name and email of users who have a customer
    #[arg(long)]
    pub update: bool,
    /// Only this user
    #[arg(long, value_name = "ID")]
    pub user: Option<i64>,
    /// Report what would be created and updated; write nothing anywhere
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Report drift between local users and Stripe customers; write nothing
    #[arg(long, conflicts_with_all = ["create", "update", "force"])]
    pub check: bool,
    /// With --check: fix what is safe to fix (re-link orphans, clear dead ids)
    #[arg(long, requires = "check")]
    pub repair: bool,
    /// Update users even when their data is unchanged since the last push
    #[arg(long)]
    pub force: bool,
    /// Print the final report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Stripe requests per second [default: 80 with a live key, 20 with a test key]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: Option<u32>,
    /// Users worked on at once [default: half the rate, 4 to 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: Option<u32>,
}

pub async fn run(config: Config, args: Args) -> Result<(), CliError> {
    let app = App::build(config).await?;
    if let Some(id) = args.user
        && users::find(app.sync.db(), id)
            .await
            .map_err(failed)?
            .is_none()
    {
        return Err(CliError::Usage(format!("user {id} does not exist")));
    }
    if !app.sync.is_configured() && !args.dry_run {
        return Err(CliError::Usage(
            "Stripe is not configured: set STRIPE_SECRET (and STRIPE_API_BASE for a stand-in)"
                .into(),
        ));
    }
    let rate = args.rate.unwrap_or(if app.sync.live_mode() {
        LIVE_DEFAULT_RATE
    } else {
        TEST_DEFAULT_RATE
    });
    let concurrency = args.concurrency.unwrap_or((rate / 2).clamp(4, 64)) as usize;
    let limiter = Arc::new(RateLimiter::new(rate));
    let sync = app.sync.for_bulk(limiter.clone(), RetryPolicy::bulk());
    let stop = stop_on_ctrl_c();

    if args.check {
        return super::check::run(&sync, &args, stop).await;
    }
    let options = BulkOptions {
        // With neither flag, do both.
        create: args.create || !args.update,
        update: args.update || !args.create,
        user: args.user,
        dry_run: args.dry_run,
        force: args.force,
        concurrency,
    };
    tracing::info!(?options, rate, "stripe:sync-customers starting");
    let report = run_with_progress(&sync, &options, stop).await?;
    tracing::info!(
        created = report.created,
        updated = report.updated,
        failed = report.failed,
        rate_limited = limiter.rate_limited_count(),
        "stripe:sync-customers finished"
    );
    print_report(&report, args.json);
    if report.failed > 0 {
        return Err(CliError::Reported(format!(
            "{} users failed",
            report.failed
        )));
    }
    if report.interrupted {
        return Err(CliError::Reported(
            "interrupted before every user was seen".into(),
        ));
    }
    Ok(())
}

fn failed(err: impl std::fmt::Display) -> CliError {
    CliError::Failed(err.to_string())
}

/// The first Ctrl-C stops scheduling; requests in flight finish and the report
/// is printed.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Stopping: letting requests in flight finish ...");
            flag.store(true, Ordering::Relaxed);
        }
    });
    stop
}

async fn run_with_progress(
    sync: &SyncService,
    options: &BulkOptions,
    stop: Arc<AtomicBool>,
) -> Result<BulkReport, CliError> {
    let total = match options.user {
        Some(_) => 1,
        None => users::count(sync.db()).await.map_err(failed)?.max(0) as u64,
    };
    let tally = Arc::new(Tally::default());
    let display = Progress::start(tally.clone(), total);
    let result = sync.sync_customers(options, tally, stop).await;
    display.finish();
    result.map_err(|err| match err {
        SyncError::UserNotFound(_) | SyncError::NotConfigured => CliError::Usage(err.to_string()),
        other => CliError::Failed(other.to_string()),
    })
}

/// A progress bar on a terminal, a plain line every few seconds otherwise; both on
/// stderr, so stdout carries only the report.
struct Progress {
    ticker: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn start(tally: Arc<Tally>, total: u64) -> Self {
        let started = std::time::Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} users  {per_sec}  ETA {eta}  {msg}",
                )
                .expect("valid template"),
            );
            let shown = bar.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    shown.set_position(Tally::get(&tally.processed));
                    shown.set_message(counts(&tally));
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
                let done = Tally::get(&tally.processed);
                let per_second = done as f64 / started.elapsed().as_secs_f64().max(0.001);
                eprintln!(
                    "progress: {done}/{total} users, {}, {per_second:.1} users/s",
                    counts(&tally)
                );
            }
        });
        Progress { ticker, bar: None }
    }

    fn finish(self) {
        self.ticker.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn counts(tally: &Tally) -> String {
    format!(
        "created {} · updated {} · skipped {} · failed {}",
        Tally::get(&tally.created) + Tally::get(&tally.relinked),
        Tally::get(&tally.updated),
        Tally::get(&tally.unchanged) + Tally::get(&tally.skipped) + Tally::get(&tally.held),
        Tally::get(&tally.failed),
    )
}

fn print_report(report: &BulkReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
        return;
    }
    let verb = if report.dry_run {
        " (dry run: nothing was written)"
    } else {
        ""
    };
    println!(
        "stripe:sync-customers {} in {:.1}s{verb}",
        if report.interrupted {
            "interrupted"
        } else {
            "finished"
        },
        report.elapsed_seconds
    );
    let (create, update) = if report.dry_run {
        ("would create", "would update")
    } else {
        ("created", "updated")
    };
    for (label, value) in [
        (create, report.created),
        ("re-linked", report.relinked),
        (update, report.updated),
        ("unchanged", report.unchanged),
        ("skipped", report.skipped),
        ("held elsewhere", report.held),
        ("failed", report.failed),
        ("users seen", report.processed),
    ] {
        println!("  {label:<14}{value:>8}");
    }
    if report.held > 0 {
        println!(
            "{} users were held by another run (or a killed one, until its claim lapses in \
             about 90 s): run again to finish them.",
            report.held
        );
    }
    if report.retried > 0 {
        println!(
            "{} users got no answer at first and were tried again at the end of the run.",
            report.retried
        );
    }
    for (answered, heading) in [
        (true, "Failed users, Stripe answered with an error:"),
        (
            false,
            "Failed users, no answer from Stripe (network, timeout):",
        ),
    ] {
        let failures: Vec<_> = report
            .failures
            .iter()
            .filter(|f| f.stripe_answered == answered)
            .collect();
        if failures.is_empty() {
            continue;
        }
        println!("{heading}");
        for failure in failures {
            let request = failure
                .request_id
                .as_deref()
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            println!(
                "  user {} ({}): {}{request}",
                failure.user_id, failure.action, failure.reason
            );
        }
    }
}
