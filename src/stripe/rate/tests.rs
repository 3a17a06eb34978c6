use super::*;

const CREATE: &str = "POST /v1/customers";
const UPDATE: &str = "POST /v1/customers/{id}";

fn plan(global: u32, endpoint: u32) -> RateLimiter {
    RateLimiter::new(RatePlan { global, endpoint })
}

#[test]
fn ids_in_a_path_are_one_endpoint_and_collections_are_not_ids() {
    assert_eq!(
        endpoint_key("POST", "/v1/customers/cus_NffrFeUfNV2Hib"),
        UPDATE
    );
    assert_eq!(
        endpoint_key("POST", "/v1/customers/cus_fake00000042"),
        UPDATE
    );
    assert_eq!(endpoint_key("POST", "/v1/customers"), CREATE);
    assert_eq!(
        endpoint_key("GET", "/v1/checkout/sessions/cs_test_a1B2"),
        "GET /v1/checkout/sessions/{id}"
    );
    assert_eq!(
        endpoint_key("POST", "/v1/billing_portal/sessions"),
        "POST /v1/billing_portal/sessions"
    );
    assert_ne!(
        endpoint_key("GET", "/v1/customers/cus_1"),
        endpoint_key("POST", "/v1/customers/cus_1")
    );
}

#[test]
fn the_reason_header_names_the_limiter() {
    assert_eq!(Refusal::from_reason(Some("global-rate")), Refusal::Global);
    assert_eq!(
        Refusal::from_reason(Some("global-concurrency")),
        Refusal::Global
    );
    assert_eq!(
        Refusal::from_reason(Some("endpoint-rate")),
        Refusal::Endpoint
    );
    assert_eq!(
        Refusal::from_reason(Some("endpoint-concurrency")),
        Refusal::Endpoint
    );
    assert_eq!(
        Refusal::from_reason(Some("resource-specific")),
        Refusal::Resource
    );
    assert_eq!(Refusal::from_reason(None), Refusal::Endpoint);
}

#[tokio::test(start_paused = true)]
async fn requests_are_paced_at_the_rate() {
    let limiter = RateLimiter::uniform(50);
    let started = Instant::now();
    for _ in 0..101 {
        limiter.acquire(CREATE).await;
    }
    // 100 waits of 20 ms each after the first token, on the paused clock.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
}

