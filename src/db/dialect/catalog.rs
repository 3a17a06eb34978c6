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
    let facts = column_facts(db, table).await?;
    Ok(facts.into_iter().map(|column| column.name).collect())
}

/// What the catalog says of one column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnFacts {
    pub name: String,
    /// Its type as the catalog names it, lower case (`character varying`, `varchar(40)`).
    pub type_: String,
    pub nullable: bool,
    /// The most characters it takes, where the database enforces one.
    pub max_chars: Option<i64>,
}

/// The table's columns as the catalog describes them, in no particular order.
pub async fn column_facts(db: &Db, table: &str) -> Result<Vec<ColumnFacts>, sqlx::Error> {
    type Row = (String, String, String, Option<i64>);
    let rows: Vec<Row> = match db {
        Db::Sqlite(pool) => {
            // SQLite enforces no length.
            super::sqlite::query_as(
                "SELECT name, lower(type), CASE WHEN \"notnull\" = 0 THEN 'YES' ELSE 'NO' END, \
                 NULL FROM pragma_table_info($1)",
            )
            .bind(table)
            .fetch_all(pool)
            .await?
        }
        Db::Postgres(pool) => {
            super::postgres::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT), \
                 CAST(is_nullable AS TEXT), CAST(character_maximum_length AS BIGINT) \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await?
        }
        Db::Mysql(pool) => {
            q::query_as(
                "SELECT CAST(column_name AS CHAR), CAST(LOWER(data_type) AS CHAR), \
                 CAST(is_nullable AS CHAR), CAST(character_maximum_length AS SIGNED) \
                 FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = $1",
            )
            .bind(table)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(name, type_, nullable, max_chars)| ColumnFacts {
            name,
            type_: type_.to_ascii_lowercase(),
            nullable: nullable.eq_ignore_ascii_case("YES"),
            max_chars,
        })
        .collect())
}

/// Whether a column of that catalog type holds text.
pub fn is_text_type(type_: &str) -> bool {
    let type_ = type_.to_ascii_lowercase();
    type_.is_empty()
        || ["char", "text", "clob", "citext"]
            .iter()
            .any(|word| type_.contains(word))
}
