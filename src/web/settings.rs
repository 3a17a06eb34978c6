//! `/settings/stripe`: local data and the Stripe customer side by side, and the
//! actions on it. Showing the page never calls Stripe: it shows the last snapshot,
//! and Refresh takes a new one.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use time::OffsetDateTime;

use super::csrf::{CsrfForm, NoFields};
use super::jobs::format_money;
use super::page::{Layout, PageContext};
use super::session::CurrentUser;
use super::{AppState, WebError};
use crate::accounts::User;
use crate::clock::now;
use crate::customers::snapshot::CustomerSnapshot;
use crate::customers::view::{CustomerStatus as Status, CustomerView};
use crate::customers::{CreateOutcome, CustomerError, DeleteOutcome, Push, UpdateOutcome};
use crate::fields::merge::{Plan, Verdict};
use crate::fields::{FieldMap, Prefer};

const PAGE: &str = "/settings/stripe";

/// How the page words and colours a status.
trait StatusLook {
    fn label(self) -> &'static str;
    fn css(self) -> &'static str;
}

impl StatusLook for Status {
    fn label(self) -> &'static str {
        match self {
            Status::NotLinked => "Not linked",
            Status::Linked => "Linked",
            Status::Missing => "Missing in Stripe",
            Status::Creating => "Being created",
        }
    }

    fn css(self) -> &'static str {
        match self {
            Status::NotLinked => "status-none",
            Status::Linked => "status-ok",
            Status::Missing => "status-bad",
            Status::Creating => "status-busy",
        }
    }
}

pub struct Row {
    pub label: String,
    pub local: String,
    pub stripe: String,
    pub differs: bool,
    /// How the two sides stand ("changed here", "changed in Stripe", "conflict").
    pub mark: &'static str,
    /// The field's key when both sides changed: the row offers the two choices.
    pub conflict: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings/stripe.html")]
struct StripePage {
    layout: Layout,
    configured: bool,
    status_label: &'static str,
    status_css: &'static str,
    rows: Vec<Row>,
    snapshot_taken: Option<String>,
    trial_ends_at: Option<String>,
    can_create: bool,
    can_update: bool,
    can_refresh: bool,
    can_delete: bool,
    can_recreate: bool,
    payments: Vec<PaymentView>,
    payment_method: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "settings/confirm_delete.html")]
struct ConfirmDeletePage {
    layout: Layout,
    stripe_id: String,
}

pub struct PaymentView {
    pub date: String,
    pub job_id: i64,
    pub job_title: String,
    pub amount: String,
    pub status: String,
}

pub async fn show(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ctx: PageContext,
) -> Result<Response, WebError> {
    let now = now();
    let view = CustomerView::of(&user, now);
    let status = view.status;
    let plan = state.customers.field_plan(&user).await?;
    let mut rows = field_rows(&plan);
    rows.extend(rows_beyond_fields(&user, view.customer.as_ref()));
    let snapshot_taken = view
        .read_at
        .map(|at| format!("{} ({})", format_time(at), ago(at, now)));
    let trial_ends_at = user.trial_ends_at.map(format_time);
    let linked = matches!(status, Status::Linked | Status::Missing);
    let payments = state
        .billing
        .billing_history(user.id)
        .await?
        .into_iter()
        .map(|p| PaymentView {
            date: format_time(p.created_at),
            job_id: p.job_id,
            job_title: p.job_title,
            amount: format_money(p.amount, &p.currency),
            status: p.status.to_string(),
        })
        .collect();
    Ok(ctx.render(|layout| StripePage {
        layout,
        configured: state.customers.is_configured(),
        status_label: status.label(),
        status_css: status.css(),
        rows,
        snapshot_taken,
        trial_ends_at,
        can_create: status == Status::NotLinked,
        can_update: status == Status::Linked,
        can_refresh: linked,
        can_delete: linked,
        can_recreate: status == Status::Missing,
        payments,
        payment_method: card_label(user.pm_type.as_deref(), user.pm_last_four.as_deref()),
    }))
}

