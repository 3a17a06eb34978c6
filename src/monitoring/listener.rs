//! `GET /metrics` on a listener of its own (`METRICS_BIND`): the public router
//! never has the route, so metrics reach only whoever reaches that address.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use super::scrape::{self, Sources};
use crate::config::HttpTimeouts;

/// Prometheus's text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics router: `/metrics`, and 404 for anything else.
pub fn router(handle: PrometheusHandle, sources: Sources) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /metrics") })
        .with_state((handle, sources))
}

/// Serves `/metrics` on `listener` until `shutdown`, with the same deadlines as
/// the public listener.
pub async fn serve(
    listener: TcpListener,
    sources: Sources,
    timeouts: HttpTimeouts,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = router(super::install(), sources);
    crate::http::serve(listener, router, timeouts, shutdown).await
}

async fn metrics(
    State((handle, sources)): State<(PrometheusHandle, Sources)>,
) -> impl IntoResponse {
    let body = scrape::render(&handle, &sources).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}
