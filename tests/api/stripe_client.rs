//! How the Stripe client treats failures: what it retries, for how long, and what
//! it keeps for the log. Driven through the customers service, as the page drives it.

use std::time::Duration;

use std::sync::Arc;

use stripe_sync::customers::{CustomerError, Customers, Push};
use stripe_sync::stripe::{FailureKind, RateLimiter, RatePlan};

use crate::helpers::{log_line_containing, spawn_app, test_retry_policy};
use crate::stripe_fake::Fault;

fn stripe_failure<T: std::fmt::Debug>(
    result: Result<T, CustomerError>,
) -> stripe_sync::stripe::StripeFailure {
    match result {
        Err(CustomerError::Stripe(failure)) => failure,
        other => panic!("expected a Stripe failure, got {other:?}"),
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_one_succeeds() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe.push_faults(1, Fault::Status(503));
    app.stripe.push_faults(1, Fault::Drop);
    app.stripe.push_faults(1, Fault::Status(429));

    app.customers
        .refresh_customer(user_id)
        .await
        .expect("the fourth attempt succeeds");

    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 4);
}

#[tokio::test]
async fn stripe_should_retry_false_stops_retries_of_a_5xx() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe
        .push_faults(1, Fault::StatusShouldRetry(500, false));

    let failure = stripe_failure(app.customers.refresh_customer(user_id).await);

    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 1);
}

#[tokio::test]
async fn stripe_should_retry_true_retries_even_a_status_that_is_not_transient() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe
        .push_faults(1, Fault::StatusShouldRetry(400, true));

    app.customers
        .refresh_customer(user_id)
        .await
        .expect("the retry succeeds");

    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 2);
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe.push_faults(1, Fault::Status(400));

    let failure = stripe_failure(app.customers.update_customer(user_id, Push::Always).await);

    assert!(matches!(failure.kind, FailureKind::Rejected { .. }));
    assert_eq!(app.stripe.calls("POST", "/v1/customers/"), 1);
}

#[tokio::test]
async fn retries_stop_after_the_attempt_limit() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe.push_faults(10, Fault::Status(500));

    let failure = stripe_failure(app.customers.refresh_customer(user_id).await);

    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 4);
}

#[tokio::test]
async fn a_slow_stripe_is_given_up_on_within_the_total_time_limit() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe
        .push_faults(10, Fault::SlowReply(Duration::from_secs(3)));
    let started = std::time::Instant::now();

    let failure = stripe_failure(app.customers.refresh_customer(user_id).await);

    assert_eq!(failure.kind, FailureKind::Unavailable);
    // The suite's policy: 800 ms per attempt, 4 attempts, 5 s in all.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_plain_text_error_keeps_its_status_and_request_id_for_the_log() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe.push_faults(10, Fault::PlainText(502));

    let failure = stripe_failure(app.customers.refresh_customer(user_id).await);

    assert_eq!(failure.status, Some(502));
    let request_id = app.stripe.last_request_id().unwrap();
    assert_eq!(failure.request_id.as_deref(), Some(request_id.as_str()));
    // The failure is logged with its request id.
    log_line_containing(&[&request_id, "refresh customer", "user_id="]).await;
}

#[tokio::test]
async fn a_429_halves_the_bulk_rate_but_one_for_lock_contention_does_not() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    let limiter = Arc::new(RateLimiter::uniform(100));
    let bulk = Customers::new(app.context.for_bulk(limiter.clone(), test_retry_policy()));
    app.stripe.push_faults(1, Fault::LockTimeout);

    bulk.refresh_customer(user_id).await.expect("retried");

    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 2);
    assert_eq!(
        limiter.endpoint_rate(RETRIEVE),
        100.0,
        "lock contention is not the rate"
    );
    // A 429 that names no limiter slows the request's endpoint.
    app.stripe.push_faults(1, Fault::Status(429));
    bulk.refresh_customer(user_id).await.expect("retried");
    let rate = limiter.endpoint_rate(RETRIEVE);
    assert!(rate < 60.0, "{rate}");
    assert_eq!(
        limiter.current_rate(),
        100.0,
        "the global rate is untouched"
    );
}

const RETRIEVE: &str = "GET /v1/customers/{id}";
const UPDATE: &str = "POST /v1/customers/{id}";

#[tokio::test]
async fn an_endpoint_rate_429_slows_that_endpoint_and_a_global_one_the_account() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    let plan = RatePlan {
        global: 100,
        endpoint: 40,
    };
    let limiter = Arc::new(RateLimiter::new(plan));
    let bulk = Customers::new(app.context.for_bulk(limiter.clone(), test_retry_policy()));
    bulk.update_customer(user_id, Push::Always).await.unwrap();

    app.stripe
        .push_faults(1, Fault::RateLimitedBy("endpoint-rate"));
    bulk.refresh_customer(user_id).await.expect("retried");

    assert!(limiter.endpoint_rate(RETRIEVE) < 25.0);
    assert_eq!(
        limiter.endpoint_rate(UPDATE),
        40.0,
        "updates keep their rate"
    );
    assert_eq!(limiter.current_rate(), 100.0);

    app.stripe
        .push_faults(1, Fault::RateLimitedBy("global-rate"));
    bulk.update_customer(user_id, Push::Always)
        .await
        .expect("retried");

    assert!(limiter.current_rate() < 60.0, "{}", limiter.current_rate());
    assert_eq!(limiter.endpoint_rate(UPDATE), 40.0);
}

#[tokio::test]
async fn a_retry_after_holds_the_bulk_run_back_that_long() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    let limiter = Arc::new(RateLimiter::uniform(100));
    let bulk = Customers::new(app.context.for_bulk(limiter, test_retry_policy()));
    app.stripe.push_faults(1, Fault::RateLimitedFor(1));
    let started = std::time::Instant::now();

    bulk.refresh_customer(user_id).await.expect("retried");

    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.stripe.calls("GET", "/v1/customers/"), 2);
}

#[tokio::test]
async fn time_queued_behind_the_rate_limiter_is_not_a_stripe_timeout() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    // One request a second, and a budget of far less than the queue: before, the
    // wait for a token used up the budget and the call "timed out".
    let limiter = Arc::new(RateLimiter::uniform(1));
    let mut policy = test_retry_policy();
    policy.total_timeout = Duration::from_millis(300);
    policy.attempt_timeout = Duration::from_millis(300);
    let bulk = Customers::new(app.context.for_bulk(limiter, policy));

    let started = std::time::Instant::now();
    for _ in 0..3 {
        bulk.refresh_customer(user_id)
            .await
            .expect("queued, then answered");
    }

    // They did queue: a second apart, the whole well past the 300 ms budget.
    let queued = started.elapsed();
    assert!(queued >= Duration::from_millis(1800), "{queued:?}");
    let sent = app.stripe.call_times("GET", "/v1/customers/{id}");
    let apart = sent[sent.len() - 1] - sent[sent.len() - 3];
    assert!(apart >= Duration::from_millis(1800), "sent {apart:?} apart");
}

#[tokio::test]
async fn an_answer_larger_than_16_mib_is_refused_with_a_clear_error() {
    let app = spawn_app().await;
    let (_, user_id, _) = app.linked_user().await;
    app.stripe.push_faults(1, Fault::HugeBody(17 << 20));

    let failure = stripe_failure(app.customers.refresh_customer(user_id).await);

    assert_eq!(failure.kind, FailureKind::Unavailable);
    assert!(
        failure.detail.contains("larger than 16 MiB"),
        "{}",
        failure.detail
    );
    assert_eq!(
        app.stripe.calls("GET", "/v1/customers/"),
        1,
        "not asked again"
    );
}
