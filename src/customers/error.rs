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
            CustomerError::Stripe(failure) => failure.user_message(),
            CustomerError::Database(_) => crate::domain::INTERNAL_MESSAGE.into(),
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
            CustomerError::Stripe(failure) => failure.operator_reason(),
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
            CustomerError::Stripe(failure) => failure.is_internal(),
            _ => false,
        }
    }
}

impl crate::runs::report::RunError for CustomerError {
    fn operator_reason(&self) -> String {
        CustomerError::operator_reason(self)
    }

    fn request_id(&self) -> Option<&str> {
        CustomerError::request_id(self)
    }

    fn stripe_answered(&self) -> bool {
        CustomerError::stripe_answered(self)
    }
}
