//! The printed report the bulk commands share: a heading, a column of counts,
//! and the failures grouped by whether Stripe answered.

/// One failed item: who or what, why, and Stripe's request id when it answered.
pub struct FailureLine<'a> {
    pub subject: String,
    pub reason: &'a str,
    pub request_id: Option<&'a str>,
    pub stripe_answered: bool,
}

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
/// answered (network, timeout): the first need a look, the second a rerun.
pub fn print_failures(noun: &str, failures: &[FailureLine<'_>]) {
    for (answered, heading) in [
        (true, "Stripe answered with an error"),
        (false, "no answer from Stripe (network, timeout)"),
    ] {
        let group: Vec<&FailureLine<'_>> = failures
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
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            println!("  {}: {}{request}", failure.subject, failure.reason);
        }
    }
}
