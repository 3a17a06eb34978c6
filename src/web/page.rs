//! What every page needs: the CSRF token for its forms, the signed-in user's name
//! and the flash messages left by the last redirect.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum_csrf::CsrfToken;
use axum_messages::{Level, Messages};

use super::WebError;
use super::csrf::sealing;

#[derive(Clone, Debug)]
pub struct Flash {
    /// A CSS class and an ARIA hint: `success`, `info`, `warning` or `error`.
    pub level: &'static str,
    pub text: String,
}

/// Shared by every template through `base.html`.
#[derive(Clone, Debug)]
pub struct Layout {
    pub csrf: String,
    pub user_name: Option<String>,
    pub flashes: Vec<Flash>,
}

pub struct PageContext {
    token: CsrfToken,
    layout: Layout,
}

impl<S: Send + Sync> FromRequestParts<S> for PageContext {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = CsrfToken::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::internal("csrf layer missing"))?;
        let messages = Messages::from_request_parts(parts, state)
            .await
            .map_err(|_| WebError::internal("messages layer missing"))?;
        let (auth, binding, session) = sealing(parts, state).await?;
        let csrf = token
            .authenticity_token()
            .map_err(|_| WebError::internal("csrf token could not be made"))?;
        let csrf = binding.seal(&csrf, &session);
        let flashes = messages
            .map(|message| Flash {
                level: match message.level {
                    Level::Success => "success",
                    Level::Warning => "warning",
                    Level::Error => "error",
                    Level::Debug | Level::Info => "info",
                },
                text: message.message,
            })
            .collect();
        let layout = Layout {
            csrf,
            user_name: auth.user.map(|user| user.name),
            flashes,
        };
        Ok(PageContext { token, layout })
    }
}

impl PageContext {
    /// Renders a page; the token travels with it so the CSRF cookie is set.
    pub fn render<T: IntoResponse>(self, build: impl FnOnce(Layout) -> T) -> Response {
        self.render_with(StatusCode::OK, build)
    }

    pub fn render_with<T: IntoResponse>(
        self,
        status: StatusCode,
        build: impl FnOnce(Layout) -> T,
    ) -> Response {
        (status, self.token, build(self.layout)).into_response()
    }
}