/// Sends `count` requests to each endpoint, the streams side by side, and
/// returns how long it took on the paused clock.
async fn interleaved(limiter: &RateLimiter, endpoints: &[&str], count: usize) -> Duration {
    let started = Instant::now();
    let stream = |endpoint: Option<&'static str>| async move {
        if let Some(endpoint) = endpoint {
            for _ in 0..count {
                limiter.acquire(endpoint).await;
            }
        }
    };
    let name = |i: usize| {
        endpoints.get(i).map(|e| -> &'static str {
            if *e == CREATE { CREATE } else { UPDATE }
        })
    };
    tokio::join!(stream(name(0)), stream(name(1)));
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn each_endpoint_gets_its_own_rate_under_a_roomier_global_limit() {
    let limiter = plan(80, 20);
    // 20 requests to one endpoint take about a second, whatever the other does.
    let elapsed = interleaved(&limiter, &[CREATE, UPDATE], 21).await;
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert!(elapsed <= Duration::from_millis(1100), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_caps_every_endpoint_together() {
    let limiter = plan(20, 20);
    // Two endpoints of 20/s under a global 20/s: 40 requests take two seconds.
    let elapsed = interleaved(&limiter, &[CREATE, UPDATE], 20).await;
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_429_slows_only_that_endpoint() {
    let limiter = plan(80, 20);
    let ticket = limiter.acquire(CREATE).await;
    limiter.acquire(UPDATE).await;

    limiter.rate_limited(&ticket, Refusal::Endpoint, None);

    assert_eq!(limiter.endpoint_rate(CREATE), 10.0);
    assert_eq!(limiter.endpoint_rate(UPDATE), 20.0);
    assert_eq!(limiter.current_rate(), 80.0);
}

#[tokio::test(start_paused = true)]
async fn a_global_429_slows_the_global_bucket_and_leaves_the_endpoints() {
    let limiter = plan(80, 20);
    let ticket = limiter.acquire(CREATE).await;

    limiter.rate_limited(&ticket, Refusal::Global, None);

    assert_eq!(limiter.current_rate(), 40.0);
    assert_eq!(limiter.endpoint_rate(CREATE), 20.0);
}

#[tokio::test(start_paused = true)]
async fn a_429_about_one_object_slows_nothing() {
    let limiter = plan(80, 20);
    let ticket = limiter.acquire(UPDATE).await;

    limiter.rate_limited(&ticket, Refusal::Resource, None);

    assert_eq!(limiter.endpoint_rate(UPDATE), 20.0);
    assert_eq!(limiter.current_rate(), 80.0);
    assert_eq!(limiter.rate_limited_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn many_429s_for_requests_sent_together_halve_the_rate_once() {
    let limiter = RateLimiter::uniform(100);
    let mut in_flight = Vec::new();
    for _ in 0..10 {
        in_flight.push(limiter.acquire(CREATE).await);
    }

    for ticket in &in_flight {
        limiter.rate_limited(ticket, Refusal::Global, None);
    }

    assert_eq!(limiter.current_rate(), 50.0);
    assert_eq!(limiter.rate_limited_count(), 10);
    // A request sent after the halving that meets a 429 halves again (from
    // the little the rate recovered while that request waited for a token).
    let later = limiter.acquire(CREATE).await;
    limiter.rate_limited(&later, Refusal::Global, None);
    let rate = limiter.current_rate();
    assert!((25.0..27.0).contains(&rate), "{rate}");
}

#[tokio::test(start_paused = true)]
async fn the_rate_climbs_back_to_the_target_within_seconds() {
    let limiter = RateLimiter::uniform(100);
    let ticket = limiter.acquire(CREATE).await;
    limiter.rate_limited(&ticket, Refusal::Endpoint, None);
    assert_eq!(limiter.endpoint_rate(CREATE), 50.0);

    tokio::time::advance(Duration::from_millis(200)).await;
    limiter.acquire(CREATE).await;
    let rate = limiter.endpoint_rate(CREATE);
    assert!((69.0..71.0).contains(&rate), "{rate}");

    tokio::time::advance(Duration::from_millis(400)).await;
    limiter.acquire(CREATE).await;
    assert_eq!(limiter.endpoint_rate(CREATE), 100.0);
}

#[tokio::test(start_paused = true)]
async fn repeated_429s_never_stop_the_limiter() {
    let limiter = RateLimiter::uniform(100);
    for _ in 0..50 {
        let ticket = limiter.acquire(CREATE).await;
        limiter.rate_limited(&ticket, Refusal::Endpoint, None);
        limiter.rate_limited(&ticket, Refusal::Global, None);
    }
    assert!(limiter.current_rate() >= 10.0);
    assert!(limiter.endpoint_rate(CREATE) >= 10.0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_every_request_back_until_it_has_passed() {
    let limiter = RateLimiter::uniform(100);
    let ticket = limiter.acquire(CREATE).await;
    let started = Instant::now();

    limiter.rate_limited(&ticket, Refusal::Endpoint, Some(Duration::from_secs(2)));
    limiter.acquire(UPDATE).await;

    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn processes_sharing_the_account_each_take_their_share_and_get_it_back() {
    let limiter = plan(80, 20);
    limiter.acquire(CREATE).await;

    limiter.set_share(2);
    assert_eq!(limiter.current_rate(), 40.0);
    assert_eq!(limiter.endpoint_rate(CREATE), 10.0);
    assert_eq!(limiter.endpoint_rate(UPDATE), 10.0, "a bucket not yet used");
    let elapsed = interleaved(&limiter, &[CREATE], 10).await;
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");

    limiter.set_share(1);
    tokio::time::advance(Duration::from_secs(1)).await;
    limiter.acquire(CREATE).await;
    assert_eq!(limiter.endpoint_rate(CREATE), 20.0);
    assert_eq!(limiter.current_rate(), 80.0);
}
