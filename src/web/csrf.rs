//! Every form post goes through [`CsrfForm`], which checks the token before the
//! handler sees any field, so a handler cannot forget to.
//!
//! axum_csrf ties a form's token to the CSRF cookie only: a cookie and token pair
//! picked up anonymously would pass in anyone's signed-in session. So the token a
//! page carries is axum_csrf's, sealed to the session it was rendered for (the
//! signed-in user and session id, or "anonymous") with a key derived from
//! `APP_KEY`: a token from another session, or from before signing in, is refused.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum_csrf::CsrfToken;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::WebError;
use super::session::AuthSession;

/// The key that seals form tokens to their session; a request extension.
#[derive(Clone)]
pub struct CsrfBinding(Arc<[u8; 32]>);

impl CsrfBinding {
    pub fn new(key: [u8; 32]) -> Self {
        CsrfBinding(Arc::new(key))
    }

    fn mac(&self, token: &str, session: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("any key length");
        mac.update(token.as_bytes());
        mac.update(&[0]);
        mac.update(session.as_bytes());
        mac
    }

    /// The token a page's forms carry: axum_csrf's, sealed to `session`.
    pub fn seal(&self, token: &str, session: &str) -> String {
        let tag = self.mac(token, session).finalize().into_bytes();
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
        format!("{token}.{tag}")
    }

    /// axum_csrf's token from a form's, if it was sealed to `session`.
    fn open<'a>(&self, sealed: &'a str, session: &str) -> Option<&'a str> {
        let (token, tag) = sealed.rsplit_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        self.mac(token, session).verify_slice(&tag).ok()?;
        Some(token)
    }
}

/// A request's sign-in state, its sealing key and what its tokens are sealed to.
pub async fn sealing<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<(AuthSession, CsrfBinding, String), WebError> {
    let auth = AuthSession::from_request_parts(parts, state)
        .await
        .map_err(|_| WebError::internal("auth layer missing"))?;
    let binding = parts
        .extensions
        .get::<CsrfBinding>()
        .cloned()
        .ok_or_else(|| WebError::internal("csrf binding missing"))?;
    let session = session_of(&auth);
    Ok((auth, binding, session))
}

/// What a form token is sealed to: the signed-in user and their session, or
/// nobody yet.
fn session_of(auth: &AuthSession) -> String {
    match (&auth.user, auth.session.id()) {
        (Some(user), Some(id)) => format!("user {} session {id}", user.id),
        (Some(user), None) => format!("user {}", user.id),
        (None, _) => "anonymous".into(),
    }
}

pub struct CsrfForm<T>(pub T);

/// For buttons that post nothing but the token.
#[derive(Deserialize)]
pub struct NoFields {}

#[derive(Deserialize)]
struct TokenField {
    authenticity_token: String,
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let token = CsrfToken::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| WebError::Csrf)?;
        let (_, binding, session) = sealing(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge,
                _ => WebError::BadRequest,
            })?;
        let field: TokenField = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::Csrf)?;
        let unsealed = binding
            .open(&field.authenticity_token, &session)
            .ok_or(WebError::Csrf)?;
        token.verify(unsealed).map_err(|_| WebError::Csrf)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        Ok(CsrfForm(form))
    }
}
