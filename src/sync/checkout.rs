//! Job-posting payments through Stripe Checkout, and the billing portal. A job is
//! paid when Stripe says so in a signed event (see `events.rs`), never when the
//! browser comes back to the success page, which anyone can open.

use std::collections::HashMap;

use super::events::{CheckoutSession, EventOutcome};
use super::{SyncError, SyncService, now};
use crate::config::JobPosting;
use crate::db::payments::PaymentStatus;
use crate::db::{jobs, users};
use crate::stripe::CheckoutParams;

/// How long a checkout waits for a customer another request is creating.
const CREATE_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(200);
const CREATE_WAIT_STEPS: u32 = 25;

pub use crate::db::jobs::{Job, JobStatus};

/// A job posting as its author wrote it; the fee is the app's.
pub struct JobDraft<'a> {
    /// The form's one-time token: a second submit of the same form is the same job.
    pub form_token: &'a str,
    pub title: &'a str,
    pub company: &'a str,
    pub description: &'a str,
}

/// Where Checkout sends the browser back to.
pub struct ReturnUrls {
    pub success: String,
    pub cancel: String,
}

impl SyncService {
    /// Saves a job awaiting payment, once per form: a second submit of the same
    /// form finds the first one's job.
    pub async fn post_job(
        &self,
        user_id: i64,
        draft: JobDraft<'_>,
        fee: &JobPosting,
    ) -> Result<Job, SyncError> {
        let job = jobs::NewJob {
            user_id,
            form_token: draft.form_token,
            title: draft.title,
            company: draft.company,
            description: draft.description,
            fee_amount: fee.fee,
            fee_currency: &fee.currency,
        };
        Ok(jobs::insert_once(self.db(), job, now()).await?)
    }

    /// The user's own job; another user's is not found.
    pub async fn job_for_user(
        &self,
        job_id: i64,
        user_id: i64,
    ) -> Result<Option<jobs::Job>, SyncError> {
        Ok(jobs::find_for_user(self.db(), job_id, user_id).await?)
    }

    /// Asks Stripe about the job's own Checkout Session (never the query string)
    /// and, if it is paid, records the payment through the webhook's path, with
    /// the same checks; the webhook that follows changes nothing. Returns whether
    /// the job is published.
    pub async fn confirm_job_payment(&self, user_id: i64, job_id: i64) -> Result<bool, SyncError> {
        let job = self
            .job_for_user(job_id, user_id)
            .await?
            .ok_or(SyncError::JobNotFound(job_id))?;
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
        let outcome = self
            .apply_checkout_in(&mut tx, &session, PaymentStatus::Paid)
            .await?;
        tx.commit().await?;
        Ok(outcome == EventOutcome::Applied)
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
    ) -> Result<String, SyncError> {
        let stripe = self.stripe()?;
        let job = jobs::find_for_user(self.db(), job_id, user_id)
            .await?
            .ok_or(SyncError::JobNotFound(job_id))?;
        if job.status == jobs::JobStatus::Published {
            return Err(SyncError::JobAlreadyPaid);
        }
        if let Some(url) = job.checkout_url {
            return Ok(url);
        }
        let customer = self.customer_for_checkout(user_id).await?;
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
            SyncError::Stripe(crate::stripe::StripeFailure::unreadable(
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
            return Err(SyncError::CheckoutMovedOn);
        }
        tracing::info!(user_id, job_id, session = %session.id, "checkout session ready");
        Ok(url)
    }

    /// The user's customer id, creating the customer through the same path as the
    /// settings page when there is none. A double submit races two creations: the
    /// one that loses waits for the winner's customer instead of failing.
    async fn customer_for_checkout(&self, user_id: i64) -> Result<String, SyncError> {
        if let Some(stripe_id) = self.user(user_id).await?.stripe_id {
            return Ok(stripe_id);
        }
        match self.create_customer(user_id).await {
            Ok(created) => return Ok(created.stripe_id().to_string()),
            Err(SyncError::AlreadyHasCustomer { stripe_id }) => return Ok(stripe_id),
            Err(SyncError::CreateInProgress) => {}
            Err(err) => return Err(err),
        }
        for _ in 0..CREATE_WAIT_STEPS {
            tokio::time::sleep(CREATE_WAIT_STEP).await;
            if let Some(stripe_id) = self.user(user_id).await?.stripe_id {
                return Ok(stripe_id);
            }
        }
        Err(SyncError::CreateInProgress)
    }

    /// A Stripe billing portal session for the user's customer.
    pub async fn billing_portal_url(
        &self,
        user_id: i64,
        return_url: &str,
    ) -> Result<String, SyncError> {
        let stripe = self.stripe()?;
        let user = users::find(self.db(), user_id)
            .await?
            .ok_or(SyncError::UserNotFound(user_id))?;
        let customer = user.stripe_id.ok_or(SyncError::NoCustomer)?;
        let session = match stripe.create_portal_session(&customer, return_url).await {
            Ok(session) => session,
            Err(failure) => return Err(self.stripe_failure(user_id, &customer, failure).await),
        };
        session.url.ok_or_else(|| {
            SyncError::Stripe(crate::stripe::StripeFailure::unreadable(
                "create billing portal session",
                "the session has no URL",
            ))
        })
    }
}
