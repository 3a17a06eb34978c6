//! `stripe-sync stripe:sync-customers`: bulk create, update and refresh at
//! Stripe's rate limit, with progress, a final report, and `--check` for drift.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::CliError;
use super::bulk::{self, Bulk, Recorded};
use super::progress::Progress;
use super::report;
use super::signals::Stop;
use crate::config::Config;
use crate::customers::bulk::{BulkOptions, BulkReport, Tally};
use crate::customers::drift::Repair;
use crate::customers::{CustomerError, Customers};
use crate::fields::Prefer;
use crate::runs::history::{RunEnd, RunProgress, failure_json};
use crate::runs::report::Notes;
use crate::startup::App;
use crate::stripe::{RateLimiter, RatePlan};

/// Stripe allows 100 requests/s in live mode and 25/s in a sandbox; a run plans
/// 80% and leaves the rest to the web app's own calls on the same account.
const LIVE_DEFAULT_RATE: u32 = 80;
const TEST_DEFAULT_RATE: u32 = 20;
/// The most database connections a bulk run opens.
const MAX_BULK_CONNECTIONS: u32 = 16;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Create customers for users who have none
    #[arg(long)]
    pub create: bool,
    /// Sync the fields of users who have a customer, three ways: push what changed
    /// locally, take in what changed in Stripe (never into the login email), and
    /// report fields changed on both sides as conflicts
    #[arg(long)]
    pub update: bool,
    /// Pull every linked user's customer into the local copy (card, trial end,
    /// snapshot); customers missing in Stripe are reported, not unlinked
    #[arg(long, conflicts_with_all = ["create", "update", "force"])]
    pub refresh: bool,
    /// Only this user
    #[arg(long, value_name = "ID")]
    pub user: Option<i64>,
    /// Report what would be created and updated; write nothing anywhere
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Report drift between local users and Stripe customers; write nothing
    #[arg(long, conflicts_with_all = ["create", "update", "force", "refresh"])]
    pub check: bool,
    /// With --check: fix what is safe to fix (re-link orphans whose email matches,
    /// clear ids of customers Stripe has deleted)
    #[arg(long, requires = "check")]
    pub repair: bool,
    /// With --repair: the largest share of checked links that may be missing in
    /// Stripe before repair refuses to clear any (a wrong key or account)
    #[arg(long, value_name = "SHARE", default_value_t = 0.05, requires = "repair",
          value_parser = parse_share)]
    pub max_missing_share: f64,
    /// Update users even when their data is unchanged since the last push
    #[arg(long)]
    pub force: bool,
    /// Settle fields changed on both sides: push the local value (local) or take
    /// Stripe's (stripe; a billing email stays Stripe's, never the login email)
    #[arg(long, value_name = "SIDE", value_parser = parse_prefer)]
    pub prefer: Option<Prefer>,
    /// Print the final report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub rates: Rates,
    /// Users worked on at once, by each of the create and update lanes
    /// [default: half the per-operation rate, 4 to 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: Option<u32>,
}

/// The rate flags of every command that calls Stripe in bulk.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Rates {
    /// Stripe requests per second, all operations together [default: 80 with a live
    /// key, 20 with a test key]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: Option<u32>,
    /// Stripe requests per second for each operation [default: STRIPE_ENDPOINT_RATE, 20]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub endpoint_rate: Option<u32>,
}

impl Rates {
    /// What a run plans for the whole account, before sharing it with other runs.
    pub fn plan(&self, config: &Config) -> RatePlan {
        let live = config.stripe.as_ref().is_some_and(|s| s.live_mode());
        RatePlan {
            global: self.rate.unwrap_or(if live {
                LIVE_DEFAULT_RATE
            } else {
                TEST_DEFAULT_RATE
            }),
            endpoint: self.endpoint_rate.unwrap_or(config.stripe_endpoint_rate),
        }
    }
}

