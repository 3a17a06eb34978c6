//! A token bucket shared by every request a bulk run makes, so it stays under
//! Stripe's rate limit; a 429 halves the rate, which then recovers step by step.

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
    rate_limited: u64,
}

/// The bucket holds at most this many seconds of tokens: requests are paced
/// evenly rather than sent in bursts the server's own bucket may not absorb.
const BURST_SECONDS: f64 = 0.05;
/// The slowest a run of 429s can push the limiter, as a share of the target.
const FLOOR_SHARE: f64 = 0.1;
/// How much each success restores after a slowdown.
const RECOVERY: f64 = 1.01;

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
                rate_limited: 0,
            }),
        }
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut bucket = self.state.lock().expect("rate limiter lock");
                bucket.refill();
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Stripe answered 429: slow down and drop any saved-up tokens.
    pub fn rate_limited(&self) {
        let mut bucket = self.state.lock().expect("rate limiter lock");
        bucket.rate = (bucket.rate / 2.0).max(self.target * FLOOR_SHARE);
        bucket.tokens = 0.0;
        bucket.rate_limited += 1;
    }

    /// A request went through: creep back towards the target rate.
    pub fn succeeded(&self) {
        let mut bucket = self.state.lock().expect("rate limiter lock");
        bucket.rate = (bucket.rate * RECOVERY).min(self.target);
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
    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
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
    async fn a_429_halves_the_rate_and_successes_restore_it() {
        let limiter = RateLimiter::new(100);
        limiter.rate_limited();
        assert_eq!(limiter.current_rate(), 50.0);
        for _ in 0..1000 {
            limiter.succeeded();
        }
        assert_eq!(limiter.current_rate(), 100.0);
        assert_eq!(limiter.rate_limited_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn repeated_429s_never_stop_the_limiter() {
        let limiter = RateLimiter::new(100);
        for _ in 0..50 {
            limiter.rate_limited();
        }
        assert_eq!(limiter.current_rate(), 10.0);
    }
}
