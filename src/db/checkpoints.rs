//! The `stripe_event_checkpoints` table: where `stripe:replay-events` got to.

use sqlx::FromRow;

use super::{Db, on_pool};

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
