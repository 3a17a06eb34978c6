//! Applying Stripe's webhook events to the local copy. The web layer checks the
//! signature; this applies each event at most once, in one transaction with the
//! record of its id, and reads only the fields it uses, so a field Stripe adds,
//! drops or renames elsewhere can never make a valid event fail.

use serde::Deserialize;
use serde_json::Value;

use super::{SyncError, SyncService, now};
use crate::db::payments::{self, PaymentStatus, PaymentUpdate};
use crate::db::{events, jobs, users};

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
            "checkout.session.completed"
            | "checkout.session.async_payment_succeeded"
            | "checkout.session.async_payment_failed"
            | "checkout.session.expired" => self.record_checkout(event).await?,
            "charge.refunded" => self.record_refund(event).await?,
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
        self.store_lookup_in(&mut tx, user.id, customer, &lookup)
            .await?;
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
    pub async fn prune_events(&self, days: u32) -> Result<u64, SyncError> {
        let cutoff = now().unix_timestamp() - i64::from(days) * 86_400;
        Ok(events::prune_created_before(self.db(), cutoff).await?)
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
