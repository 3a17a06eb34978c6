//! The `stripe_sync_runs` table: every bulk run (`stripe:sync-customers` in any
//! mode, `stripe:replay-events`), now and for `RUN_HISTORY_DAYS` before. A living
//! run beats every second with its progress; the runs that share the account's
//! rate limits are those alive with `shares = 1`. Times are Unix milliseconds.

use sqlx::FromRow;

use super::dialect::{self, stmt};
use super::{Db, on_pool};

/// What a run is, recorded when it starts.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub holder: &'a str,
    pub command: &'a str,
    pub kind: &'a str,
    pub flags: &'a str,
    pub host: &'a str,
    /// Whether it takes a share of the account's rate (a dry run calls no Stripe).
    pub shares: bool,
}

/// Where a living run is: written on every beat.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: Option<i64>,
    pub total: Option<i64>,
    /// The counts so far, a JSON object.
    pub counts: Option<String>,
    /// The rate limiter's buckets now, a JSON object.
    pub limiter: Option<String>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct End {
    pub exit_code: i32,
    pub interrupted: bool,
    pub progress: Progress,
    /// Every failure, listed or not.
    pub failed: i64,
    /// The first failures, a JSON array.
    pub failures: String,
}

/// One run as the history shows it (without its failures: see [`failures`]).
#[derive(Debug, Clone, FromRow)]
pub struct Run {
    pub id: i64,
    pub command: String,
    pub kind: String,
    pub flags: String,
    pub host: String,
    pub holder: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub ended_at: Option<i64>,
    pub done: Option<i64>,
    pub total: Option<i64>,
    pub counts: Option<String>,
    pub limiter: Option<String>,
    pub exit_code: Option<i32>,
    pub interrupted: i16,
    pub failed: i64,
}

const COLUMNS: &str = "id, command, kind, flags, host, holder, started_at, heartbeat_at, \
    ended_at, done, total, counts, limiter, exit_code, interrupted, failed";

/// Records that `run` started at `now_ms`; returns its id.
pub async fn start(db: &Db, run: &NewRun<'_>, now_ms: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_sync_runs \
        (holder, command, kind, flags, host, shares, started_at, heartbeat_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
    let insert = stmt!(
        SQL,
        run.holder,
        run.command,
        run.kind,
        run.flags,
        run.host,
        i32::from(run.shares),
        now_ms
    );
    dialect::insert_returning_id(db, insert).await
}

/// The heartbeat of a living run, with its progress.
pub async fn beat(db: &Db, id: i64, now_ms: i64, progress: &Progress) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE stripe_sync_runs SET heartbeat_at = $2, done = $3, total = $4, \
        counts = $5, limiter = $6 WHERE id = $1 AND ended_at IS NULL";
    on_pool!(db, pool => q::query(SQL)
        .bind(id)
        .bind(now_ms)
        .bind(progress.done)
        .bind(progress.total)
        .bind(progress.counts.as_deref())
        .bind(progress.limiter.as_deref())
        .execute(pool)
        .await
        .map(|_| ()))
}

pub async fn finish(db: &Db, id: i64, now_ms: i64, end: &End) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE stripe_sync_runs SET ended_at = $2, heartbeat_at = $2, \
        done = $3, total = $4, counts = $5, limiter = $6, exit_code = $7, interrupted = $8, \
        failed = $9, failures = $10 WHERE id = $1 AND ended_at IS NULL";
    on_pool!(db, pool => q::query(SQL)
        .bind(id)
        .bind(now_ms)
        .bind(end.progress.done)
        .bind(end.progress.total)
        .bind(end.progress.counts.as_deref())
        .bind(end.progress.limiter.as_deref())
        .bind(end.exit_code)
        .bind(i16::from(end.interrupted))
        .bind(end.failed)
        .bind(&end.failures)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// Runs taking a share of the account, not ended, whose heartbeat is at
/// `since_ms` or later.
pub async fn living(db: &Db, since_ms: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM stripe_sync_runs \
        WHERE ended_at IS NULL AND heartbeat_at >= $1 AND shares = 1";
    on_pool!(db, pool => q::query_scalar(SQL).bind(since_ms).fetch_one(pool).await)
}

/// Deletes runs that ended, or stopped beating, before `before_ms`.
pub async fn prune(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM stripe_sync_runs WHERE heartbeat_at < $1";
    on_pool!(db, pool => q::query(SQL).bind(before_ms).execute(pool).await.map(|r| r.rows_affected()))
}

/// The latest `limit` runs, newest first.
pub async fn recent(db: &Db, limit: i64) -> Result<Vec<Run>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM stripe_sync_runs ORDER BY id DESC LIMIT $1");
    on_pool!(db, pool => q::query_as(&sql).bind(limit).fetch_all(pool).await)
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Run>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM stripe_sync_runs WHERE id = $1");
    on_pool!(db, pool => q::query_as(&sql).bind(id).fetch_optional(pool).await)
}

/// The first failures of run `id`, as the JSON array it ended with.
pub async fn failures(db: &Db, id: i64) -> Result<Option<String>, sqlx::Error> {
    const SQL: &str = "SELECT failures FROM stripe_sync_runs WHERE id = $1";
    on_pool!(db, pool => q::query_scalar::<Option<String>>(SQL)
        .bind(id)
        .fetch_optional(pool)
        .await
        .map(Option::flatten))
}

/// For each command and kind: its latest ended run, and the runs still going.
pub async fn latest(db: &Db) -> Result<Vec<Run>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM stripe_sync_runs WHERE ended_at IS NULL OR id IN \
         (SELECT MAX(id) FROM stripe_sync_runs WHERE ended_at IS NOT NULL GROUP BY command, kind)"
    );
    on_pool!(db, pool => q::query_as(&sql).fetch_all(pool).await)
}

/// For each command and kind that ever succeeded: when its last success ended.
pub async fn last_successes(db: &Db) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT command, kind, MAX(ended_at) FROM stripe_sync_runs \
        WHERE exit_code = 0 GROUP BY command, kind";
    on_pool!(db, pool => q::query_as(SQL).fetch_all(pool).await)
}
