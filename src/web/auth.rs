//! The register / sign-in / sign-out pages. Every attempt is counted against the
//! shared limits before a password is hashed or checked.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_messages::Messages;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{CsrfForm, NoFields};
use super::error::retry_after_value;
use super::extract::Query;
use super::limits::ClientAddr;
use super::page::{Layout, PageContext};
use super::password_reset::mail_reset_link;
use super::session::{AuthError, AuthSession, Credentials};
use super::{AppState, WebError};
use crate::accounts::{AccountError, User};
use crate::domain::{Lines, UserEmail, UserName, check_new_password, check_text};
use crate::mail::{Letter, Mailer, Recipient};
use crate::password::HashError;
use crate::throttle::{Bucket, Verdict};

const AFTER_LOGIN: &str = "/settings/stripe";

#[derive(Template, WebTemplate)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub async fn login_form(ctx: PageContext, Query(query): Query<NextQuery>) -> Response {
    ctx.render(|layout| LoginPage {
        layout,
        email: String::new(),
        next: safe_next(query.next.as_deref()).to_string(),
        error: None,
    })
}

pub async fn login(
    mut auth: AuthSession,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(creds): CsrfForm<Credentials>,
) -> Result<Response, WebError> {
    let email = creds.email.clone();
    let next = safe_next(creds.next.as_deref()).to_string();
    let refuse = |ctx: PageContext, status, error: String| {
        ctx.render_with(status, |layout| LoginPage {
            layout,
            email: email.clone(),
            next: next.clone(),
            error: Some(error),
        })
    };
    // Text no address has (a NUL would also fail PostgreSQL's look-up).
    if let Err(error) = check_text("Email", &email, Lines::One) {
        return Ok(refuse(ctx, StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    // Guesses count against the account's id (an email change starts no new
    // count); an email without an account is limited the same way.
    let account = match state.accounts.find_by_email(&email).await {
        Ok(Some(user)) => Bucket::password_guesses(user.id),
        Ok(None) => Bucket::sign_in_unknown_email(&email),
        Err(err) => return Err(WebError::caused("find account", err)),
    };
    let verdict = count_sign_in(&state, &account, &address).await?;
    if let Verdict::Refused { retry_after } = verdict {
        tracing::warn!("sign-in refused: too many attempts for one account or address");
        let error = too_many_attempts(retry_after);
        let page = refuse(ctx, StatusCode::TOO_MANY_REQUESTS, error);
        return Ok(with_retry_after(page, retry_after));
    }
    let user = match auth.authenticate(creds.clone()).await {
        Ok(user) => user,
        Err(axum_login::Error::Backend(AuthError::Hashing(HashError::Busy))) => {
            tracing::warn!("sign-in refused: password checks at capacity");
            let error = "The server is busy. Nothing was changed; try again in a moment.";
            let page = refuse(ctx, StatusCode::SERVICE_UNAVAILABLE, error.into());
            return Ok(with_retry_after(page, Duration::from_secs(1)));
        }
        Err(e) => return Err(WebError::caused("authenticate", e)),
    };
    let Some(user) = user else {
        tracing::info!("login failed");
        let error = "Invalid email or password.".to_string();
        return Ok(refuse(ctx, StatusCode::UNAUTHORIZED, error));
    };
    state.throttle.clear(&account).await?;
    sign_in_anew(&mut auth, &user).await?;
    tracing::info!(user_id = user.id, "user signed in");
    messages.success(format!("Welcome back, {}.", user.name));
    Ok(Redirect::to(&next).into_response())
}

/// Signs `user` in under a new session id, also over an existing session
/// (axum-login cycles it only when nobody was signed in), with the password hash
/// the user has now.
pub(super) async fn sign_in_anew(auth: &mut AuthSession, user: &User) -> Result<(), WebError> {
    auth.session
        .cycle_id()
        .await
        .map_err(|e| WebError::caused("cycle session id", e))?;
    auth.login(user)
        .await
        .map_err(|e| WebError::caused("login", e))
}

/// Counts one guess at a password against the sign-in limits (per account,
/// `account`, and per address, shared by every instance), before any hashing.
/// The account's bucket is cleared by the caller on success.
pub(super) async fn count_sign_in(
    state: &AppState,
    account: &Bucket,
    address: &str,
) -> Result<Verdict, WebError> {
    let limits = state.limits;
    let verdict = state
        .throttle
        .hit_all(&[
            (account, limits.sign_in_per_account),
            (
                &Bucket::sign_in_address(address),
                limits.sign_in_per_address,
            ),
        ])
        .await?;
    if matches!(verdict, Verdict::Refused { .. }) {
        crate::metrics::sign_in_refused();
    }
    Ok(verdict)
}

pub(super) fn too_many_attempts(wait: Duration) -> String {
    format!("Too many sign-in attempts. {}", try_again_in(wait))
}

/// "Try again in 1 minute." / "… in 5 minutes.", rounded up.
pub(super) fn try_again_in(wait: Duration) -> String {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Try again in {minutes} {unit}.")
}

pub(super) fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_after_value(wait));
    response
}

pub async fn logout(
    mut auth: AuthSession,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    // Nobody signed in: nothing to end, and no session to create for a message.
    if auth.user.is_none() {
        return Ok(Redirect::to("/login"));
    }
    auth.logout()
        .await
        .map_err(|e| WebError::caused("logout", e))?;
    messages.info("You are signed out.");
    Ok(Redirect::to("/login"))
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/register.html")]
struct RegisterPage {
    layout: Layout,
    name: String,
    email: String,
    errors: Vec<String>,
    /// The answer where the page does not say whether the email has an account.
    check_mail: bool,
}

pub async fn register_form(ctx: PageContext) -> Response {
    ctx.render(|layout| RegisterPage {
        layout,
        name: String::new(),
        email: String::new(),
        errors: Vec::new(),
        check_mail: false,
    })
}

#[derive(Deserialize)]
pub struct RegisterForm {
    name: String,
    email: String,
    password: String,
    password_confirmation: String,
}

pub async fn register(
    mut auth: AuthSession,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    messages: Messages,
    ctx: PageContext,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<Response, WebError> {
    let name = UserName::parse(&form.name);
    let email = UserEmail::parse(&form.email);
    let password = check_new_password(&form.password, &form.password_confirmation);
    let invalid = |ctx: PageContext, errors: Vec<String>| {
        ctx.render_with(StatusCode::UNPROCESSABLE_ENTITY, |layout| RegisterPage {
            layout,
            name: form.name.clone(),
            email: form.email.clone(),
            errors,
            check_mail: false,
        })
    };
    let (name, email) = match (name, email, password) {
        (Ok(name), Ok(email), Ok(())) => (name, email),
        (name, email, password) => {
            let errors = [name.err(), email.err(), password.err()];
            return Ok(invalid(ctx, errors.into_iter().flatten().collect()));
        }
    };
    let verdict = state
        .throttle
        .hit(
            &Bucket::sign_in_address(&address),
            state.limits.sign_in_per_address,
        )
        .await?;
    if let Verdict::Refused { retry_after } = verdict {
        tracing::warn!("registration refused: too many attempts from one address");
        return Err(WebError::TooManyRequests { retry_after });
    }
    let password = SecretString::from(form.password.clone());
    if let (false, Some(mailer)) = (state.register_reveals_accounts, state.mailer.clone()) {
        register_by_mail(&state, mailer, name, email, password);
        return Ok(ctx.render(|layout| RegisterPage {
            layout,
            name: String::new(),
            email: String::new(),
            errors: Vec::new(),
            check_mail: true,
        }));
    }
    let user = match state.accounts.create(&name, &email, password).await {
        Ok(user) => user,
        Err(AccountError::EmailTaken) => {
            let error = "That email is already registered. Sign in instead.".to_string();
            return Ok(invalid(ctx, vec![error]));
        }
        Err(err) => return Err(WebError::account("create account", err)),
    };
    auth.login(&user)
        .await
        .map_err(|e| WebError::caused("login", e))?;
    tracing::info!(user_id = user.id, "user registered");
    messages.success("Your account is ready.");
    Ok(Redirect::to(AFTER_LOGIN).into_response())
}

/// Registration that does not say whether the email has an account (as
/// Devise's paranoid mode): the answer is given first, the same either way; then
/// a new account is made and welcomed by mail, or the address's owner is told
/// someone tried, with a reset link. Nobody is signed in by the page.
fn register_by_mail(
    state: &AppState,
    mailer: Mailer,
    name: UserName,
    email: UserEmail,
    password: SecretString,
) {
    let (accounts, app_url) = (state.accounts.clone(), state.app_url.clone());
    tokio::spawn(async move {
        match accounts.create(&name, &email, password).await {
            Ok(user) => {
                tracing::info!(user_id = user.id, "user registered; welcome mailed");
                let to = Recipient {
                    user_id: user.id,
                    name: user.name.clone(),
                    email: user.email.clone(),
                };
                let login_url = format!("{}/login", app_url.trim_end_matches('/'));
                mailer.send_later(to, Letter::Welcome { login_url });
            }
            Err(AccountError::EmailTaken) => match accounts.request_reset(email.as_str()).await {
                Ok(Some((user, token))) => {
                    tracing::info!(
                        user_id = user.id,
                        "registration with a known email; told by mail"
                    );
                    mail_reset_link(&mailer, &app_url, &user, token, true);
                }
                Ok(None) => {
                    tracing::info!("registration with a known email; the account changed meanwhile")
                }
                Err(err) => tracing::error!(error = %err, "could not make a reset link"),
            },
            Err(err) => tracing::error!(error = %err, "registration failed after its answer"),
        }
    });
}

/// Only a local path is followed after login: never `//host` or `https://host`.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => AFTER_LOGIN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next(Some("/settings/profile")), "/settings/profile");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
        ] {
            assert_eq!(safe_next(Some(hostile)), AFTER_LOGIN, "{hostile}");
        }
        assert_eq!(safe_next(None), AFTER_LOGIN);
    }
}
