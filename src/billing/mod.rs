//! The billing service: job postings, their payment through Stripe Checkout, the
//! `payments` table and refunds. It makes a user's customer through the customers
//! service (`sync`) when a payment needs one; the web tier calls it, and the
//! events service records what Stripe's events say of a payment.

mod checkout;
mod error;

pub use checkout::{CheckoutSession, ReturnUrls};
pub use error::BillingError;

pub use crate::db::jobs::{Job, JobStatus};
pub use crate::db::payments::{PaymentRow, PaymentStatus};

use crate::clock::now;
use crate::config::JobPosting;
use crate::context::Context;
use crate::customers::Customers;
use crate::db::{Db, jobs, payments};
use crate::stripe::StripeGateway;

#[derive(Clone, Debug)]
pub struct Billing {
    ctx: Context,
    /// A payment needs a customer: Checkout creates the user's when missing.
    customers: Customers,
}

/// A job posting as its author wrote it; the fee is the app's.
pub struct JobDraft<'a> {
    /// The form's one-time token: a second submit of the same form is the same job.
    pub form_token: &'a str,
    pub title: &'a str,
    pub company: &'a str,
    pub description: &'a str,
}

impl Billing {
    pub fn new(ctx: Context) -> Self {
        let customers = Customers::new(ctx.clone());
        Billing { ctx, customers }
    }

    fn db(&self) -> &Db {
        &self.ctx.db
    }

    fn stripe(&self) -> Result<&StripeGateway, BillingError> {
        self.ctx.stripe.as_ref().ok_or(BillingError::NotConfigured)
    }

    /// Saves a job awaiting payment, once per form: a second submit of the same
    /// form finds the first one's job.
    pub async fn post_job(
        &self,
        user_id: i64,
        draft: JobDraft<'_>,
        fee: &JobPosting,
    ) -> Result<Job, BillingError> {
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
    ) -> Result<Option<Job>, BillingError> {
        Ok(jobs::find_for_user(self.db(), job_id, user_id).await?)
    }

    /// A user's job-posting payments, newest first.
    pub async fn billing_history(&self, user_id: i64) -> Result<Vec<PaymentRow>, BillingError> {
        Ok(payments::list_for_user(self.db(), user_id).await?)
    }
}
