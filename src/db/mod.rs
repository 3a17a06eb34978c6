//! The database: one pool type chosen at start (SQLite, PostgreSQL or MySQL/MariaDB)
//! and one file per table. Every query is written once, in portable SQL with
//! numbered placeholders, and run on whichever pool is configured through
//! [`on_pool!`]; what a dialect lacks (MySQL has no `RETURNING` and no
//! `ON CONFLICT`) is a named function of [`dialect`], the one place that knows.

pub mod adopt;
pub mod checkpoints;
pub mod dialect;
pub mod events;
pub mod group;
pub mod jobs;
pub mod migrations;
pub mod password_resets;
pub mod payments;
pub mod rate_limits;
pub mod runs;
mod session_store;
pub mod subscriptions;
pub mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlPool};
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

pub use session_store::SessionStore;

pub(crate) use dialect::{on_pool, on_tx};

/// A transaction on whichever database is configured.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Mysql(sqlx::Transaction<'static, MySql>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Mysql(tx) => tx.commit().await,
        }
    }

    /// Ends the transaction undone, now (a dropped one is rolled back too, but
    /// only when its connection is next used).
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
            Tx::Mysql(tx) => tx.rollback().await,
        }
    }
}

/// The databases the app has a driver for, told apart by the URL's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
    Mysql,
}

impl DbKind {
    /// The database's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Sqlite => "SQLite",
            DbKind::Postgres => "PostgreSQL",
            DbKind::Mysql => "MySQL",
        }
    }

    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(DbKind::Postgres)
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Some(DbKind::Mysql)
        } else if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else {
            None
        }
    }
}

/// How long a connection may sit in the pool and still be handed out untested.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A pool of at most `max_connections`. sqlx 0.8 pings every connection as it
/// goes back to the pool, and by default again as it is taken out: two round
/// trips around each use, a third of a webhook's on PostgreSQL. A connection
/// back for less than [`IDLE_BEFORE_PING`] was answering then and is handed out
/// as it is (sqlx's own example of `before_acquire`); one idle longer is pinged,
/// so a connection the server ended meanwhile is dropped, not used.
fn pool_options<DB: sqlx::Database>(max_connections: u32) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(max_connections)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= IDLE_BEFORE_PING {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Connections per pool unless a command asks for more.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// The schemes `DATABASE_URL` may have, for messages that refuse another.
pub const URL_SCHEMES: &str = "sqlite:, postgres://, postgresql://, mysql:// or mariadb://";

impl Db {
    /// Connects to `sqlite://...` (creating the file and its folder when missing),
    /// `postgres://...` or `mysql://...`; any other scheme is refused.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        Self::connect_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// As [`Db::connect`], with a pool of at most `max_connections` (a bulk run
    /// sizes it to its workers, so they do not queue for connections).
    pub async fn connect_with(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let kind = check_url(url).map_err(|problem| sqlx::Error::Configuration(problem.into()))?;
        match kind {
            DbKind::Postgres => {
                let pool = pool_options::<sqlx::Postgres>(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                Ok(Db::Postgres(pool))
            }
            DbKind::Mysql => {
                // The URL's user, host and database; sqlx's connection also sets
                // the session's time zone to UTC, the zone every time is kept in.
                let url = url.replacen("mariadb://", "mysql://", 1);
                let options = MySqlConnectOptions::from_str(&url)?.charset("utf8mb4");
                let pool = pool_options::<MySql>(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Db::Mysql(pool))
            }
            DbKind::Sqlite => Self::connect_sqlite(url, max_connections).await,
        }
    }

    /// Opens (or creates, readable by this user only) the SQLite file. Only the
    /// default folder, `storage/`, is made when missing: any other missing folder
    /// is a typo to report, not a path to create. A URL with user info is refused
    /// (SQLite has no users; a password there would become a folder name).
    async fn connect_sqlite(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL's usual pairing (Rails 8, Litestream): a commit is written to
            // the log without waiting for the disk, which syncs at checkpoints. A
            // crash of the process loses nothing; a power loss can lose the last
            // commits. A bulk run's rerun redoes them (a create's lease and
            // idempotency key find the customer Stripe made), and
            // `stripe:replay-events` brings back events acknowledged meanwhile
            // (README "SQLite and the disk").
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = options.get_filename().to_path_buf();
        if !sqlite_in_memory(url) {
            if let Some(parent) = file
                .parent()
                .filter(|p| p == &Path::new(DEFAULT_SQLITE_FOLDER))
            {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
            create_private(&file).map_err(sqlx::Error::Io)?;
        }
        let pool = pool_options::<sqlx::Sqlite>(max_connections)
            .connect_with(options)
            .await?;
        Ok(Db::Sqlite(pool))
    }

    /// Applies the app's migrations and the session table, adopting first a
    /// database whose `users` table a Laravel app made (see [`adopt`]). A
    /// database a newer release has migrated further is served as it is (each
    /// release reads and writes the schema of the one before it): one WARN
    /// names the newest migration this release knows and the newest applied.
    pub async fn migrate(&self) -> Result<adopt::Adoption, adopt::AdoptError> {
        let _only_us = migrations::MigrationLock::acquire(self).await?;
        let migrator = migrations::lenient(self);
        let adoption = adopt::prepare(self, &migrator).await?;
        let applied = match self {
            Db::Sqlite(pool) => migrator.run(pool).await,
            Db::Postgres(pool) => migrator.run(pool).await,
            Db::Mysql(pool) => migrator.run(pool).await,
        };
        applied.map_err(|err| match err {
            sqlx::migrate::MigrateError::Execute(err) => adopt::AdoptError::Sql(err),
            other => adopt::AdoptError::Sql(sqlx::Error::Migrate(Box::new(other))),
        })?;
        self.session_store().migrate().await?;
        let schema = migrations::Schema::read(self).await?;
        if let Some(found) = schema.newer_than_release() {
            tracing::warn!(
                known = schema.known_newest(),
                found,
                "the database holds migrations newer than this release knows (a newer \
                 release migrated it): serving on it as it is"
            );
        }
        Ok(adoption)
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::Mysql(pool) => Tx::Mysql(pool.begin().await?),
        })
    }

    /// Whether the database answers a trivial query within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let ping =
            async { on_pool!(self, pool => q::query("SELECT 1").execute(pool).await.map(|_| ())) };
        matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(())))
    }

    /// The pool's connections now: open in all, and of those idle.
    pub fn connections(&self) -> (u32, usize) {
        match self {
            Db::Sqlite(pool) => (pool.size(), pool.num_idle()),
            Db::Postgres(pool) => (pool.size(), pool.num_idle()),
            Db::Mysql(pool) => (pool.size(), pool.num_idle()),
        }
    }

    pub fn session_store(&self) -> SessionStore {
        SessionStore::new(self)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
            Db::Mysql(_) => "mysql",
        }
    }
}

