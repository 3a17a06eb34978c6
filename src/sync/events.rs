//! Applying Stripe's webhook events to the local copy. The web layer checks the
//! signature; this applies each event at most once, in one transaction with the
//! record of its id, and reads only the fields it uses, so a field Stripe adds,
//! drops or renames elsewhere can never make a valid event fail.

use serde::Deserialize;
use serde_json::Value;

use super::{SyncError, SyncService, now};
use crate::db::{events, users};
use crate::stripe::CustomerLookup;
use crate::sync::snapshot::Snapshot;

/// The part of an event this app reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub created: i64,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: Value,
    #[serde(default)]
    pub previous_attributes: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    /// Seen before: nothing changed.
    Duplicate,
    /// Not an event this app acts on, or about a customer no user is linked to.
    Ignored,
}

impl StripeEvent {
    fn object_str(&self, field: &str) -> Option<&str> {
        self.data.object.get(field)?.as_str()
    }

    /// The customer a payment-method event is about; a detached method names its
    /// former customer only in `previous_attributes`.
    fn payment_method_customer(&self) -> Option<&str> {
        self.object_str("customer").or_else(|| {
            self.data
                .previous_attributes
                .as_ref()?
                .get("customer")?
                .as_str()
        })
    }
}

impl SyncService {
    pub async fn apply_event(&self, event: &StripeEvent) -> Result<EventOutcome, SyncError> {
        if events::is_recorded(self.db(), &event.id).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let outcome = match event.type_.as_str() {
            "customer.updated" => match event.object_str("id") {
                Some(customer) => self.pull_for_event(event, customer).await?,
                None => EventOutcome::Ignored,
            },
            "payment_method.attached" | "payment_method.detached" => {
                match event.payment_method_customer() {
                    Some(customer) => self.pull_for_event(event, customer).await?,
                    None => EventOutcome::Ignored,
                }
            }
            "customer.deleted" => match event.object_str("id") {
                Some(customer) => self.forget_for_event(event, customer).await?,
                None => EventOutcome::Ignored,
            },
            _ => EventOutcome::Ignored,
        };
        tracing::info!(event_id = %event.id, event_type = %event.type_, ?outcome, "stripe event");
        Ok(outcome)
    }

    /// Pulls the customer as it is now, then stores it with the event's record.
    /// Reading the current state (the event's payload names the default payment
    /// method only by id anyway) means an older event delivered after a newer one
    /// can never put older data back.
    async fn pull_for_event(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, SyncError> {
        let Some(user) = users::find_by_stripe_id(self.db(), customer).await? else {
            return self.record_only(event).await;
        };
        let lookup = self.stripe()?.retrieve_customer(customer).await?;
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        match lookup {
            CustomerLookup::Found(found) => {
                self.store_customer_in(&mut tx, user.id, &found).await?
            }
            CustomerLookup::Gone => {
                let json = Snapshot::Missing.to_json();
                users::mark_customer_missing_in(&mut tx, user.id, customer, &json, now()).await?;
            }
        }
        tx.commit().await?;
        Ok(EventOutcome::Applied)
    }

    async fn forget_for_event(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, SyncError> {
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let unlinked = users::forget_deleted_customer(&mut tx, customer, now()).await?;
        tx.commit().await?;
        if let Some(user_id) = unlinked {
            tracing::info!(
                user_id,
                stripe_id = customer,
                "customer deleted in Stripe: unlinked"
            );
            return Ok(EventOutcome::Applied);
        }
        Ok(EventOutcome::Ignored)
    }

    async fn record_only(&self, event: &StripeEvent) -> Result<EventOutcome, SyncError> {
        let mut tx = self.db().begin().await?;
        let fresh = events::record(&mut tx, &event.id, &event.type_, event.created, now()).await?;
        tx.commit().await?;
        Ok(if fresh {
            EventOutcome::Ignored
        } else {
            EventOutcome::Duplicate
        })
    }
}
