//! A forgotten password: `/forgot-password` mails a single-use link, valid
//! [`RESET_VALID`]; `/reset-password/{token}` sets a new password and signs the
//! user in. The answer to a request is the same, and as quick, whether or not
//! the email has an account: the look-up and the mail happen after it.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::auth::{sign_in_anew, try_again_in, with_retry_after};
use super::csrf::CsrfForm;
use super::extract::Path;
use super::limits::ClientAddr;
use super::page::{Layout, PageContext};
use super::session::AuthSession;
use super::{AppState, WebError};
use crate::accounts::{LinkState, RESET_VALID, User};
use crate::domain::{Lines, check_new_password, check_text};
use crate::mail::{Letter, Mailer, Recipient};
use crate::throttle::{Bucket, Verdict};

#[derive(Template, WebTemplate)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    layout: Layout,
    mail_configured: bool,
    sent: bool,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    layout: Layout,
    valid: bool,
    token: String,
    problem: String,
    errors: Vec<String>,
}

pub async fn forgot_form(State(state): State<AppState>, ctx: PageContext) -> Response {
    ctx.render(|layout| ForgotPage {
        layout,
        mail_configured: state.mailer.is_some(),
        sent: false,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

pub async fn forgot(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<Response, WebError> {
    let page = |ctx: PageContext, status, sent, error: Option<String>| {
        ctx.render_with(status, |layout| ForgotPage {
            layout,
            mail_configured: state.mailer.is_some(),
            sent,
            error,
        })
    };
    let Some(mailer) = state.mailer.clone() else {
        return Ok(page(ctx, StatusCode::SERVICE_UNAVAILABLE, false, None));
    };
    if let Err(error) = check_text("Email", &form.email, Lines::One) {
        return Ok(page(
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            false,
            Some(error),
        ));
    }
    let limits = state.limits;
    let verdict = state
        .throttle
        .hit_all(&[
            (
                &Bucket::password_reset_email(&form.email),
                limits.sign_in_per_account,
            ),
            (
                &Bucket::password_reset_address(&address),
                limits.sign_in_per_address,
            ),
        ])
        .await?;
    if let Verdict::Refused { retry_after } = verdict {
        tracing::warn!("password reset refused: too many requests for one email or address");
        let error = format!("Too many requests. {}", try_again_in(retry_after));
        let refused = page(ctx, StatusCode::TOO_MANY_REQUESTS, false, Some(error));
        return Ok(with_retry_after(refused, retry_after));
    }
    let (accounts, app_url) = (state.accounts.clone(), state.app_url.clone());
    let email = form.email.clone();
    tokio::spawn(async move {
        match accounts.request_reset(&email).await {
            Ok(Some((user, token))) => mail_reset_link(&mailer, &app_url, &user, token, false),
            Ok(None) => tracing::info!("password reset asked for an unknown email"),
            Err(err) => tracing::error!(error = %err, "could not make a reset link"),
        }
    });
    Ok(page(ctx, StatusCode::OK, true, None))
}

/// Mails `user` a reset link for `token`: as the answer to /forgot-password, or
/// (`registered_already`) to someone registering with the user's address.
pub(super) fn mail_reset_link(
    mailer: &Mailer,
    app_url: &str,
    user: &User,
    token: SecretString,
    registered_already: bool,
) {
    let link = SecretString::from(format!(
        "{}/reset-password/{}",
        app_url.trim_end_matches('/'),
        token.expose_secret()
    ));
    let valid_minutes = RESET_VALID.as_secs() / 60;
    let letter = match registered_already {
        false => Letter::PasswordReset {
            link,
            valid_minutes,
        },
        true => Letter::RegisteredAlready {
            link,
            valid_minutes,
        },
    };
    let to = Recipient {
        user_id: user.id,
        name: user.name.clone(),
        email: user.email.clone(),
    };
    mailer.send_later(to, letter);
}

/// What a link that cannot be used says, and its status.
fn link_problem(link: LinkState) -> Option<(StatusCode, &'static str)> {
    match link {
        LinkState::Valid { .. } => None,
        LinkState::Used => Some((
            StatusCode::GONE,
            "This link was used already: each link works once.",
        )),
        LinkState::Expired => Some((
            StatusCode::GONE,
            "This link has expired: a link works for 60 minutes.",
        )),
        LinkState::Unknown => Some((
            StatusCode::NOT_FOUND,
            "This link is not a valid reset link.",
        )),
    }
}

fn reset_page(
    ctx: PageContext,
    token: &str,
    status: StatusCode,
    problem: &str,
    errors: Vec<String>,
) -> Response {
    ctx.render_with(status, |layout| ResetPage {
        layout,
        valid: problem.is_empty(),
        token: token.to_string(),
        problem: problem.to_string(),
        errors,
    })
}

pub async fn reset_form(
    Path(token): Path<String>,
    State(state): State<AppState>,
    ctx: PageContext,
) -> Result<Response, WebError> {
    let link = state
        .accounts
        .reset_link(&token)
        .await
        .map_err(|e| WebError::caused("read reset link", e))?;
    Ok(match link_problem(link) {
        None => reset_page(ctx, &token, StatusCode::OK, "", Vec::new()),
        Some((status, problem)) => reset_page(ctx, "", status, problem, Vec::new()),
    })
}

#[derive(Deserialize)]
pub struct ResetForm {
    password: SecretString,
    password_confirmation: SecretString,
}

pub async fn reset(
    mut auth: AuthSession,
    Path(token): Path<String>,
    State(state): State<AppState>,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<Response, WebError> {
    if let Err(error) = check_new_password(
        form.password.expose_secret(),
        form.password_confirmation.expose_secret(),
    ) {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(reset_page(ctx, &token, status, "", vec![error]));
    }
    let user = match state.accounts.reset_password(&token, form.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            let link = state
                .accounts
                .reset_link(&token)
                .await
                .map_err(|e| WebError::caused("read reset link", e))?;
            let (status, problem) =
                link_problem(link).unwrap_or((StatusCode::GONE, "This link cannot be used."));
            return Ok(reset_page(ctx, "", status, problem, Vec::new()));
        }
        Err(err) => return Err(WebError::account("reset password", err)),
    };
    sign_in_anew(&mut auth, &user).await?;
    tracing::info!(user_id = user.id, "password reset; signed in");
    messages.success("Your new password is set and you are signed in. Every other session of yours is signed out.");
    Ok(Redirect::to("/settings/stripe").into_response())
}
