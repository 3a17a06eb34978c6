//! Stripe's two rate limiters, modelled on our side so a bulk run stays under both:
//! a **global** limit per account and a limit per **named operation** (endpoint),
//! each a token bucket of its own. A request takes a token from the global bucket
//! and from its endpoint's bucket at the same moment, or waits for both.
//!
//! A 429 is answered as TCP answers a lost packet, in the bucket the 429 names
//! (`Stripe-Rate-Limited-Reason`; without one, the request's endpoint): that
//! bucket's rate halves at most once per window of requests in flight (a 429 for a
//! request sent before the last halving says nothing new), then climbs back
//! additively, a fixed share of the target a second, so a stray 429 costs seconds,
//! not the rest of the run. A `Retry-After` pauses every request until it has
//! passed. A 429 about one object (`lock_timeout`, `resource-specific`) is not
//! about the rate and slows nothing.
//!
//! The plan is per account; processes sharing an account each take a share of it
//! ([`RateLimiter::set_share`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Requests per second a run plans for: the whole account's, before sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePlan {
    pub global: u32,
    pub endpoint: u32,
}

/// Which of Stripe's limiters refused a request, from `Stripe-Rate-Limited-Reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `global-rate`, `global-concurrency`: the account's limit.
    Global,
    /// `endpoint-rate`, `endpoint-concurrency`, or no reason given: the operation's.
    Endpoint,
    /// `resource-specific` or a `lock_timeout`: one object is busy; not the rate.
    Resource,
}

impl Refusal {
    /// Reads the header's value; an unknown or missing reason is the endpoint's.
    pub fn from_reason(reason: Option<&str>) -> Self {
        match reason.map(str::trim) {
            Some("global-rate" | "global-concurrency") => Refusal::Global,
            Some("resource-specific") => Refusal::Resource,
            _ => Refusal::Endpoint,
        }
    }
}

#[derive(Debug)]
pub struct RateLimiter {
    plan: RatePlan,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// How many processes share the plan (at least one).
    share: u32,
    global: Bucket,
    endpoints: HashMap<Arc<str>, Bucket>,
    paused_until: Option<Instant>,
    rate_limited: u64,
}

#[derive(Debug)]
struct Bucket {
    target: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
    /// Counts the halvings; a request remembers the epoch it was sent in.
    epoch: u64,
}

/// The windows of requests a request was sent in, handed back with its 429.
#[derive(Debug, Clone)]
pub struct Ticket {
    endpoint: Arc<str>,
    global_epoch: u64,
    endpoint_epoch: u64,
}

/// A bucket holds at most this many seconds of tokens: requests are paced evenly
/// rather than sent in bursts the server's own bucket may not absorb.
const BURST_SECONDS: f64 = 0.05;
/// The slowest a run of 429s can push a bucket, as a share of its target.
const FLOOR_SHARE: f64 = 0.1;
/// How much of the target rate comes back each second after a slowdown: from
/// half the target to all of it in half a second. Under random 429s (4% of calls
/// in the bench's faulty phase) a slower climb left the run near half the rate.
const RECOVERY_SHARE_PER_SECOND: f64 = 1.0;
/// The longest `Retry-After` obeyed; a longer one is taken as this.
const MAX_PAUSE: Duration = Duration::from_secs(30);

impl RateLimiter {
    pub fn new(plan: RatePlan) -> Self {
        let now = Instant::now();
        RateLimiter {
            plan,
            state: Mutex::new(State {
                share: 1,
                global: Bucket::new(f64::from(plan.global.max(1)), now),
                endpoints: HashMap::new(),
                paused_until: None,
                rate_limited: 0,
            }),
        }
    }

    /// A single bucket of `per_second` for every request (global and each
    /// endpoint alike): for tests and callers that know one limit only.
    pub fn uniform(per_second: u32) -> Self {
        Self::new(RatePlan {
            global: per_second,
            endpoint: per_second,
        })
    }

    pub fn plan(&self) -> RatePlan {
        self.plan
    }

    /// `processes` share the account's plan: each bucket's target becomes its
    /// share of the plan. A bucket above its new target drops to it at once; one
    /// below climbs back as after a 429.
    pub fn set_share(&self, processes: u32) {
        let processes = processes.max(1);
        let mut state = self.state.lock().expect("rate limiter lock");
        if state.share == processes {
            return;
        }
        state.share = processes;
        let now = Instant::now();
        let global = f64::from(self.plan.global.max(1)) / f64::from(processes);
        let endpoint = f64::from(self.plan.endpoint.max(1)) / f64::from(processes);
        state.global.retarget(global, now);
        for bucket in state.endpoints.values_mut() {
            bucket.retarget(endpoint, now);
        }
    }

