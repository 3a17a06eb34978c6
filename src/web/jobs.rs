//! Job postings: the form, the way to Stripe Checkout, and the pages Checkout
//! returns to. A job is published by the signed `checkout.session.completed`
//! event, never by these pages.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use serde::Deserialize;

use super::csrf::{CsrfForm, NoFields};
use super::extract::Path;
use super::page::{Layout, PageContext};
use super::session::CurrentUser;
use super::{AppState, WebError};
use crate::accounts::User;
use crate::billing::{BillingError, Job, JobDraft, JobStatus, ReturnUrls};
use crate::domain::{Lines, check_text};
use crate::throttle::{Bucket, Verdict};

#[derive(Template, WebTemplate)]
#[template(path = "jobs/new.html")]
struct NewJobPage {
    layout: Layout,
    form_token: String,
    title: String,
    company: String,
    description: String,
    fee: String,
    errors: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "jobs/show.html")]
struct JobPage {
    layout: Layout,
    heading: &'static str,
    note: &'static str,
    job: Job,
    fee: String,
    published: bool,
    status_label: &'static str,
}

#[derive(Deserialize)]
pub struct JobForm {
    form_token: String,
    title: String,
    company: String,
    description: String,
}

pub async fn new_form(State(state): State<AppState>, ctx: PageContext) -> Response {
    let fee = format_money(state.job_posting.fee, &state.job_posting.currency);
    ctx.render(|layout| NewJobPage {
        layout,
        form_token: uuid::Uuid::new_v4().to_string(),
        title: String::new(),
        company: String::new(),
        description: String::new(),
        fee,
        errors: Vec::new(),
    })
}

pub async fn create(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<JobForm>,
) -> Result<Response, WebError> {
    let user_id = user.id;
    let errors = validate(&form);
    if !errors.is_empty() {
        let fee = format_money(state.job_posting.fee, &state.job_posting.currency);
        return Ok(
            ctx.render_with(StatusCode::UNPROCESSABLE_ENTITY, |layout| NewJobPage {
                layout,
                form_token: form.form_token.clone(),
                title: form.title.clone(),
                company: form.company.clone(),
                description: form.description.clone(),
                fee,
                errors,
            }),
        );
    }
    let form_token = uuid::Uuid::parse_str(form.form_token.trim())
        .map_err(|_| WebError::BadRequest)?
        .to_string();
    let draft = JobDraft {
        form_token: &form_token,
        title: form.title.trim(),
        company: form.company.trim(),
        description: form.description.trim(),
    };
    let job = state
        .billing
        .post_job(user_id, draft, &state.job_posting)
        .await?;
    Ok(to_checkout(&state, messages, user_id, job.id).await)
}

pub async fn pay(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    Path(job_id): Path<i64>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let user_id = user.id;
    Ok(to_checkout(&state, messages, user_id, job_id).await)
}

/// Sends the browser to Stripe Checkout, or back to the job with the reason why not.
async fn to_checkout(state: &AppState, messages: Messages, user_id: i64, job_id: i64) -> Response {
    let urls = ReturnUrls {
        success: format!("{}/jobs/{job_id}/success", state.app_url),
        cancel: format!("{}/jobs/{job_id}/cancelled", state.app_url),
    };
    match state.billing.job_checkout_url(user_id, job_id, &urls).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(BillingError::JobNotFound(_)) => WebError::NotFound.into_response(),
        Err(err) => {
            messages.error(format!(
                "Your job is saved, but payment could not start: {}",
                err.user_message()
            ));
            Redirect::to(&format!("/jobs/{job_id}")).into_response()
        }
    }
}

pub async fn show(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ctx: PageContext,
    Path(job_id): Path<i64>,
) -> Result<Response, WebError> {
    job_page(user, state, ctx, job_id, "Your job posting", "").await
}

