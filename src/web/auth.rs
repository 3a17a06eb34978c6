//! Accounts: axum-login over the users table, and the register / login / logout pages.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_login::{AuthUser, AuthnBackend, UserId};
use axum_messages::Messages;
use secrecy::SecretString;
use serde::Deserialize;

use super::csrf::{CsrfForm, NoFields};
use super::page::{Layout, PageContext};
use super::{AppState, WebError};
use crate::db::{self, Db, users::User};
use crate::domain::{UserEmail, UserName, check_new_password};
use crate::password;

pub type AuthSession = axum_login::AuthSession<Backend>;

const AFTER_LOGIN: &str = "/settings/stripe";

impl AuthUser for User {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    /// A password change ends every other session.
    fn session_auth_hash(&self) -> &[u8] {
        self.password_hash.as_bytes()
    }
}

#[derive(Clone, Debug)]
pub struct Backend {
    db: Db,
}

impl Backend {
    pub fn new(db: Db) -> Self {
        Backend { db }
    }
}

#[derive(Clone, Deserialize)]
pub struct Credentials {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub next: Option<String>,
}

/// The password never reaches a log line.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = sqlx::Error;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, sqlx::Error> {
        let user = match UserEmail::parse(&creds.email) {
            Ok(email) => db::users::find_by_email(&self.db, email.as_str()).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = password::verify(SecretString::from(creds.password), stored).await;
        Ok(user.filter(|_| verified))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, sqlx::Error> {
        db::users::find(&self.db, *id).await
    }
}

/// Slows password guessing: after `MAX_FAILURES` failed logins for one email within
/// `WINDOW`, further attempts for it are refused until the window passes.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginThrottle {
    fn key(email: &str) -> String {
        email.trim().to_lowercase()
    }

    /// How long until this email may try again, if it is locked out now.
    pub fn locked_for(&self, email: &str) -> Option<Duration> {
        let failures = self.failures.lock().expect("throttle lock");
        let (count, since) = failures.get(&Self::key(email))?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < WINDOW).then(|| WINDOW - elapsed)
    }

    pub fn record_failure(&self, email: &str) {
        let mut failures = self.failures.lock().expect("throttle lock");
        failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        let entry = failures
            .entry(Self::key(email))
            .or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    pub fn record_success(&self, email: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&Self::key(email));
    }
}

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
    if let Some(wait) = state.throttle.locked_for(&email) {
        tracing::warn!("login refused: too many failed attempts for one account");
        let minutes = wait.as_secs().div_ceil(60);
        let error = format!("Too many failed sign-in attempts. Try again in {minutes} minutes.");
        return Ok(refuse(ctx, StatusCode::TOO_MANY_REQUESTS, error));
    }
    let user = auth
        .authenticate(creds.clone())
        .await
        .map_err(|e| WebError::internal(format!("authenticate: {e}")))?;
    let Some(user) = user else {
        state.throttle.record_failure(&email);
        tracing::info!("login failed");
        let error = "Invalid email or password.".to_string();
        return Ok(refuse(ctx, StatusCode::UNAUTHORIZED, error));
    };
    state.throttle.record_success(&email);
    auth.login(&user)
        .await
        .map_err(|e| WebError::internal(format!("login: {e}")))?;
    tracing::info!(user_id = user.id, "user signed in");
    messages.success(format!("Welcome back, {}.", user.name));
    Ok(Redirect::to(&next).into_response())
}

pub async fn logout(
    mut auth: AuthSession,
    messages: Messages,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Redirect, WebError> {
    auth.logout()
        .await
        .map_err(|e| WebError::internal(format!("logout: {e}")))?;
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
}

pub async fn register_form(ctx: PageContext) -> Response {
    ctx.render(|layout| RegisterPage {
        layout,
        name: String::new(),
        email: String::new(),
        errors: Vec::new(),
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
        })
    };
    let (name, email) = match (name, email, password) {
        (Ok(name), Ok(email), Ok(())) => (name, email),
        (name, email, password) => {
            let errors = [name.err(), email.err(), password.err()];
            return Ok(invalid(ctx, errors.into_iter().flatten().collect()));
        }
    };
    let hash = password::hash(SecretString::from(form.password.clone()))
        .await
        .map_err(WebError::internal)?;
    let new_user = db::users::NewUser {
        name: name.as_str(),
        email: email.as_str(),
        password_hash: &hash,
    };
    let id = match db::users::insert(state.sync.db(), new_user, crate::sync::now()).await {
        Ok(id) => id,
        Err(err) if db::is_unique_violation(&err) => {
            let error = "That email is already registered. Sign in instead.".to_string();
            return Ok(invalid(ctx, vec![error]));
        }
        Err(err) => return Err(err.into()),
    };
    let user = db::users::find(state.sync.db(), id)
        .await?
        .ok_or_else(|| WebError::internal("registered user vanished"))?;
    auth.login(&user)
        .await
        .map_err(|e| WebError::internal(format!("login: {e}")))?;
    tracing::info!(user_id = id, "user registered");
    messages.success("Your account is ready.");
    Ok(Redirect::to(AFTER_LOGIN).into_response())
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

    #[test]
    fn an_email_is_locked_after_repeated_failures_only() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.record_failure("Ann@example.com");
        }
        assert!(throttle.locked_for("ann@example.com").is_none());
        throttle.record_failure("ann@example.com");
        assert!(throttle.locked_for("ANN@example.com").is_some());
        assert!(throttle.locked_for("bob@example.com").is_none());
    }
}
