//! axum's `Path` and `Query`, answering a value they cannot read with the site's
//! own error page (a path that names nothing is 404, a query that cannot be read
//! is 400), never the extractor's own text.

use axum::extract::FromRequestParts;
use axum::extract::rejection::{PathRejection, QueryRejection};

use super::WebError;

/// A path parameter; one that cannot be read (`/jobs/abc`, bytes that are no
/// UTF-8) is a page that does not exist.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(WebError))]
pub struct Path<T>(pub T);

/// A query string; one that cannot be read is a bad request.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(WebError))]
pub struct Query<T>(pub T);

impl From<PathRejection> for WebError {
    /// The rejection's text may quote what was sent: it is not logged.
    fn from(_: PathRejection) -> Self {
        WebError::NotFound
    }
}

impl From<QueryRejection> for WebError {
    fn from(_: QueryRejection) -> Self {
        WebError::BadRequest
    }
}
