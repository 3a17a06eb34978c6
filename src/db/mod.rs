//! The database: one pool type chosen at start (SQLite or PostgreSQL) and one file
//! per table. Every query is written once, in portable SQL, and run on whichever
//! pool is configured through [`on_pool!`].

pub mod adopt;
pub mod checkpoints;
pub mod events;
pub mod jobs;
pub mod payments;
pub mod rate_limits;
mod session_store;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use session_store::SessionStore;

/// Runs `$body` with `$pool` bound to the concrete pool, so a query is written once
/// and compiled for both drivers.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Runs `$body` with `$conn` bound to the transaction's connection.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::db::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// A transaction on whichever database is configured.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }
}

/// The databases the app has a driver for, told apart by the URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DbKind::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else {
            None
        }
    }
}

/// Connections per pool unless a command asks for more.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connects to `sqlite://...` (creating the file and its folder when missing) or
    /// `postgres://...`; any other scheme is refused.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// As [`Db::connect`], with a pool of at most `max_connections` (a bulk run
    /// sizes it to its workers, so they do not queue for connections).
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        match DbKind::from_url(url) {
            Some(DbKind::Postgres) => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Ok(Db::Postgres(pool))
            }
            Some(DbKind::Sqlite) => Self::connect_sqlite(url, max_connections).await,
            None => Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into(),
            )),
        }
    }

    async fn connect_sqlite(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Applies the app's migrations and the session table, adopting first a
    /// database whose `users` table a Laravel app made (see [`adopt`]).
    pub async fn migrate(&self) -> Result<adopt::Adoption, adopt::AdoptError> {
        let migrator = self.migrator();
        let adoption = adopt::prepare(self, migrator).await?;
        let applied = match self {
            Db::Sqlite(pool) => migrator.run(pool).await,
            Db::Postgres(pool) => migrator.run(pool).await,
        };
        applied.map_err(|err| match err {
            sqlx::migrate::MigrateError::Execute(err) => adopt::AdoptError::Sql(err),
            other => adopt::AdoptError::Sql(sqlx::Error::Migrate(Box::new(other))),
        })?;
        self.session_store().migrate().await?;
        Ok(adoption)
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
        static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
        match self {
            Db::Sqlite(_) => &SQLITE,
            Db::Postgres(_) => &POSTGRES,
        }
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Whether the database answers a trivial query within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let ping = async {
            on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
        };
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(())))
    }

    pub fn session_store(&self) -> SessionStore {
        SessionStore::new(self)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}

/// A time in a column Laravel owns (`users.created_at`, `updated_at`, …): on
/// SQLite written as Laravel writes it (`Y-m-d H:i:s`, UTC), so an Eloquent model
/// reads back what this app wrote; elsewhere the database's own timestamp.
#[derive(Debug, Clone, Copy)]
pub struct LaravelTime(pub time::OffsetDateTime);

impl sqlx::Type<sqlx::Sqlite> for LaravelTime {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for LaravelTime {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        let format =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let text = self.0.to_offset(time::UtcOffset::UTC).format(&format)?;
        <String as sqlx::Encode<'q, sqlx::Sqlite>>::encode(text, buf)
    }
}

impl sqlx::Type<sqlx::Postgres> for LaravelTime {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <time::OffsetDateTime as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, sqlx::Postgres> for LaravelTime {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <time::OffsetDateTime as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// Whether an error is a unique-constraint violation (e.g. an email already taken).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
