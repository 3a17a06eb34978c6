//! A bulk run's record in the history, and its share of the account.
//!
//! Every `stripe:sync-customers` and `stripe:replay-events` run records itself in
//! `stripe_sync_runs` when it starts (command, kind, flags, host), beats every
//! [`BEAT`] with its progress, and records how it ended (exit code, counts, its
//! first failures). A run that stops beating was killed: it shows as abandoned
//! once [`LAPSE`] has passed.
//!
//! Stripe's limits are per account, not per process: two bulk runs on two
//! machines (or a bulk run and a replay) that each planned the whole budget would
//! together draw 429s. Each run that calls Stripe takes the planned budget divided
//! by the runs alive, re-read on every beat, so a share grows back within a second
//! when another run ends, and within [`LAPSE`] when one is killed.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::clock::{millis, now, unix_ms};
use crate::context::Context;
use crate::db::Db;
/// A run as the history holds it.
pub use crate::db::runs::Run as RunRecord;
use crate::db::runs::{self, End, NewRun, Progress};
use crate::stripe::RateLimiter;

const BEAT: Duration = Duration::from_secs(1);
/// A run whose heartbeat is older than this was killed: it no longer takes a
/// share, and the history shows it as abandoned.
pub const LAPSE: Duration = Duration::from_secs(5);

/// What a run reports of itself while it goes: done of total, and its counts.
pub type ProgressFn = Arc<dyn Fn() -> RunProgress + Send + Sync>;

/// Where a run is.
#[derive(Debug, Clone, Default)]
pub struct RunProgress {
    pub done: Option<u64>,
    pub total: Option<u64>,
    /// Counts by name (`created`, `failed`, ...), as the report names them.
    pub counts: Vec<(&'static str, u64)>,
}

/// A run about to start.
pub struct RunStart {
    pub command: &'static str,
    /// What it does: `sync`, `refresh`, `check`, `dry-run`, `user`, `replay`, ...
    pub kind: &'static str,
    /// Its flags as given, for the history.
    pub flags: String,
    /// Paces its Stripe calls; the run's rates and call counts come from it.
    pub limiter: Arc<RateLimiter>,
    /// Whether it takes a share of the account (a dry run calls no Stripe).
    pub shares: bool,
    /// How many days of history to keep: older runs are pruned at start.
    pub keep_days: u32,
    pub progress: ProgressFn,
}

/// How a run ended, for the history.
pub struct RunEnd {
    pub exit_code: u8,
    pub interrupted: bool,
    pub progress: RunProgress,
    /// Every failure, listed or not.
    pub failed: u64,
    /// The first failures (at most [`super::report::LISTED_FAILURES`]), each a
    /// JSON object with its subject and reason.
    pub failures: Vec<serde_json::Value>,
}

/// The history of runs in the database, as one process records into it.
#[derive(Clone, Debug)]
pub struct History {
    db: Db,
    /// The process's id in the shared tables (its claims on user rows carry it).
    holder: Arc<str>,
}

/// A living run: beats until [`Run::finish`] (or until the process dies, and
/// with it the heartbeat).
pub struct Run {
    history: History,
    id: i64,
    limiter: Arc<RateLimiter>,
    beat: tokio::task::JoinHandle<()>,
}

impl History {
    pub fn new(ctx: &Context) -> Self {
        History {
            db: ctx.db.clone(),
            holder: ctx.holder.clone(),
        }
    }

    /// The newest `limit` runs of the history, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<RunRecord>, sqlx::Error> {
        runs::recent(&self.db, limit).await
    }

    /// One run of the history and its failures (a JSON array), if it exists.
    pub async fn find(&self, id: i64) -> Result<Option<(RunRecord, Option<String>)>, sqlx::Error> {
        let Some(run) = runs::find(&self.db, id).await? else {
            return Ok(None);
        };
        let failures = runs::failures(&self.db, id).await?;
        Ok(Some((run, failures)))
    }

