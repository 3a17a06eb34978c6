//! Statements run together in one transaction: a group's claims, durably; a
//! group's links, without waiting for the disk (see `crate::db::group`).

use super::statement::{self, Stmt};
use super::{execute_in, on_tx, postgres, sqlite};
use crate::db::{Db, Tx};

/// As [`update_returning`] for several updates (each with its `read`, for MySQL),
/// in one transaction that is on the disk before this returns, on SQLite too: its
/// connections commit without waiting for the disk (`synchronous=NORMAL`), and
/// this commit waits (`FULL`). For what must outlive a power loss before the app
/// acts on it (a create's idempotency key, before Stripe is called); one commit,
/// and one wait for the disk, serves every update of the batch.
pub async fn updates_returning_durably<O>(
    db: &Db,
    updates: Vec<(Stmt<'_>, Stmt<'_>)>,
    returning: &str,
) -> Result<Vec<Option<O>>, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    let suffix = format!(" RETURNING {returning}");
    let Db::Sqlite(pool) = db else {
        // PostgreSQL and MySQL sync every commit: one update alone is one
        // statement on the pool, two round trips fewer than a transaction.
        if let [_] = updates.as_slice() {
            let (update, read) = updates.into_iter().next().expect("one update");
            return Ok(vec![
                super::update_returning(db, update, returning, read).await?,
            ]);
        }
        let mut tx = db.begin().await?;
        let mut rows = Vec::with_capacity(updates.len());
        for (update, read) in updates {
            rows.push(update_returning_one_in(&mut tx, update, &suffix, read).await?);
        }
        tx.commit().await?;
        return Ok(rows);
    };
    let mut conn = pool.acquire().await?;
    sqlite::query("PRAGMA synchronous = FULL")
        .execute(&mut *conn)
        .await?;
    let rows = async {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut rows = Vec::with_capacity(updates.len());
        for (update, _) in updates {
            let update = update.with_suffix(&suffix);
            let row = update.bind_to(sqlite::query_as(update.sql()));
            rows.push(row.fetch_optional(&mut *tx).await?);
        }
        tx.commit().await?;
        Ok(rows)
    }
    .await;
    let normal = sqlite::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *conn)
        .await;
    if normal.is_err() {
        // Never hand a FULL connection back to the pool.
        conn.close_on_drop();
    }
    rows
}

/// One update taking at most one row, inside `tx`, with its `RETURNING` `suffix`
/// (on MySQL the update, then `read` when it took the row).
async fn update_returning_one_in<O>(
    tx: &mut Tx,
    update: Stmt<'_>,
    suffix: &str,
    read: Stmt<'_>,
) -> Result<Option<O>, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    if let Tx::Mysql(tx) = tx {
        let written = update.mysql().execute(&mut **tx).await?.rows_affected();
        return match written {
            1 => Ok(Some(read.mysql_as().fetch_one(&mut **tx).await?)),
            _ => Ok(None),
        };
    }
    let update = update.with_suffix(suffix);
    on_tx!(tx, conn => update.bind_to(q::query_as(update.sql())).fetch_optional(conn).await)
}

/// Runs `statements` in one transaction; returns the rows each took. On
/// PostgreSQL its commit does not wait for the disk (`synchronous_commit = off`,
/// as SQLite's `NORMAL`): for writes a crash may lose because the next run
/// redoes them, a create's link (its durable claim finds the customer again).
pub async fn execute_all_lazily(db: &Db, statements: &[Stmt<'_>]) -> Result<Vec<u64>, sqlx::Error> {
    let mut tx = db.begin().await?;
    if let Tx::Postgres(tx) = &mut tx {
        postgres::query("SET LOCAL synchronous_commit = off")
            .execute(&mut **tx)
            .await?;
    }
    let mut taken = Vec::with_capacity(statements.len());
    for statement in statements {
        taken.push(execute_in(&mut tx, statement).await?);
    }
    tx.commit().await?;
    Ok(taken)
}
