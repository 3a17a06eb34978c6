//! The app's migrations, one folder per driver, and where a database stands
//! against them.
//!
//! Invariant: a release starts on the schema of the release after it (a rolling
//! deploy, a rollback, a crash of an old instance mid-rollout). A migration
//! applied that this release does not know is no error for it: the migrator
//! ignores it (each migration only adds what the release before can ignore, see
//! README "Upgrading"), and [`Schema`] says so in words.
//!
//! Several instances starting at once apply each migration once: the whole
//! start-up schema work (adoption, migrations, the session table) runs under
//! one lock per database, [`MigrationLock`]: PostgreSQL's advisory lock, MySQL's
//! `GET_LOCK` (sqlx's own asks MariaDB for it with a timeout of -1, which MariaDB
//! answers at once without the lock), a lock file beside a SQLite file (sqlx's
//! migrator takes none there).

use std::sync::LazyLock;

use sqlx::migrate::Migrator;

use super::dialect::catalog;
use super::{Db, on_pool};

static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");

/// The migrations for `db`'s driver, as compiled into this release.
fn compiled(db: &Db) -> &'static Migrator {
    match db {
        Db::Sqlite(_) => &SQLITE,
        Db::Postgres(_) => &POSTGRES,
        Db::Mysql(_) => &MYSQL,
    }
}

/// The migrator `serve` and every command run: this release's migrations,
/// applying those not yet applied, and ignoring applied ones it does not know.
pub fn lenient(db: &Db) -> Migrator {
    let compiled = compiled(db);
    Migrator {
        migrations: compiled.migrations.clone(),
        ignore_missing: true,
        locking: compiled.locking,
        no_tx: compiled.no_tx,
    }
}

/// The newest migration this release knows, on any driver (`--version`).
pub fn release_newest() -> i64 {
    [&SQLITE, &POSTGRES, &MYSQL]
        .iter()
        .flat_map(|migrator| migrator.iter())
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// `--version`'s text: the release and the newest migration it knows.
pub fn version_text() -> &'static str {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} (newest migration {})",
            env!("CARGO_PKG_VERSION"),
            release_newest()
        )
    });
    TEXT.as_str()
}

/// Held while one process changes the schema; every other waits. Released
/// when dropped: the connection that holds it closes, or the file unlocks.
pub enum MigrationLock {
    Postgres(sqlx::PgConnection),
    Mysql(sqlx::MySqlConnection),
    File(std::fs::File),
    /// An in-memory SQLite database belongs to one process.
    Unshared,
}

/// How long a start waits for another instance's migrations.
const LOCK_WAIT_SECONDS: i64 = 600;

impl MigrationLock {
    pub async fn acquire(db: &Db) -> Result<Self, sqlx::Error> {
        const NAME: &str = "stripe-sync schema";
        match db {
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?.detach();
                // A fixed key of the app's own: the hash of its name.
                super::dialect::postgres::query("SELECT pg_advisory_lock(hashtext($1))")
                    .bind(NAME)
                    .execute(&mut conn)
                    .await?;
                Ok(MigrationLock::Postgres(conn))
            }
            Db::Mysql(pool) => {
                let mut conn = pool.acquire().await?.detach();
                let held: Option<i64> =
                    super::dialect::mysql::query_scalar("SELECT GET_LOCK($1, $2)")
                        .bind(NAME)
                        .bind(LOCK_WAIT_SECONDS)
                        .fetch_one(&mut conn)
                        .await?;
                match held {
                    Some(1) => Ok(MigrationLock::Mysql(conn)),
                    _ => Err(sqlx::Error::Configuration(
                        "another instance held the schema lock for 10 minutes".into(),
                    )),
                }
            }
            Db::Sqlite(pool) => match sqlite_lock_file(pool.connect_options().get_filename()) {
                None => Ok(MigrationLock::Unshared),
                Some(path) => {
                    let file = tokio::task::spawn_blocking(move || {
                        let file = std::fs::OpenOptions::new()
                            .create(true)
                            .truncate(false)
                            .write(true)
                            .open(path)?;
                        file.lock()?;
                        Ok::<_, std::io::Error>(file)
                    })
                    .await
                    .map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))??;
                    Ok(MigrationLock::File(file))
                }
            },
        }
    }
}

/// `app.db` → `app.db-migrate-lock`, beside SQLite's own `-wal` and `-shm`;
/// `None` in memory (sqlx names such a database `file:sqlx-in-memory-N`).
fn sqlite_lock_file(database: &std::path::Path) -> Option<std::path::PathBuf> {
    let name = database.as_os_str();
    if name == ":memory:" || database.starts_with("file:") {
        return None;
    }
    let mut name = name.to_owned();
    name.push("-migrate-lock");
    Some(name.into())
}

/// A database's migrations against this release's.
#[derive(Debug, Clone)]
pub struct Schema {
    /// This release's migrations for the driver: version and description.
    known: Vec<(i64, String)>,
    /// The versions the database records as applied.
    applied: Vec<i64>,
}

impl Schema {
    pub async fn read(db: &Db) -> Result<Self, sqlx::Error> {
        let known = compiled(db)
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        let applied = match catalog::table_exists(db, "_sqlx_migrations").await? {
            true => {
                const SQL: &str = "SELECT version FROM _sqlx_migrations ORDER BY version";
                on_pool!(db, pool => q::query_scalar(SQL).fetch_all(pool).await)?
            }
            false => Vec::new(),
        };
        Ok(Schema { known, applied })
    }

    pub fn known_newest(&self) -> i64 {
        self.known.iter().map(|(v, _)| *v).max().unwrap_or(0)
    }

    /// The newest applied migration this release does not know, if any (a
    /// newer release migrated the database).
    pub fn newer_than_release(&self) -> Option<i64> {
        self.applied
            .iter()
            .filter(|v| !self.known.iter().any(|(known, _)| known == *v))
            .max()
            .copied()
    }

    /// This release's migrations not applied yet, oldest first.
    pub fn pending(&self) -> Vec<(i64, &str)> {
        self.known
            .iter()
            .filter(|(v, _)| !self.applied.contains(v))
            .map(|(v, description)| (*v, description.as_str()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(known: &[i64], applied: &[i64]) -> Schema {
        Schema {
            known: known.iter().map(|v| (*v, format!("m{v}"))).collect(),
            applied: applied.to_vec(),
        }
    }

    #[test]
    fn a_schema_tells_newer_migrations_from_pending_ones() {
        let newer = schema(&[1, 2], &[1, 2, 3]);
        assert_eq!(newer.newer_than_release(), Some(3));
        assert!(newer.pending().is_empty());

        let behind = schema(&[1, 2, 3], &[1]);
        assert_eq!(behind.newer_than_release(), None);
        assert_eq!(behind.pending(), vec![(2, "m2"), (3, "m3")]);
        assert_eq!(behind.known_newest(), 3);
    }

    #[test]
    fn the_release_knows_its_newest_migration() {
        let newest = release_newest();
        assert!(newest >= 20261201000003, "{newest}");
        assert!(version_text().contains(&newest.to_string()));
        assert!(version_text().starts_with(env!("CARGO_PKG_VERSION")));
    }
}
