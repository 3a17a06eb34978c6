//! The customers service: creates, updates, refreshes and deletes a user's Stripe
//! customer, in bulk too (`bulk`, and `bulk::refresh` for list reads), checks drift, and opens the
//! billing portal. It knows Stripe and the database, never HTTP; the settings page
//! and the CLI call the same functions. Billing (`crate::billing`) and events
//! (`crate::events`) are services of their own built on this one.

pub mod bulk;
mod create;
pub mod drift;
pub mod error;
mod outcome;

mod settle;
pub mod snapshot;
mod user_ids;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::{millis, now};
use crate::context::Context;
use crate::db::{self, Db, users};
use crate::fields::Prefer;
use crate::fields::{self, merge::Settle};
use crate::stripe::{CustomerLookup, StripeCustomer, StripeGateway};

pub use create::CreateOutcome;
pub use error::CustomerError;
pub(crate) use outcome::StoredCopy;
pub use outcome::{DeleteOutcome, Push, UpdateOutcome, payload_hash};
use outcome::{log_outcome, log_withheld};
use snapshot::Snapshot;
pub use user_ids::UserIds;

#[derive(Clone, Debug)]
pub struct Customers {
    ctx: Context,
}

/// How long a claim on a user row lasts unless its holder renews it. A living
/// holder renews every [`HEARTBEAT`], however long its Stripe calls take; a killed
/// one's claims lapse within this.
pub const LEASE: Duration = Duration::from_secs(15);
pub const HEARTBEAT: Duration = Duration::from_secs(5);

impl Customers {
    pub fn new(ctx: Context) -> Self {
        Customers { ctx }
    }

