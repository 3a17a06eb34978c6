//! What the database says of its own tables: each driver's catalog asked the
//! same questions.

use super::mysql as q;
use crate::db::Db;

/// Whether the table exists (in the current schema on PostgreSQL, the current
/// database on MySQL).
pub async fn table_exists(db: &Db, table: &str) -> Result<bool, sqlx::Error> {
    let count: i64 = match db {
        Db::Sqlite(pool) => {
            super::sqlite::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            )
            .bind(table)
            .fetch_one(pool)
            .await?
        }
        Db::Postgres(pool) => {
            super::postgres::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_one(pool)
            .await?
        }
        Db::Mysql(pool) => {
            q::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = $1",
            )
            .bind(table)
            .fetch_one(pool)
            .await?
        }
    };
    Ok(count > 0)
}

/// Whether the table has an index of that name (the other databases can say
/// `IF NOT EXISTS` instead).
pub async fn mysql_index_exists(
    pool: &sqlx::MySqlPool,
    table: &str,
    index: &str,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM information_schema.statistics \
        WHERE table_schema = DATABASE() AND table_name = $1 AND index_name = $2";
    let count: i64 = q::query_scalar(SQL)
        .bind(table)
        .bind(index)
        .fetch_one(pool)
        .await?;
    Ok(count > 0)
}

/// The table's column names, in no particular order.
pub async fn columns(db: &Db, table: &str) -> Result<Vec<String>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            super::sqlite::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            super::postgres::query_scalar(
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await
        }
        Db::Mysql(pool) => {
            q::query_scalar(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await
        }
    }
}

/// The table's columns and their types as the catalog names them (lower case).
pub async fn column_types(db: &Db, table: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            super::sqlite::query_as("SELECT name, lower(type) FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(pool)
                .await
        }
        Db::Postgres(pool) => {
            super::postgres::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await
        }
        Db::Mysql(pool) => {
            q::query_as(
                "SELECT CAST(column_name AS CHAR), CAST(LOWER(data_type) AS CHAR) \
                 FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await
        }
    }
}

/// Whether a column of that catalog type holds text.
pub fn is_text_type(type_: &str) -> bool {
    let type_ = type_.to_ascii_lowercase();
    type_.is_empty()
        || ["char", "text", "clob", "citext"]
            .iter()
            .any(|word| type_.contains(word))
}
