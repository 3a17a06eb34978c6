//! A token bucket shared by every request a bulk run makes, so it stays under
//! Stripe's rate limit.
//!
//! A 429 is answered as TCP answers a lost packet: the rate halves at most once per
//! window of requests in flight (a 429 for a request sent before the last halving
//! says nothing new), then climbs back additively, a fixed share of the target a
//! second, so a stray 429 costs seconds, not the rest of the run. A `Retry-After`
//! pauses every request until it has passed. A 429 for lock contention on one
//! object (`lock_timeout`) is not about the rate and does not slow the run.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct RateLimiter {
    target: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
    /// Counts the halvings; a request remembers the epoch it was sent in.
    epoch: u64,
    paused_until: Option<Instant>,
    rate_limited: u64,
}

/// Which window of requests a request was sent in, handed back with its 429.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
}

/// The bucket holds at most this many seconds of tokens: requests are paced
/// evenly rather than sent in bursts the server's own bucket may not absorb.
const BURST_SECONDS: f64 = 0.05;
/// The slowest a run of 429s can push the limiter, as a share of the target.
const FLOOR_SHARE: f64 = 0.1;
/// How much of the target rate comes back each second after a slowdown: from
/// half the target to all of it in half a second. Under random 429s (4% of calls
/// in the bench's faulty phase) a slower climb left the run near half the rate.
const RECOVERY_SHARE_PER_SECOND: f64 = 1.0;
/// The longest `Retry-After` obeyed; a longer one is taken as this.
const MAX_PAUSE: Duration = Duration::from_secs(30);

impl RateLimiter {
    /// At most `per_second` requests a second (at least one).
    pub fn new(per_second: u32) -> Self {
        let target = f64::from(per_second.max(1));
        RateLimiter {
            target,
            state: Mutex::new(Bucket {
                rate: target,
                tokens: 1.0,
                last: Instant::now(),
                epoch: 0,
                paused_until: None,
                rate_limited: 0,
            }),
        }
    }

    /// Waits for a token; the ticket goes back with a 429.
    pub async fn acquire(&self) -> Ticket {
        loop {
            let wait = {
                let mut bucket = self.state.lock().expect("rate limiter lock");
                let now = Instant::now();
                match bucket.paused_until {
                    Some(until) if until > now => until - now,
                    _ => {
                        bucket.paused_until = None;
                        bucket.refill(self.target, now);
                        if bucket.tokens >= 1.0 {
                            bucket.tokens -= 1.0;
                            return Ticket {
                                epoch: bucket.epoch,
                            };
                        }
                        Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate)
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Stripe answered 429 to the request holding `ticket`: halve the rate unless
    /// that already happened since the request was sent, and pause everyone for
    /// `retry_after` when Stripe named a wait.
    pub fn rate_limited(&self, ticket: Ticket, retry_after: Option<Duration>) {
        let mut bucket = self.state.lock().expect("rate limiter lock");
        bucket.rate_limited += 1;
        let now = Instant::now();
        if let Some(wait) = retry_after {
            let until = now + wait.min(MAX_PAUSE);
            bucket.paused_until = Some(bucket.paused_until.map_or(until, |u| u.max(until)));
        }
        if ticket.epoch != bucket.epoch {
            return;
        }
        bucket.refill(self.target, now);
        bucket.rate = (bucket.rate / 2.0).max(self.target * FLOOR_SHARE);
        bucket.tokens = 0.0;
        bucket.epoch += 1;
    }

    /// How many 429s the limiter has seen.
    pub fn rate_limited_count(&self) -> u64 {
        self.state.lock().expect("rate limiter lock").rate_limited
    }

    pub fn current_rate(&self) -> f64 {
        self.state.lock().expect("rate limiter lock").rate
    }
}

impl Bucket {
    /// Adds the tokens earned since the last look, and the rate recovered.
    fn refill(&mut self, target: f64, now: Instant) {
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.rate = (self.rate + target * RECOVERY_SHARE_PER_SECOND * elapsed).min(target);
        let capacity = (self.rate * BURST_SECONDS).max(1.0);
        self.tokens = (self.tokens + elapsed * self.rate).min(capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_at_the_rate() {
        let limiter = RateLimiter::new(50);
        let started = Instant::now();
        for _ in 0..101 {
            limiter.acquire().await;
        }
        // 100 waits of 20 ms each after the first token, on the paused clock.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(1990), "{elapsed:?}");
        assert!(elapsed <= Duration::from_millis(2100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn many_429s_for_requests_sent_together_halve_the_rate_once() {
        let limiter = RateLimiter::new(100);
        let mut in_flight = Vec::new();
        for _ in 0..10 {
            in_flight.push(limiter.acquire().await);
        }

        for ticket in in_flight {
            limiter.rate_limited(ticket, None);
        }

        assert_eq!(limiter.current_rate(), 50.0);
        assert_eq!(limiter.rate_limited_count(), 10);
        // A request sent after the halving that meets a 429 halves again (from
        // the little the rate recovered while that request waited for a token).
        let later = limiter.acquire().await;
        limiter.rate_limited(later, None);
        let rate = limiter.current_rate();
        assert!((25.0..27.0).contains(&rate), "{rate}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_climbs_back_to_the_target_within_seconds() {
        let limiter = RateLimiter::new(100);
        let ticket = limiter.acquire().await;
        limiter.rate_limited(ticket, None);
        assert_eq!(limiter.current_rate(), 50.0);

        tokio::time::advance(Duration::from_millis(200)).await;
        limiter.acquire().await;
        let rate = limiter.current_rate();
        assert!((69.0..71.0).contains(&rate), "{rate}");

        tokio::time::advance(Duration::from_millis(400)).await;
        limiter.acquire().await;
        assert_eq!(limiter.current_rate(), 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_429s_never_stop_the_limiter() {
        let limiter = RateLimiter::new(100);
        for _ in 0..50 {
            let ticket = limiter.acquire().await;
            limiter.rate_limited(ticket, None);
        }
        assert!(limiter.current_rate() >= 10.0);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_every_request_back_until_it_has_passed() {
        let limiter = RateLimiter::new(100);
        let ticket = limiter.acquire().await;
        let started = Instant::now();

        limiter.rate_limited(ticket, Some(Duration::from_secs(2)));
        limiter.acquire().await;

        assert!(started.elapsed() >= Duration::from_secs(2));
    }
}
