//! Adopting a database a Laravel app made: `migrate` on a database whose `users`
//! table this app did not create adds only what is missing — Cashier's columns
//! if absent, ours, our own tables — with the types Laravel and Cashier use, and
//! never drops, renames, retypes or rewrites anything it did not create.
//!
//! The migrations whose work adoption does (they create or reshape `users`, or
//! made job postings under the name `jobs`, Laravel's queue table) are recorded as
//! applied without running; the rest run as anywhere else, and a later migration
//! creates the job-posting tables where they are missing. A second `migrate` finds
//! the database its own and changes nothing.

use sqlx::migrate::{Migrate as _, Migrator};

use super::dialect::catalog::{columns, mysql_index_exists, table_exists};
use super::{Db, Tx, on_tx};

/// The migration that first created `users`: recorded means the database is ours.
const FIRST_MIGRATION: i64 = 20261128000001;

/// Recorded without running on an adopted database (see the module's comment).
const DONE_BY_ADOPTION: &[i64] = &[
    20261128000001, // users
    20261128000003, // job postings and payments, under the name `jobs`
    20261129000002, // users: lease holders
    20261129000003, // job_checkout_sessions, referencing `jobs`
    20261129000004, // users: customer event order
    20261129000006, // users: Laravel's names
    20261129000007, // jobs renamed to job_postings
];

/// What Laravel's `users` must have for this app to work on it.
const LARAVEL_COLUMNS: &[&str] = &["id", "name", "email", "password"];

/// A column adoption adds when it is missing: its type on SQLite, PostgreSQL and
/// MySQL (Laravel's and Cashier's types for their columns, ours for ours).
struct Column {
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    mysql: &'static str,
}

const fn column(
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
    mysql: &'static str,
) -> Column {
    Column {
        name,
        sqlite,
        postgres,
        mysql,
    }
}

impl Column {
    fn type_on(&self, db: &Db) -> &'static str {
        match db {
            Db::Sqlite(_) => self.sqlite,
            Db::Postgres(_) => self.postgres,
            Db::Mysql(_) => self.mysql,
        }
    }
}

const LARAVEL_TIMESTAMP: &str = "timestamp(0) without time zone NULL";

/// Every `users` column the app reads or writes besides Laravel's own four.
const USER_COLUMNS: &[Column] = &[
    // Laravel 11's
    column(
        "email_verified_at",
        "datetime NULL",
        LARAVEL_TIMESTAMP,
        "timestamp NULL",
    ),
    column(
        "remember_token",
        "varchar NULL",
        "varchar(100) NULL",
        "varchar(100) NULL",
    ),
    column(
        "created_at",
        "datetime NULL",
        LARAVEL_TIMESTAMP,
        "timestamp NULL",
    ),
    column(
        "updated_at",
        "datetime NULL",
        LARAVEL_TIMESTAMP,
        "timestamp NULL",
    ),
    // Cashier 15's
    column(
        "stripe_id",
        "varchar NULL",
        "varchar(255) NULL",
        "varchar(255) NULL",
    ),
    column(
        "pm_type",
        "varchar NULL",
        "varchar(255) NULL",
        "varchar(255) NULL",
    ),
    column(
        "pm_last_four",
        "varchar NULL",
        "varchar(4) NULL",
        "varchar(4) NULL",
    ),
    column(
        "trial_ends_at",
        "datetime NULL",
        LARAVEL_TIMESTAMP,
        "timestamp NULL",
    ),
    // stripe-sync's
    column("stripe_snapshot", "TEXT NULL", "TEXT NULL", "TEXT NULL"),
    column(
        "stripe_snapshot_at",
        "TEXT NULL",
        "TIMESTAMPTZ NULL",
        "DATETIME(6) NULL",
    ),
    column("stripe_create_key", "TEXT NULL", "TEXT NULL", "TEXT NULL"),
    column(
        "stripe_create_params",
        "TEXT NULL",
        "TEXT NULL",
        "TEXT NULL",
    ),
    column(
        "stripe_lease_holder",
        "VARCHAR(64) NULL",
        "VARCHAR(64) NULL",
        "VARCHAR(64) NULL",
    ),
    column(
        "stripe_lease_expires",
        "BIGINT NULL",
        "BIGINT NULL",
        "BIGINT NULL",
    ),
    column("stripe_synced_hash", "TEXT NULL", "TEXT NULL", "TEXT NULL"),
    column(
        "stripe_synced_at",
        "TEXT NULL",
        "TIMESTAMPTZ NULL",
        "DATETIME(6) NULL",
    ),
    column(
        "stripe_event_created",
        "BIGINT NULL",
        "BIGINT NULL",
        "BIGINT NULL",
    ),
];

