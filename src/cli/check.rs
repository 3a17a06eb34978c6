//! `stripe:sync-customers --check [--repair]`: the drift report.

use super::CliError;
use super::signals::Stop;
use crate::customers::Customers;
use crate::customers::drift::{DriftReport, Repair};
use crate::runs::history::{RunEnd, RunProgress, failure_json};

/// What `--check` was asked for.
pub struct CheckOptions {
    pub user: Option<i64>,
    pub repair: Option<Repair>,
    pub json: bool,
}

/// Checks, prints the report; returns the command's result and the run's end
/// for the history (its unrepaired drift counted as failures).
pub async fn run(
    sync: &Customers,
    options: CheckOptions,
    stop: Stop,
) -> (Result<(), CliError>, RunEnd) {
    let report = match sync
        .check_drift(options.user, options.repair, stop.flag.clone())
        .await
    {
        Ok(report) => report,
        Err(e) => {
            let err = CliError::failed("stripe:sync-customers --check", e.operator_reason());
            let end = super::bulk::end_without_report(&err, stop.signal(), RunProgress::default());
            return (Err(err), end);
        }
    };
    print(&report, options.json);
    let result = outcome(&report, stop.signal());
    let progress = RunProgress {
        done: Some(report.links_checked),
        total: None,
        counts: vec![
            ("customers_seen", report.customers_seen),
            ("links_checked", report.links_checked),
            ("drift", report.found),
            ("unrepaired", report.unrepaired()),
        ],
    };
    let drift = report.drift().iter().map(failure_json).collect();
    let end = super::bulk::end(&result, progress, report.unrepaired(), drift);
    (result, end)
}

fn outcome(report: &DriftReport, signal: Option<i32>) -> Result<(), CliError> {
    if let Some(signal) = signal {
        return Err(CliError::Interrupted {
            signal,
            detail: "check interrupted".into(),
        });
    }
    if let Some(refused) = &report.repair_refused {
        return Err(CliError::Reported(format!("repair refused: {refused}")));
    }
    match report.unrepaired() {
        0 if report.interrupted => Err(CliError::Reported("check interrupted".into())),
        0 => Ok(()),
        n => Err(CliError::Reported(format!("{n} cases of drift found"))),
    }
}

fn print(report: &DriftReport, json: bool) {
    if super::report::printed_as_json(report, json) {
        return;
    }
    println!(
        "stripe:sync-customers --check: {} Stripe customers seen, {} links checked, {} cases \
         of drift{}",
        report.customers_seen,
        report.links_checked,
        report.found,
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    for drift in report.drift() {
        let fixed = if drift.repaired { "  [repaired]" } else { "" };
        let kind = serde_json::to_value(drift.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "  user {:<8} {:<14} {:<24} {}{fixed}",
            drift.user_id, kind, drift.stripe_id, drift.detail
        );
    }
    if report.not_listed() > 0 {
        println!(
            "… and {} more cases of drift, not listed here: each is in the log.",
            report.not_listed()
        );
    }
    if let Some(refused) = &report.repair_refused {
        println!("Repair refused: {refused}");
    }
}