    /// Records `start` in the history and, when it shares, keeps its limiter at
    /// its share of the plan until [`Run::finish`].
    pub async fn start(&self, start: RunStart) -> Result<Run, sqlx::Error> {
        let now_ms = unix_ms(now());
        let kept = Duration::from_secs(u64::from(start.keep_days) * 86_400);
        let pruned = runs::prune(&self.db, now_ms - millis(kept)).await?;
        if pruned > 0 {
            tracing::info!(
                pruned,
                days = start.keep_days,
                "old runs pruned from the history"
            );
        }
        let host = hostname::get()
            .map(|host| host.to_string_lossy().into_owned())
            .unwrap_or_default();
        let record = NewRun {
            holder: &self.holder,
            command: start.command,
            kind: start.kind,
            flags: &start.flags,
            host: &host,
            shares: start.shares,
        };
        let id = runs::start(&self.db, &record, now_ms).await?;
        tracing::info!(
            run_id = id,
            command = start.command,
            kind = start.kind,
            "run recorded"
        );
        let limiter = start.limiter;
        if start.shares {
            limiter.set_share(living(self, now_ms).await?);
        }
        let (history, shared, progress) = (self.clone(), limiter.clone(), start.progress);
        let beat = tokio::spawn(async move {
            let mut every = tokio::time::interval(BEAT);
            every.tick().await;
            loop {
                every.tick().await;
                let now_ms = unix_ms(now());
                let written = stored(&progress(), &shared);
                let counted = async {
                    runs::beat(&history.db, id, now_ms, &written).await?;
                    match start.shares {
                        true => living(&history, now_ms).await.map(Some),
                        false => Ok(None),
                    }
                };
                match counted.await {
                    Ok(Some(processes)) => shared.set_share(processes),
                    Ok(None) => {}
                    Err(err) => tracing::warn!(error = %err, "could not record this run's beat"),
                }
            }
        });
        Ok(Run {
            history: self.clone(),
            id,
            limiter,
            beat,
        })
    }
}

impl Run {
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Records how the run ended, and gives its share back to the others.
    pub async fn finish(self, end: RunEnd) {
        self.beat.abort();
        let failures = serde_json::to_string(&end.failures).unwrap_or_else(|_| "[]".into());
        let record = End {
            exit_code: i32::from(end.exit_code),
            interrupted: end.interrupted,
            progress: stored(&end.progress, &self.limiter),
            failed: i64::try_from(end.failed).unwrap_or(i64::MAX),
            failures,
        };
        if let Err(err) = runs::finish(&self.history.db, self.id, unix_ms(now()), &record).await {
            tracing::warn!(run_id = self.id, error = %err, "could not record the end of this run");
        }
    }
}

/// The row's progress columns: the run's counts with the Stripe requests it made
/// and the 429s it met, and its limiter's buckets.
fn stored(progress: &RunProgress, limiter: &RateLimiter) -> Progress {
    let mut counts = serde_json::Map::new();
    for (name, value) in &progress.counts {
        counts.insert((*name).to_string(), (*value).into());
    }
    counts.insert("stripe_requests".into(), limiter.request_count().into());
    counts.insert("rate_limited".into(), limiter.rate_limited_count().into());
    let buckets: serde_json::Map<String, serde_json::Value> = limiter
        .bucket_rates()
        .into_iter()
        .map(|(bucket, rate)| (bucket, ((rate * 100.0).round() / 100.0).into()))
        .collect();
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Progress {
        done: progress.done.map(to_i64),
        total: progress.total.map(to_i64),
        counts: Some(serde_json::Value::Object(counts).to_string()),
        limiter: Some(serde_json::Value::Object(buckets).to_string()),
    }
}

/// The oldest heartbeat (in milliseconds since the epoch) of a run still alive at
/// `now_ms`: older ones lapsed.
pub fn alive_since(now_ms: i64) -> i64 {
    now_ms - millis(LAPSE)
}

/// Now, in the history's unit (milliseconds since the epoch).
pub fn now_ms() -> i64 {
    unix_ms(now())
}

/// A failure as the history keeps it.
pub fn failure_json(failure: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(failure).unwrap_or(serde_json::Value::Null)
}

/// How many runs share the account now, this one included.
async fn living(history: &History, now_ms: i64) -> Result<u32, sqlx::Error> {
    let count = runs::living(&history.db, alive_since(now_ms)).await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX).max(1))
}