pub async fn run(mut config: Config, args: Args) -> Result<(), CliError> {
    let plan = args.rates.plan(&config);
    // Enough in flight for half a second of Stripe latency at the operation's rate.
    let concurrency = args
        .concurrency
        .unwrap_or((plan.endpoint.min(plan.global) / 2).clamp(4, 64));
    // A worker holds a connection for its statements only, never across a Stripe
    // call: a few connections serve many workers. Each may hold one, and a few
    // more go to the scan and the heartbeats, up to a cap that leaves a database's
    // connection limit (PostgreSQL's default is 100, for every client together)
    // to the web app and the other runs.
    config.db_max_connections = config
        .db_max_connections
        .max((concurrency + 4).min(MAX_BULK_CONNECTIONS));
    let app = App::build(config).await?;
    if let Some(id) = args.user
        && !app.customers.user_exists(id).await.map_err(failed)?
    {
        return Err(CliError::Usage(format!("user {id} does not exist")));
    }
    if !app.customers.is_configured() && !args.dry_run {
        return Err(report::stripe_not_configured());
    }
    let Bulk {
        limiter,
        customers: sync,
        stop,
        ..
    } = Bulk::new(&app, plan);
    let total = match (args.check, args.user) {
        (true, _) => None,
        (false, Some(_)) => Some(1),
        (false, None) => Some(sync.count_users().await.map_err(failed)?),
    };
    let tally = Arc::new(Tally::default());
    let shown = tally.clone();
    let recorded = Recorded {
        command: "stripe:sync-customers",
        kind: args.kind(),
        flags: args.flags(),
        // A dry run calls no Stripe: it takes no share of the account from others.
        shares: !args.dry_run,
    };
    let progress = Arc::new(move || RunProgress {
        done: total.map(|_| shown.processed.get()),
        total,
        counts: tally_counts(&shown),
    });
    let run = bulk::record(&app, &limiter, recorded, progress).await?;
    let ended = match args.check {
        true => {
            let check = super::check::CheckOptions {
                user: args.user,
                repair: args.repair.then_some(Repair {
                    max_missing_share: args.max_missing_share,
                }),
                json: args.json,
            };
            super::check::run(&sync, check, stop).await
        }
        false => sync_in_bulk(&sync, &args, concurrency, (total, tally), &limiter, stop).await,
    };
    bulk::finish(run, ended).await
}

/// Creates, updates or refreshes in bulk and prints the report; returns the
/// command's result and the run's end for the history.
async fn sync_in_bulk(
    sync: &Customers,
    args: &Args,
    concurrency: u32,
    (total, tally): (Option<u64>, Arc<Tally>),
    limiter: &RateLimiter,
    stop: Stop,
) -> (Result<(), CliError>, RunEnd) {
    let options = BulkOptions {
        // With neither flag, do both.
        create: !args.refresh && (args.create || !args.update),
        update: !args.refresh && (args.update || !args.create),
        refresh: args.refresh,
        user: args.user,
        dry_run: args.dry_run,
        force: args.force,
        prefer: args.prefer,
        concurrency: concurrency as usize,
    };
    tracing::info!(?options, plan = ?limiter.plan(), "stripe:sync-customers starting");
    let report = run_with_progress(sync, &options, (total, tally.clone()), stop.flag.clone()).await;
    let mut progress = RunProgress {
        done: Some(tally.processed.get()),
        total,
        counts: tally_counts(&tally),
    };
    let report = match report {
        Ok(report) => report,
        Err(err) => {
            let end = bulk::end_without_report(&err, stop.signal(), progress);
            return (Err(err), end);
        }
    };
    tracing::info!(
        created = report.created,
        updated = report.updated,
        refreshed = report.refreshed,
        failed = report.failed,
        held = report.held,
        rate_limited = limiter.rate_limited_count(),
        "stripe:sync-customers finished"
    );
    print_report(&report, args.json);
    let result = outcome(&report, stop.signal());
    progress.counts.extend([
        ("conflicts", report.notes.conflicts.count()),
        ("not_sent", report.notes.not_sent.count()),
    ]);
    let failures = report.failures.listed().iter().map(failure_json).collect();
    let end = bulk::end(&result, progress, report.failed, failures);
    (result, end)
}

/// The command's result from its report: every user handled, or why not.
fn outcome(report: &BulkReport, signal: Option<i32>) -> Result<(), CliError> {
    if let Some(signal) = signal {
        return Err(CliError::Interrupted {
            signal,
            detail: "stopped before every user was handled; run it again to finish".into(),
        });
    }
    if report.complete() {
        return Ok(());
    }
    let mut problems = Vec::new();
    if report.failed > 0 {
        problems.push(format!("{} users failed", report.failed));
    }
    if report.held > 0 {
        problems.push(format!(
            "{} users are held by another run that is still working on them",
            report.held
        ));
    }
    if report.interrupted {
        problems.push("interrupted before every user was seen".into());
    }
    Err(CliError::Reported(problems.join("; ")))
}

impl Args {
    /// What the run does, for the history and its metrics: a run for one user, a
    /// dry run or a check is no sync of every user.
    fn kind(&self) -> &'static str {
        match self {
            Args { dry_run: true, .. } => "dry-run",
            Args { check: true, .. } => "check",
            Args { user: Some(_), .. } => "user",
            Args { refresh: true, .. } => "refresh",
            _ => "sync",
        }
    }

    /// The flags as given, for the history.
    fn flags(&self) -> String {
        let mut flags = Vec::new();
        for (set, flag) in [
            (self.create, "--create"),
            (self.update, "--update"),
            (self.refresh, "--refresh"),
            (self.dry_run, "--dry-run"),
            (self.check, "--check"),
            (self.repair, "--repair"),
            (self.force, "--force"),
            (self.json, "--json"),
        ] {
            if set {
                flags.push(flag.to_string());
            }
        }
        if let Some(user) = self.user {
            flags.push(format!("--user={user}"));
        }
        if let Some(prefer) = self.prefer {
            flags.push(format!("--prefer={}", prefer.as_str()));
        }
        flags.extend(self.rates.flags());
        if let Some(concurrency) = self.concurrency {
            flags.push(format!("--concurrency={concurrency}"));
        }
        flags.join(" ")
    }
}

