//! Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB, in one
//! place. The tables' files write portable SQL with numbered placeholders (`$1`)
//! and run it through [`on_pool!`] or [`on_tx!`], whose body sees the pool (or
//! connection) and `q`, the driver's query module: [`sqlite`], [`postgres`] or
//! [`mysql`] (which rewrites `$n` to MySQL's `?`). What a dialect lacks is a named
//! function here: [`insert_ignore`], [`upsert`], [`insert_returning_id`],
//! [`update_returning`], [`update_returning_in`], [`upsert_returning`], and the
//! column expressions [`signed_id`] and [`laravel_time`]. A statement on a pool
//! that meets a transient error (a deadlock, a serialization failure, SQLite
//! busy) runs once more ([`is_transient`]).
//!
//! `sqlx::query` and its kin are refused by clippy outside this module
//! (`clippy.toml`), so no query can go around the MySQL rewriting.

mod batch;
pub mod catalog;
pub mod mysql;
mod statement;

pub use batch::{execute_all_lazily, updates_returning_durably};

pub(crate) use statement::stmt;
pub use statement::{Arg, Stmt};

use super::{Db, Tx};

/// SQLite's and PostgreSQL's query functions, taken as they are: both take `$n`.
macro_rules! numbered_driver {
    ($name:ident, $db:ty, $row:ty, $args:ty, $doc:literal) => {
        #[doc = $doc]
        #[allow(clippy::disallowed_methods)]
        pub mod $name {
            use sqlx::query::{Query, QueryAs, QueryScalar};
            use sqlx::{Decode, FromRow, Type};

            pub fn query<'q>(sql: &'q str) -> Query<'q, $db, $args> {
                sqlx::query(sql)
            }

            pub fn query_as<'q, O>(sql: &'q str) -> QueryAs<'q, $db, O, $args>
            where
                O: for<'r> FromRow<'r, $row>,
            {
                sqlx::query_as(sql)
            }

            pub fn query_scalar<'q, O>(sql: &'q str) -> QueryScalar<'q, $db, O, $args>
            where
                O: Type<$db> + for<'r> Decode<'r, $db>,
            {
                sqlx::query_scalar(sql)
            }
        }
    };
}
numbered_driver!(
    sqlite,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    sqlx::sqlite::SqliteArguments<'q>,
    "SQLite's queries."
);
numbered_driver!(
    postgres,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    sqlx::postgres::PgArguments,
    "PostgreSQL's queries."
);

/// Runs `$body` with `$pool` bound to the concrete pool and `q` to its driver's
/// query module, so a query is written once and compiled for every driver; a
/// transient error runs it once more.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {{
        let mut retried = false;
        loop {
            let result = match $db {
                $crate::db::Db::Sqlite($pool) => {
                    #[allow(unused_imports)]
                    use $crate::db::dialect::sqlite as q;
                    $body
                }
                $crate::db::Db::Postgres($pool) => {
                    #[allow(unused_imports)]
                    use $crate::db::dialect::postgres as q;
                    $body
                }
                $crate::db::Db::Mysql($pool) => {
                    #[allow(unused_imports)]
                    use $crate::db::dialect::mysql as q;
                    $body
                }
            };
            match result {
                Err(err) if !retried && $crate::db::dialect::is_transient(&err) => {
                    retried = true;
                    tracing::debug!(error = %err, "transient database error: once more");
                }
                done => break done,
            }
        }
    }};
}
pub(crate) use on_pool;

/// Runs `$body` with `$conn` bound to the transaction's connection and `q` to
/// its driver's query module. No retry: a transient error ends the transaction,
/// and only its owner can run it again.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                #[allow(unused_imports)]
                use $crate::db::dialect::sqlite as q;
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                #[allow(unused_imports)]
                use $crate::db::dialect::postgres as q;
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Mysql(tx) => {
                #[allow(unused_imports)]
                use $crate::db::dialect::mysql as q;
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// Errors a second try may not meet: a serialization failure or deadlock
/// (SQLSTATE 40001, which MySQL reports for its deadlock 1213 too; PostgreSQL's
/// 40P01), MySQL's lock wait timeout (1205, a generic SQLSTATE, so told by its
/// number), SQLite busy or locked (5, 6 and their extended codes).
pub fn is_transient(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(mysql.number(), 1213 | 1205);
    }
    matches!(
        db.code().as_deref(),
        Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517")
    )
}

