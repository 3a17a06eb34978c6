//! The customers service's errors, in domain words, and the sentences a person reads.

use crate::stripe::{FailureKind, StripeFailure};

#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("Stripe is not configured")]
    NotConfigured,
    #[error("user {0} does not exist")]
    UserNotFound(i64),
    #[error("no Stripe customer is linked")]
    NoCustomer,
    #[error("already linked to Stripe customer {stripe_id}")]
    AlreadyHasCustomer { stripe_id: String },
    #[error("another request is creating this user's customer")]
    CreateInProgress,
    #[error("another request is updating this user's customer")]
    Busy,
    #[error("customer {stripe_id} does not exist in Stripe")]
    CustomerMissingInStripe { stripe_id: String },
    #[error("customer {stripe_id} still exists in Stripe")]
    CustomerStillExists { stripe_id: String },
    #[error("{0} is not a synced field")]
    UnknownField(String),
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl CustomerError {
    /// What the person on the page (or at the terminal) is told.
    pub fn user_message(&self) -> String {
        match self {
            CustomerError::NotConfigured => {
                "Stripe is not configured: set STRIPE_SECRET to enable these actions.".into()
            }
            CustomerError::UserNotFound(id) => format!("User {id} does not exist."),
            CustomerError::NoCustomer => {
                "No Stripe customer found. Create one to link your account to Stripe.".into()
            }
            CustomerError::AlreadyHasCustomer { .. } => {
                "You already have a Stripe customer; nothing was created.".into()
            }
            CustomerError::CreateInProgress => {
                "Your Stripe customer is being created right now. Refresh this page in a moment."
                    .into()
            }
            CustomerError::Busy => {
                "Your Stripe customer is being updated right now; nothing was changed. Try again \
                 in a moment."
                    .into()
            }
            CustomerError::CustomerMissingInStripe { .. } => {
                "Customer does not exist in Stripe: it was deleted there. Re-create it to link \
                 a new customer to your account."
                    .into()
            }
            CustomerError::CustomerStillExists { .. } => {
                "Your Stripe customer still exists, so there is nothing to re-create.".into()
            }
            CustomerError::UnknownField(_) => {
                "That field is not synced with Stripe; nothing was changed.".into()
            }
            CustomerError::Stripe(failure) => stripe_failure_message(failure),
            CustomerError::Database(_) => INTERNAL_MESSAGE.into(),
        }
    }

    /// A Stripe failure after every attempt: the last one with no verdict from Stripe
    /// (no answer, a timeout, 5xx or 429), so asking later may well succeed.
    pub fn is_unanswered(&self) -> bool {
        matches!(self, CustomerError::Stripe(failure) if failure.kind == FailureKind::Unavailable)
    }

    /// Whether Stripe answered the failed request (with an error status).
    pub fn stripe_answered(&self) -> bool {
        matches!(self, CustomerError::Stripe(failure) if failure.status.is_some())
    }

    /// The reason in an operator's report: what happened, in a few words.
    pub fn operator_reason(&self) -> String {
        match self {
            CustomerError::CustomerMissingInStripe { stripe_id } => {
                format!("customer {stripe_id} does not exist in Stripe (see --check --repair)")
            }
            CustomerError::Stripe(failure) => stripe_failure_reason(failure),
            other => other.to_string(),
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            CustomerError::Stripe(failure) => failure.request_id.as_deref(),
            _ => None,
        }
    }

    /// Failures of the system rather than refusals of the request.
    pub fn is_internal(&self) -> bool {
        match self {
            CustomerError::Database(_) => true,
            CustomerError::Stripe(failure) => stripe_failure_is_internal(failure),
            _ => false,
        }
    }
}

/// What a person is told of a Stripe failure, whatever they were doing.
pub fn stripe_failure_message(failure: &StripeFailure) -> String {
    match &failure.kind {
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

/// What a person is told of a failure of ours: nothing of its cause.
pub const INTERNAL_MESSAGE: &str =
    "Something went wrong on our side, nothing was changed. Please try again.";

/// What an operator's report says of a Stripe failure.
pub fn stripe_failure_reason(failure: &StripeFailure) -> String {
    let status = failure
        .status
        .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}"));
    let what = match &failure.kind {
        FailureKind::Unavailable => "Stripe unavailable",
        FailureKind::Unauthorized => "Stripe refused the API key",
        FailureKind::NotFound => "not found in Stripe",
        FailureKind::IdempotencyConflict => "idempotency key conflict",
        FailureKind::Rejected { .. } => "Stripe rejected the request",
    };
    format!("{what} ({status}): {}", failure.detail)
}

/// Failures of the system rather than refusals of the request.
pub fn stripe_failure_is_internal(failure: &StripeFailure) -> bool {
    matches!(
        failure.kind,
        FailureKind::Unavailable | FailureKind::Unauthorized
    )
}
