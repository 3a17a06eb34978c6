//! Sessions live in the app's own database; this picks the store that matches the
//! configured pool so the session layer has one concrete type.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion};
use tower_sessions_sqlx_store::{MySqlStore, PostgresStore, SqliteStore};

use super::Db;

#[derive(Clone, Debug)]
pub enum SessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    Mysql(MySqlStore),
}

impl SessionStore {
    pub fn new(db: &Db) -> Self {
        match db {
            Db::Sqlite(pool) => SessionStore::Sqlite(SqliteStore::new(pool.clone())),
            Db::Postgres(pool) => SessionStore::Postgres(PostgresStore::new(pool.clone())),
            Db::Mysql(pool) => SessionStore::Mysql(mysql_store(pool)),
        }
    }

    pub async fn migrate(&self) -> sqlx::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.migrate().await,
            SessionStore::Postgres(store) => store.migrate().await,
            SessionStore::Mysql(store) => store.migrate().await,
        }
    }
}

#[async_trait]
impl tower_sessions::SessionStore for SessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.create(record).await,
            SessionStore::Postgres(store) => store.create(record).await,
            SessionStore::Mysql(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.save(record).await,
            SessionStore::Postgres(store) => store.save(record).await,
            SessionStore::Mysql(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionStore::Sqlite(store) => store.load(id).await,
            SessionStore::Postgres(store) => store.load(id).await,
            SessionStore::Mysql(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.delete(id).await,
            SessionStore::Postgres(store) => store.delete(id).await,
            SessionStore::Mysql(store) => store.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SessionStore::Sqlite(store) => store.delete_expired().await,
            SessionStore::Postgres(store) => store.delete_expired().await,
            SessionStore::Mysql(store) => store.delete_expired().await,
        }
    }
}

/// MySQL's store keeps its table in the app's own database (a MySQL schema is a
/// database: the store's default, `tower_sessions`, would be another one), under
/// the name SQLite's store uses. Laravel's `sessions` table is left alone.
fn mysql_store(pool: &sqlx::MySqlPool) -> MySqlStore {
    let database = pool
        .connect_options()
        .get_database()
        .unwrap_or_default()
        .to_owned();
    MySqlStore::new(pool.clone())
        .with_schema_name(database)
        .and_then(|store| store.with_table_name("tower_sessions"))
        .expect("Db::connect accepts only a MySQL database name the store takes")
}
