//! The printed report the bulk commands share: a heading, a column of counts,
//! and the failures grouped by whether Stripe answered.

use serde::Serialize;

use super::CliError;
use crate::runs::report::{Failure, Failures};

/// `stripe:… finished in 1.2s`, saying when it was interrupted or a dry run.
pub fn print_heading(command: &str, interrupted: bool, elapsed_seconds: f64, dry_run: bool) {
    let how = if interrupted {
        "interrupted"
    } else {
        "finished"
    };
    let dry = if dry_run {
        " (dry run: nothing was written)"
    } else {
        ""
    };
    println!("{command} {how} in {elapsed_seconds:.1}s{dry}");
}

/// Labels and counts, aligned.
pub fn print_counts(rows: &[(&str, u64)]) {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    for (label, value) in rows {
        println!("  {label:<width$}{value:>8}");
    }
}

/// Failures, those Stripe answered with an error first, then those it never
/// answered (network, timeout): the first need a look, the second a rerun; then
/// how many more there were beyond the list (each in the log).
pub fn print_failures(noun: &str, failures: &Failures) {
    for (answered, heading) in [
        (true, "Stripe answered with an error"),
        (false, "no answer from Stripe (network, timeout)"),
    ] {
        let group: Vec<&Failure> = failures
            .listed()
            .iter()
            .filter(|failure| failure.stripe_answered == answered)
            .collect();
        if group.is_empty() {
            continue;
        }
        println!("Failed {noun}, {heading}:");
        for failure in group {
            let request = failure
                .request_id
                .as_deref()
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            println!("  {}: {}{request}", failure.subject, failure.reason);
        }
    }
    if failures.not_listed() > 0 {
        println!(
            "… and {} more failed {noun}, not listed here: each is in the log.",
            failures.not_listed()
        );
    }
}

/// Prints the report as one JSON object when `json` is set; says whether it did.
pub fn printed_as_json(report: &impl Serialize, json: bool) -> bool {
    if json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serializes")
        );
    }
    json
}

/// The refusal of a command that needs Stripe when no key is set.
pub fn stripe_not_configured() -> CliError {
    CliError::Usage(
        "Stripe is not configured: set STRIPE_SECRET (and STRIPE_API_BASE for a stand-in)".into(),
    )
}

/// The line under a list that stopped at its limit.
pub fn print_not_listed(count: u64, noun: &str) {
    if count > 0 {
        println!("  … and {count} more {noun}");
    }
}