/// `insert` (an `INSERT INTO … VALUES …`) skipping a row whose `key` is taken
/// already: `ON CONFLICT (key) DO NOTHING`, on MySQL `INSERT IGNORE`.
pub fn insert_ignore(db: Dialect, insert: &str, key: &str) -> String {
    match insert.strip_prefix("INSERT INTO ") {
        Some(rest) if db.mysql => format!("INSERT IGNORE INTO {rest}"),
        _ => format!("{insert} ON CONFLICT ({key}) DO NOTHING"),
    }
}

/// `insert` (an `INSERT INTO table …`), or when `key` is taken, the row updated
/// by `set`: pairs of a column and its new value, written as PostgreSQL does
/// (`excluded.col` the value the insert brought, `table.col` the row's own).
/// MySQL's `ON DUPLICATE KEY UPDATE` gets `VALUES(col)` and bare `col`, and
/// assigns in the order given, each seeing the ones before: a value that reads a
/// column `set` changes must come before that column's own pair.
pub fn upsert(db: Dialect, insert: &str, key: &str, set: &[(&str, &str)]) -> String {
    let table = insert
        .strip_prefix("INSERT INTO ")
        .and_then(|rest| rest.split([' ', '(']).next())
        .unwrap_or_default();
    let assignments: Vec<String> = set
        .iter()
        .map(|(column, value)| match db.mysql {
            true => format!("{column} = {}", mysql_values(value, table)),
            false => format!("{column} = {value}"),
        })
        .collect();
    match db.mysql {
        true => format!(
            "{insert} ON DUPLICATE KEY UPDATE {}",
            assignments.join(", ")
        ),
        false => format!(
            "{insert} ON CONFLICT ({key}) DO UPDATE SET {}",
            assignments.join(", ")
        ),
    }
}

/// `excluded.col` → `VALUES(col)`, `table.col` → `col`.
fn mysql_values(value: &str, table: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    let own = format!("{table}.");
    while !rest.is_empty() {
        let at_word_start = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if at_word_start && rest.starts_with("excluded.") {
            let column = &rest["excluded.".len()..];
            let end = column
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(column.len());
            out.push_str(&format!("VALUES({})", &column[..end]));
            rest = &column[end..];
        } else if at_word_start && rest.starts_with(&own) {
            rest = &rest[own.len()..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Which dialect a statement is written for: what [`Db`] and [`Tx`] say.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    mysql: bool,
    postgres: bool,
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        Dialect {
            mysql: matches!(self, Db::Mysql(_)),
            postgres: matches!(self, Db::Postgres(_)),
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        Dialect {
            mysql: matches!(self, Tx::Mysql(_)),
            postgres: matches!(self, Tx::Postgres(_)),
        }
    }
}

impl Dialect {
    pub const POSTGRES: Dialect = Dialect {
        mysql: false,
        postgres: true,
    };

    /// `column` of a table Laravel may have made, read as a signed integer
    /// (Laravel's ids are unsigned on MySQL), named `column` in the result.
    pub fn signed_id(self, column: &str) -> String {
        match self.mysql {
            true => format!("CAST({column} AS SIGNED) AS {column}"),
            false => column.to_string(),
        }
    }

    /// A column named by configuration (letters, digits, underscores only), quoted
    /// so a reserved word is still a column.
    pub fn quoted(self, column: &str) -> String {
        debug_assert!(
            column
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        );
        match self.mysql {
            true => format!("`{column}`"),
            false => format!("\"{column}\""),
        }
    }

    /// `column`, one of Laravel's timestamps, read as a time with a zone: on
    /// PostgreSQL a database a Laravel app made has `timestamp without time zone`
    /// (UTC, as Laravel writes them).
    pub fn laravel_time(self, column: &str) -> String {
        match self.postgres {
            true => format!("{column}::timestamptz AS {column}"),
            false => column.to_string(),
        }
    }

    /// What ends a `SELECT` that locks the rows it reads until the transaction
    /// ends: `FOR UPDATE`; nothing on SQLite, whose writer holds the database.
    pub fn for_update(self) -> &'static str {
        match self.mysql || self.postgres {
            true => " FOR UPDATE",
            false => "",
        }
    }

    /// A column of any type, read as text.
    pub fn as_text(self, expression: &str) -> String {
        match self.mysql {
            true => format!("CAST({expression} AS CHAR)"),
            false => format!("CAST({expression} AS TEXT)"),
        }
    }
}

/// Runs `insert` (an `INSERT` into a table with an `id` key) and returns the new
/// row's id: `RETURNING id`, on MySQL the connection's last insert id.
pub async fn insert_returning_id(db: &Db, insert: Stmt<'_>) -> Result<i64, sqlx::Error> {
    if let Db::Mysql(pool) = db {
        let done = insert.mysql().execute(pool).await?;
        return i64::try_from(done.last_insert_id())
            .map_err(|_| sqlx::Error::Protocol("an id beyond i64".into()));
    }
    let insert = insert.with_suffix(" RETURNING id");
    on_pool!(db, pool => insert.bind_to(q::query_scalar(insert.sql())).fetch_one(pool).await)
}

/// Runs `update`, which takes at most one row, and returns that row's `returning`
/// columns: `UPDATE … RETURNING`, on MySQL the update and then `read` (a `SELECT`
/// of the same columns of the same row) in one transaction, under the update's
/// row lock. `None` when no row was updated.
pub async fn update_returning<O>(
    db: &Db,
    update: Stmt<'_>,
    returning: &str,
    read: Stmt<'_>,
) -> Result<Option<O>, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    write_returning(db, update, returning, read, WhenRead::OneRowWritten).await
}

/// When MySQL reads back what a statement wrote.
#[derive(PartialEq)]
enum WhenRead {
    OneRowWritten,
    Always,
}

/// `write` with `RETURNING`, on MySQL `write` then `read` in one transaction.
async fn write_returning<O>(
    db: &Db,
    write: Stmt<'_>,
    returning: &str,
    read: Stmt<'_>,
    when: WhenRead,
) -> Result<Option<O>, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    if let Db::Mysql(pool) = db {
        let mut tx = pool.begin().await?;
        let written = write.mysql().execute(&mut *tx).await?.rows_affected();
        let row = match when == WhenRead::Always || written == 1 {
            true => Some(read.mysql_as().fetch_one(&mut *tx).await?),
            false => None,
        };
        tx.commit().await?;
        return Ok(row);
    }
    let write = write.with_suffix(&format!(" RETURNING {returning}"));
    on_pool!(db, pool => write.bind_to(q::query_as(write.sql())).fetch_optional(pool).await)
}

