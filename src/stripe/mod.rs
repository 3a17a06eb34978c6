//! The Stripe client: async-stripe's typed requests, sent through our transport to
//! the configured base URL, with our own retry loop. async-stripe's retry strategies
//! back off without jitter and cannot carry a caller's idempotency key, which
//! creation needs to persist, so each attempt is sent once with a fixed key and the
//! loop here decides on retries.

mod rate;
mod transport;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    ProductData, RetrieveCheckoutSession,
};
use stripe_client_core::{IdempotencyKey, RequestStrategy, StripeMethod, StripeRequest};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
    UpdateCustomer,
};
use stripe_core::event::ListEvent;
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, ListWebhookEndpoint,
    UpdateWebhookEndpoint,
};
use stripe_shared::{ApiErrorsCode, ApiErrorsType, CheckoutSessionMode, Customer, CustomerId};
use tokio::time::Instant;

use crate::config::StripeConfig;
use transport::{Cause, Transport, TransportError};

pub use rate::{RateLimiter, RatePlan, Refusal, endpoint_key};
pub use transport::BadSecret;

pub use stripe_shared::Customer as StripeCustomer;

/// Expanded on every customer we read so the default card's brand and last four
/// come back in the same call.
const DEFAULT_PM: &str = "invoice_settings.default_payment_method";

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

/// What went wrong talking to Stripe, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The object does not exist (404, e.g. `resource_missing`).
    NotFound,
    /// The key was refused (401) or lacks a permission (403).
    Unauthorized,
    /// The same idempotency key was used with other parameters.
    IdempotencyConflict,
    /// Stripe refused the request as invalid; its message says why.
    Rejected { message: Option<String> },
    /// Network failure, timeout, 5xx or rate limit, after the retries ran out:
    /// the request may or may not have taken effect.
    Unavailable,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {detail}")]
pub struct StripeFailure {
    pub kind: FailureKind,
    pub operation: &'static str,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    /// For logs only: Stripe's own words or the transport error, never a secret.
    pub detail: String,
    /// Whether sending the same request again may succeed.
    pub retryable: bool,
}

impl StripeFailure {
    /// True when Stripe surely did not carry the request out, so a new attempt may
    /// use a new idempotency key.
    pub fn is_definitive(&self) -> bool {
        !matches!(self.kind, FailureKind::Unavailable)
    }

    /// An answer that came back but lacks what we need from it.
    pub fn unreadable(operation: &'static str, detail: &str) -> Self {
        StripeFailure {
            kind: FailureKind::Unavailable,
            operation,
            status: None,
            request_id: None,
            detail: detail.to_string(),
            retryable: false,
        }
    }

    fn from_error(operation: &'static str, err: TransportError) -> Self {
        let request_id = err.request_id.clone().or_else(|| {
            let url = err.api.as_ref()?.request_log_url.as_deref()?;
            request_id_from_log_url(url)
        });
        let (kind, status, retryable) = match err.cause {
            Cause::Network | Cause::Timeout => (FailureKind::Unavailable, None, true),
            // A success we cannot read: it may have taken effect, and asking again
            // would give the same answer.
            Cause::Unreadable => (FailureKind::Unavailable, None, false),
            Cause::Status(status) => {
                let transient = matches!(status, 409 | 424 | 429 | 500..);
                let kind = classify(status, err.api.as_deref(), transient);
                (kind, Some(status), err.should_retry.unwrap_or(transient))
            }
        };
        StripeFailure {
            kind,
            operation,
            status,
            request_id,
            detail: err.detail,
            retryable,
        }
    }
}

fn classify(status: u16, api: Option<&stripe_shared::ApiErrors>, transient: bool) -> FailureKind {
    let code = api.and_then(|api| api.code.as_ref());
    let idempotency = api.is_some_and(|api| api.type_ == ApiErrorsType::IdempotencyError);
    match status {
        // 409 includes "another request with this key is in flight".
        _ if transient => FailureKind::Unavailable,
        _ if idempotency => FailureKind::IdempotencyConflict,
        404 => FailureKind::NotFound,
        _ if code == Some(&ApiErrorsCode::ResourceMissing) => FailureKind::NotFound,
        401 | 403 => FailureKind::Unauthorized,
        _ => FailureKind::Rejected {
            message: api.and_then(|api| api.message.clone()),
        },
    }
}

