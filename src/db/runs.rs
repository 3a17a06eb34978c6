//! The `stripe_sync_runs` table: which processes do bulk Stripe work, so that they
//! share the account's rate limits instead of each taking all of it.

use super::{Db, on_pool};

/// Records that `holder` started `command` at `now_ms`.
pub async fn start(db: &Db, holder: &str, command: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_sync_runs (holder, command, started_at, heartbeat_at) \
        VALUES ($1, $2, $3, $3)";
    on_pool!(db, pool => q::query(SQL)
        .bind(holder)
        .bind(command)
        .bind(now_ms)
        .execute(pool)
        .await
        .map(|_| ()))
}

/// The heartbeat of a living run.
pub async fn beat(db: &Db, holder: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE stripe_sync_runs SET heartbeat_at = $2 \
        WHERE holder = $1 AND ended_at IS NULL";
    on_pool!(db, pool => q::query(SQL).bind(holder).bind(now_ms).execute(pool).await.map(|_| ()))
}

pub async fn finish(db: &Db, holder: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE stripe_sync_runs SET ended_at = $2, heartbeat_at = $2 \
        WHERE holder = $1 AND ended_at IS NULL";
    on_pool!(db, pool => q::query(SQL).bind(holder).bind(now_ms).execute(pool).await.map(|_| ()))
}

/// Runs not ended whose heartbeat is at `since_ms` or later.
pub async fn living(db: &Db, since_ms: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM stripe_sync_runs \
        WHERE ended_at IS NULL AND heartbeat_at >= $1";
    on_pool!(db, pool => q::query_scalar(SQL).bind(since_ms).fetch_one(pool).await)
}

/// Deletes runs that ended, or stopped beating, before `before_ms`.
pub async fn prune(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM stripe_sync_runs WHERE heartbeat_at < $1";
    on_pool!(db, pool => q::query(SQL).bind(before_ms).execute(pool).await.map(|r| r.rows_affected()))
}
