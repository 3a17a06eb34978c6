//! `/settings/profile`: the local name and email that Update pushes to Stripe.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use std::time::Duration;

use super::auth::{count_sign_in, sign_in_anew, too_many_attempts, with_retry_after};
use super::csrf::CsrfForm;
use super::limits::ClientAddr;
use super::page::{Layout, PageContext};
use super::session::AuthSession;
use super::session::CurrentUser;
use super::{AppState, WebError};
use crate::accounts::{AccountError, User};
use crate::domain::{UserEmail, UserName, check_new_password};
use crate::mail::{Letter, Recipient};
use crate::throttle::{Bucket, Verdict};

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

/// The form's `current_password` is asked only when the login email changes.
#[derive(Deserialize)]
pub struct ProfileForm {
    name: String,
    email: String,
    #[serde(default)]
    current_password: Option<SecretString>,
}

/// Saves name and email. A new login email asks the current password (counted
/// against the account's guess limit, as a password change is), revokes every
/// reset link not used yet, and mails a notice to the old address.
pub async fn save(
    CurrentUser(user): CurrentUser,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Result<Response, WebError> {
    let linked = user.stripe_id.is_some();
    let refuse = |ctx: PageContext, status: StatusCode, errors: Vec<String>| {
        ctx.render_with(status, |layout| ProfilePage {
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
            return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, errors));
        }
    };
    let email_changes = !user.email.eq_ignore_ascii_case(email.as_str());
    let mut guesses = None;
    if email_changes {
        let current = form
            .current_password
            .clone()
            .unwrap_or_else(|| SecretString::from(""));
        match confirm_password(&state, &user, &address, current).await? {
            Confirmed::Yes(bucket) => guesses = Some(bucket),
            Confirmed::TooMany(wait) => {
                let page = refuse(
                    ctx,
                    StatusCode::TOO_MANY_REQUESTS,
                    vec![too_many_attempts(wait)],
                );
                return Ok(with_retry_after(page, wait));
            }
            Confirmed::Wrong => {
                let error = "Enter your current password to change your login email; \
                             nothing was changed."
                    .to_string();
                return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, vec![error]));
            }
        }
    }
    match state.accounts.update_profile(&user, &name, &email).await {
        Ok(_) => {}
        Err(AccountError::EmailTaken) => {
            let error = "That email is already used by another account.".to_string();
            return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, vec![error]));
        }
        Err(err) => return Err(WebError::caused("save profile", err)),
    }
    if let Some(bucket) = guesses {
        state.throttle.clear(&bucket).await?;
        notify_old_address(&state, &user, email.as_str());
    }
    tracing::info!(
        user_id = user.id,
        email_changed = email_changes,
        "profile saved"
    );
    messages.success(if linked {
        "Profile saved. Use Update on the Stripe page to push the change to Stripe."
    } else {
        "Profile saved."
    });
    Ok(Redirect::to("/settings/profile").into_response())
}

/// The old address hears of a new login email (when mail is configured).
fn notify_old_address(state: &AppState, user: &User, new_email: &str) {
    let Some(mailer) = &state.mailer else {
        return;
    };
    let to = Recipient {
        user_id: user.id,
        name: user.name.clone(),
        email: user.email.clone(),
    };
    let letter = Letter::EmailChanged {
        new_email: new_email.to_string(),
    };
    mailer.send_later(to, letter);
}

/// What the current password said of a change that asks it.
enum Confirmed {
    /// It is right: the account's guess count, to clear once the change is made.
    Yes(Bucket),
    TooMany(Duration),
    Wrong,
}

/// Checks `password` is the user's, counted first against the sign-in limits
/// (per account id and per address) before any hashing.
async fn confirm_password(
    state: &AppState,
    user: &User,
    address: &str,
    password: SecretString,
) -> Result<Confirmed, WebError> {
    let account = Bucket::password_guesses(user.id);
    if let Verdict::Refused { retry_after } = count_sign_in(state, &account, address).await? {
        tracing::warn!(
            user_id = user.id,
            "change refused: too many password guesses"
        );
        return Ok(Confirmed::TooMany(retry_after));
    }
    match state.accounts.verify_password(user, password).await {
        Ok(true) => Ok(Confirmed::Yes(account)),
        Ok(false) => {
            tracing::info!(user_id = user.id, "change refused: wrong current password");
            Ok(Confirmed::Wrong)
        }
        Err(err) => Err(WebError::account("check password", err)),
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    password: SecretString,
    password_confirmation: SecretString,
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
    if let Err(error) = check_new_password(
        form.password.expose_secret(),
        form.password_confirmation.expose_secret(),
    ) {
        return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    let account = match confirm_password(&state, &user, &address, form.current_password).await? {
        Confirmed::Yes(account) => account,
        Confirmed::TooMany(wait) => {
            let page = refuse(ctx, StatusCode::TOO_MANY_REQUESTS, too_many_attempts(wait));
            return Ok(with_retry_after(page, wait));
        }
        Confirmed::Wrong => {
            let error = "Your current password is not right; nothing was changed.".to_string();
            return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, error));
        }
    };
    let changed = match state.accounts.set_password(user.id, form.password).await {
        Ok(changed) => changed,
        Err(err) => return Err(WebError::account("change password", err)),
    };
    state.throttle.clear(&account).await?;
    // This session goes on under a new id and the new hash; every other one
    // carries the old hash and ends at its next request.
    sign_in_anew(&mut auth, &changed).await?;
    messages.success("Password changed. Every other session of yours is signed out.");
    Ok(Redirect::to("/settings/profile").into_response())
}