/// Stripe puts the request id in the dashboard link of every error it returns.
fn request_id_from_log_url(url: &str) -> Option<String> {
    let start = url.find("req_")?;
    let id: String = url[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(id)
}

/// The fields we send for a customer; fixed with an idempotency key on create.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomerParams {
    pub name: String,
    pub email: String,
}

/// What a Checkout Session is made of.
pub struct CheckoutParams<'a> {
    pub customer: &'a str,
    pub client_reference_id: &'a str,
    pub metadata: HashMap<String, String>,
    pub item_name: &'a str,
    /// In the currency's minor unit.
    pub amount: i64,
    pub currency: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// The two fields we read of a Checkout or billing portal session.
#[derive(Debug, Clone, miniserde::Deserialize)]
pub struct SessionLink {
    pub id: String,
    pub url: Option<String>,
}

/// The fields of a Checkout Session the success page reads back from Stripe.
#[derive(Debug, Clone, miniserde::Deserialize)]
pub struct CheckoutState {
    pub id: String,
    pub payment_status: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// An id (never expanded here).
    pub payment_intent: Option<String>,
}

impl CheckoutState {
    /// "no_payment_required" counts as paid: there is nothing left to pay.
    pub fn paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }
}

/// Which events to list: created in `[from, until)` (Unix seconds), and of one
/// type (Stripe's wildcards such as `customer.*` allowed) when given.
#[derive(Debug, Clone, Copy)]
pub struct EventQuery<'a> {
    pub from: i64,
    pub until: i64,
    pub type_: Option<&'a str>,
}

/// One page of the Events API, each event as its raw JSON: the reader takes only
/// the fields it uses, so a field Stripe adds or drops never fails a page.
#[derive(miniserde::Deserialize)]
struct EventPage {
    data: Vec<miniserde::json::Value>,
    has_more: bool,
}

/// A webhook endpoint as Stripe describes it. Stripe shows `secret` only in the
/// answer to the create.
#[derive(Clone, miniserde::Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub status: String,
    pub enabled_events: Vec<String>,
    pub api_version: Option<String>,
    pub secret: Option<String>,
}

/// The signing secret never reaches a log line.
impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(miniserde::Deserialize)]
struct EndpointPage {
    data: Vec<WebhookEndpoint>,
    has_more: bool,
}

