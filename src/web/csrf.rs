//! Every form post goes through [`CsrfForm`], which checks the token before the
//! handler sees any field, so a handler cannot forget to.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum_csrf::CsrfToken;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::WebError;

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
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => WebError::TooLarge,
                _ => WebError::BadRequest,
            })?;
        let field: TokenField = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::Csrf)?;
        token
            .verify(&field.authenticity_token)
            .map_err(|_| WebError::Csrf)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| WebError::BadRequest)?;
        Ok(CsrfForm(form))
    }
}
