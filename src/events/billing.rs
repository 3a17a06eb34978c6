//! Billing events: a Checkout Session's payment and a charge refunded in full.

use serde_json::Value;

use super::{EventError, EventOutcome, Events, StripeEvent};
use crate::billing::{CheckoutSession, PaymentStatus};
use crate::clock::now;
use crate::db::events;

impl Events {
    /// Records what a Checkout event says about a job's payment, and publishes the
    /// job once it is paid. Only sessions this app made (metadata naming a job of
    /// the same user) are recorded.
    pub(super) async fn record_checkout(
        &self,
        event: &StripeEvent,
    ) -> Result<EventOutcome, EventError> {
        let Some(session) = CheckoutSession::read(&event.data.object) else {
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
        let recorded = self
            .billing
            .apply_checkout_in(&mut tx, &session, status)
            .await?;
        tx.commit().await?;
        Ok(match recorded {
            true => EventOutcome::Applied,
            false => EventOutcome::Ignored,
        })
    }

    /// A full refund of a job's payment (`refunded: true`; a partial refund changes
    /// nothing): the payment is marked refunded and the job unpublished. Only a
    /// charge of a payment the app recorded as paid is acted on.
    pub(super) async fn record_refund(
        &self,
        event: &StripeEvent,
    ) -> Result<EventOutcome, EventError> {
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
        let refunded = self.billing.refund_in(&mut tx, intent, now).await?;
        tx.commit().await?;
        Ok(match refunded {
            true => EventOutcome::Applied,
            false => EventOutcome::Ignored,
        })
    }
}
