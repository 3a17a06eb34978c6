//! The `stripe_event_checkpoints` table: where `stripe:replay-events` got to.

use sqlx::FromRow;

use super::dialect::insert_ignore;
use super::{Db, on_pool, on_tx};

/// The last event a replay applied with every earlier one applied too.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Checkpoint {
    pub event_id: String,
    pub event_created: i64,
}

pub async fn find(db: &Db, name: &str) -> Result<Option<Checkpoint>, sqlx::Error> {
    const SQL: &str = "SELECT event_id, event_created FROM stripe_event_checkpoints \
        WHERE name = $1";
    on_pool!(db, pool => q::query_as(SQL).bind(name).fetch_optional(pool).await)
}

/// Moves the checkpoint forward to `to`; never back, and never rewritten with
/// what it holds already, so a run that found nothing new writes nothing.
/// Returns whether it moved. The row is made when missing, else moved only when
/// `to` is later, in one transaction (the same statements on every driver:
/// MySQL's upsert has no condition).
pub async fn advance(db: &Db, name: &str, to: &Checkpoint, now: i64) -> Result<bool, sqlx::Error> {
    const INSERT: &str = "INSERT INTO stripe_event_checkpoints \
            (name, event_id, event_created, updated_at) VALUES ($1, $2, $3, $4)";
    const MOVE: &str = "UPDATE stripe_event_checkpoints \
        SET event_id = $2, event_created = $3, updated_at = $4 \
        WHERE name = $1 AND (event_created < $3 OR (event_created = $3 AND event_id < $2))";
    let insert = insert_ignore(db.dialect(), INSERT, "name");
    let mut tx = db.begin().await?;
    let mut moved = false;
    for sql in [insert.as_str(), MOVE] {
        let done = on_tx!(&mut tx, conn => q::query(sql)
            .bind(name)
            .bind(&to.event_id)
            .bind(to.event_created)
            .bind(now)
            .execute(conn)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 1 {
            moved = true;
            break;
        }
    }
    tx.commit().await?;
    Ok(moved)
}
