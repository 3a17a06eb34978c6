//! When and how often a request is sent again, and the loop that sends it.

use std::time::Duration;

use stripe_client_core::{IdempotencyKey, RequestStrategy, StripeMethod, StripeRequest};
use stripe_shared::ApiErrorsCode;
use tokio::time::Instant;

use super::transport::Cause;
use super::{Refusal, StripeFailure, StripeGateway, endpoint_key};

/// When and how often to retry. Attempts are bounded in count and in total time.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub attempt_timeout: Duration,
    pub total_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(4),
            attempt_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// For bulk runs: more attempts, since one run meets many transient failures
    /// and a user left out has to wait for the next run.
    pub fn bulk() -> Self {
        RetryPolicy {
            max_attempts: 8,
            total_timeout: Duration::from_secs(60),
            ..RetryPolicy::default()
        }
    }

    /// "Full jitter": a random wait up to the exponential bound, so many clients
    /// retrying at once do not hit Stripe in step.
    fn backoff(&self, retry: u32) -> Duration {
        let bound = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_delay);
        bound.mul_f64(rand::random::<f64>())
    }
}

impl StripeGateway {
    /// Sends one request with retries: network errors, timeouts, 409, 424, 429 and
    /// 5xx are retried with jittered backoff until attempts or total time run out.
    /// Every attempt carries the same idempotency key.
    pub(super) async fn send<R>(
        &self,
        operation: &'static str,
        key: Option<IdempotencyKey>,
        request: &R,
    ) -> Result<R::Output, StripeFailure>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        self.send_as(operation, key, request).await
    }

    /// As [`Self::send`], reading the answer as `T`: a type with only the fields we
    /// use, for objects whose full types we have no other need for.
    pub(super) async fn send_as<R, T>(
        &self,
        operation: &'static str,
        key: Option<IdempotencyKey>,
        request: &R,
    ) -> Result<T, StripeFailure>
    where
        R: StripeRequest,
        T: miniserde::Deserialize,
    {
        // The budget counts time spent on the wire and backing off, never time
        // waiting for our own rate limiter: a slow queue is not Stripe failing.
        let mut spent = Duration::ZERO;
        let strategy = key.map_or(RequestStrategy::Once, RequestStrategy::Idempotent);
        let endpoint = {
            let built = request.build();
            let method = match built.method {
                StripeMethod::Get => "GET",
                StripeMethod::Post => "POST",
                StripeMethod::Delete => "DELETE",
            };
            endpoint_key(method, &format!("/v1{}", built.path))
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ticket = match &self.limiter {
                Some(limiter) => Some(limiter.acquire(&endpoint).await),
                None => None,
            };
            let remaining = self.retry.total_timeout.saturating_sub(spent);
            let sent = Instant::now();
            let result = request
                .build()
                .customize::<T>()
                .request_strategy(strategy.clone())
                .timeout(self.retry.attempt_timeout.min(remaining))
                .send(&self.transport)
                .await;
            let took = sent.elapsed();
            spent += took;
            let (failure, retry_after) = match result {
                Ok(output) => {
                    crate::metrics::stripe_request(&endpoint, "ok", None, took);
                    if let Some(limiter) = &self.limiter {
                        limiter.observe_round_trip(&endpoint, took);
                    }
                    return Ok(output);
                }
                Err(err) => {
                    crate::metrics::stripe_request(
                        &endpoint,
                        outcome(err.cause),
                        err.rate_limited_reason.as_deref(),
                        took,
                    );
                    let retry_after = err.retry_after;
                    // Lock contention on one object says nothing about the rate.
                    let refusal = if err.api.as_ref().and_then(|api| api.code.as_ref())
                        == Some(&ApiErrorsCode::LockTimeout)
                    {
                        Refusal::Resource
                    } else {
                        Refusal::from_reason(err.rate_limited_reason.as_deref())
                    };
                    let failure = StripeFailure::from_error(operation, err);
                    if let (Some(limiter), Some(ticket), Some(429)) =
                        (&self.limiter, &ticket, failure.status)
                    {
                        limiter.rate_limited(ticket, refusal, retry_after);
                    }
                    (failure, retry_after)
                }
            };
            let wait = retry_after
                .map(|wait| wait.min(self.retry.max_delay))
                .unwrap_or_else(|| self.retry.backoff(attempt - 1));
            let out_of_time = spent + wait >= self.retry.total_timeout;
            if !failure.retryable || attempt >= self.retry.max_attempts || out_of_time {
                return Err(failure);
            }
            tracing::warn!(
                operation,
                attempt,
                status = failure.status,
                request_id = failure.request_id.as_deref(),
                "stripe request failed, retrying in {wait:?}"
            );
            tokio::time::sleep(wait).await;
            spent += wait;
        }
    }
}

/// How an attempt came out, as the metrics label it.
fn outcome(cause: Cause) -> &'static str {
    match cause {
        Cause::Status(429) => "rate_limited",
        Cause::Status(400..=499) => "client_error",
        Cause::Status(_) => "server_error",
        Cause::Network => "network_error",
        Cause::Timeout => "timeout",
        Cause::Unreadable => "unreadable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_below_a_bound_that_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default(); // 300 ms base, 4 s cap
        let longest = |retry: u32| {
            (0..2000)
                .map(|_| policy.backoff(retry))
                .max()
                .expect("samples")
        };
        for (retry, bound_ms) in [
            (0, 300),
            (1, 600),
            (2, 1200),
            (3, 2400),
            (4, 4000),
            (9, 4000),
        ] {
            let bound = Duration::from_millis(bound_ms);
            let seen = longest(retry);
            assert!(seen <= bound, "retry {retry}: {seen:?} > {bound:?}");
            // Full jitter spreads the waits over the whole range.
            assert!(
                seen >= bound.mul_f64(0.9),
                "retry {retry}: at most {seen:?}"
            );
        }
        let shortest = (0..2000).map(|_| policy.backoff(3)).min().unwrap();
        assert!(shortest <= Duration::from_millis(240), "{shortest:?}");
    }
}