/// As [`update_returning`], inside a transaction, for an update that may take
/// several rows and returns the first: on MySQL, `lock` (a `SELECT … FOR UPDATE`
/// of the `returning` columns of the rows `update` takes) first, then the update
/// when it found one.
pub async fn update_returning_in<O>(
    tx: &mut Tx,
    update: Stmt<'_>,
    returning: &str,
    lock: Stmt<'_>,
) -> Result<Option<O>, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    if let Tx::Mysql(tx) = tx {
        let found: Option<O> = lock.mysql_as().fetch_optional(&mut **tx).await?;
        if found.is_some() {
            update.mysql().execute(&mut **tx).await?;
        }
        return Ok(found);
    }
    let update = update.with_suffix(&format!(" RETURNING {returning}"));
    on_tx!(tx, conn => update.bind_to(q::query_as(update.sql())).fetch_optional(conn).await)
}

/// Runs `statement` inside a transaction; returns the rows it took.
pub async fn execute_in(tx: &mut Tx, statement: &Stmt<'_>) -> Result<u64, sqlx::Error> {
    on_tx!(tx, conn => statement
        .bind_to(q::query(statement.sql()))
        .execute(conn)
        .await
        .map(|done| done.rows_affected()))
}

/// Where a write runs: in a transaction, or on the pool as a statement of its
/// own (`&Db`; one round trip, where a transaction of one statement takes three).
pub trait Execute: Send {
    fn dialect(&self) -> Dialect;

    /// Runs `statement`; returns the rows it took.
    fn execute(
        &mut self,
        statement: &Stmt<'_>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

impl Execute for Tx {
    fn dialect(&self) -> Dialect {
        Tx::dialect(self)
    }

    fn execute(
        &mut self,
        statement: &Stmt<'_>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send {
        execute_in(self, statement)
    }
}

impl Execute for &Db {
    fn dialect(&self) -> Dialect {
        Db::dialect(self)
    }

    async fn execute(&mut self, statement: &Stmt<'_>) -> Result<u64, sqlx::Error> {
        let db: &Db = self;
        on_pool!(db, pool => statement
            .bind_to(q::query(statement.sql()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
    }
}

/// Runs `upsert` (made by [`upsert`]) and returns the row's `returning` columns:
/// `RETURNING`, on MySQL `read` (a `SELECT` of them) in the same transaction.
pub async fn upsert_returning<O>(
    db: &Db,
    upsert: Stmt<'_>,
    returning: &str,
    read: Stmt<'_>,
) -> Result<O, sqlx::Error>
where
    O: statement::FromEveryRow,
{
    write_returning(db, upsert, returning, read, WhenRead::Always)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

#[cfg(test)]
mod tests;
