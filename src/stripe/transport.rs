//! The HTTP transport under async-stripe's typed requests.
//!
//! async-stripe's own client drops the response headers and, for an error body
//! that is not Stripe's JSON, the status too. Logs need Stripe's `Request-Id` on
//! every failure and retries must obey `Stripe-Should-Retry`, so this implements
//! its `StripeClient` trait over hyper with keep-alive connections; everything
//! else (request building, parameters, response types) stays async-stripe's.

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use stripe_client_core::{CustomizedStripeRequest, StripeClient, StripeClientErr, StripeMethod};
use stripe_shared::ApiErrors;

/// The largest answer read from Stripe: its biggest list pages are a few hundred
/// KiB; anything far past that is not Stripe, and is not held in memory.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Why a request produced no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// No answer: connection refused or dropped, or a malformed request.
    Network,
    Timeout,
    /// Stripe (or something in between) answered with a non-2xx status.
    Status(u16),
    /// A 2xx answer that does not parse as the expected type.
    Unreadable,
}

#[derive(Debug)]
pub struct TransportError {
    pub cause: Cause,
    pub request_id: Option<String>,
    /// Stripe's own verdict on retrying, from the `Stripe-Should-Retry` header.
    pub should_retry: Option<bool>,
    /// How long to wait before asking again, from a `Retry-After` in seconds.
    pub retry_after: Option<Duration>,
    /// Which of Stripe's limiters refused a 429, from `Stripe-Rate-Limited-Reason`.
    pub rate_limited_reason: Option<String>,
    /// Stripe's error object, when the body was one.
    pub api: Option<Box<ApiErrors>>,
    /// For logs: Stripe's message or the transport's error. Never a secret.
    pub detail: String,
}

impl TransportError {
    fn without_answer(cause: Cause, detail: impl fmt::Display) -> Self {
        TransportError {
            cause,
            request_id: None,
            should_retry: None,
            retry_after: None,
            rate_limited_reason: None,
            api: None,
            detail: detail.to_string(),
        }
    }
}

impl StripeClientErr for TransportError {
    fn deserialize_err(msg: impl fmt::Display) -> Self {
        Self::without_answer(Cause::Unreadable, msg)
    }
}

#[derive(Clone)]
pub struct Transport {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Ends with `/`; requests go to `{api_base}v1{path}`.
    api_base: String,
    authorization: HeaderValue,
}

/// The secret inside `authorization` never reaches a log line.
impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the Stripe secret key is not a valid header value")]
pub struct BadSecret;

impl Transport {
    pub fn new(api_base: &str, secret: &str) -> Result<Self, BadSecret> {
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| BadSecret)?;
        authorization.set_sensitive(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let mut api_base = api_base.to_string();
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        Ok(Transport {
            http,
            api_base,
            authorization,
        })
    }

    /// Sends one request, once. `timeout` bounds the whole exchange.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Option<Duration>,
    ) -> Result<Bytes, TransportError> {
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| TransportError::without_answer(Cause::Network, e))?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let request_id = header("request-id");
            let should_retry = header("stripe-should-retry").and_then(|v| v.parse().ok());
            let retry_after = header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let rate_limited_reason = header("stripe-rate-limited-reason");
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| match e.downcast_ref::<LengthLimitError>() {
                    Some(_) => TransportError::without_answer(
                        Cause::Unreadable,
                        format!(
                            "Stripe's answer was larger than {} MiB",
                            MAX_ANSWER_BYTES >> 20
                        ),
                    ),
                    None => TransportError::without_answer(Cause::Network, e),
                })?
                .to_bytes();
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let api = std::str::from_utf8(&body)
                .ok()
                .and_then(|text| miniserde::json::from_str::<stripe_shared::Error>(text).ok())
                .map(|e| e.error);
            let detail = api
                .as_ref()
                .and_then(|api| api.message.clone())
                .unwrap_or_else(|| format!("HTTP {status} without a Stripe error body"));
            Err(TransportError {
                cause: Cause::Status(status),
                request_id,
                should_retry,
                retry_after,
                rate_limited_reason,
                api,
                detail,
            })
        };
        match timeout {
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(TransportError::without_answer(Cause::Timeout, "timed out"))
                }),
            None => exchange.await,
        }
    }
}

impl StripeClient for Transport {
    type Err = TransportError;

    async fn execute(&self, request: CustomizedStripeRequest) -> Result<Bytes, TransportError> {
        let (request, config) = request.into_pieces();
        let mut uri = format!("{}v1{}", self.api_base, request.path);
        if let Some(query) = &request.query {
            uri.push('?');
            uri.push_str(query);
        }
        let method = match request.method {
            StripeMethod::Get => Method::GET,
            StripeMethod::Post => Method::POST,
            StripeMethod::Delete => Method::DELETE,
        };
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, self.authorization.clone())
            .header("stripe-version", stripe_client_core::VERSION.as_str())
            .header(
                USER_AGENT,
                concat!("stripe-sync/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(key) = config.request_strategy.as_ref().and_then(|s| s.get_key()) {
            builder = builder.header("idempotency-key", key.as_str());
        }
        let body = match request.body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(body)
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| TransportError::without_answer(Cause::Network, e))?;
        self.exchange(request, config.timeout).await
    }
}
