//! `/settings/profile`: the local name and email that Update pushes to Stripe.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::page::{Layout, PageContext};
use super::session::CurrentUser;
use super::{AppState, WebError};
use crate::accounts::AccountError;
use crate::domain::{UserEmail, UserName};

#[derive(Template, WebTemplate)]
#[template(path = "settings/profile.html")]
struct ProfilePage {
    layout: Layout,
    name: String,
    email: String,
    linked: bool,
    errors: Vec<String>,
}

pub async fn show(CurrentUser(user): CurrentUser, ctx: PageContext) -> Result<Response, WebError> {
    Ok(ctx.render(|layout| ProfilePage {
        layout,
        name: user.name,
        email: user.email,
        linked: user.stripe_id.is_some(),
        errors: Vec::new(),
    }))
}

#[derive(Deserialize)]
pub struct ProfileForm {
    name: String,
    email: String,
}

pub async fn save(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Result<Response, WebError> {
    let linked = user.stripe_id.is_some();
    let invalid = |ctx: PageContext, errors: Vec<String>| {
        ctx.render_with(StatusCode::UNPROCESSABLE_ENTITY, |layout| ProfilePage {
            layout,
            name: form.name.clone(),
            email: form.email.clone(),
            linked,
            errors,
        })
    };
    let (name, email) = match (UserName::parse(&form.name), UserEmail::parse(&form.email)) {
        (Ok(name), Ok(email)) => (name, email),
        (name, email) => {
            let errors = [name.err(), email.err()].into_iter().flatten().collect();
            return Ok(invalid(ctx, errors));
        }
    };
    match state.accounts.update_profile(user.id, &name, &email).await {
        Ok(()) => {}
        Err(AccountError::EmailTaken) => {
            let error = "That email is already used by another account.".to_string();
            return Ok(invalid(ctx, vec![error]));
        }
        Err(err) => return Err(WebError::caused("save profile", err)),
    }
    tracing::info!(user_id = user.id, "profile saved");
    messages.success(if linked {
        "Profile saved. Use Update on the Stripe page to push the change to Stripe."
    } else {
        "Profile saved."
    });
    Ok(Redirect::to("/settings/profile").into_response())
}