/// Asks before deleting, without JavaScript: the page's Delete leads here.
pub async fn confirm_delete(
    CurrentUser(user): CurrentUser,
    ctx: PageContext,
) -> Result<Response, WebError> {
    let Some(stripe_id) = user.stripe_id else {
        return Ok(Redirect::to(PAGE).into_response());
    };
    Ok(ctx.render(|layout| ConfirmDeletePage { layout, stripe_id }))
}

/// "Visa •••• 4242", as a person reads a card.
fn card_label(brand: Option<&str>, last_four: Option<&str>) -> Option<String> {
    let brand = match brand? {
        "amex" => "American Express".to_string(),
        "diners" => "Diners Club".to_string(),
        "jcb" => "JCB".to_string(),
        "unionpay" => "UnionPay".to_string(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default()
        }
    };
    Some(match last_four {
        Some(last_four) => format!("{brand} •••• {last_four}"),
        None => brand,
    })
}

/// Every synced field, local beside Stripe's, marked by the three-way merge.
fn field_rows(plan: &Plan) -> Vec<Row> {
    plan.fields
        .iter()
        .map(|field| {
            let mark = match field.verdict {
                Verdict::Agree => "",
                Verdict::Push => "changed here",
                Verdict::Pull | Verdict::ChangedInStripe => "changed in Stripe",
                Verdict::Conflict => "conflict",
                Verdict::Withheld(_) => "not sent",
            };
            Row {
                label: field.field.label(),
                local: field.local.clone(),
                stripe: field.stripe.clone().unwrap_or_default(),
                differs: field.stripe.is_some() && field.stripe.as_deref() != Some(&field.local),
                mark,
                conflict: (field.verdict == Verdict::Conflict).then(|| field.field.key()),
            }
        })
        .collect()
}

/// The customer's id and card, local beside Stripe's. Without a snapshot there is
/// nothing to compare against, so nothing is marked as differing.
fn rows_beyond_fields(user: &User, customer: Option<&CustomerSnapshot>) -> Vec<Row> {
    let card = customer.and_then(|c| c.card.as_ref());
    let pairs = [
        (
            "Customer ID",
            user.stripe_id.as_deref(),
            customer.map(|c| c.id.as_str()),
        ),
        (
            "Card brand",
            user.pm_type.as_deref(),
            card.map(|c| c.brand.as_str()),
        ),
        (
            "Card last four",
            user.pm_last_four.as_deref(),
            card.map(|c| c.last4.as_str()),
        ),
    ];
    pairs
        .into_iter()
        .map(|(label, local, stripe)| {
            let differs = customer.is_some() && local != stripe;
            Row {
                label: label.into(),
                local: local.unwrap_or_default().to_string(),
                stripe: stripe.unwrap_or_default().to_string(),
                differs,
                mark: if differs { "differs" } else { "" },
                conflict: None,
            }
        })
        .collect()
}

