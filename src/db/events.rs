//! The `stripe_events` table: which webhook events have been applied.

use sqlx::{FromRow, Row};
use time::OffsetDateTime;

use super::dialect::{Execute, insert_ignore, postgres, stmt};
use super::users::{self, User};
use super::{Db, Tx, on_pool};

pub async fn is_recorded(db: &Db, id: &str) -> Result<bool, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM stripe_events WHERE id = $1";
    let count: i64 = on_pool!(db, pool => q::query_scalar(SQL).bind(id).fetch_one(pool).await)?;
    Ok(count > 0)
}

/// Records an event inside the transaction that applies it, or alone (`&Db`).
/// Returns false when it was recorded already (a redelivery racing the first).
pub async fn record<W: Execute>(
    tx: &mut W,
    id: &str,
    type_: &str,
    created: i64,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let sql = insert_ignore(tx.dialect(), INSERT, "id");
    let inserted = tx.execute(&stmt!(sql, id, type_, created, now)).await?;
    Ok(inserted == 1)
}

const INSERT: &str = "INSERT INTO stripe_events (id, type, created, processed_at) \
    VALUES ($1, $2, $3, $4)";

/// Records events that change nothing, in one transaction (a statement of its
/// own for one); returns for each whether it was fresh.
pub async fn record_all<'a>(
    db: &Db,
    mut events: impl ExactSizeIterator<Item = (&'a str, &'a str, i64)>,
    now: OffsetDateTime,
) -> Result<Vec<bool>, sqlx::Error> {
    if events.len() == 1
        && let Some((id, type_, created)) = events.next()
    {
        return Ok(vec![record(&mut { db }, id, type_, created, now).await?]);
    }
    let mut fresh = Vec::with_capacity(events.len());
    let mut tx = db.begin().await?;
    for (id, type_, created) in events {
        fresh.push(record(&mut tx, id, type_, created, now).await?);
    }
    tx.commit().await?;
    Ok(fresh)
}

/// What recording an event found: a redelivery, or a fresh event and the user
/// its customer is linked to (read and held, as [`users::find_by_stripe_id_in`]).
pub enum Recorded {
    Duplicate,
    Fresh(Option<Box<User>>),
}

/// Records the event (as [`record`]) and, when it is fresh, reads and holds the
/// user linked to `customer`. On PostgreSQL one statement does both, one round
/// trip of the transaction's fewest.
pub async fn record_and_hold(
    tx: &mut Tx,
    id: &str,
    type_: &str,
    created: i64,
    now: OffsetDateTime,
    customer: &str,
) -> Result<Recorded, sqlx::Error> {
    let Tx::Postgres(conn) = tx else {
        if !record(tx, id, type_, created, now).await? {
            return Ok(Recorded::Duplicate);
        }
        let user = users::find_by_stripe_id_in(tx, customer).await?;
        return Ok(Recorded::Fresh(user.map(Box::new)));
    };
    static HOLD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = HOLD.get_or_init(|| {
        let dialect = crate::db::dialect::Dialect::POSTGRES;
        format!(
            "WITH fresh AS ({} RETURNING 1), \
              held AS (SELECT {} FROM users \
                       WHERE stripe_id = $5 AND EXISTS (SELECT 1 FROM fresh) FOR UPDATE) \
         SELECT (SELECT COUNT(*) FROM fresh) AS fresh, held.* \
         FROM (SELECT 1) AS one LEFT JOIN held ON true",
            insert_ignore(dialect, INSERT, "id"),
            users::columns_in(dialect),
        )
    });
    let row = postgres::query(sql)
        .bind(id)
        .bind(type_)
        .bind(created)
        .bind(now)
        .bind(customer)
        .fetch_one(&mut **conn)
        .await?;
    if row.try_get::<i64, _>("fresh")? == 0 {
        return Ok(Recorded::Duplicate);
    }
    match row.try_get::<Option<i64>, _>("id")? {
        Some(_) => Ok(Recorded::Fresh(Some(Box::new(User::from_row(&row)?)))),
        None => Ok(Recorded::Fresh(None)),
    }
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
