//! The `rate_limits` table: fixed-window counters shared by every instance.

use super::dialect::{self, stmt};
use super::{Db, on_pool};

/// Counts one hit in `bucket` and returns the count in the current window and the
/// window's end (Unix seconds). One statement, so hits sent at the same moment
/// from any number of instances are each counted: none can slip past the limit.
pub async fn hit(
    db: &Db,
    bucket: &str,
    now: i64,
    window_end: i64,
) -> Result<(i64, i64), sqlx::Error> {
    const INSERT: &str = "INSERT INTO rate_limits (bucket, hits, reset_at) VALUES ($1, 1, $3)";
    const READ: &str = "SELECT hits, reset_at FROM rate_limits WHERE bucket = $1";
    // `hits` before `reset_at`: MySQL assigns left to right, each seeing the ones
    // before, and `hits` reads the old `reset_at`.
    let sql = dialect::upsert(
        db.dialect(),
        INSERT,
        "bucket",
        &[
            (
                "hits",
                "CASE WHEN rate_limits.reset_at <= $2 THEN 1 ELSE rate_limits.hits + 1 END",
            ),
            (
                "reset_at",
                "CASE WHEN rate_limits.reset_at <= $2 THEN $3 ELSE rate_limits.reset_at END",
            ),
        ],
    );
    let hit = stmt!(sql, bucket, now, window_end);
    dialect::upsert_returning(db, hit, "hits, reset_at", stmt!(READ, bucket)).await
}

/// Forgets a bucket's count (a successful sign-in clears its account's failures).
pub async fn clear(db: &Db, bucket: &str) -> Result<(), sqlx::Error> {
    const SQL: &str = "DELETE FROM rate_limits WHERE bucket = $1";
    on_pool!(db, pool => q::query(SQL).bind(bucket).execute(pool).await.map(|_| ()))
}

/// Deletes the counters whose window has passed; returns how many.
pub async fn prune(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM rate_limits WHERE reset_at <= $1";
    on_pool!(db, pool => q::query(SQL).bind(now).execute(pool).await.map(|r| r.rows_affected()))
}