fn format_time(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn ago(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - at).whole_seconds().max(0);
    let (count, unit) = match seconds {
        0..60 => return "just now".into(),
        60..3600 => (seconds / 60, "minute"),
        3600..86400 => (seconds / 3600, "hour"),
        _ => (seconds / 86400, "day"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural} ago")
}

/// Says on the next page how an action went: refusals as warnings, failures of
/// the system as errors.
fn act<T>(
    messages: Messages,
    result: Result<T, CustomerError>,
    success: impl FnOnce(T) -> String,
) -> Redirect {
    match result {
        Ok(value) => messages.success(success(value)),
        Err(err) if err.is_internal() => messages.error(err.user_message()),
        Err(err) => messages.warning(err.user_message()),
    };
    Redirect::to(PAGE)
}

/// Sends the user to Stripe's billing portal for their customer.
pub async fn portal(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, WebError> {
    let return_url = format!("{}{PAGE}", state.app_url);
    match state
        .customers
        .billing_portal_url(user.id, &return_url)
        .await
    {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(err) => Ok(act::<()>(messages, Err(err), |_| String::new()).into_response()),
    }
}

pub async fn create(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    let result = state.customers.create_customer(user.id).await;
    Ok(act(messages, result, created_message))
}

pub async fn recreate(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    let result = state.customers.recreate_customer(user.id).await;
    Ok(act(messages, result, created_message))
}

fn created_message(outcome: CreateOutcome) -> String {
    let stripe_id = &outcome.stripe_id;
    let mut message = match outcome.relinked {
        false => format!("Stripe customer {stripe_id} created."),
        true => format!(
            "Linked Stripe customer {stripe_id}, which an earlier interrupted attempt had created."
        ),
    };
    for reason in &outcome.not_sent {
        message.push(' ');
        message.push_str(reason.page_reason());
    }
    message
}

pub async fn update(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    let result = state
        .customers
        .update_customer(user.id, Push::IfChanged)
        .await;
    let map = state.customers.field_map().clone();
    Ok(act(messages, result, |outcome| {
        updated_message(&outcome, &map)
    }))
}

/// The two choices a conflicting field's row offers.
#[derive(serde::Deserialize)]
pub struct KeepForm {
    field: String,
    side: String,
}

/// "Keep mine" pushes the local value; "Keep Stripe's" takes Stripe's (a billing
/// email stays Stripe's, never becoming the login email).
pub async fn keep(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(form): CsrfForm<KeepForm>,
) -> Result<Redirect, WebError> {
    let Some(side) = Prefer::parse(&form.side) else {
        messages.warning("Choose “Keep mine” or “Keep Stripe's”; nothing was changed.");
        return Ok(Redirect::to(PAGE));
    };
    let result = state.customers.keep_side(user.id, &form.field, side).await;
    let map = state.customers.field_map().clone();
    Ok(act(messages, result, |outcome| {
        updated_message(&outcome, &map)
    }))
}

/// What an update did, in the page's words.
fn updated_message(outcome: &UpdateOutcome, map: &FieldMap) -> String {
    let labels = |keys: &[String]| {
        keys.iter()
            .map(|key| match map.find(key) {
                Some(mapping) => mapping.field.label().to_lowercase(),
                None => key.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if outcome.pushed.is_empty() && !outcome.not_sent.is_empty() {
        parts.push("Nothing was sent to Stripe.".into());
    } else if outcome.pushed.is_empty() {
        parts.push("Nothing changed here since the last sync; nothing was sent to Stripe.".into());
    } else {
        parts.push(format!("Sent to Stripe: {}.", labels(&outcome.pushed)));
    }
    if !outcome.pulled.is_empty() {
        parts.push(format!("Taken from Stripe: {}.", labels(&outcome.pulled)));
    }
    if !outcome.changed_in_stripe.is_empty() {
        parts.push(format!(
            "Changed in Stripe and kept there: {}.",
            labels(&outcome.changed_in_stripe)
        ));
    }
    if !outcome.conflicts.is_empty() {
        parts.push(format!(
            "Changed both here and in Stripe, left as they are until you choose: {}.",
            labels(&outcome.conflicts)
        ));
    }
    parts.extend(outcome.not_sent.iter().map(|w| w.page_reason().to_string()));
    parts.join(" ")
}

pub async fn refresh(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    let result = state.customers.refresh_customer(user.id).await;
    Ok(act(messages, result, |()| {
        "Pulled the latest data from Stripe.".into()
    }))
}

pub async fn delete(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    let result = state.customers.delete_customer(user.id).await;
    Ok(act(messages, result, |outcome| match outcome {
        DeleteOutcome::Deleted => "Stripe customer deleted.".into(),
        DeleteOutcome::AlreadyGone => {
            "The customer no longer existed in Stripe; the link was removed from your account."
                .into()
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_read_as_brand_and_last_four() {
        assert_eq!(
            card_label(Some("visa"), Some("4242")).as_deref(),
            Some("Visa •••• 4242")
        );
        assert_eq!(
            card_label(Some("amex"), Some("0005")).as_deref(),
            Some("American Express •••• 0005")
        );
        assert_eq!(card_label(None, None), None);
    }

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - time::Duration::minutes(3), now), "3 minutes ago");
        assert_eq!(ago(now - time::Duration::hours(1), now), "1 hour ago");
        assert_eq!(ago(now - time::Duration::days(2), now), "2 days ago");
    }
}
