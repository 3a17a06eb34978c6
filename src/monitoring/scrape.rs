//! The gauges read when Prometheus scrapes: readiness, the database pool, the
//! password hasher, the run history and the replay checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics::{Unit, describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusHandle;
use time::OffsetDateTime;

use crate::db::{Db, checkpoints, runs};
use crate::password::Hasher;

const READY: &str = "stripe_sync_ready";
const DB_CONNECTIONS: &str = "stripe_sync_db_connections";
const HASHER_RUNNING: &str = "stripe_sync_password_hashes_running";
const HASHER_QUEUED: &str = "stripe_sync_password_hashes_queued";
const RUN_LAST_END: &str = "stripe_sync_run_last_end_timestamp_seconds";
const RUN_LAST_SUCCESS: &str = "stripe_sync_run_last_success_timestamp_seconds";
const RUN_LAST_EXIT: &str = "stripe_sync_run_last_exit_code";
const RUN_LAST_FAILURES: &str = "stripe_sync_run_last_failures";
const RUNS_RUNNING: &str = "stripe_sync_runs_running";
const RUN_STRIPE_REQUESTS: &str = "stripe_sync_run_stripe_requests";
const RUN_RATE_LIMITED: &str = "stripe_sync_run_rate_limited";
const RUN_LIMITER_RATE: &str = "stripe_sync_run_limiter_requests_per_second";
const CHECKPOINT_AGE: &str = "stripe_sync_replay_checkpoint_age_seconds";

/// How long the scrape waits for the database before calling it not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the gauges are read from.
#[derive(Clone)]
pub struct Sources {
    pub db: Db,
    pub hasher: Hasher,
}

/// Reads the gauges, then renders everything in Prometheus's text format.
pub async fn render(handle: &PrometheusHandle, sources: &Sources) -> String {
    read_gauges(sources).await;
    handle.render()
}

async fn read_gauges(sources: &Sources) {
    let (running, queued) = sources.hasher.load();
    gauge!(HASHER_RUNNING).set(running as f64);
    gauge!(HASHER_QUEUED).set(queued as f64);
    let db = &sources.db;
    let (open, idle) = db.connections();
    gauge!(DB_CONNECTIONS, "state" => "idle").set(idle as f64);
    gauge!(DB_CONNECTIONS, "state" => "in_use").set(f64::from(open).max(idle as f64) - idle as f64);
    let ready = db.ping(READY_TIMEOUT).await;
    gauge!(READY).set(f64::from(u8::from(ready)));
    if !ready {
        return;
    }
    if let Err(err) = read_history(db).await {
        tracing::warn!(error = %err, "metrics: could not read the run history");
    }
}

/// Per command and kind: the last run's end, exit code and failures, the last
/// success, the runs going now (their Stripe requests, 429s and limiter); and
/// the replay checkpoint's age.
async fn read_history(db: &Db) -> Result<(), sqlx::Error> {
    let now_ms = crate::db::users::unix_ms(OffsetDateTime::now_utc());
    let alive_since = crate::runs::history::alive_since(now_ms);
    let mut running: BTreeMap<(String, String), u32> = BTreeMap::new();
    for run in runs::latest(db).await? {
        let labels = [("command", run.command.clone()), ("kind", run.kind.clone())];
        let key = (run.command.clone(), run.kind.clone());
        let Some(ended) = run.ended_at else {
            if run.heartbeat_at >= alive_since {
                *running.entry(key).or_default() += 1;
                live_run(&run, &labels);
            }
            continue;
        };
        running.entry(key).or_default();
        gauge!(RUN_LAST_END, &labels).set(ended as f64 / 1000.0);
        gauge!(RUN_LAST_EXIT, &labels).set(f64::from(run.exit_code.unwrap_or(1)));
        gauge!(RUN_LAST_FAILURES, &labels).set(run.failed as f64);
    }
    for ((command, kind), count) in running {
        gauge!(RUNS_RUNNING, "command" => command, "kind" => kind).set(f64::from(count));
    }
    let mut replayed_until = None;
    for (command, kind, ended) in runs::last_successes(db).await? {
        if command == "stripe:replay-events" && kind == "replay" {
            replayed_until = Some(ended / 1000);
        }
        gauge!(RUN_LAST_SUCCESS, "command" => command, "kind" => kind).set(ended as f64 / 1000.0);
    }
    let checkpoint = checkpoints::find(db, crate::events::replay::CHECKPOINT).await?;
    // Every event is applied up to the newer of the checkpoint's event and the
    // end of the last full replay that succeeded (a quiet account moves no
    // checkpoint, and is not behind).
    let reached = checkpoint.map(|c| c.event_created).max(replayed_until);
    if let Some(reached) = reached {
        gauge!(CHECKPOINT_AGE).set((now_ms / 1000 - reached).max(0) as f64);
    }
    Ok(())
}

/// A run going now: the Stripe requests it made and the 429s it met so far, and
/// its limiter's buckets.
fn live_run(run: &runs::Run, labels: &[(&'static str, String); 2]) {
    let counts: serde_json::Map<String, serde_json::Value> = run
        .counts
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let count = |name: &str| counts.get(name).and_then(serde_json::Value::as_f64);
    if let Some(requests) = count("stripe_requests") {
        gauge!(RUN_STRIPE_REQUESTS, labels).set(requests);
    }
    if let Some(refused) = count("rate_limited") {
        gauge!(RUN_RATE_LIMITED, labels).set(refused);
    }
    let buckets: serde_json::Map<String, serde_json::Value> = run
        .limiter
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    for (bucket, rate) in buckets {
        if let Some(rate) = rate.as_f64() {
            let [command, kind] = labels.clone();
            gauge!(
                RUN_LIMITER_RATE,
                [command, kind, ("bucket", bucket)].as_slice()
            )
            .set(rate);
        }
    }
}

pub(super) fn describe() {
    describe_gauge!(
        READY,
        "1 when the database answers (as /readyz says), else 0"
    );
    describe_gauge!(
        DB_CONNECTIONS,
        "Database pool connections, by state (in_use, idle)"
    );
    describe_gauge!(HASHER_RUNNING, "Password hashes being computed now");
    describe_gauge!(HASHER_QUEUED, "Requests waiting for a password hasher");
    describe_gauge!(
        RUN_LAST_END,
        Unit::Seconds,
        "When the last run of a command and kind ended (Unix time)"
    );
    describe_gauge!(
        RUN_LAST_SUCCESS,
        Unit::Seconds,
        "When the last successful run (exit 0) of a command and kind ended (Unix time)"
    );
    describe_gauge!(
        RUN_LAST_EXIT,
        "Exit code of the last run of a command and kind"
    );
    describe_gauge!(
        RUN_LAST_FAILURES,
        "Failures of the last run of a command and kind"
    );
    describe_gauge!(RUNS_RUNNING, "Runs of a command and kind going now");
    describe_gauge!(
        RUN_STRIPE_REQUESTS,
        "Stripe requests made so far by the runs going now"
    );
    describe_gauge!(
        RUN_RATE_LIMITED,
        "Stripe 429 answers met so far by the runs going now"
    );
    describe_gauge!(
        RUN_LIMITER_RATE,
        "The rate limiter's rate of each bucket of the runs going now (requests per second)"
    );
    describe_gauge!(
        CHECKPOINT_AGE,
        Unit::Seconds,
        "How far behind stripe:replay-events is: now minus the newer of the checkpoint's \
         event and the end of the last successful full replay"
    );
}
