//! Prometheus metrics, on the `metrics` facade with its Prometheus exporter.
//!
//! Counters and histograms are recorded where things happen
//! ([`crate::metrics`]); gauges that
//! describe state (the database pool, the hasher's queue, the run history, the
//! replay checkpoint, readiness) are read when Prometheus scrapes
//! ([`scrape::render`]). `serve` answers `GET /metrics` on `METRICS_BIND` only,
//! never on the public `BIND` ([`listener`]).
//!
//! Names follow Prometheus's conventions: `stripe_sync_` first, base units
//! (`_seconds`), `_total` for counters; labels carry routes, endpoints, event
//! types and outcomes, never a user id, an email or an object id.
//!
//! Without a recorder (every command but `serve` with `METRICS_BIND`) each
//! `record` call is a no-op.

pub mod listener;
pub mod scrape;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::counter;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the duration histograms: a page in a few milliseconds, a
/// Stripe call in a few hundred, a slow one in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A gauge read at scrape time stays this long after its last scrape; one that
/// no longer exists (a run that ended) then leaves the output.
const GAUGE_IDLE: Duration = Duration::from_secs(120);

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use; the handle
/// renders what was recorded.
pub fn install() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .expect("the buckets are not empty")
                .idle_timeout(metrics_util::MetricKindMask::GAUGE, Some(GAUGE_IDLE))
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder was installed first");
            }
            crate::metrics::describe();
            scrape::describe();
            // A counter's first increment is lost to `increase()` unless the series
            // was there before it: the failures the alerts watch start at zero.
            for event_type in crate::events::HANDLED_EVENTS {
                counter!(crate::metrics::WEBHOOK_EVENTS, "type" => *event_type, "outcome" => "failed").absolute(0);
            }
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("a thread for the metrics upkeep");
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_take_no_value_a_client_makes_up() {
        let handle = install();
        crate::metrics::http_request("BREW", "unmatched", 405, Duration::from_millis(1));
        let text = handle.render();
        assert!(!text.contains("BREW"), "{text}");
        assert!(
            text.contains(
                r#"stripe_sync_http_requests_total{method="other",route="unmatched",status="405"}"#
            ),
            "{text}"
        );
    }
}
