//! Billing events: a Checkout Session's payment and a charge refunded in full.

use serde_json::Value;

use super::{EventOutcome, StripeEvent};
use crate::db::payments::{self, PaymentStatus, PaymentUpdate};
use crate::db::{events, jobs};
use crate::sync::{SyncError, SyncService, now};

impl SyncService {
    /// Records what a Checkout event says about a job's payment, and publishes the
    /// job once it is paid. Only sessions this app made (metadata naming a job of
    /// the same user) are recorded.
    pub(super) async fn record_checkout(
        &self,
        event: &StripeEvent,
    ) -> Result<EventOutcome, SyncError> {
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
    pub(super) async fn record_refund(
        &self,
        event: &StripeEvent,
    ) -> Result<EventOutcome, SyncError> {
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
    /// Records what a Checkout Session says of its job's payment, inside `tx`: the
    /// webhook and the success page both come through here. Only a session the app
    /// made for that job, for the job's own fee, changes anything.
    pub(in crate::sync) async fn apply_checkout_in(
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
}

/// The fields of a Checkout Session event that this app reads.
pub(in crate::sync) struct CheckoutSession<'a> {
    pub id: &'a str,
    pub job_id: i64,
    pub user_id: i64,
    pub paid: bool,
    pub payment_intent: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
}

impl<'a> CheckoutSession<'a> {
    pub(in crate::sync) fn read(event: &'a StripeEvent) -> Option<Self> {
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