/// The app's own tables and the columns it needs of each: one that exists
/// already (a `payments` table of the Laravel app's own, say) must have them all.
const OWN_TABLES: &[(&str, &[&str])] = &[
    (
        "payments",
        &[
            "id",
            "user_id",
            "job_id",
            "checkout_session_id",
            "payment_intent_id",
            "amount",
            "currency",
            "status",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "job_postings",
        &[
            "id",
            "user_id",
            "form_token",
            "title",
            "company",
            "description",
            "fee_amount",
            "fee_currency",
            "status",
            "checkout_attempt",
            "checkout_session_id",
            "checkout_url",
            "published_at",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "job_checkout_sessions",
        &["session_id", "job_id", "attempt", "created_at"],
    ),
    ("stripe_events", &["id", "type", "created", "processed_at"]),
    ("rate_limits", &["bucket", "hits", "reset_at"]),
    (
        "stripe_event_checkpoints",
        &["name", "event_id", "event_created", "updated_at"],
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(
        "the users table was not made by stripe-sync and is not Laravel's: it has no {0} \
         column(s); nothing was changed"
    )]
    NotLaravel(String),
    #[error(
        "a {table} table exists already without the column(s) stripe-sync needs: {missing}; \
         nothing was changed (rename that table, or point DATABASE_URL elsewhere)"
    )]
    TableConflict { table: String, missing: String },
    #[error(
        "users.stripe_id holds the same customer id for more than one user ({0}); stripe-sync \
         needs one user per customer: clear the extra links first. Nothing was changed"
    )]
    DuplicateStripeIds(String),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// What `prepare` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// A fresh database, or one the app made: the migrations do everything.
    NotNeeded,
    /// Another app's `users` table: what was missing has been added.
    Adopted,
}

/// Run before the migrations: adopts a database whose `users` table another
/// app (Laravel) made. Checks everything first and changes nothing when a check
/// fails; otherwise adds what is missing in one transaction.
pub async fn prepare(db: &Db, migrator: &Migrator) -> Result<Adoption, AdoptError> {
    if !table_exists(db, "users").await? || is_ours(db).await? {
        return Ok(Adoption::NotNeeded);
    }
    let users = columns(db, "users").await?;
    let missing: Vec<&str> = LARAVEL_COLUMNS
        .iter()
        .copied()
        .filter(|needed| !users.iter().any(|c| c == needed))
        .collect();
    if !missing.is_empty() {
        return Err(AdoptError::NotLaravel(missing.join(", ")));
    }
    for (table, needed) in OWN_TABLES {
        if !table_exists(db, table).await? {
            continue;
        }
        let have = columns(db, table).await?;
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|needed| !have.iter().any(|c| c == needed))
            .collect();
        if !missing.is_empty() {
            return Err(AdoptError::TableConflict {
                table: (*table).to_string(),
                missing: missing.join(", "),
            });
        }
    }
    if users.iter().any(|c| c == "stripe_id") {
        let duplicates = duplicate_stripe_ids(db).await?;
        if !duplicates.is_empty() {
            return Err(AdoptError::DuplicateStripeIds(duplicates.join(", ")));
        }
    }

    let missing: Vec<&Column> = USER_COLUMNS
        .iter()
        .filter(|column| !users.iter().any(|c| c == column.name))
        .collect();
    let mut tx = db.begin().await?;
    for sql in users_changes(db, &missing).await? {
        on_tx!(&mut tx, conn => q::query(&sql).execute(conn).await.map(drop))?;
    }
    record_done_by_adoption(&mut tx, migrator).await?;
    tx.commit().await?;
    tracing::info!(
        added = missing.len(),
        "adopted a database another app made: missing users columns added"
    );
    Ok(Adoption::Adopted)
}

