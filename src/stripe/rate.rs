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
    requests: u64,
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
    /// The answers' round trip (seconds, a moving average), once one is seen.
    round_trip: Option<f64>,
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
/// A waiter wakes a little after its token is due (the timer's millisecond, the
/// scheduler), and a bucket full at one whole token would drop what accrued
/// meanwhile: at 20 calls/s each call lost a millisecond or two, 2-4% of the
/// rate. A bucket holds this many seconds of tokens beyond its one.
const LATE_WAKE: f64 = 0.010;
/// The slowest a run of 429s can push a bucket, as a share of its target.
const FLOOR_SHARE: f64 = 0.1;
/// How much of the target rate comes back each second after a slowdown: from
/// half the target to all of it in half a second. Under random 429s (4% of calls
/// in the bench's faulty phase) a slower climb left the run near half the rate.
const RECOVERY_SHARE_PER_SECOND: f64 = 1.0;
/// The weight of the newest round trip in its endpoint's moving average.
const ROUND_TRIP_WEIGHT: f64 = 0.2;
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
                requests: 0,
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
                            state.requests += 1;
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

    /// How many requests the limiter has let through.
    pub fn request_count(&self) -> u64 {
        self.state.lock().expect("rate limiter lock").requests
    }

    /// Every bucket's rate now, requests per second: `global`, then each
    /// endpoint's (`POST /v1/customers/{id}`).
    pub fn bucket_rates(&self) -> Vec<(String, f64)> {
        let state = self.state.lock().expect("rate limiter lock");
        let mut rates = vec![("global".to_string(), state.global.rate)];
        rates.extend(
            state
                .endpoints
                .iter()
                .map(|(endpoint, bucket)| (endpoint.to_string(), bucket.rate)),
        );
        rates
    }

    /// The global bucket's rate now.
    pub fn current_rate(&self) -> f64 {
        self.state.lock().expect("rate limiter lock").global.rate
    }

    /// An answer from `endpoint` took `took` on the wire (never the wait for a
    /// token): kept as a moving average, for callers that size their
    /// concurrency by rate × round trip.
    pub fn observe_round_trip(&self, endpoint: &str, took: Duration) {
        let mut state = self.state.lock().expect("rate limiter lock");
        if let Some(bucket) = state.endpoints.get_mut(endpoint) {
            let took = took.as_secs_f64();
            bucket.round_trip = Some(match bucket.round_trip {
                Some(average) => average + ROUND_TRIP_WEIGHT * (took - average),
                None => took,
            });
        }
    }

    /// The rate planned for `endpoint` (its share of the plan, within the global
    /// one) and its answers' average round trip, once one is seen.
    pub fn pacing(&self, endpoint: &str) -> (f64, Option<Duration>) {
        let state = self.state.lock().expect("rate limiter lock");
        let share = f64::from(state.share);
        let planned = f64::from(self.plan.endpoint.max(1)).min(f64::from(self.plan.global.max(1)));
        let round_trip = state.endpoints.get(endpoint).and_then(|b| b.round_trip);
        (planned / share, round_trip.map(Duration::from_secs_f64))
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
            round_trip: None,
        }
    }

    /// Adds the tokens earned since the last look, and the rate recovered.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.rate =
            (self.rate + self.target * RECOVERY_SHARE_PER_SECOND * elapsed).min(self.target);
        let capacity = (self.rate * BURST_SECONDS).max(1.0 + self.rate * LATE_WAKE);
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
mod tests;
