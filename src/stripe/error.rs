//! What went wrong talking to Stripe, in the terms a caller acts on.

use stripe_shared::{ApiErrorsCode, ApiErrorsType};

use super::transport::{Cause, TransportError};

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

    pub(super) fn from_error(operation: &'static str, err: TransportError) -> Self {
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

    /// What a person is told of this failure, whatever they were doing.
    pub fn user_message(&self) -> String {
        match &self.kind {
            FailureKind::Unavailable => {
                "Stripe is unavailable, nothing was changed. Please try again in a moment.".into()
            }
            FailureKind::Unauthorized => {
                "Stripe refused the app's API key (a permission error), nothing was changed. \
                 An administrator needs to check STRIPE_SECRET."
                    .into()
            }
            FailureKind::NotFound => "Customer does not exist in Stripe.".into(),
            FailureKind::IdempotencyConflict => {
                "Stripe saw two different requests for one action, nothing was changed. \
                 Please try again."
                    .into()
            }
            FailureKind::Rejected { message } => match message {
                Some(message) => format!("Stripe rejected the request: {message}"),
                None => "Stripe rejected the request, nothing was changed.".into(),
            },
        }
    }

    /// What an operator's report says of this failure.
    pub fn operator_reason(&self) -> String {
        let status = self
            .status
            .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}"));
        let what = match &self.kind {
            FailureKind::Unavailable => "Stripe unavailable",
            FailureKind::Unauthorized => "Stripe refused the API key",
            FailureKind::NotFound => "not found in Stripe",
            FailureKind::IdempotencyConflict => "idempotency key conflict",
            FailureKind::Rejected { .. } => "Stripe rejected the request",
        };
        format!("{what} ({status}): {}", self.detail)
    }

    /// A failure of the system (Stripe down, our key refused) rather than a
    /// refusal of the request.
    pub fn is_internal(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::Unavailable | FailureKind::Unauthorized
        )
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
}
