//! The `stripe_event_checkpoints` table: where `stripe:replay-events` got to.

use sqlx::FromRow;

use super::{Db, mysql, on_pool};

/// The last event a replay applied with every earlier one applied too.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Checkpoint {
    pub event_id: String,
    pub event_created: i64,
}

pub async fn find(db: &Db, name: &str) -> Result<Option<Checkpoint>, sqlx::Error> {
    const SQL: &str = "SELECT event_id, event_created FROM stripe_event_checkpoints \
        WHERE name = $1";
    on_pool!(db, pool => sqlx::query_as(SQL).bind(name).fetch_optional(pool).await)
}

/// Moves the checkpoint forward to `to`; never back, and never rewritten with
/// what it holds already, so a run that found nothing new writes nothing.
/// Returns whether it moved.
pub async fn advance(db: &Db, name: &str, to: &Checkpoint, now: i64) -> Result<bool, sqlx::Error> {
    const SQL: &str = "INSERT INTO stripe_event_checkpoints \
            (name, event_id, event_created, updated_at) \
        VALUES ($1, $2, $3, $4) \
        ON CONFLICT (name) DO UPDATE SET event_id = excluded.event_id, event_created = excluded.event_created, \
            updated_at = excluded.updated_at \
        WHERE stripe_event_checkpoints.event_created < excluded.event_created \
           OR (stripe_event_checkpoints.event_created = excluded.event_created \
               AND stripe_event_checkpoints.event_id < excluded.event_id)";
    if let Db::Mysql(pool) = db {
        return advance_mysql(pool, name, to, now).await;
    }
    let moved = on_pool!(db, pool => sqlx::query(SQL)
        .bind(name)
        .bind(&to.event_id)
        .bind(to.event_created)
        .bind(now)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(moved == 1)
}

/// [`advance`] on MySQL, which has no conditional upsert: the row is made when
/// missing, else moved only when `to` is later, in one transaction.
async fn advance_mysql(
    pool: &sqlx::MySqlPool,
    name: &str,
    to: &Checkpoint,
    now: i64,
) -> Result<bool, sqlx::Error> {
    const INSERT: &str = "INSERT IGNORE INTO stripe_event_checkpoints \
            (name, event_id, event_created, updated_at) VALUES ($1, $2, $3, $4)";
    const MOVE: &str = "UPDATE stripe_event_checkpoints \
        SET event_id = $2, event_created = $3, updated_at = $4 \
        WHERE name = $1 AND (event_created < $3 OR (event_created = $3 AND event_id < $2))";
    let statement = |sql| {
        mysql::query(sql)
            .bind(name)
            .bind(&to.event_id)
            .bind(to.event_created)
            .bind(now)
    };
    let mut tx = pool.begin().await?;
    let moved = statement(INSERT).execute(&mut *tx).await?.rows_affected() == 1
        || statement(MOVE).execute(&mut *tx).await?.rows_affected() == 1;
    tx.commit().await?;
    Ok(moved)
}
