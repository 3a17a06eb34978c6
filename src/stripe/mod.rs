//! The Stripe client: async-stripe's typed requests, sent through our transport to
//! the configured base URL, with our own retry loop. async-stripe's retry strategies
//! back off without jitter and cannot carry a caller's idempotency key, which
//! creation needs to persist, so each attempt is sent once with a fixed key and the
//! loop here decides on retries.
//!
//! `error` sorts failures by what a caller can do, `retry` sends with retries,
//! `rate` paces requests to Stripe's limiters, `wire` holds the shapes we send and
//! read beyond async-stripe's, and `customers`, `checkout` and `events` are the
//! requests, one file per family of resources.

mod checkout;
mod customer_form;
mod customers;
mod error;
mod events;
mod rate;
mod retry;
mod segments;
mod transport;
mod wire;

use std::sync::Arc;

use secrecy::ExposeSecret as _;

use crate::config::StripeConfig;
use transport::Transport;

pub use error::{FailureKind, StripeFailure};
pub use rate::{RateLimiter, RatePlan, Refusal, endpoint_key};
pub use retry::RetryPolicy;
pub use segments::{Dated, Fetch, ListReads, Pace, Page, PageCall, Segment, Segments};
pub use transport::BadSecret;
pub use wire::{
    CheckoutParams, CheckoutState, CustomerLookup, CustomerParams, Missing, SessionLink,
    WebhookEndpoint,
};

pub use stripe_shared::Customer as StripeCustomer;

#[derive(Clone, Debug)]
pub struct StripeGateway {
    transport: Transport,
    limiter: Option<Arc<RateLimiter>>,
    retry: RetryPolicy,
    live_mode: bool,
}

impl StripeGateway {
    pub fn new(config: &StripeConfig, retry: RetryPolicy) -> Result<Self, BadSecret> {
        let secret = config.secret.expose_secret();
        Ok(StripeGateway {
            transport: Transport::new(&config.api_base, secret)?,
            limiter: None,
            retry,
            live_mode: config.live_mode(),
        })
    }

    /// The same gateway, with every request (retries too) taking a token first.
    pub fn with_rate_limiter(&self, limiter: Arc<RateLimiter>) -> Self {
        StripeGateway {
            limiter: Some(limiter),
            ..self.clone()
        }
    }

    pub fn with_retry_policy(&self, retry: RetryPolicy) -> Self {
        StripeGateway {
            retry,
            ..self.clone()
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub fn live_mode(&self) -> bool {
        self.live_mode
    }

    /// How many segments of a list read by `endpoint` to keep in flight.
    pub fn pace(&self, endpoint: &str) -> Pace {
        Pace::new(self.limiter.clone(), endpoint)
    }
}