impl Rates {
    /// The rate flags as given, for the history.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(rate) = self.rate {
            flags.push(format!("--rate={rate}"));
        }
        if let Some(rate) = self.endpoint_rate {
            flags.push(format!("--endpoint-rate={rate}"));
        }
        flags
    }
}

fn parse_prefer(value: &str) -> Result<Prefer, String> {
    Prefer::parse(value).ok_or_else(|| "local or stripe".to_string())
}

fn parse_share(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err("a share from 0 to 1, such as 0.05 for 5%".into()),
    }
}

fn failed(err: CustomerError) -> CliError {
    CliError::failed("database", err)
}

async fn run_with_progress(
    sync: &Customers,
    options: &BulkOptions,
    (total, tally): (Option<u64>, Arc<Tally>),
    stop: Arc<AtomicBool>,
) -> Result<BulkReport, CliError> {
    let shown = tally.clone();
    let display = Progress::start(total, "users", move || {
        (shown.processed.get(), counts(&shown))
    });
    let result = sync.sync_customers(options, tally, stop).await;
    display.finish();
    result.map_err(|err| match err {
        CustomerError::UserNotFound(_) | CustomerError::NotConfigured => {
            CliError::Usage(err.to_string())
        }
        other => CliError::failed("stripe:sync-customers", other),
    })
}

/// The live counts, as the history keeps them.
fn tally_counts(tally: &Tally) -> Vec<(&'static str, u64)> {
    vec![
        ("created", tally.created.get()),
        ("relinked", tally.relinked.get()),
        ("updated", tally.updated.get()),
        ("refreshed", tally.refreshed.get()),
        ("unchanged", tally.unchanged.get()),
        ("pulled", tally.pulled.get()),
        ("skipped", tally.skipped.get()),
        ("held", tally.held.get()),
        ("failed", tally.failed.get()),
    ]
}

fn counts(tally: &Tally) -> String {
    format!(
        "created {} · updated {} · refreshed {} · skipped {} · failed {}",
        tally.created.get() + tally.relinked.get(),
        tally.updated.get(),
        tally.refreshed.get(),
        tally.unchanged.get() + tally.skipped.get() + tally.held.get(),
        tally.failed.get(),
    )
}

fn print_report(report: &BulkReport, json: bool) {
    if report::printed_as_json(report, json) {
        return;
    }
    report::print_heading(
        "stripe:sync-customers",
        report.interrupted,
        report.elapsed_seconds,
        report.dry_run,
    );
    let (create, update) = if report.dry_run {
        ("would create", "would update")
    } else {
        ("created", "updated")
    };
    report::print_counts(&[
        (create, report.created),
        ("re-linked", report.relinked),
        (update, report.updated),
        ("refreshed", report.refreshed),
        ("unchanged", report.unchanged),
        ("pulled", report.pulled),
        ("skipped", report.skipped),
        ("held elsewhere", report.held),
        ("failed", report.failed),
        ("users seen", report.processed),
    ]);
    if report.held > 0 {
        println!(
            "{} users are held by another run that is still working on them (a living run \
             renews its claims; a killed one's lapse within seconds): run again when it has \
             finished.",
            report.held
        );
    }
    if let Some(reads) = report.reads {
        println!("{} ({}).", reads.describe(), report.list);
    }
    if report.retried > 0 {
        println!(
            "{} users got no answer at first and were tried again at the end of the run.",
            report.retried
        );
    }
    report::print_failures("users", &report.failures);
    print_notes(&report.notes);
}

fn print_notes(notes: &Notes) {
    let (conflicts, not_sent) = (&notes.conflicts, &notes.not_sent);
    if conflicts.count() > 0 {
        println!(
            "{} users have fields changed both here and in Stripe; nothing was written either \
             way (settle them on the settings page, or run again with --prefer local|stripe):",
            conflicts.count()
        );
        for conflict in conflicts.listed() {
            println!(
                "  user {}: {}",
                conflict.user_id,
                conflict.fields.join(", ")
            );
        }
        report::print_not_listed(conflicts.not_listed(), "users");
    }
    if not_sent.count() > 0 {
        println!(
            "{} fields were not sent, as Stripe's API could not take them (the rest of each \
             user's fields were):",
            not_sent.count()
        );
        for note in not_sent.listed() {
            println!("  user {}: {}", note.user_id, note.reason);
        }
        report::print_not_listed(not_sent.not_listed(), "fields");
    }
}
