//! `/settings/profile`: the local name and email that Update pushes to Stripe.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use secrecy::SecretString;
use serde::Deserialize;

use super::auth::{count_sign_in, sign_in_anew, too_many_attempts, with_retry_after};
use super::csrf::CsrfForm;
use super::limits::ClientAddr;
use super::page::{Layout, PageContext};
use super::session::AuthSession;
use super::session::CurrentUser;
use super::{AppState, WebError};
use crate::accounts::{AccountError, User};
use crate::domain::{UserEmail, UserName, check_new_password};
use crate::password::HashError;
use crate::throttle::Verdict;

#[derive(Template, WebTemplate)]
#[template(path = "settings/profile.html")]
struct ProfilePage {
    layout: Layout,
    name: String,
    email: String,
    linked: bool,
    errors: Vec<String>,
    /// What the change-password form is told.
    password_errors: Vec<String>,
}

impl ProfilePage {
    fn of(layout: Layout, user: &User) -> Self {
        ProfilePage {
            layout,
            name: user.name.clone(),
            email: user.email.clone(),
            linked: user.stripe_id.is_some(),
            errors: Vec::new(),
            password_errors: Vec::new(),
        }
    }
}

pub async fn show(CurrentUser(user): CurrentUser, ctx: PageContext) -> Result<Response, WebError> {
    Ok(ctx.render(|layout| ProfilePage::of(layout, &user)))
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
            name: form.name.clone(),
            email: form.email.clone(),
            errors,
            ..ProfilePage::of(layout, &user)
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

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    password: String,
    password_confirmation: String,
}

/// The passwords never reach a log line.
impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

/// Changes the password: the current one is checked under the sign-in limits
/// (per account and per address, counted before any hashing), the new one is
/// hashed as the database's are, the session id is cycled and every other
/// session of the user ends.
pub async fn change_password(
    CurrentUser(user): CurrentUser,
    mut auth: AuthSession,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, WebError> {
    let refuse = |ctx: PageContext, status: StatusCode, error: String| {
        ctx.render_with(status, |layout| ProfilePage {
            password_errors: vec![error],
            ..ProfilePage::of(layout, &user)
        })
    };
    if let Err(error) = check_new_password(&form.password, &form.password_confirmation) {
        return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    let (account, verdict) = count_sign_in(&state, &user.email, &address).await?;
    if let Verdict::Refused { retry_after } = verdict {
        tracing::warn!(
            user_id = user.id,
            "password change refused: too many attempts"
        );
        let page = refuse(
            ctx,
            StatusCode::TOO_MANY_REQUESTS,
            too_many_attempts(retry_after),
        );
        return Ok(with_retry_after(page, retry_after));
    }
    let current = SecretString::from(form.current_password.clone());
    match state.accounts.verify_password(&user, current).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(
                user_id = user.id,
                "password change refused: wrong current password"
            );
            let error = "Your current password is not right; nothing was changed.".to_string();
            return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, error));
        }
        Err(AccountError::Hashing(HashError::Busy)) => return Err(WebError::Busy),
        Err(err) => return Err(WebError::caused("check password", err)),
    }
    let new = SecretString::from(form.password.clone());
    let changed = match state.accounts.set_password(user.id, new).await {
        Ok(changed) => changed,
        Err(AccountError::Hashing(HashError::Busy)) => return Err(WebError::Busy),
        Err(err) => return Err(WebError::caused("change password", err)),
    };
    state.throttle.clear(&account).await?;
    // This session goes on under a new id and the new hash; every other one
    // carries the old hash and ends at its next request.
    sign_in_anew(&mut auth, &changed).await?;
    messages.success("Password changed. Every other session of yours is signed out.");
    Ok(Redirect::to("/settings/profile").into_response())
}
