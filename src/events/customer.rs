//! Customer events: `customer.updated`, `customer.deleted` and a payment method
//! attached or detached, applied from their payloads under the ordering guard.

use super::{EventError, EventOutcome, Events, StripeEvent};
use crate::clock::now;
use crate::customers::StoredCopy;
use crate::customers::snapshot::{Card, CustomerSnapshot, Snapshot};
use crate::db::{events, subscriptions, users};

/// What a customer event does to the stored Stripe-side copy.
#[derive(Debug)]
enum Plan {
    /// Older than the newest customer event applied to the user.
    Superseded,
    /// The payload is what is stored already (an echo of our own push, say).
    Unchanged,
    /// The payload says everything: store it, no call.
    Store(Box<CustomerSnapshot>),
    /// The payload cannot say it all (a new default payment method, a lean
    /// payload, another event of the same second): retrieve the customer.
    Pull,
}

impl Events {
    /// Applies a customer or payment-method event from its payload, and asks
    /// Stripe only for what the payload cannot give. One transaction: the event's
    /// record first (a redelivery stops there), then the user read and held, then
    /// what the payload says. When it cannot say enough, the transaction is
    /// dropped, Stripe asked (never inside one), and a second one records the
    /// event with what Stripe answered.
    pub(super) async fn apply_customer_event(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, EventError> {
        let guarded = event.type_ == "customer.updated";
        let mut tx = self.db().begin().await?;
        let (id, type_, created) = (&event.id, &event.type_, event.created);
        let recorded = events::record_and_hold(&mut tx, id, type_, created, now(), customer);
        let user = match recorded.await? {
            events::Recorded::Duplicate => return Ok(EventOutcome::Duplicate),
            events::Recorded::Fresh(Some(user)) => *user,
            events::Recorded::Fresh(None) => {
                tx.commit().await?;
                return Ok(EventOutcome::Ignored);
            }
        };
        let plan = if guarded {
            let needs_fields = self.customers.field_map().extra_columns().next().is_some();
            plan_customer_updated(event, &user, needs_fields)
        } else {
            plan_payment_method(event, &user)
        };
        let outcome = match plan {
            Plan::Pull => {
                tx.rollback().await?;
                return self.apply_pulled(event, customer, user.id).await;
            }
            Plan::Superseded => EventOutcome::Superseded,
            Plan::Unchanged => {
                if guarded {
                    users::note_event_created(&mut tx, user.id, event.created).await?;
                }
                EventOutcome::Unchanged
            }
            Plan::Store(snapshot) => {
                let copy = StoredCopy::new(*snapshot);
                let copy = users::CustomerCopy {
                    state: copy.state(),
                    event_created: guarded.then_some(event.created),
                };
                let stored = self
                    .customers
                    .store_settled_held_in(&mut tx, &user, customer, copy)
                    .await?;
                match stored {
                    true => EventOutcome::Applied,
                    false => EventOutcome::Superseded,
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// The event applied from the customer as Stripe has it now: retrieved, then
    /// stored with the event's record in a transaction of its own.
    async fn apply_pulled(
        &self,
        event: &StripeEvent,
        customer: &str,
        user_id: i64,
    ) -> Result<EventOutcome, EventError> {
        let pulled = self.stripe()?.retrieve_customer(customer).await?;
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        self.customers
            .store_lookup_in(&mut tx, user_id, customer, &pulled)
            .await?;
        if event.type_ == "customer.updated" {
            users::note_event_created(&mut tx, user_id, event.created).await?;
        }
        tx.commit().await?;
        Ok(EventOutcome::Applied)
    }

    pub(super) async fn forget_for_event(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, EventError> {
        let cashier = subscriptions::cashier_table(self.db()).await?;
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let unlinked = users::forget_deleted_customer(&mut tx, customer, now()).await?;
        let mut canceled = 0;
        if let (Some(user_id), Some(table)) = (unlinked, cashier) {
            canceled = subscriptions::cancel_for_user_in(&mut tx, table, user_id, now()).await?;
        }
        tx.commit().await?;
        if let Some(user_id) = unlinked {
            tracing::info!(
                user_id,
                stripe_id = customer,
                canceled_subscriptions = canceled,
                "customer deleted in Stripe: unlinked"
            );
            return Ok(EventOutcome::Applied);
        }
        Ok(EventOutcome::Ignored)
    }
}

/// The stored snapshot, when it describes a customer Stripe has.
fn stored_customer(user: &users::User) -> Option<CustomerSnapshot> {
    match Snapshot::from_json(user.stripe_snapshot.as_deref()?)? {
        Snapshot::Present(customer) => Some(*customer),
        Snapshot::Missing => None,
    }
}

/// `needs_fields`: the map syncs fields beyond name and email, so a payload that
/// does not say them all is pulled.
fn plan_customer_updated(event: &StripeEvent, user: &users::User, needs_fields: bool) -> Plan {
    if user
        .stripe_event_created
        .is_some_and(|newest| event.created < newest)
    {
        return Plan::Superseded;
    }
    let Some(mut fresh) = CustomerSnapshot::from_payload(&event.data.object) else {
        return Plan::Pull;
    };
    let stored = stored_customer(user);
    if fresh.fields.is_none() {
        if needs_fields {
            return Plan::Pull;
        }
        // Only name and email are synced, and the payload says those.
        fresh.fields = stored.as_ref().and_then(|stored| stored.fields.clone());
        if let Some(fields) = &mut fresh.fields {
            for (key, value) in [("name", &fresh.name), ("email", &fresh.email)] {
                match value {
                    Some(value) if !value.is_empty() => fields.insert(key.into(), value.clone()),
                    _ => fields.remove(key),
                };
            }
        }
    }
    match &fresh.default_payment_method {
        None => fresh.card = None,
        Some(method) => match &stored {
            Some(stored) if stored.default_payment_method.as_ref() == Some(method) => {
                fresh.card = stored.card.clone();
            }
            // A new default: its brand and last four are not in the payload.
            _ => return Plan::Pull,
        },
    }
    if stored.as_ref() == Some(&fresh) {
        return Plan::Unchanged;
    }
    // Two events of the same second cannot be ordered by their payloads.
    if user.stripe_event_created == Some(event.created) {
        return Plan::Pull;
    }
    Plan::Store(Box::new(fresh))
}

/// A payment method attached to or detached from the customer matters only when
/// it is the default: its card is in the payload. These events carry no customer
/// state, so they neither consult nor move the ordering guard.
fn plan_payment_method(event: &StripeEvent, user: &users::User) -> Plan {
    let Some(stored) = stored_customer(user) else {
        return Plan::Pull;
    };
    let Some(method) = event.object_str("id") else {
        return Plan::Pull;
    };
    let mut fresh = stored.clone();
    match stored.default_payment_method.as_deref() {
        // A snapshot from before the default's id was kept cannot tell.
        None if stored.card.is_some() => return Plan::Pull,
        Some(default) if default == method => {
            if event.type_ == "payment_method.detached" {
                fresh.default_payment_method = None;
                fresh.card = None;
            } else {
                let card = event.data.object.get("card");
                let field = |name: &str| Some(card?.get(name)?.as_str()?.to_string());
                fresh.card = match (field("brand"), field("last4")) {
                    (Some(brand), Some(last4)) => Some(Card { brand, last4 }),
                    _ => None,
                };
            }
        }
        _ => return Plan::Unchanged,
    }
    if fresh == stored {
        Plan::Unchanged
    } else {
        Plan::Store(Box::new(fresh))
    }
}
