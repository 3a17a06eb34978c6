//! What the services share, built once at startup: the database, the Stripe
//! client (when a key is set), the customer fields synced, and this process's id
//! in the shared tables. Every service takes it; none reaches another's.

use std::sync::Arc;

use crate::db::Db;
use crate::db::users::CreateGroups;
use crate::fields::FieldMap;
use crate::stripe::{RateLimiter, RetryPolicy, StripeGateway};

#[derive(Clone, Debug)]
pub struct Context {
    pub db: Db,
    pub stripe: Option<StripeGateway>,
    /// The customer fields synced (`STRIPE_CUSTOMER_FIELDS`).
    pub fields: Arc<FieldMap>,
    /// Names this process's claims on user rows and the runs it records; the
    /// customers service's heartbeat renews the claims.
    pub holder: Arc<str>,
    /// Where creates' claims and links wait to be committed together.
    pub create_groups: CreateGroups,
}

impl Context {
    pub fn new(db: Db, stripe: Option<StripeGateway>, fields: FieldMap) -> Self {
        Context {
            create_groups: CreateGroups::new(&db),
            db,
            stripe,
            fields: Arc::new(fields),
            holder: uuid::Uuid::new_v4().simple().to_string().into(),
        }
    }

    /// Readiness: the database answers within `timeout`.
    pub async fn database_ready(&self, timeout: std::time::Duration) -> bool {
        self.db.ping(timeout).await
    }

    /// The same, with every Stripe request paced by `limiter` and retried under
    /// `retry` (a bulk run is more patient than a page).
    pub fn for_bulk(&self, limiter: Arc<RateLimiter>, retry: RetryPolicy) -> Self {
        let stripe = self
            .stripe
            .as_ref()
            .map(|gateway| gateway.with_rate_limiter(limiter).with_retry_policy(retry));
        Context {
            stripe,
            ..self.clone()
        }
    }
}
