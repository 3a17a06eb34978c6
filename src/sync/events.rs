//! Applying Stripe's webhook events to the local copy. The web layer checks the
//! signature; this applies each event at most once, in one transaction with the
//! record of its id, and reads only the fields it uses, so a field Stripe adds,
//! drops or renames elsewhere can never make a valid event fail.

use serde::Deserialize;
use serde_json::Value;

use super::snapshot::{Card, CustomerSnapshot, Snapshot};
use super::{StoredCopy, SyncError, SyncService, now};
use crate::db::payments::{self, PaymentStatus, PaymentUpdate};
use crate::db::{events, jobs, users};

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

/// What a customer event does to the stored Stripe-side copy.
#[derive(Debug)]
enum Plan {
    /// Older than the newest customer event applied to the user.
    Superseded,
    /// The payload is what is stored already (an echo of our own push, say).
    Unchanged,
    /// The payload says everything: store it, no call.
    Store(CustomerSnapshot),
    /// The payload cannot say it all (a new default payment method, a lean
    /// payload, another event of the same second): retrieve the customer.
    Pull,
}

impl SyncService {
    pub async fn apply_event(&self, event: &StripeEvent) -> Result<EventOutcome, SyncError> {
        if event.created > now().unix_timestamp() + CLOCK_SKEW_SECONDS {
            return Err(SyncError::EventFromTheFuture {
                created: event.created,
            });
        }
        if events::is_recorded(self.db(), &event.id).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let outcome = match kind(&event.type_) {
            Some(Kind::CustomerUpdated) => match event.object_str("id") {
                Some(customer) => self.apply_customer_event(event, customer).await?,
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

    /// Applies a customer or payment-method event from its payload, and asks
    /// Stripe only for what the payload cannot give.
    async fn apply_customer_event(
        &self,
        event: &StripeEvent,
        customer: &str,
    ) -> Result<EventOutcome, SyncError> {
        let Some(user) = users::find_by_stripe_id(self.db(), customer).await? else {
            return self.record_only(event).await;
        };
        let plan = if event.type_ == "customer.updated" {
            plan_customer_updated(event, &user)
        } else {
            plan_payment_method(event, &user)
        };
        let guarded = event.type_ == "customer.updated";
        // Stripe is asked before the transaction, never inside it.
        let pulled = match &plan {
            Plan::Pull => Some(self.stripe()?.retrieve_customer(customer).await?),
            _ => None,
        };
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let outcome = match plan {
            Plan::Superseded => EventOutcome::Superseded,
            Plan::Unchanged => {
                if guarded {
                    users::note_event_created(&mut tx, user.id, event.created).await?;
                }
                EventOutcome::Unchanged
            }
            Plan::Store(snapshot) => {
                let copy = StoredCopy::new(snapshot);
                let state = copy.state();
                let created = guarded.then_some(event.created);
                let stored =
                    users::store_customer_state(&mut tx, user.id, customer, state, created).await?;
                if stored {
                    EventOutcome::Applied
                } else {
                    EventOutcome::Superseded
                }
            }
            Plan::Pull => {
                if let Some(lookup) = &pulled {
                    self.store_lookup_in(&mut tx, user.id, customer, lookup)
                        .await?;
                }
                if guarded {
                    users::note_event_created(&mut tx, user.id, event.created).await?;
                }
                EventOutcome::Applied
            }
        };
        tx.commit().await?;
        Ok(outcome)
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

    /// Records what a Checkout event says about a job's payment, and publishes the
    /// job once it is paid. Only sessions this app made (metadata naming a job of
    /// the same user) are recorded.
    async fn record_checkout(&self, event: &StripeEvent) -> Result<EventOutcome, SyncError> {
        let Some(session) = CheckoutSession::read(event) else {
            tracing::warn!(event_id = %event.id, "checkout event without our job metadata");
            return self.record_only(event).await;
        };
        let status = match event.type_.as_str() {
            "checkout.session.completed" if session.paid => PaymentStatus::Paid,
            "checkout.session.completed" => PaymentStatus::Processing,
            "checkout.session.async_payment_succeeded" => PaymentStatus::Paid,
            "checkout.session.async_payment_failed" => PaymentStatus::Failed,
            _ => PaymentStatus::Expired,
        };
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now()).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let outcome = self.apply_checkout_in(&mut tx, &session, status).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// A full refund of a job's payment (`refunded: true`; a partial refund changes
    /// nothing): the payment is marked refunded and the job unpublished. Only a
    /// charge of a payment the app recorded as paid is acted on.
    async fn record_refund(&self, event: &StripeEvent) -> Result<EventOutcome, SyncError> {
        let object = &event.data.object;
        let full = object.get("refunded").and_then(Value::as_bool) == Some(true);
        let intent = object
            .get("payment_intent")
            .and_then(|pi| pi.as_str().or_else(|| pi.get("id")?.as_str()));
        let (true, Some(intent)) = (full, intent) else {
            return self.record_only(event).await;
        };
        let now = now();
        let mut tx = self.db().begin().await?;
        if !events::record(&mut tx, &event.id, &event.type_, event.created, now).await? {
            return Ok(EventOutcome::Duplicate);
        }
        let Some((job_id, user_id)) = payments::mark_refunded(&mut tx, intent, now).await? else {
            tx.commit().await?;
            return Ok(EventOutcome::Ignored);
        };
        jobs::unpublish_refunded(&mut tx, job_id, now).await?;
        tx.commit().await?;
        tracing::info!(user_id, job_id, "job payment refunded; job unpublished");
        Ok(EventOutcome::Applied)
    }

    /// Forgets applied events older than `days` (Stripe keeps events 30 days and
    /// retries for 3, so an older id cannot come back). `serve` calls this hourly.
    /// Rows dated in the future (stored before such events were refused) go too:
    /// they would never age out.
    pub async fn prune_events(&self, days: u32) -> Result<u64, SyncError> {
        let now = now().unix_timestamp();
        let cutoff = now - i64::from(days) * 86_400;
        let future = now + CLOCK_SKEW_SECONDS;
        Ok(events::prune_outside(self.db(), cutoff, future).await?)
    }

    /// Records what a Checkout Session says of its job's payment, inside `tx`: the
    /// webhook and the success page both come through here. Only a session the app
    /// made for that job, for the job's own fee, changes anything.
    pub(super) async fn apply_checkout_in(
        &self,
        tx: &mut crate::db::Tx,
        session: &CheckoutSession<'_>,
        status: PaymentStatus,
    ) -> Result<EventOutcome, SyncError> {
        let now = now();
        let job = jobs::find_in(tx, session.job_id).await?;
        let Some(job) = job.filter(|job| job.user_id == session.user_id) else {
            tracing::warn!(
                job_id = session.job_id,
                session = session.id,
                "checkout session for an unknown job"
            );
            return Ok(EventOutcome::Ignored);
        };
        let trusted = jobs::is_own_session(tx, job.id, session.id).await?
            && session.amount == Some(job.fee_amount)
            && session
                .currency
                .is_some_and(|currency| currency.eq_ignore_ascii_case(&job.fee_currency));
        if !trusted {
            tracing::warn!(
                user_id = job.user_id,
                job_id = job.id,
                session = session.id,
                amount = session.amount,
                currency = session.currency,
                "checkout session is not the job's own or not for its fee; nothing recorded"
            );
            return Ok(EventOutcome::Ignored);
        }
        let payment = PaymentUpdate {
            user_id: job.user_id,
            job_id: job.id,
            checkout_session_id: session.id,
            payment_intent_id: session.payment_intent,
            amount: job.fee_amount,
            currency: &job.fee_currency,
            status,
        };
        payments::upsert(tx, payment, now).await?;
        match status {
            PaymentStatus::Paid => jobs::publish(tx, job.id, now).await?,
            PaymentStatus::Expired | PaymentStatus::Failed => {
                jobs::forget_checkout(tx, job.id, session.id, now).await?
            }
            _ => {}
        }
        tracing::info!(
            user_id = job.user_id,
            job_id = job.id,
            status = status.as_str(),
            "job payment recorded"
        );
        Ok(EventOutcome::Applied)
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

/// The fields of a Checkout Session event that this app reads.
pub(super) struct CheckoutSession<'a> {
    pub id: &'a str,
    pub job_id: i64,
    pub user_id: i64,
    pub paid: bool,
    pub payment_intent: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
}

impl<'a> CheckoutSession<'a> {
    fn read(event: &'a StripeEvent) -> Option<Self> {
        let object = &event.data.object;
        let metadata_id = |key: &str| object.get("metadata")?.get(key)?.as_str()?.parse().ok();
        Some(CheckoutSession {
            id: object.get("id")?.as_str()?,
            job_id: metadata_id("job_id")?,
            user_id: metadata_id("user_id")?,
            // "no_payment_required" counts as paid: there is nothing left to pay.
            paid: matches!(
                object.get("payment_status").and_then(Value::as_str),
                Some("paid" | "no_payment_required")
            ),
            // A string id in events; an object only when someone expanded it.
            payment_intent: object
                .get("payment_intent")
                .and_then(|pi| pi.as_str().or_else(|| pi.get("id")?.as_str())),
            amount: object.get("amount_total").and_then(Value::as_i64),
            currency: object.get("currency").and_then(Value::as_str),
        })
    }
}

/// The stored snapshot, when it describes a customer Stripe has.
fn stored_customer(user: &users::User) -> Option<CustomerSnapshot> {
    match Snapshot::from_json(user.stripe_snapshot.as_deref()?)? {
        Snapshot::Present(customer) => Some(customer),
        Snapshot::Missing => None,
    }
}

fn plan_customer_updated(event: &StripeEvent, user: &users::User) -> Plan {
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
    Plan::Store(fresh)
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
        Plan::Store(fresh)
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