/// The folder of the default SQLite file, made on first start.
const DEFAULT_SQLITE_FOLDER: &str = "storage";

/// `sqlite://user:password@/path`: SQLite URLs carry no user info.
/// Whether `DATABASE_URL` can be used, read without connecting or writing
/// anything: its scheme, its form, a MySQL database's name, a SQLite file's
/// folder (only the default `storage/` is made when missing: any other missing
/// folder is a typo to report). The reason never quotes the URL, which may
/// hold a password.
pub fn check_url(url: &str) -> Result<DbKind, String> {
    let kind = DbKind::from_url(url)
        .ok_or_else(|| format!("DATABASE_URL must start with {URL_SCHEMES}"))?;
    let unreadable = || format!("DATABASE_URL cannot be read as a {} URL", kind.name());
    match kind {
        DbKind::Postgres => {
            sqlx::postgres::PgConnectOptions::from_str(url).map_err(|_| unreadable())?;
        }
        DbKind::Mysql => {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let options = MySqlConnectOptions::from_str(&url).map_err(|_| unreadable())?;
            if !options.get_database().is_some_and(is_plain_identifier) {
                return Err(
                    "a mysql:// DATABASE_URL must name its database (letters, digits \
                     and _), as in mysql://user@host:3306/laravel"
                        .into(),
                );
            }
        }
        DbKind::Sqlite => {
            // SQLite has no users; a password there would become a folder name.
            if sqlite_has_user_info(url) {
                return Err(
                    "a sqlite: DATABASE_URL takes no user or password (SQLite has no \
                     users): write it as sqlite://path/to/file.db"
                        .into(),
                );
            }
            let options = SqliteConnectOptions::from_str(url).map_err(|_| unreadable())?;
            let file = options.get_filename();
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
                && !sqlite_in_memory(url)
                && parent != Path::new(DEFAULT_SQLITE_FOLDER)
                && !parent.is_dir()
            {
                return Err(format!(
                    "the folder of the SQLite file does not exist: {} (only the default \
                     storage/ is created)",
                    parent.display()
                ));
            }
        }
    }
    Ok(kind)
}

/// A database in memory has no file (sqlx names it `file:sqlx-in-memory-N`,
/// which must not become one in the working folder).
fn sqlite_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

fn sqlite_has_user_info(url: &str) -> bool {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    authority.contains('@')
}

/// Creates the database file readable and writable by this user only (it holds
/// password hashes and sessions); SQLite gives its `-wal` and `-shm` files the
/// same mode. An existing file is left as it is.
fn create_private(file: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Whether a MySQL database name is one the session store takes as its schema
/// (sessions live in the app's own database): letters, digits, `_` and `$`, not
/// starting with a digit.
fn is_plain_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphabetic() || c.is_ascii_digit() || c == '_' || c == '$')
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

impl sqlx::Type<MySql> for LaravelTime {
    fn type_info() -> sqlx::mysql::MySqlTypeInfo {
        <time::OffsetDateTime as sqlx::Type<MySql>>::type_info()
    }
}

/// Whole seconds, as Laravel writes: MySQL would round a fraction into Laravel's
/// `timestamp` columns rather than drop it.
impl sqlx::Encode<'_, MySql> for LaravelTime {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<u8>,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        let whole = self.0.replace_nanosecond(0)?;
        <time::OffsetDateTime as sqlx::Encode<MySql>>::encode_by_ref(&whole, buf)
    }
}

/// Whether an error is a unique-constraint violation (e.g. an email already taken).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::DbKind;

    #[test]
    fn the_url_s_scheme_picks_the_driver_and_nothing_else_does() {
        for (url, kind) in [
            ("sqlite://storage/app.db", Some(DbKind::Sqlite)),
            ("postgres://app@db/app", Some(DbKind::Postgres)),
            ("postgresql://app@db/app", Some(DbKind::Postgres)),
            ("mysql://root@127.0.0.1:3306/laravel", Some(DbKind::Mysql)),
            ("mariadb://root@127.0.0.1:3306/laravel", Some(DbKind::Mysql)),
            ("mysqll://db/app", None),
            ("storage/app.db", None),
        ] {
            assert_eq!(DbKind::from_url(url), kind, "{url}");
        }
    }
}
