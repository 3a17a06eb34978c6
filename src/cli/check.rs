//! `stripe:sync-customers --check [--repair]`: the drift report.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::CliError;
use super::sync_customers::Args;
use crate::sync::SyncService;
use crate::sync::drift::DriftReport;

pub async fn run(sync: &SyncService, args: &Args, stop: Arc<AtomicBool>) -> Result<(), CliError> {
    let report = sync
        .check_drift(args.user, args.repair, stop)
        .await
        .map_err(|e| CliError::Failed(e.operator_reason()))?;
    print(&report, args.json);
    match report.unrepaired() {
        0 if report.interrupted => Err(CliError::Reported("check interrupted".into())),
        0 => Ok(()),
        n => Err(CliError::Reported(format!("{n} cases of drift found"))),
    }
}

fn print(report: &DriftReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
        return;
    }
    println!(
        "stripe:sync-customers --check: {} Stripe customers seen, {} cases of drift{}",
        report.customers_seen,
        report.drift.len(),
        if report.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    );
    for drift in &report.drift {
        let fixed = if drift.repaired { "  [repaired]" } else { "" };
        println!(
            "  user {:<8} {:<10} {:<24} {}{fixed}",
            drift.user_id,
            format!("{:?}", drift.kind).to_lowercase(),
            drift.stripe_id,
            drift.detail
        );
    }
}
