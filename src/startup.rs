//! Builds what the web server and the commands share: the database, the Stripe
//! client and the customers service over them.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower_sessions::ExpiredDeletion as _;

use crate::accounts::Accounts;
use crate::context::Context;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::SecretBox;

use crate::config::{APP_KEY_FILE, Config, ConfigError, decode_app_key, generate_app_key};
use crate::customers::Customers;
use crate::db::Db;
use crate::events::Events;
use crate::fields::FieldMap;
use crate::mail::Mailer;
use crate::password::{Hasher, PasswordScheme};
use crate::runs::history::History;
use crate::stripe::{RetryPolicy, StripeGateway};
use crate::throttle::Throttle;
use crate::web;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("could not open the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not apply migrations: {0}")]
    Migrate(#[from] crate::db::adopt::AdoptError),
    #[error("could not set up the Stripe client: {0}")]
    Stripe(#[from] crate::stripe::BadSecret),
    /// `STRIPE_CUSTOMER_FIELDS` names a column the database cannot serve.
    #[error("{0}")]
    FieldMap(String),
    /// `MAIL_URL` or `MAIL_FROM` cannot be used.
    #[error("{0}")]
    Mail(String),
}

/// Where the database stands against this release's migrations.
pub use crate::db::migrations::{Schema, version_text};

/// Reads where `DATABASE_URL` stands against this release's migrations,
/// changing nothing (`migrate --check`, and `migrate` before it applies any).
pub async fn read_schema(config: &Config) -> Result<Schema, StartupError> {
    let db = Db::connect_with(&config.database_url, 1).await?;
    Ok(Schema::read(&db).await?)
}

pub struct App {
    pub config: Config,
    /// What every service is built on: the pool, the Stripe client, the field
    /// map, this process's holder id.
    pub context: Context,
    pub customers: Customers,
    /// The history of bulk runs, recorded under this process's holder.
    pub history: History,
    pub accounts: Accounts,
    /// Password-reset mail; `None` without `MAIL_URL`.
    pub mailer: Option<Mailer>,
}

impl App {
    /// Opens the database, applies migrations and sets up the Stripe client.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        Self::build_with_retry(config, RetryPolicy::default()).await
    }

    pub async fn build_with_retry(
        config: Config,
        retry: RetryPolicy,
    ) -> Result<Self, StartupError> {
        let db = Db::connect_with(&config.database_url, config.db_max_connections).await?;
        // Before any migration: a refused map changes nothing.
        let fields = check_field_columns(&db, &config).await?;
        db.migrate().await?;
        let stripe = match &config.stripe {
            Some(stripe) => Some(StripeGateway::new(stripe, retry)?),
            None => None,
        };
        let scheme = match config.password_hasher {
            Some(scheme) => scheme,
            None if crate::db::adopt::is_laravel(&db).await? => PasswordScheme::Bcrypt,
            None => PasswordScheme::Argon2id,
        };
        let accounts = Accounts::new(
            db.clone(),
            Hasher::new(config.password_hash_concurrency, scheme),
        );
        let context = Context::new(db, stripe, fields);
        let customers = Customers::new(context.clone());
        customers.spawn_heartbeat();
        let history = History::new(&context);
        let mailer = match &config.mail {
            Some(mail) => {
                Some(Mailer::new(mail).map_err(|err| StartupError::Mail(err.to_string()))?)
            }
            None => None,
        };
        Ok(App {
            context,
            customers,
            history,
            accounts,
            mailer,
            config,
        })
    }

    pub fn router(&self) -> Router {
        web::router(&self.config, self.web_services())
    }

    fn web_services(&self) -> web::Services {
        let db = &self.context.db;
        web::Services {
            context: self.context.clone(),
            customers: self.customers.clone(),
            accounts: self.accounts.clone(),
            throttle: Throttle::new(db.clone()),
            sessions: db.session_store(),
            mailer: self.mailer.clone(),
        }
    }

    /// Serves Prometheus's `/metrics` on `listener` (not the public one) until
    /// Ctrl-C or SIGTERM.
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
    ) -> impl Future<Output = std::io::Result<()>> + use<> {
        let sources = crate::monitoring::scrape::Sources {
            db: self.context.db.clone(),
            hasher: self.accounts.hasher().clone(),
        };
        let timeouts = self.config.http_timeouts;
        crate::monitoring::listener::serve(listener, sources, timeouts, shutdown_signal())
    }

    /// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let services = self.web_services();
        tokio::spawn(
            services
                .sessions
                .clone()
                .continuously_delete_expired(Duration::from_secs(3600)),
        );
        tokio::spawn(prune_rate_limits(services.throttle.clone()));
        tokio::spawn(prune_events(
            Events::new(self.context.clone()),
            self.config.events_retention_days,
        ));
        let timeouts = self.config.http_timeouts;
        crate::http::serve(listener, self.router(), timeouts, shutdown_signal()).await
    }
}

/// Refuses a field map naming a column `users` lacks or that holds no text;
/// otherwise the map with what the database says of its columns (which take
/// no NULL, how long a value they take).
async fn check_field_columns(db: &Db, config: &Config) -> Result<FieldMap, StartupError> {
    let map = &config.customer_fields;
    let columns: Vec<(String, &str)> = map
        .extra_columns()
        .map(|m| (m.field.key(), m.column.as_str()))
        .collect();
    match crate::db::users::check_columns(db, &columns).await {
        Ok(facts) => Ok(map.with_column_facts(&facts)),
        Err(crate::db::users::CheckError::Refused(message)) => Err(StartupError::FieldMap(message)),
        Err(crate::db::users::CheckError::Database(err)) => Err(StartupError::Database(err)),
    }
}

/// Lapsed request-limit counters are deleted every few minutes.
async fn prune_rate_limits(throttle: Throttle) {
    let mut every = tokio::time::interval(Duration::from_secs(300));
    loop {
        every.tick().await;
        if let Err(err) = throttle.prune().await {
            tracing::warn!(error = %err, "could not prune rate limit counters");
        }
    }
}

/// Applied Stripe events older than the retention are forgotten every hour.
async fn prune_events(events: Events, days: u32) {
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        match events.prune_events(days).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, days, "old stripe events forgotten"),
            Err(err) => tracing::warn!(error = %err, "could not prune stripe events"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Reads the settings from `.env` (when present) and the environment, which
/// wins; `APP_KEY`, or on a first start without one a key made and kept in
/// `storage/app.key`, is read last, once every other setting is known good.
pub fn config_from_env() -> Result<Config, ConfigError> {
    let _ = dotenvy::dotenv();
    Config::parse(
        |name| std::env::var(name).ok(),
        |given| match given {
            Some(encoded) => decode_app_key(encoded),
            None => load_or_create_app_key(Path::new(APP_KEY_FILE)),
        },
    )
}

/// A fresh machine gets a random key on first start, kept so sessions survive restarts.
fn load_or_create_app_key(path: &Path) -> Result<SecretBox<Vec<u8>>, ConfigError> {
    let file_error = |source| ConfigError::AppKeyFile {
        path: path.display().to_string(),
        source,
    };
    if path.exists() {
        let encoded = std::fs::read_to_string(path).map_err(file_error)?;
        return decode_app_key(&encoded);
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(file_error)?;
    }
    let key = generate_app_key();
    write_private(path, &BASE64.encode(&key)).map_err(file_error)?;
    Ok(SecretBox::new(Box::new(key)))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
