//! One span per request, `request{method path request_id user_id}`, so every line
//! a request logs says which request and which user it belongs to, and one access
//! line when it is answered. The id comes back in `x-request-id`. Never the query
//! string, a body, a cookie or a token.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use super::session::AuthSession;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The route label of a request no route matched (a 404).
const UNMATCHED: &str = "unmatched";

/// The request's span, for the layers inside to record into.
#[derive(Clone)]
struct RequestSpan(tracing::Span);

/// Outermost layer: opens the span, logs the access line, sets `x-request-id`.
pub async fn trace(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_safe_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %loggable_path(request.uri().path()),
        request_id = %id,
        user_id = tracing::field::Empty,
    );
    request.extensions_mut().insert(RequestSpan(span.clone()));
    // The route's template, never the path: ids and tokens stay out of labels.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |path| path.as_str().to_string());
    let method = request.method().clone();
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    crate::metrics::http_request(method.as_str(), &route, status, started.elapsed());
    let duration_ms = format!("{:.2}", started.elapsed().as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::info!(status, duration_ms = %duration_ms, "request answered"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Inside the auth layer: puts the signed-in user's id on the request's span.
pub async fn record_user(auth: AuthSession, request: Request, next: Next) -> Response {
    if let (Some(user), Some(RequestSpan(span))) = (
        auth.user.as_ref(),
        request.extensions().get::<RequestSpan>(),
    ) {
        span.record("user_id", user.id);
    }
    next.run(request).await
}

/// A load balancer's id is kept when it is short and plain; anything else could
/// forge or break log lines, and a new one is made.
fn is_safe_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The path as a log line may show it: a password-reset link's token is a
/// secret, and never leaves the request.
pub fn loggable_path(path: &str) -> &str {
    match path.strip_prefix(RESET_PREFIX) {
        Some(token) if !token.is_empty() => "/reset-password/{token}",
        _ => path,
    }
}

const RESET_PREFIX: &str = "/reset-password/";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_taken_from_the_client() {
        assert!(is_safe_request_id("req-1234_abcd"));
        for bad in ["", "a b", "x\ny", "id=\"forged\"", &"a".repeat(65)] {
            assert!(!is_safe_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_reset_token_never_reaches_the_log() {
        assert_eq!(
            loggable_path("/reset-password/HbVElmScl5krGLgEuPRKciojpDZ7GjdVad8DehJMRB4"),
            "/reset-password/{token}"
        );
        assert_eq!(loggable_path("/reset-password/"), "/reset-password/");
        assert_eq!(loggable_path("/settings/stripe"), "/settings/stripe");
    }
}
