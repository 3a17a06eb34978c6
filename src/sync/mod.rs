//! The sync service: creates, updates, refreshes and deletes a user's Stripe
//! customer. It knows Stripe and the database, never HTTP; the settings page and
//! the CLI call the same functions.

mod create;
mod error;
pub mod snapshot;

use time::OffsetDateTime;

use crate::db::{self, Db, users::CustomerState};
use crate::stripe::{CustomerLookup, CustomerParams, StripeCustomer, StripeGateway};

pub use create::CreateOutcome;
pub use error::SyncError;
use snapshot::{CustomerSnapshot, Snapshot};

#[derive(Clone, Debug)]
pub struct SyncService {
    db: Db,
    stripe: Option<StripeGateway>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Stripe had no such customer any more; the local link was cleared anyway.
    AlreadyGone,
}

impl SyncService {
    pub fn new(db: Db, stripe: Option<StripeGateway>) -> Self {
        SyncService { db, stripe }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn is_configured(&self) -> bool {
        self.stripe.is_some()
    }

    /// Pushes the local name and email to the linked customer.
    pub async fn update_customer(&self, user_id: i64) -> Result<(), SyncError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            let stripe_id = user.stripe_id.clone().ok_or(SyncError::NoCustomer)?;
            let params = CustomerParams {
                name: user.name.clone(),
                email: user.email.clone(),
            };
            match stripe.update_customer(&stripe_id, &params).await {
                Ok(customer) => self.store_customer(user_id, &customer).await,
                Err(failure) => Err(self.stripe_failure(user_id, &stripe_id, failure).await),
            }
        }
        .await;
        log_outcome(user_id, "update customer", &result);
        result
    }

    /// Pulls the customer and stores its default card and the page's snapshot.
    pub async fn refresh_customer(&self, user_id: i64) -> Result<(), SyncError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            let stripe_id = user.stripe_id.clone().ok_or(SyncError::NoCustomer)?;
            match stripe.retrieve_customer(&stripe_id).await {
                Ok(CustomerLookup::Found(customer)) => {
                    self.store_customer(user_id, &customer).await
                }
                Ok(CustomerLookup::Gone) => Err(self.customer_missing(user_id, &stripe_id).await),
                Err(failure) => Err(failure.into()),
            }
        }
        .await;
        log_outcome(user_id, "refresh customer", &result);
        result
    }

    /// Deletes the customer in Stripe and unlinks it locally. A customer Stripe no
    /// longer has is unlinked all the same.
    pub async fn delete_customer(&self, user_id: i64) -> Result<DeleteOutcome, SyncError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            let stripe_id = user.stripe_id.clone().ok_or(SyncError::NoCustomer)?;
            let outcome = match stripe.delete_customer(&stripe_id).await {
                Ok(()) => DeleteOutcome::Deleted,
                Err(failure) if failure.kind == crate::stripe::FailureKind::NotFound => {
                    DeleteOutcome::AlreadyGone
                }
                Err(failure) => return Err(failure.into()),
            };
            db::users::clear_customer(&self.db, user_id, &stripe_id, now()).await?;
            Ok(outcome)
        }
        .await;
        log_outcome(user_id, "delete customer", &result);
        result
    }

    async fn user(&self, user_id: i64) -> Result<db::users::User, SyncError> {
        db::users::find(&self.db, user_id)
            .await?
            .ok_or(SyncError::UserNotFound(user_id))
    }

    fn stripe(&self) -> Result<&StripeGateway, SyncError> {
        self.stripe.as_ref().ok_or(SyncError::NotConfigured)
    }

    /// Stores what Stripe said about the linked customer.
    async fn store_customer(
        &self,
        user_id: i64,
        customer: &StripeCustomer,
    ) -> Result<(), SyncError> {
        let snapshot = CustomerSnapshot::from(customer);
        let card = snapshot.card.clone();
        let json = Snapshot::Present(snapshot).to_json();
        let state = CustomerState {
            pm_type: card.as_ref().map(|c| c.brand.as_str()),
            pm_last_four: card.as_ref().map(|c| c.last4.as_str()),
            snapshot: &json,
            at: now(),
        };
        db::users::store_customer_state(&self.db, user_id, customer.id.as_str(), state).await?;
        Ok(())
    }

    /// Turns "no such customer" into the domain error and remembers it for the page.
    async fn stripe_failure(
        &self,
        user_id: i64,
        stripe_id: &str,
        failure: crate::stripe::StripeFailure,
    ) -> SyncError {
        if failure.kind == crate::stripe::FailureKind::NotFound {
            return self.customer_missing(user_id, stripe_id).await;
        }
        failure.into()
    }

    async fn customer_missing(&self, user_id: i64, stripe_id: &str) -> SyncError {
        let json = Snapshot::Missing.to_json();
        if let Err(err) =
            db::users::mark_customer_missing(&self.db, user_id, stripe_id, &json, now()).await
        {
            return err.into();
        }
        SyncError::CustomerMissingInStripe {
            stripe_id: stripe_id.to_string(),
        }
    }
}

pub(crate) fn now() -> OffsetDateTime {
    // Whole microseconds: PostgreSQL keeps no more, and SQLite compares the text.
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// One log line per operation that failed, with the user, the operation and
/// Stripe's request id; never a secret or a card number.
fn log_outcome<T>(user_id: i64, operation: &'static str, result: &Result<T, SyncError>) {
    let Err(err) = result else {
        tracing::info!(user_id, operation, "stripe operation succeeded");
        return;
    };
    let request_id = err.request_id();
    if err.is_internal() {
        tracing::error!(user_id, operation, request_id, error = %err, "stripe operation failed");
    } else {
        tracing::warn!(user_id, operation, request_id, error = %err, "stripe operation refused");
    }
}