    /// Waits for a token of the global bucket and of `endpoint`'s (see
    /// [`endpoint_key`]); the ticket goes back with a 429.
    pub async fn acquire(&self, endpoint: &str) -> Ticket {
        loop {
            let wait = {
                let mut guard = self.state.lock().expect("rate limiter lock");
                let state = &mut *guard;
                let now = Instant::now();
                match state.paused_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        state.paused_until = None;
                        let target = f64::from(self.plan.endpoint.max(1)) / f64::from(state.share);
                        let key = match state.endpoints.get_key_value(endpoint) {
                            Some((key, _)) => key.clone(),
                            None => {
                                let key: Arc<str> = endpoint.into();
                                state
                                    .endpoints
                                    .insert(key.clone(), Bucket::new(target, now));
                                key
                            }
                        };
                        let bucket = state.endpoints.get_mut(&key).expect("bucket just found");
                        state.global.refill(now);
                        bucket.refill(now);
                        if state.global.tokens >= 1.0 && bucket.tokens >= 1.0 {
                            state.global.tokens -= 1.0;
                            bucket.tokens -= 1.0;
                            return Ticket {
                                endpoint: key,
                                global_epoch: state.global.epoch,
                                endpoint_epoch: bucket.epoch,
                            };
                        }
                        state.global.wait().max(bucket.wait())
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Stripe answered 429 to the request holding `ticket`: halve the rate of the
    /// bucket `refusal` names unless that already happened since the request was
    /// sent, and pause everyone for `retry_after` when Stripe named a wait.
    pub fn rate_limited(&self, ticket: &Ticket, refusal: Refusal, retry_after: Option<Duration>) {
        let mut guard = self.state.lock().expect("rate limiter lock");
        let state = &mut *guard;
        state.rate_limited += 1;
        let now = Instant::now();
        if let Some(wait) = retry_after {
            let until = now + wait.min(MAX_PAUSE);
            state.paused_until = Some(state.paused_until.map_or(until, |u| u.max(until)));
        }
        let (bucket, epoch) = match refusal {
            Refusal::Resource => return,
            Refusal::Global => (&mut state.global, ticket.global_epoch),
            Refusal::Endpoint => match state.endpoints.get_mut(&ticket.endpoint) {
                Some(bucket) => (bucket, ticket.endpoint_epoch),
                None => return,
            },
        };
        if epoch == bucket.epoch {
            bucket.halve(now);
        }
    }

    /// How many 429s the limiter has seen.
    pub fn rate_limited_count(&self) -> u64 {
        self.state.lock().expect("rate limiter lock").rate_limited
    }

    /// The global bucket's rate now.
    pub fn current_rate(&self) -> f64 {
        self.state.lock().expect("rate limiter lock").global.rate
    }

    /// An endpoint bucket's rate now (its target before its first request).
    pub fn endpoint_rate(&self, endpoint: &str) -> f64 {
        let state = self.state.lock().expect("rate limiter lock");
        match state.endpoints.get(endpoint) {
            Some(bucket) => bucket.rate,
            None => f64::from(self.plan.endpoint.max(1)) / f64::from(state.share),
        }
    }
}

impl Bucket {
    fn new(target: f64, now: Instant) -> Self {
        Bucket {
            target,
            rate: target,
            tokens: 1.0,
            last: now,
            epoch: 0,
        }
    }

    /// Adds the tokens earned since the last look, and the rate recovered.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.rate =
            (self.rate + self.target * RECOVERY_SHARE_PER_SECOND * elapsed).min(self.target);
        let capacity = (self.rate * BURST_SECONDS).max(1.0);
        self.tokens = (self.tokens + elapsed * self.rate).min(capacity);
    }

    /// How long until this bucket has a whole token.
    fn wait(&self) -> Duration {
        if self.tokens >= 1.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }

    fn halve(&mut self, now: Instant) {
        self.refill(now);
        self.rate = (self.rate / 2.0).max(self.target * FLOOR_SHARE);
        self.tokens = 0.0;
        self.epoch += 1;
    }

    fn retarget(&mut self, target: f64, now: Instant) {
        self.refill(now);
        self.target = target;
        self.rate = self.rate.min(target);
    }
}

/// The named operation a request counts against: its method and path, each id in
/// the path replaced (`POST /v1/customers/{id}`). Stripe's ids are a prefix, `_`
/// and random digits and letters; the names of collections are lower-case words.
pub fn endpoint_key(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let is_id = segment.contains('_')
                && segment
                    .chars()
                    .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase());
            if is_id { "{id}" } else { segment }
        })
        .collect();
    format!("{method} {}", segments.join("/"))
}

#[cfg(test)]
mod tests {
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
}
