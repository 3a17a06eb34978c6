//! The billing service's errors, in domain words, and the sentences a person reads.

use crate::customers::CustomerError;
use crate::domain::INTERNAL_MESSAGE;
use crate::stripe::StripeFailure;

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("Stripe is not configured")]
    NotConfigured,
    #[error("job {0} does not exist")]
    JobNotFound(i64),
    #[error("the job is paid for already")]
    JobAlreadyPaid,
    #[error("the checkout session ended while it was being made")]
    CheckoutMovedOn,
    /// The customer a payment needs could not be found or made.
    #[error(transparent)]
    Customer(CustomerError),
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl BillingError {
    /// What the person on the page is told.
    pub fn user_message(&self) -> String {
        match self {
            BillingError::NotConfigured => CustomerError::NotConfigured.user_message(),
            BillingError::JobNotFound(_) => "That job does not exist.".into(),
            BillingError::JobAlreadyPaid => "This job is paid for and published.".into(),
            BillingError::CheckoutMovedOn => {
                "That payment page has just expired. Press Pay again for a new one.".into()
            }
            BillingError::Customer(err) => err.user_message(),
            BillingError::Stripe(failure) => failure.user_message(),
            BillingError::Database(_) => INTERNAL_MESSAGE.into(),
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            BillingError::Stripe(failure) => failure.request_id.as_deref(),
            BillingError::Customer(err) => err.request_id(),
            _ => None,
        }
    }

    /// Failures of the system rather than refusals of the request.
    pub fn is_internal(&self) -> bool {
        match self {
            BillingError::Database(_) => true,
            BillingError::Stripe(failure) => failure.is_internal(),
            BillingError::Customer(err) => err.is_internal(),
            _ => false,
        }
    }
}