/// A customer as retrieve finds it: real Stripe answers a deleted customer with 200
/// and `deleted: true`, some stand-ins with 404; both mean the same to us.
pub enum CustomerLookup {
    Found(Box<Customer>),
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Deleted,
    NotFound,
}

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

    /// Creates a customer with `metadata.user_id`, under the caller's idempotency key.
    pub async fn create_customer(
        &self,
        user_id: i64,
        params: &CustomerParams,
        idempotency_key: &str,
    ) -> Result<Customer, StripeFailure> {
        let key = IdempotencyKey::new(idempotency_key).map_err(|e| StripeFailure {
            kind: FailureKind::Rejected { message: None },
            operation: "create customer",
            status: None,
            request_id: None,
            detail: e.to_string(),
            retryable: false,
        })?;
        let request = CreateCustomer::new()
            .name(params.name.as_str())
            .email(params.email.as_str())
            .metadata(user_metadata(user_id))
            .expand([DEFAULT_PM.to_string()]);
        self.send("create customer", Some(key), &request).await
    }

    pub async fn retrieve_customer(&self, id: &str) -> Result<CustomerLookup, StripeFailure> {
        let request = RetrieveCustomer::new(CustomerId::from(id)).expand([DEFAULT_PM.to_string()]);
        match self.send("retrieve customer", None, &request).await {
            Ok(RetrieveCustomerReturned::Customer(customer)) => {
                Ok(CustomerLookup::Found(Box::new(customer)))
            }
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(CustomerLookup::Gone),
            Err(failure) if failure.kind == FailureKind::NotFound => Ok(CustomerLookup::Gone),
            Err(failure) => Err(failure),
        }
    }

    /// Whether a customer the list did not show is gone, and how sure that is:
    /// `Deleted` is Stripe saying so (`deleted: true`), proof that this key's account
    /// had it; `NotFound` (404) is also what a key of another account sees.
    pub async fn missing_customer(&self, id: &str) -> Result<Option<Missing>, StripeFailure> {
        let request = RetrieveCustomer::new(CustomerId::from(id));
        match self.send("retrieve customer", None, &request).await {
            Ok(RetrieveCustomerReturned::Customer(_)) => Ok(None),
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => Ok(Some(Missing::Deleted)),
            Err(failure) if failure.kind == FailureKind::NotFound => Ok(Some(Missing::NotFound)),
            Err(failure) => Err(failure),
        }
    }

    pub async fn update_customer(
        &self,
        id: &str,
        params: &CustomerParams,
    ) -> Result<Customer, StripeFailure> {
        let request = UpdateCustomer::new(CustomerId::from(id))
            .name(params.name.as_str())
            .email(params.email.as_str())
            .expand([DEFAULT_PM.to_string()]);
        self.send(
            "update customer",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    pub async fn delete_customer(&self, id: &str) -> Result<(), StripeFailure> {
        let request = DeleteCustomer::new(CustomerId::from(id));
        self.send(
            "delete customer",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
        .map(|_| ())
    }

    /// Finds the customer an earlier, interrupted attempt created for this user, by
    /// listing customers with the email it was created with (the Search API is not
    /// available on every stand-in, and lists are strongly consistent).
    pub async fn find_customer_for_user(
        &self,
        user_id: i64,
        email: &str,
    ) -> Result<Option<Customer>, StripeFailure> {
        let request = ListCustomer::new()
            .email(email)
            .limit(100)
            .expand([format!("data.{DEFAULT_PM}")]);
        let list = self.send("list customers", None, &request).await?;
        let wanted = user_id.to_string();
        Ok(list.data.into_iter().find(|customer| {
            customer
                .metadata
                .as_ref()
                .and_then(|m| m.get("user_id"))
                .is_some_and(|id| *id == wanted)
        }))
    }

    /// A Checkout Session in payment mode for one line item, under the caller's
    /// idempotency key (whose parameters the caller keeps fixed).
    pub async fn create_checkout_session(
        &self,
        checkout: &CheckoutParams<'_>,
        idempotency_key: &str,
    ) -> Result<SessionLink, StripeFailure> {
        let rejected = |detail: String| StripeFailure {
            kind: FailureKind::Rejected { message: None },
            operation: "create checkout session",
            status: None,
            request_id: None,
            detail,
            retryable: false,
        };
        let currency = checkout
            .currency
            .parse::<stripe_types::Currency>()
            .map_err(|_| rejected(format!("unknown currency {}", checkout.currency)))?;
        let key = IdempotencyKey::new(idempotency_key).map_err(|e| rejected(e.to_string()))?;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price.unit_amount = Some(checkout.amount);
        price.product_data = Some(ProductData::new(checkout.item_name));
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(checkout.customer)
            .client_reference_id(checkout.client_reference_id)
            .metadata(checkout.metadata.clone())
            .line_items(vec![item])
            .success_url(checkout.success_url)
            .cancel_url(checkout.cancel_url);
        self.send_as("create checkout session", Some(key), &request)
            .await
    }

    /// A Checkout Session as Stripe has it now.
    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutState, StripeFailure> {
        let request = RetrieveCheckoutSession::new(id);
        self.send_as("retrieve checkout session", None, &request)
            .await
    }

    /// A billing portal session for the customer, returning to `return_url`.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<SessionLink, StripeFailure> {
        let request = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        self.send_as(
            "create billing portal session",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    /// One page of all customers, newest first, after the customer `after`.
    pub async fn list_customers(
        &self,
        after: Option<&str>,
    ) -> Result<(Vec<Customer>, bool), StripeFailure> {
        let mut request = ListCustomer::new()
            .limit(100)
            .expand([format!("data.{DEFAULT_PM}")]);
        if let Some(after) = after {
            request = request.starting_after(after);
        }
        let list = self.send("list customers", None, &request).await?;
        Ok((list.data, list.has_more))
    }

    /// One page of events matching `query`, after the event `after`. Stripe lists
    /// newest first; callers that need an order sort what they read.
    pub async fn list_events(
        &self,
        query: EventQuery<'_>,
        after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, bool), StripeFailure> {
        let created = stripe_types::RangeQueryTs::Bounds(stripe_types::RangeBoundsTs {
            gte: Some(query.from),
            lt: Some(query.until),
            ..Default::default()
        });
        let mut request = ListEvent::new().created(created).limit(100);
        if let Some(type_) = query.type_ {
            request = request.type_(type_);
        }
        if let Some(after) = after {
            request = request.starting_after(after);
        }
        let page: EventPage = self.send_as("list events", None, &request).await?;
        let events = page
            .data
            .iter()
            .map(|event| {
                serde_json::from_str(&miniserde::json::to_string(event))
                    .map_err(|err| StripeFailure::unreadable("list events", &err.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok((events, page.has_more))
    }

    /// Every webhook endpoint of the account.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeFailure> {
        let mut endpoints = Vec::new();
        loop {
            let mut request = ListWebhookEndpoint::new().limit(100);
            if let Some(last) = endpoints.last() {
                let last: &WebhookEndpoint = last;
                request = request.starting_after(last.id.as_str());
            }
            let page: EndpointPage = self
                .send_as("list webhook endpoints", None, &request)
                .await?;
            endpoints.extend(page.data);
            if !page.has_more {
                return Ok(endpoints);
            }
        }
    }

    /// Creates a webhook endpoint sending `events` to `url`, rendered in
    /// `api_version`; the answer carries the signing secret, once.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[&str],
        api_version: stripe_shared::ApiVersion,
        description: &str,
    ) -> Result<WebhookEndpoint, StripeFailure> {
        let events: Vec<CreateWebhookEndpointEnabledEvents> = events
            .iter()
            .map(|event| event.parse().expect("parsing an event type is infallible"))
            .collect();
        let request = CreateWebhookEndpoint::new(events, url)
            .api_version(api_version)
            .description(description);
        self.send_as(
            "create webhook endpoint",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    /// Disables an endpoint: Stripe keeps it but sends it nothing.
    pub async fn disable_webhook_endpoint(
        &self,
        id: &str,
    ) -> Result<WebhookEndpoint, StripeFailure> {
        let request = UpdateWebhookEndpoint::new(id).disabled(true);
        self.send_as(
            "disable webhook endpoint",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    /// Sends one request with retries: network errors, timeouts, 409, 424, 429 and
    /// 5xx are retried with jittered backoff until attempts or total time run out.
    /// Every attempt carries the same idempotency key.
    async fn send<R>(
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
    async fn send_as<R, T>(
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
            spent += sent.elapsed();
            let (failure, retry_after) = match result {
                Ok(output) => return Ok(output),
                Err(err) => {
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

fn user_metadata(user_id: i64) -> HashMap<String, String> {
    HashMap::from([("user_id".to_string(), user_id.to_string())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_is_read_from_the_dashboard_link() {
        let url = "https://dashboard.stripe.com/test/logs/req_AbC123xyz?t=1700000000";
        assert_eq!(
            request_id_from_log_url(url).as_deref(),
            Some("req_AbC123xyz")
        );
        assert_eq!(request_id_from_log_url("https://example.com/"), None);
    }

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