    /// Renews this process's claims every [`HEARTBEAT`] until the task is aborted
    /// (or the process dies, and with it the claims within [`LEASE`]).
    pub fn spawn_heartbeat(&self) -> tokio::task::JoinHandle<()> {
        let (db, holder) = (self.ctx.db.clone(), self.ctx.holder.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                let expires = users::unix_ms(now()) + lease_ms();
                if let Err(err) = users::renew_leases(&db, &holder, expires).await {
                    tracing::warn!(error = %err, "could not renew claims on user rows");
                }
            }
        })
    }

    /// A claim on a user row for this process, from now.
    fn lease_from(&self, now: OffsetDateTime) -> (Arc<str>, i64, i64) {
        let now_ms = users::unix_ms(now);
        (self.ctx.holder.clone(), now_ms, now_ms + lease_ms())
    }

    /// Whether the configured key is a live-mode key (Stripe's rate limits differ).
    pub fn live_mode(&self) -> bool {
        self.ctx
            .stripe
            .as_ref()
            .is_some_and(StripeGateway::live_mode)
    }

    pub fn db(&self) -> &Db {
        &self.ctx.db
    }

    /// Which database the service runs on, for start-up lines.
    pub fn database_kind(&self) -> &'static str {
        self.ctx.db.kind()
    }

    pub async fn user_exists(&self, user_id: i64) -> Result<bool, CustomerError> {
        Ok(users::find(&self.ctx.db, user_id).await?.is_some())
    }

    /// All users, for a bulk run's progress.
    pub async fn count_users(&self) -> Result<u64, CustomerError> {
        Ok(users::count(&self.ctx.db).await?.max(0) as u64)
    }

    pub fn is_configured(&self) -> bool {
        self.ctx.stripe.is_some()
    }

    /// Syncs the user's fields with the linked customer, three ways: pushes only
    /// the fields changed locally, takes in the ones changed in Stripe, and
    /// leaves the ones changed on both sides as conflicts. With `Push::Always`
    /// every field Stripe did not change is sent.
    pub async fn update_customer(
        &self,
        user_id: i64,
        push: Push,
    ) -> Result<UpdateOutcome, CustomerError> {
        self.update_settling(user_id, push, Settle::Report).await
    }

    /// As [`Self::update_customer`], settling conflicts as `settle` says.
    pub async fn update_settling(
        &self,
        user_id: i64,
        push: Push,
        settle: Settle<'_>,
    ) -> Result<UpdateOutcome, CustomerError> {
        let result = self.update_once(user_id, push, settle).await;
        log_outcome(user_id, "update customer", &result);
        if let Ok(outcome) = &result {
            log_withheld(user_id, "update customer", &outcome.not_sent);
        }
        result
    }

    /// Settles one field's conflict: "Keep mine" pushes the local value, "Keep
    /// Stripe's" takes Stripe's (for the billing email: leaves it Stripe's).
    pub async fn keep_side(
        &self,
        user_id: i64,
        field: &str,
        side: Prefer,
    ) -> Result<UpdateOutcome, CustomerError> {
        if self.ctx.fields.find(field).is_none() {
            return Err(CustomerError::UnknownField(field.to_string()));
        }
        self.update_settling(user_id, Push::IfChanged, Settle::Field(field, side))
            .await
    }

    async fn update_once(
        &self,
        user_id: i64,
        push: Push,
        settle: Settle<'_>,
    ) -> Result<UpdateOutcome, CustomerError> {
        let stripe = self.stripe()?;
        let (holder, now_ms, expires_ms) = self.lease_from(now());
        let lease = users::Lease {
            holder: &holder,
            now_ms,
            expires_ms,
        };
        let claim = users::claim_update(&self.ctx.db, user_id, lease, &self.columns()).await?;
        let Some(row) = claim else {
            return Err(match self.user(user_id).await?.stripe_id {
                None => CustomerError::NoCustomer,
                Some(_) => CustomerError::Busy,
            });
        };
        let stripe_id = row.stripe_id.clone().unwrap_or_default();
        let plan = self.plan_row(&row, settle, push == Push::Always);
        let mut outcome = UpdateOutcome::of(&plan);
        if !plan.pushes_anything() {
            let stored = async {
                if plan.is_quiet() {
                    return Ok(Vec::new());
                }
                let mut tx = self.ctx.db.begin().await?;
                let pulled = self.store_plan_in(&mut tx, &row, &stripe_id, &plan).await?;
                tx.commit().await?;
                Ok::<_, CustomerError>(pulled)
            }
            .await;
            users::release_lease(&self.ctx.db, user_id, &holder).await?;
            outcome.pulled = stored?;
            return Ok(outcome);
        }
        let changes: fields::Values = plan
            .pushes()
            .map(|f| (f.field.key(), f.local.clone()))
            .collect();
        let current = settle::Stored::of(&row).stripe_values();
        match stripe.update_customer(&stripe_id, &changes, &current).await {
            Ok(customer) => {
                let copy = StoredCopy::of(&customer);
                let local = |index: usize| plan.fields.get(index).map(|f| f.local.as_str());
                let hash = settle::name_email_hash(
                    local(0).unwrap_or_default(),
                    local(1).unwrap_or_default(),
                );
                let base = serde_json::to_string(&plan.base_after_push()).expect("serializes");
                let mut tx = self.ctx.db.begin().await?;
                users::store_pushed_in(&mut tx, user_id, &stripe_id, copy.state(), &hash, &base)
                    .await?;
                outcome.pulled = self.settle_in(&mut tx, user_id, &stripe_id).await?;
                tx.commit().await?;
                Ok(outcome)
            }
            Err(failure) => {
                users::release_lease(&self.ctx.db, user_id, &holder).await?;
                Err(self.stripe_failure(user_id, &stripe_id, failure).await)
            }
        }
    }

    /// Pulls the customer and stores its default card and the page's snapshot.
    pub async fn refresh_customer(&self, user_id: i64) -> Result<(), CustomerError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            let stripe_id = user.stripe_id.clone().ok_or(CustomerError::NoCustomer)?;
            // Events created before the read are in what it reads.
            let read_at = now().unix_timestamp() - 1;
            let lookup = stripe.retrieve_customer(&stripe_id).await?;
            let mut tx = self.ctx.db.begin().await?;
            self.store_lookup_in(&mut tx, user_id, &stripe_id, &lookup)
                .await?;
            if let CustomerLookup::Found(_) = lookup {
                users::anchor_event_order(&mut tx, user_id, &stripe_id, read_at).await?;
            }
            tx.commit().await?;
            match lookup {
                CustomerLookup::Found(_) => Ok(()),
                CustomerLookup::Gone => Err(CustomerError::CustomerMissingInStripe { stripe_id }),
            }
        }
        .await;
        log_outcome(user_id, "refresh customer", &result);
        result
    }

    /// Deletes the customer in Stripe and unlinks it locally. A customer Stripe no
    /// longer has is unlinked all the same.
    pub async fn delete_customer(&self, user_id: i64) -> Result<DeleteOutcome, CustomerError> {
        let result = async {
            let stripe = self.stripe()?;
            let user = self.user(user_id).await?;
            let stripe_id = user.stripe_id.clone().ok_or(CustomerError::NoCustomer)?;
            let outcome = match stripe.delete_customer(&stripe_id).await {
                Ok(()) => DeleteOutcome::Deleted,
                Err(failure) if failure.kind == crate::stripe::FailureKind::NotFound => {
                    DeleteOutcome::AlreadyGone
                }
                Err(failure) => return Err(failure.into()),
            };
            users::clear_customer(&self.ctx.db, user_id, &stripe_id, now()).await?;
            Ok(outcome)
        }
        .await;
        log_outcome(user_id, "delete customer", &result);
        result
    }

    /// A Stripe billing portal session for the user's customer.
    pub async fn billing_portal_url(
        &self,
        user_id: i64,
        return_url: &str,
    ) -> Result<String, CustomerError> {
        let stripe = self.stripe()?;
        let user = users::find(self.db(), user_id)
            .await?
            .ok_or(CustomerError::UserNotFound(user_id))?;
        let customer = user.stripe_id.ok_or(CustomerError::NoCustomer)?;
        let session = match stripe.create_portal_session(&customer, return_url).await {
            Ok(session) => session,
            Err(failure) => return Err(self.stripe_failure(user_id, &customer, failure).await),
        };
        session.url.ok_or_else(|| {
            CustomerError::Stripe(crate::stripe::StripeFailure::unreadable(
                "create billing portal session",
                "the session has no URL",
            ))
        })
    }

    pub(crate) async fn user(&self, user_id: i64) -> Result<users::User, CustomerError> {
        users::find(&self.ctx.db, user_id)
            .await?
            .ok_or(CustomerError::UserNotFound(user_id))
    }

    pub(crate) fn stripe(&self) -> Result<&StripeGateway, CustomerError> {
        self.ctx.stripe.as_ref().ok_or(CustomerError::NotConfigured)
    }

    /// Stores what Stripe said about the linked customer.
    async fn store_customer(
        &self,
        user_id: i64,
        customer: &StripeCustomer,
    ) -> Result<(), CustomerError> {
        let mut tx = self.ctx.db.begin().await?;
        self.store_customer_in(&mut tx, user_id, customer).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn store_customer_in(
        &self,
        tx: &mut db::Tx,
        user_id: i64,
        customer: &StripeCustomer,
    ) -> Result<(), CustomerError> {
        let copy = StoredCopy::of(customer);
        let stripe_id = customer.id.as_str();
        if users::store_customer_state(tx, user_id, stripe_id, copy.state(), None).await? {
            self.settle_in(tx, user_id, stripe_id).await?;
        }
        Ok(())
    }

    /// Turns "no such customer" into the domain error and remembers it for the page.
    async fn stripe_failure(
        &self,
        user_id: i64,
        stripe_id: &str,
        failure: crate::stripe::StripeFailure,
    ) -> CustomerError {
        if failure.kind == crate::stripe::FailureKind::NotFound {
            return self.customer_missing(user_id, stripe_id).await;
        }
        failure.into()
    }

    /// Remembers for the page that Stripe no longer has the linked customer, and
    /// says so.
    async fn customer_missing(&self, user_id: i64, stripe_id: &str) -> CustomerError {
        let stored = async {
            let mut tx = self.ctx.db.begin().await?;
            self.store_lookup_in(&mut tx, user_id, stripe_id, &CustomerLookup::Gone)
                .await?;
            tx.commit().await?;
            Ok::<_, CustomerError>(())
        }
        .await;
        match stored {
            Ok(()) => CustomerError::CustomerMissingInStripe {
                stripe_id: stripe_id.to_string(),
            },
            Err(err) => err,
        }
    }

    /// Stores what a retrieve found, if the user is still linked to that customer:
    /// its state, or that it is missing (keeping the dead id so the page can offer
    /// to re-create it). Refresh and webhook events share this.
    pub(crate) async fn store_lookup_in(
        &self,
        tx: &mut db::Tx,
        user_id: i64,
        stripe_id: &str,
        lookup: &CustomerLookup,
    ) -> Result<(), CustomerError> {
        match lookup {
            CustomerLookup::Found(customer) => self.store_customer_in(tx, user_id, customer).await,
            CustomerLookup::Gone => {
                let json = Snapshot::Missing.to_json();
                users::mark_customer_missing(tx, user_id, stripe_id, &json, now()).await?;
                Ok(())
            }
        }
    }
}

fn lease_ms() -> i64 {
    millis(LEASE)
}