/// The statements that add the `missing` columns to `users` and the unique index
/// on `stripe_id` (Cashier's index allows a customer twice; the app needs one
/// user per customer). On MySQL, where DDL cannot be part of a transaction, one
/// `ALTER TABLE`, which applies whole or not at all; a unique index there lets any
/// number of rows be NULL, and has no `IF NOT EXISTS`.
async fn users_changes(db: &Db, missing: &[&Column]) -> Result<Vec<String>, sqlx::Error> {
    let add = |column: &Column| format!("ADD COLUMN {} {}", column.name, column.type_on(db));
    let Db::Mysql(pool) = db else {
        let mut changes: Vec<String> = missing
            .iter()
            .map(|column| format!("ALTER TABLE users {}", add(column)))
            .collect();
        changes.push(
            "CREATE UNIQUE INDEX IF NOT EXISTS users_stripe_id_unique \
             ON users (stripe_id) WHERE stripe_id IS NOT NULL"
                .to_string(),
        );
        return Ok(changes);
    };
    let mut parts: Vec<String> = missing.iter().map(|column| add(column)).collect();
    if !mysql_index_exists(pool, "users", "users_stripe_id_unique").await? {
        parts.push("ADD UNIQUE INDEX users_stripe_id_unique (stripe_id)".to_string());
    }
    Ok(match parts.is_empty() {
        true => Vec::new(),
        false => vec![format!("ALTER TABLE users {}", parts.join(", "))],
    })
}

/// Whether the database is a Laravel app's (its `migrations` table is there), so
/// new passwords default to the bcrypt Laravel writes.
pub async fn is_laravel(db: &Db) -> Result<bool, sqlx::Error> {
    table_exists(db, "migrations").await
}

async fn is_ours(db: &Db) -> Result<bool, sqlx::Error> {
    if !table_exists(db, "_sqlx_migrations").await? {
        return Ok(false);
    }
    const SQL: &str = "SELECT COUNT(*) FROM _sqlx_migrations WHERE version = $1";
    let count: i64 = super::on_pool!(db, pool => q::query_scalar(SQL).bind(FIRST_MIGRATION).fetch_one(pool).await)?;
    Ok(count > 0)
}

async fn duplicate_stripe_ids(db: &Db) -> Result<Vec<String>, sqlx::Error> {
    const SQL: &str = "SELECT stripe_id FROM users WHERE stripe_id IS NOT NULL \
        GROUP BY stripe_id HAVING COUNT(*) > 1 ORDER BY stripe_id LIMIT 5";
    super::on_pool!(db, pool => q::query_scalar(SQL).fetch_all(pool).await)
}

/// Records the migrations adoption stands in for as applied, with the checksums
/// the migrator will check them against.
async fn record_done_by_adoption(tx: &mut Tx, migrator: &Migrator) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => conn.ensure_migrations_table().await.map_err(migrate_error))?;
    const SQL: &str = "INSERT INTO _sqlx_migrations \
        (version, description, success, checksum, execution_time) VALUES ($1, $2, TRUE, $3, 0)";
    for migration in migrator
        .iter()
        .filter(|m| DONE_BY_ADOPTION.contains(&m.version))
    {
        let description = format!("{} (adopted)", migration.description);
        on_tx!(tx, conn => q::query(SQL)
            .bind(migration.version)
            .bind(&description)
            .bind(&migration.checksum[..])
            .execute(conn)
            .await
            .map(drop))?;
    }
    Ok(())
}

fn migrate_error(err: sqlx::migrate::MigrateError) -> sqlx::Error {
    match err {
        sqlx::migrate::MigrateError::Execute(err) => err,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}
