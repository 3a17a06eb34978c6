//! Who is signed in: axum-login over the users table. Pages and extractors read
//! [`AuthSession`] from here; the sign-in pages live in `auth`.

use std::fmt;
use std::sync::Arc;

use axum_login::{AuthUser, AuthnBackend, UserId};
use secrecy::SecretString;
use serde::Deserialize;
use tower_sessions::cookie::{Cookie, CookieJar, Key};

use crate::accounts::User;
use crate::accounts::{AccountError, Accounts};
use crate::password::HashError;
use crate::web::WebError;

pub type AuthSession = axum_login::AuthSession<Backend>;

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
    accounts: Accounts,
}

impl Backend {
    pub fn new(accounts: Accounts) -> Self {
        Backend { accounts }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Accounts(#[from] AccountError),
    #[error(transparent)]
    Hashing(#[from] HashError),
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
    type Error = AuthError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, AuthError> {
        let user = self.accounts.find_by_email(&creds.email).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let verified = self
            .accounts
            .hasher()
            .verify(SecretString::from(creds.password), stored)
            .await?;
        Ok(user.filter(|_| verified))
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<User>, AuthError> {
        Ok(self.accounts.find(*id).await?)
    }
}

/// Signs anew, with today's session key, a session cookie signed with the key of
/// earlier versions (see [`crate::config::Config::legacy_session_key`]), so the
/// session layer behind takes it and answers with a cookie under the new key.
#[derive(Clone)]
pub struct LegacySessionCookie {
    name: Arc<str>,
    current: Key,
    legacy: Option<Key>,
}

impl LegacySessionCookie {
    pub fn new(name: &str, current: &[u8], legacy: Option<&[u8]>) -> Self {
        LegacySessionCookie {
            name: name.into(),
            current: Key::from(current),
            legacy: legacy.map(Key::from),
        }
    }

    /// The request's `Cookie` header with the session cookie re-signed, when it
    /// holds one that only the legacy key verifies.
    fn resign(&self, header: &str) -> Option<String> {
        let legacy = self.legacy.as_ref()?;
        let mut resigned = None;
        let cookies: Vec<String> = Cookie::split_parse(header)
            .filter_map(Result::ok)
            .map(|cookie| {
                if cookie.name() != &*self.name || resigned.is_some() {
                    return cookie.stripped().to_string();
                }
                let mut jar = CookieJar::new();
                jar.add_original(cookie.clone().into_owned());
                if jar.signed(&self.current).get(&self.name).is_some() {
                    return cookie.stripped().to_string();
                }
                let Some(plain) = jar.signed(legacy).get(&self.name) else {
                    return cookie.stripped().to_string();
                };
                let mut fresh = CookieJar::new();
                fresh.signed_mut(&self.current).add(plain);
                let signed = fresh.get(&self.name).map(|c| c.stripped().to_string());
                resigned = signed.clone();
                signed.unwrap_or_default()
            })
            .collect();
        resigned.map(|_| cookies.join("; "))
    }
}

pub async fn upgrade_legacy_cookie(
    axum::Extension(upgrade): axum::Extension<LegacySessionCookie>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if upgrade.legacy.is_none() {
        return next.run(request).await;
    }
    // HTTP/2 may split cookies over several headers: read them all, as one.
    let header = request
        .headers()
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(resigned) = upgrade.resign(&header)
        && let Ok(value) = axum::http::HeaderValue::from_str(&resigned)
    {
        request
            .headers_mut()
            .insert(axum::http::header::COOKIE, value);
    }
    next.run(request).await
}

/// The signed-in user, for pages behind `login_required!`: a request without one
/// (the session ended meanwhile) gets 404, as for anything not theirs.
pub struct CurrentUser(pub User);

impl CurrentUser {
    pub fn id(&self) -> i64 {
        self.0.id
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, WebError> {
        let auth = AuthSession::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::internal("auth layer missing"))?;
        auth.user.map(CurrentUser).ok_or(WebError::NotFound)
    }
}
