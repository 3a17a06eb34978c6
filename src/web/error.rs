//! The web error: logs what went wrong once, shows the person a page that says
//! what they can do and nothing about our internals.

use askama::Template;
use askama_web::WebTemplate;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("missing or invalid CSRF token")]
    Csrf,
    #[error("bad request")]
    BadRequest,
    #[error("request body too large")]
    TooLarge,
    #[error("not found")]
    NotFound,
    #[error("too many requests")]
    TooManyRequests { retry_after: Duration },
    /// Too much work already in hand (password hashing): come back in a moment.
    #[error("busy")]
    Busy,
    /// A failure of ours: logged once with its cause, never shown.
    #[error("internal error: {context}")]
    Internal {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl WebError {
    /// An internal failure with no underlying error.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        WebError::Internal {
            context: detail.to_string(),
            source: None,
        }
    }

    /// An internal failure caused by `source`, which stays attached for the log.
    pub fn caused(context: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        WebError::Internal {
            context: context.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

impl WebError {
    /// An account operation's failure: every hasher busy is a 503 that says so,
    /// anything else a failure of ours in `context`.
    pub fn account(context: &'static str, err: crate::accounts::AccountError) -> Self {
        match err {
            crate::accounts::AccountError::Hashing(crate::password::HashError::Busy) => {
                WebError::Busy
            }
            err => WebError::caused(context, err),
        }
    }
}

impl From<crate::customers::CustomerError> for WebError {
    fn from(err: crate::customers::CustomerError) -> Self {
        WebError::caused("sync", err)
    }
}

impl From<crate::billing::BillingError> for WebError {
    fn from(err: crate::billing::BillingError) -> Self {
        WebError::caused("billing", err)
    }
}

impl From<sqlx::Error> for WebError {
    fn from(err: sqlx::Error) -> Self {
        WebError::caused("database", err)
    }
}

/// The error and every cause under it, as one line for the log.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[derive(Template, WebTemplate)]
#[template(path = "errors/error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: &'static str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Nothing was changed. Go back, reload the page and try again.",
            ),
            WebError::BadRequest => (
                StatusCode::BAD_REQUEST,
                "That request could not be read",
                "Nothing was changed. Go back and try again.",
            ),
            WebError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "That form was too large",
                "Nothing was changed. Shorten what you entered and try again.",
            ),
            WebError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing at this address.",
            ),
            WebError::TooManyRequests { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "Nothing was changed. You have done this many times in a short while; \
                 wait a minute and try again.",
            ),
            WebError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy",
                "Nothing was changed. Please try again in a moment.",
            ),
            WebError::Internal { .. } => {
                tracing::error!(error = %chain(&self), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Nothing was changed. Please try again in a moment.",
                )
            }
        };
        if matches!(self, WebError::Csrf) {
            tracing::warn!("form post rejected: missing or invalid CSRF token");
        }
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let mut response = (status, page).into_response();
        if let Some(wait) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_value(wait));
        }
        response
    }
}

impl WebError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            WebError::TooManyRequests { retry_after } => Some(*retry_after),
            WebError::Busy => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

/// `Retry-After` in whole seconds, at least one.
pub fn retry_after_value(wait: Duration) -> HeaderValue {
    HeaderValue::from(wait.as_secs().max(1))
}

pub async fn not_found() -> WebError {
    WebError::NotFound
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_internal_error_keeps_its_cause_for_the_log() {
        let err = WebError::from(sqlx::Error::PoolClosed);

        assert!(err.source().is_some());
        let line = chain(&err);
        assert!(line.starts_with("internal error: database: "), "{line}");
        assert!(line.contains("closed"), "{line}");
    }
}
