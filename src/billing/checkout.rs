//! Job-posting payments through Stripe Checkout. A job is paid when Stripe says
//! so in a signed event (see `events/billing.rs`), never when the browser comes
//! back to the success page, which anyone can open.

use std::collections::HashMap;

use serde_json::Value;

use super::{Billing, BillingError};
use crate::clock::now;
use crate::customers::CustomerError;
use crate::db::payments::{self, PaymentStatus, PaymentUpdate};
use crate::db::{Tx, jobs};
use crate::stripe::CheckoutParams;

/// How long a checkout waits for a customer another request is creating.
const CREATE_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(200);
const CREATE_WAIT_STEPS: u32 = 25;

/// Where Checkout sends the browser back to.
pub struct ReturnUrls {
    pub success: String,
    pub cancel: String,
}

impl Billing {
    /// Asks Stripe about the job's own Checkout Session (never the query string)
    /// and, if it is paid, records the payment through the webhook's path, with
    /// the same checks; the webhook that follows changes nothing. Returns whether
    /// the job is published.
    pub async fn confirm_job_payment(
        &self,
        user_id: i64,
        job_id: i64,
    ) -> Result<bool, BillingError> {
        let job = self
            .job_for_user(job_id, user_id)
            .await?
            .ok_or(BillingError::JobNotFound(job_id))?;
        if job.status == jobs::JobStatus::Published {
            return Ok(true);
        }
        let Some(session_id) = job.checkout_session_id.as_deref() else {
            return Ok(false);
        };
        let state = self.stripe()?.retrieve_checkout_session(session_id).await?;
        if !state.paid() || state.id != session_id {
            return Ok(false);
        }
        let session = CheckoutSession {
            id: &state.id,
            job_id: job.id,
            user_id,
            paid: true,
            payment_intent: state.payment_intent.as_deref(),
            amount: state.amount_total,
            currency: state.currency.as_deref(),
        };
        let mut tx = self.db().begin().await?;
        let recorded = self
            .apply_checkout_in(&mut tx, &session, PaymentStatus::Paid)
            .await?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// The Checkout page to pay for a job: the one already made for it, or a new
    /// session for the job's fee, for the user's customer (created first if the
    /// user has none). A double submit gets the same session: the idempotency key
    /// is the job's, and its parameters are fixed in the job row.
    pub async fn job_checkout_url(
        &self,
        user_id: i64,
        job_id: i64,
        urls: &ReturnUrls,
    ) -> Result<String, BillingError> {
        let stripe = self.stripe()?;
        let job = jobs::find_for_user(self.db(), job_id, user_id)
            .await?
            .ok_or(BillingError::JobNotFound(job_id))?;
        if job.status == jobs::JobStatus::Published {
            return Err(BillingError::JobAlreadyPaid);
        }
        if let Some(url) = job.checkout_url {
            return Ok(url);
        }
        let customer = self
            .customer_for_checkout(user_id)
            .await
            .map_err(BillingError::Customer)?;
        let item_name = format!("Job posting: {}", job.title);
        let reference = format!("job-{}", job.id);
        let metadata = HashMap::from([
            ("job_id".to_string(), job.id.to_string()),
            ("user_id".to_string(), user_id.to_string()),
        ]);
        let params = CheckoutParams {
            customer: &customer,
            client_reference_id: &reference,
            metadata,
            item_name: &item_name,
            amount: job.fee_amount,
            currency: &job.fee_currency,
            success_url: &urls.success,
            cancel_url: &urls.cancel,
        };
        let key = format!(
            "stripe-sync-checkout-job-{}-{}",
            job.id, job.checkout_attempt
        );
        let session = stripe.create_checkout_session(&params, &key).await.inspect_err(|failure| {
            tracing::error!(user_id, job_id, request_id = failure.request_id.as_deref(), error = %failure, "checkout session failed");
        })?;
        let url = session.url.ok_or_else(|| {
            BillingError::Stripe(crate::stripe::StripeFailure::unreadable(
                "create checkout session",
                "the session has no URL",
            ))
        })?;
        let stored = jobs::store_checkout(
            self.db(),
            job.id,
            job.checkout_attempt,
            &session.id,
            &url,
            now(),
        )
        .await?;
        if !stored {
            // The session expired or failed while Stripe answered: never hand out a
            // dead session; the next attempt makes a new one.
            tracing::info!(user_id, job_id, session = %session.id, "checkout attempt moved on meanwhile");
            return Err(BillingError::CheckoutMovedOn);
        }
        tracing::info!(user_id, job_id, session = %session.id, "checkout session ready");
        Ok(url)
    }

    /// The user's customer id, creating the customer through the same path as the
    /// settings page when there is none. A double submit races two creations: the
    /// one that loses waits for the winner's customer instead of failing.
    async fn customer_for_checkout(&self, user_id: i64) -> Result<String, CustomerError> {
        let customers = &self.customers;
        if let Some(stripe_id) = customers.user(user_id).await?.stripe_id {
            return Ok(stripe_id);
        }
        match customers.create_customer(user_id).await {
            Ok(created) => return Ok(created.stripe_id),
            Err(CustomerError::AlreadyHasCustomer { stripe_id }) => return Ok(stripe_id),
            Err(CustomerError::CreateInProgress) => {}
            Err(err) => return Err(err),
        }
        for _ in 0..CREATE_WAIT_STEPS {
            tokio::time::sleep(CREATE_WAIT_STEP).await;
            if let Some(stripe_id) = customers.user(user_id).await?.stripe_id {
                return Ok(stripe_id);
            }
        }
        Err(CustomerError::CreateInProgress)
    }
    /// A full refund of the payment made through `intent`, inside `tx`: a paid
    /// payment becomes refunded and its job unpublished. Returns whether there was
    /// such a payment.
    pub(crate) async fn refund_in(
        &self,
        tx: &mut Tx,
        intent: &str,
        now: time::OffsetDateTime,
    ) -> Result<bool, BillingError> {
        let Some((job_id, user_id)) = payments::mark_refunded(tx, intent, now).await? else {
            return Ok(false);
        };
        jobs::unpublish_refunded(tx, job_id, now).await?;
        tracing::info!(user_id, job_id, "job payment refunded; job unpublished");
        Ok(true)
    }

    /// Records what a Checkout Session says of its job's payment, inside `tx`: the
    /// webhook and the success page both come through here. Only a session the app
    /// made for that job, for the job's own fee, changes anything. Returns whether
    /// it was recorded.
    pub(crate) async fn apply_checkout_in(
        &self,
        tx: &mut Tx,
        session: &CheckoutSession<'_>,
        status: PaymentStatus,
    ) -> Result<bool, BillingError> {
        let now = now();
        let job = jobs::find_in(tx, session.job_id).await?;
        let Some(job) = job.filter(|job| job.user_id == session.user_id) else {
            tracing::warn!(
                job_id = session.job_id,
                session = session.id,
                "checkout session for an unknown job"
            );
            return Ok(false);
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
            return Ok(false);
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
        Ok(true)
    }
}

/// The fields of a Checkout Session event that this app reads.
pub struct CheckoutSession<'a> {
    pub id: &'a str,
    pub job_id: i64,
    pub user_id: i64,
    pub paid: bool,
    pub payment_intent: Option<&'a str>,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
}

impl<'a> CheckoutSession<'a> {
    pub fn read(object: &'a Value) -> Option<Self> {
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
