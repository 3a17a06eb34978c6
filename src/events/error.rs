//! The events service's errors.

use crate::billing::BillingError;
use crate::customers::CustomerError;
use crate::runs::report::RunError;
use crate::stripe::StripeFailure;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("Stripe is not configured")]
    NotConfigured,
    /// An event dated later than now (and Stripe's clock skew): applied, it would
    /// make every genuine event after it look older.
    #[error("the event is dated in the future (created {created})")]
    FromTheFuture { created: i64 },
    /// Storing what a customer event said failed.
    #[error(transparent)]
    Customer(CustomerError),
    /// Recording what a payment event said failed.
    #[error(transparent)]
    Billing(BillingError),
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<CustomerError> for EventError {
    fn from(err: CustomerError) -> Self {
        match err {
            CustomerError::NotConfigured => EventError::NotConfigured,
            CustomerError::Stripe(failure) => EventError::Stripe(failure),
            CustomerError::Database(err) => EventError::Database(err),
            other => EventError::Customer(other),
        }
    }
}

impl From<BillingError> for EventError {
    fn from(err: BillingError) -> Self {
        match err {
            BillingError::NotConfigured => EventError::NotConfigured,
            BillingError::Stripe(failure) => EventError::Stripe(failure),
            BillingError::Database(err) => EventError::Database(err),
            other => EventError::Billing(other),
        }
    }
}

impl RunError for EventError {
    fn operator_reason(&self) -> String {
        match self {
            EventError::Stripe(failure) => failure.operator_reason(),
            EventError::Customer(err) => err.operator_reason(),
            other => other.to_string(),
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            EventError::Stripe(failure) => failure.request_id.as_deref(),
            EventError::Customer(err) => err.request_id(),
            EventError::Billing(err) => err.request_id(),
            _ => None,
        }
    }

    fn stripe_answered(&self) -> bool {
        match self {
            EventError::Stripe(failure) => failure.status.is_some(),
            EventError::Customer(err) => err.stripe_answered(),
            _ => false,
        }
    }
}