pub async fn success(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ctx: PageContext,
    Path(job_id): Path<i64>,
) -> Result<Response, WebError> {
    let user_id = user.id;
    // Asking Stripe counts against the user's allowance like the buttons do; past
    // it, the page shows what the database knows.
    let allowance = state
        .throttle
        .hit(
            &Bucket::stripe_actions(user_id),
            state.limits.stripe_actions_per_user,
        )
        .await?;
    // Stripe is asked about the job's own session; the query string is never read.
    let confirmed = match allowance {
        Verdict::Allowed => state.billing.confirm_job_payment(user_id, job_id).await,
        Verdict::Refused { .. } => Ok(false),
    };
    let published = match confirmed {
        Ok(published) => published,
        Err(BillingError::JobNotFound(_)) => return Err(WebError::NotFound),
        Err(err) => {
            tracing::warn!(user_id, job_id, request_id = err.request_id(), error = %err, "could not confirm the payment with Stripe");
            false
        }
    };
    if published {
        return job_page(user, state, ctx, job_id, "Paid — your job is live", "").await;
    }
    let note = "Thank you. Stripe is confirming your payment; the job is published as soon as \
                it does, usually within seconds. Reload this page to see it.";
    job_page(user, state, ctx, job_id, "Payment received", note).await
}

pub async fn cancelled(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ctx: PageContext,
    Path(job_id): Path<i64>,
) -> Result<Response, WebError> {
    let note = "Payment was cancelled and nothing was charged. Your job is saved; pay when you \
                are ready.";
    job_page(user, state, ctx, job_id, "Payment cancelled", note).await
}

async fn job_page(
    user: User,
    state: AppState,
    ctx: PageContext,
    job_id: i64,
    heading: &'static str,
    note: &'static str,
) -> Result<Response, WebError> {
    let user_id = user.id;
    let job = state
        .billing
        .job_for_user(job_id, user_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let fee = format_money(job.fee_amount, &job.fee_currency);
    let published = job.status == JobStatus::Published;
    let status_label = match job.status {
        JobStatus::AwaitingPayment => "Awaiting payment",
        JobStatus::Published => "Published",
        JobStatus::Refunded => "Refunded",
    };
    Ok(ctx.render(|layout| JobPage {
        layout,
        heading,
        note,
        job,
        fee,
        published,
        status_label,
    }))
}

fn validate(form: &JobForm) -> Vec<String> {
    let length = |value: &str| value.trim().chars().count();
    let mut errors = Vec::new();
    if !(3..=120).contains(&length(&form.title)) {
        errors.push("Title must be 3 to 120 characters.".to_string());
    }
    if !(1..=120).contains(&length(&form.company)) {
        errors.push("Company must be 1 to 120 characters.".to_string());
    }
    if !(20..=5000).contains(&length(&form.description)) {
        errors.push("Description must be 20 to 5000 characters.".to_string());
    }
    let texts = [
        ("Title", &form.title, Lines::One),
        ("Company", &form.company, Lines::One),
        ("Description", &form.description, Lines::Many),
    ];
    for (label, text, lines) in texts {
        if let Err(error) = check_text(label, text, lines) {
            errors.push(error);
        }
    }
    errors
}

/// "49.00 USD"; currencies without a minor unit (JPY, KRW, ...) have no decimals.
pub fn format_money(amount: i64, currency: &str) -> String {
    const ZERO_DECIMAL: [&str; 16] = [
        "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
        "xaf", "xof", "xpf",
    ];
    let code = currency.to_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_lowercase().as_str()) {
        return format!("{amount} {code}");
    }
    format!("{}.{:02} {code}", amount / 100, (amount % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::format_money;

    #[test]
    fn money_reads_in_major_units() {
        assert_eq!(format_money(4900, "usd"), "49.00 USD");
        assert_eq!(format_money(5, "eur"), "0.05 EUR");
        assert_eq!(format_money(500, "jpy"), "500 JPY");
    }
}
