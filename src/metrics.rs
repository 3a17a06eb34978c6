//! The counters and histograms the app records where things happen (an HTTP
//! request answered, a Stripe call, a webhook event, a refused sign-in), on the
//! `metrics` facade. Which recorder takes them, and the gauges read at scrape
//! time, are `crate::monitoring`'s; without a recorder (every command but `serve`
//! with `METRICS_BIND`) each call is a no-op.
//!
//! Names follow Prometheus's conventions: `stripe_sync_` first, base units
//! (`_seconds`), `_total` for counters; labels carry routes, endpoints, event
//! types and outcomes, never a user id, an email or an object id.

use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

pub const HTTP_REQUESTS: &str = "stripe_sync_http_requests_total";
pub const HTTP_DURATION: &str = "stripe_sync_http_request_duration_seconds";
pub const STRIPE_REQUESTS: &str = "stripe_sync_stripe_requests_total";
pub const STRIPE_DURATION: &str = "stripe_sync_stripe_request_duration_seconds";
pub const STRIPE_RATE_LIMITED: &str = "stripe_sync_stripe_rate_limited_total";
pub const WEBHOOK_EVENTS: &str = "stripe_sync_webhook_events_total";
pub const WEBHOOK_SIGNATURE_FAILURES: &str = "stripe_sync_webhook_signature_failures_total";
pub const SIGN_IN_REFUSALS: &str = "stripe_sync_sign_in_refusals_total";
pub const HASHER_BUSY: &str = "stripe_sync_password_hasher_busy_total";

/// One HTTP request answered: its route's template (`/jobs/{id}`, never the
/// path: ids stay out of labels), method and status.
pub fn http_request(method: &str, route: &str, status: u16, took: Duration) {
    // A client may send any method name: only the standard ones become labels.
    const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let method = METHODS
        .into_iter()
        .find(|m| *m == method)
        .unwrap_or("other");
    let route = route.to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route).record(took.as_secs_f64());
}

/// One attempt of a Stripe request: its endpoint (`POST /v1/customers/{id}`),
/// how it came out, and for a 429, the limiter Stripe named.
pub fn stripe_request(
    endpoint: &str,
    outcome: &'static str,
    rate_limited: Option<&str>,
    took: Duration,
) {
    let endpoint = endpoint.to_string();
    counter!(STRIPE_REQUESTS, "endpoint" => endpoint.clone(), "outcome" => outcome).increment(1);
    histogram!(STRIPE_DURATION, "endpoint" => endpoint.clone()).record(took.as_secs_f64());
    if outcome == "rate_limited" {
        let reason = rate_limited_reason(rate_limited);
        counter!(STRIPE_RATE_LIMITED, "endpoint" => endpoint, "reason" => reason).increment(1);
    }
}

/// `Stripe-Rate-Limited-Reason`, one of the values Stripe documents; anything
/// else is `other`, so the label's values stay few.
fn rate_limited_reason(reason: Option<&str>) -> &'static str {
    const KNOWN: [&str; 5] = [
        "global-rate",
        "global-concurrency",
        "endpoint-rate",
        "endpoint-concurrency",
        "resource-specific",
    ];
    match reason.map(str::trim) {
        None | Some("") => "none",
        Some(reason) => KNOWN.into_iter().find(|k| *k == reason).unwrap_or("other"),
    }
}

/// One webhook event handled: its type (when it is one of `handled`, the types
/// the app acts on; `other` for the rest) and outcome.
pub fn webhook_event(event_type: &str, handled: &[&str], outcome: &'static str) {
    let event_type = match handled.contains(&event_type) {
        true => event_type.to_string(),
        false => "other".to_string(),
    };
    counter!(WEBHOOK_EVENTS, "type" => event_type, "outcome" => outcome).increment(1);
}

pub fn webhook_signature_failure() {
    counter!(WEBHOOK_SIGNATURE_FAILURES).increment(1);
}

pub fn sign_in_refused() {
    counter!(SIGN_IN_REFUSALS).increment(1);
}

pub fn hasher_busy() {
    counter!(HASHER_BUSY).increment(1);
}

/// Describes every series recorded here, for the recorder's `# HELP` lines.
pub fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_counter!(
        STRIPE_REQUESTS,
        "Stripe API requests sent by this process (each attempt), by endpoint and outcome"
    );
    describe_histogram!(
        STRIPE_DURATION,
        Unit::Seconds,
        "Time for Stripe to answer a request"
    );
    describe_counter!(
        STRIPE_RATE_LIMITED,
        "Stripe 429 answers, by endpoint and Stripe-Rate-Limited-Reason"
    );
    describe_counter!(
        WEBHOOK_EVENTS,
        "Stripe webhook events received, by type and outcome"
    );
    describe_counter!(
        WEBHOOK_SIGNATURE_FAILURES,
        "Webhook posts refused for a missing or wrong Stripe-Signature"
    );
    describe_counter!(
        SIGN_IN_REFUSALS,
        "Sign-in attempts refused by the sign-in limits"
    );
    describe_counter!(
        HASHER_BUSY,
        "Requests answered 503 because every password hasher was busy and the queue full"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_reason_label_takes_only_stripe_s_documented_values() {
        assert_eq!(rate_limited_reason(Some("endpoint-rate")), "endpoint-rate");
        assert_eq!(rate_limited_reason(Some(" global-rate ")), "global-rate");
        assert_eq!(rate_limited_reason(None), "none");
        assert_eq!(rate_limited_reason(Some("user 42 said so")), "other");
    }
}
