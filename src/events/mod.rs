//! The events service: Stripe's events (webhooks, replayed from the Events API)
//! applied to the local copy, and the webhook endpoint. The web layer checks the
//! signature; this applies each event at most once, in one transaction with the
//! record of its id, and reads only the fields it uses, so a field Stripe adds,
//! drops or renames elsewhere can never make a valid event fail.

use serde::Deserialize;
use serde_json::Value;

mod billing;
mod combine;
mod customer;
mod endpoint;
mod error;
pub mod replay;

pub use endpoint::WebhookRegistration;
pub use error::EventError;

use crate::billing::Billing;
use crate::clock::now;
use crate::context::Context;
use crate::customers::Customers;
use crate::db::{Db, events};
use crate::stripe::StripeGateway;

/// Applies events to what the customers and billing services keep.
#[derive(Clone, Debug)]
pub struct Events {
    ctx: Context,
    customers: Customers,
    billing: Billing,
    queues: combine::Queues,
}

impl Events {
    pub fn new(ctx: Context) -> Self {
        Events {
            customers: Customers::new(ctx.clone()),
            billing: Billing::new(ctx.clone()),
            queues: combine::Queues::default(),
            ctx,
        }
    }

    fn db(&self) -> &Db {
        &self.ctx.db
    }

    fn stripe(&self) -> Result<&StripeGateway, EventError> {
        self.ctx.stripe.as_ref().ok_or(EventError::NotConfigured)
    }
}

/// How far past now an event's `created` may be (clocks differ); later is refused.
pub const CLOCK_SKEW_SECONDS: i64 = 300;

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
    /// Said what was stored already: nothing to write, no Stripe call.
    Unchanged,
    /// Older than the newest event applied for the same customer: changes nothing.
    Superseded,
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

/// Every event type the app acts on; `stripe:webhook` subscribes an endpoint to
/// exactly these.
pub const HANDLED_EVENTS: &[&str] = &[
    "customer.updated",
    "customer.deleted",
    "payment_method.attached",
    "payment_method.detached",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
];

/// The handling an event type gets; `None` for types the app does not act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    CustomerUpdated,
    PaymentMethod,
    CustomerDeleted,
    Checkout,
    Refund,
}

fn kind(type_: &str) -> Option<Kind> {
    Some(match type_ {
        "customer.updated" => Kind::CustomerUpdated,
        "payment_method.attached" | "payment_method.detached" => Kind::PaymentMethod,
        "customer.deleted" => Kind::CustomerDeleted,
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => Kind::Checkout,
        "charge.refunded" => Kind::Refund,
        _ => return None,
    })
}

/// Whether the app acts on events of this type.
pub fn is_handled(type_: &str) -> bool {
    kind(type_).is_some()
}

impl Events {
    pub async fn apply_event(&self, event: &StripeEvent) -> Result<EventOutcome, EventError> {
        if event.created > now().unix_timestamp() + CLOCK_SKEW_SECONDS {
            return Err(EventError::FromTheFuture {
                created: event.created,
            });
        }
        // Each handler records the event in the transaction that applies it, and
        // a redelivery is told apart by that insert: no lookup before it.
        let outcome = match kind(&event.type_) {
            Some(Kind::CustomerUpdated) => match event.object_str("id") {
                Some(customer) => self.apply_customer_updated(event, customer).await?,
                None => EventOutcome::Ignored,
            },
            Some(Kind::PaymentMethod) => match event.payment_method_customer() {
                Some(customer) => self.apply_customer_event(event, customer).await?,
                None => EventOutcome::Ignored,
            },
            Some(Kind::CustomerDeleted) => match event.object_str("id") {
                Some(customer) => self.forget_for_event(event, customer).await?,
                None => EventOutcome::Ignored,
            },
            Some(Kind::Checkout) => self.record_checkout(event).await?,
            Some(Kind::Refund) => self.record_refund(event).await?,
            None => EventOutcome::Ignored,
        };
        tracing::info!(event_id = %event.id, event_type = %event.type_, ?outcome, "stripe event");
        Ok(outcome)
    }

    /// Forgets applied events older than `days` (Stripe keeps events 30 days and
    /// retries for 3, so an older id cannot come back). `serve` calls this hourly.
    /// Rows dated in the future (stored before such events were refused) go too:
    /// they would never age out.
    pub async fn prune_events(&self, days: u32) -> Result<u64, EventError> {
        let now = now().unix_timestamp();
        let cutoff = now - i64::from(days) * 86_400;
        let future = now + CLOCK_SKEW_SECONDS;
        Ok(events::prune_outside(self.db(), cutoff, future).await?)
    }

    /// Records an event that changes nothing here: one statement on the pool.
    async fn record_only(&self, event: &StripeEvent) -> Result<EventOutcome, EventError> {
        let (id, type_) = (&event.id, &event.type_);
        let fresh = events::record(&mut self.db(), id, type_, event.created, now()).await?;
        Ok(if fresh {
            EventOutcome::Ignored
        } else {
            EventOutcome::Duplicate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_s_event_list_is_exactly_what_apply_event_handles() {
        for type_ in HANDLED_EVENTS {
            assert!(is_handled(type_), "{type_} is listed but not handled");
        }
        let handled_kinds: std::collections::HashSet<_> =
            HANDLED_EVENTS.iter().filter_map(|t| kind(t)).collect();
        assert_eq!(handled_kinds.len(), 5, "every kind has a listed type");
        for other in [
            "customer.created",
            "invoice.paid",
            "charge.succeeded",
            "customer.*",
        ] {
            assert!(!is_handled(other), "{other}");
        }
    }
}
