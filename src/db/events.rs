//! The `stripe_events` table: which webhook events have been applied.

use time::OffsetDateTime;

use super::dialect::insert_ignore;
use super::{Db, Tx, on_pool, on_tx};

pub async fn is_recorded(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM stripe_events WHERE id = $1";
    let count: i64 = on_pool!(db, pool => q::query_scalar(SQL).bind(id).fetch_one(pool).await)?;
    Ok(count > 0)
}

/// Records an event inside the transaction that applies it. Returns false when it
/// was recorded already (a redelivery racing the first delivery).
pub async fn record(
    tx: &mut Tx,
    id: &str,
    type_: &str,
    created: i64,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_events (id, type, created, processed_at) \
        VALUES ($1, $2, $3, $4)";
    let sql = insert_ignore(tx.dialect(), SQL, "id");
    let inserted = on_tx!(tx, conn => q::query(&sql)
        .bind(id)
        .bind(type_)
        .bind(created)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(inserted == 1)
}

/// Forgets events Stripe sent before `cutoff` (Unix seconds): Stripe stops
/// retrying after three days and keeps events for thirty, so older ids can never
/// come again; and any dated after `future`. Returns how many were deleted.
pub async fn prune_outside(db: &Db, cutoff: i64, future: i64) -> Result<u64, sqlx::Error> {
    const SQL: &str = "DELETE FROM stripe_events WHERE created < $1 OR created > $2";
    on_pool!(db, pool => q::query(SQL)
        .bind(cutoff)
        .bind(future)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
}
