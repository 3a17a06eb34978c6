//! Settings from the process environment and `.env`, with defaults that let a fresh
//! clone run. Secrets are typed so they cannot be printed by accident.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::password::PasswordScheme;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::fields::FieldMap;

mod app_key;
mod help;
mod limits;

use crate::telemetry::{LogFormat, LogSettings};
pub use app_key::{APP_KEY_FILE, APP_KEY_MIN_BYTES, decode_app_key, generate_app_key};
pub use help::SETTINGS_HELP;
pub use limits::{HttpTimeouts, JobPosting, Limit, Limits};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://storage/app.db";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_APP_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_LOG_DIR: &str = "storage/logs";
pub const DEFAULT_JOB_POSTING_FEE: i64 = 4900;
pub const DEFAULT_EVENTS_RETENTION_DAYS: u32 = 30;
/// Days the history of bulk runs is kept.
pub const DEFAULT_RUN_HISTORY_DAYS: u32 = 90;
/// Stripe allows 25 requests/s per operation (endpoint); a bulk run plans 80% of
/// it and leaves the rest to the web app's own calls on the same account.
pub const DEFAULT_STRIPE_ENDPOINT_RATE: u32 = 20;
pub const DEFAULT_JOB_POSTING_CURRENCY: &str = "usd";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    BadDatabaseUrl(String),
    #[error("{0}")]
    BadMail(&'static str),
    #[error(
        "REGISTER_REVEALS_ACCOUNTS must be true or false; false needs MAIL_URL (the answer is a mail)"
    )]
    BadRegisterReveals,
    #[error("TRUSTED_PROXIES must list IP addresses or networks (e.g. 10.0.0.0/8), not {0:?}")]
    BadTrustedProxy(String),
    #[error("PASSWORD_HASH_CONCURRENCY must be a whole number from 1 to 64")]
    BadHashConcurrency,
    #[error("PASSWORD_HASHER must be argon2id or bcrypt")]
    BadPasswordHasher,
    #[error("LOG_MAX_FILES must be a whole number of days from 1 to 3650")]
    BadLogMaxFiles,
    #[error("LOG_FORMAT must be text or json")]
    BadLogFormat,
    #[error(
        "STRIPE_SECRET is a live key and STRIPE_API_BASE is not https://: a live key is never \
         sent in clear text (only a stand-in on this machine, at a loopback address, may be http://)"
    )]
    LiveKeyOverHttp,
    #[error("{0} must be a whole number of seconds from 1 to 3600")]
    BadHttpTimeout(String),
    #[error("STRIPE_ENDPOINT_RATE must be a whole number of requests a second from 1 to 1000")]
    BadEndpointRate,
    #[error("STRIPE_EVENTS_RETENTION_DAYS must be a whole number of days from 3 to 3650")]
    BadEventsRetention,
    #[error("RUN_HISTORY_DAYS must be a whole number of days from 1 to 3650")]
    BadRunHistory,
    #[error(
        "METRICS_BIND must be an address and port such as 127.0.0.1:9464, and not BIND's: \
         /metrics is never served on the public listener"
    )]
    BadMetricsBind,
    #[error("APP_KEY must be base64 of at least {APP_KEY_MIN_BYTES} random bytes")]
    BadAppKey,
    #[error("could not read or create {path}: {source}")]
    AppKeyFile {
        path: String,
        source: std::io::Error,
    },
    /// Names the field or column at fault.
    #[error("{0}")]
    BadFieldMap(String),
    #[error("APP_URL must start with http:// or https://")]
    BadAppUrl,
    #[error(
        "JOB_POSTING_FEE must be a positive whole number of the currency's minor unit (4900 = $49.00)"
    )]
    BadFee,
    #[error("JOB_POSTING_CURRENCY must be a three-letter ISO code such as usd or eur")]
    BadCurrency,
}

/// How to reach Stripe: present only when `STRIPE_SECRET` is set.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret: SecretString,
    pub publishable_key: Option<String>,
    pub api_base: String,
}

#[derive(Debug)]
pub struct Config {
    pub database_url: String,
    pub stripe: Option<StripeConfig>,
    pub webhook_secret: Option<SecretString>,
    pub app_url: String,
    pub app_key: SecretBox<Vec<u8>>,
    pub bind: String,
    /// Where `serve` answers `/metrics`; `None`: nowhere.
    pub metrics_bind: Option<SocketAddr>,
    pub run_history_days: u32,
    pub log_dir: PathBuf,
    /// Daily log files kept.
    pub log_max_files: usize,
    pub log_format: LogFormat,
    /// Days applied Stripe events are remembered for de-duplication.
    pub events_retention_days: u32,
    pub job_posting: JobPosting,
    /// Proxies whose `X-Forwarded-For` names the client; empty: the socket's peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Password hashes computed at once; more wait in a short queue or are refused.
    pub password_hash_concurrency: usize,
    /// How new and changed passwords are hashed; `None`: bcrypt on a Laravel
    /// app's database (what Laravel writes), Argon2id elsewhere.
    pub password_hasher: Option<PasswordScheme>,
    pub limits: Limits,
    /// Database connections in the pool (a bulk run raises it to its workers).
    pub db_max_connections: u32,
    /// Requests/s a bulk run plans per Stripe operation, before sharing.
    pub stripe_endpoint_rate: u32,
    pub http_timeouts: HttpTimeouts,
    /// The customer fields synced beyond name and email (`STRIPE_CUSTOMER_FIELDS`).
    pub customer_fields: FieldMap,
    /// Where password-reset mail goes out: present only when `MAIL_URL` is set.
    pub mail: Option<MailConfig>,
    /// Whether `/register` says an email has an account (`false`: the same
    /// answer either way, and a mail to the address).
    pub register_reveals_accounts: bool,
}

/// `MAIL_URL` (it may hold the SMTP password) and `MAIL_FROM`.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub url: SecretString,
    pub from: String,
}

pub const DEFAULT_MAIL_FROM: &str = "stripe-sync <noreply@localhost>";

impl MailConfig {
    /// Whether lettre can use the URL and the sender, read without connecting.
    pub fn check(&self) -> Result<(), ConfigError> {
        use lettre::{AsyncSmtpTransport, Tokio1Executor, message::Mailbox};
        AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose_secret()).map_err(|_| {
            ConfigError::BadMail("MAIL_URL is not an SMTP URL lettre can use (smtp://, smtps://)")
        })?;
        self.from.parse::<Mailbox>().map_err(|_| {
            ConfigError::BadMail(
                "MAIL_FROM is not an address such as \"Shop <noreply@shop.example>\"",
            )
        })?;
        Ok(())
    }
}

impl StripeConfig {
    /// Whether requests to the API base cannot be read on the way: https, or a
    /// stand-in on this machine (a loopback address).
    pub fn api_base_is_private(&self) -> bool {
        let base = self.api_base.trim();
        if base.starts_with("https://") {
            return true;
        }
        let Some(rest) = base.strip_prefix("http://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return false;
        }
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        };
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether the key is a live-mode key (Stripe's rate limits differ).
    pub fn live_mode(&self) -> bool {
        let secret = self.secret.expose_secret();
        secret.starts_with("sk_live_") || secret.starts_with("rk_live_")
    }
}

impl Config {
    /// Every setting, from `lookup` (the environment, or a test's map; a blank
    /// value counts as unset). Writes nothing: `app_key` turns `APP_KEY` (`None`
    /// when unset) into the key, and is called last, once every other setting is
    /// known good (startup's may create the key file; see `startup::config_from_env`).
    pub fn parse(
        lookup: impl Fn(&str) -> Option<String>,
        app_key: impl FnOnce(Option<&str>) -> Result<SecretBox<Vec<u8>>, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let stripe = var("STRIPE_SECRET").map(|secret| StripeConfig {
            secret: SecretString::from(secret),
            publishable_key: var("STRIPE_KEY"),
            api_base: var("STRIPE_API_BASE").unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.into()),
        });
        if let Some(stripe) = &stripe
            && stripe.live_mode()
            && !stripe.api_base_is_private()
        {
            return Err(ConfigError::LiveKeyOverHttp);
        }
        let app_url = var("APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into());
        if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
            return Err(ConfigError::BadAppUrl);
        }
        let database_url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        check_database_url(&database_url)?;
        let trusted_proxies = match var("TRUSTED_PROXIES") {
            Some(list) => parse_trusted_proxies(&list)?,
            None => Vec::new(),
        };
        let password_hash_concurrency = whole_number(
            var("PASSWORD_HASH_CONCURRENCY"),
            1..=64,
            default_hash_concurrency(),
            ConfigError::BadHashConcurrency,
        )?;
        let password_hasher = match var("PASSWORD_HASHER") {
            Some(name) => Some(PasswordScheme::parse(&name).ok_or(ConfigError::BadPasswordHasher)?),
            None => None,
        };
        let log_max_files = whole_number(
            var("LOG_MAX_FILES"),
            1..=3650,
            crate::telemetry::DEFAULT_LOG_MAX_FILES,
            ConfigError::BadLogMaxFiles,
        )?;
        let log_format = match var("LOG_FORMAT") {
            Some(format) => LogFormat::parse(&format).ok_or(ConfigError::BadLogFormat)?,
            None => LogFormat::Text,
        };
        let events_retention_days = whole_number(
            var("STRIPE_EVENTS_RETENTION_DAYS"),
            3..=3650,
            DEFAULT_EVENTS_RETENTION_DAYS,
            ConfigError::BadEventsRetention,
        )?;
        let run_history_days = whole_number(
            var("RUN_HISTORY_DAYS"),
            1..=3650,
            DEFAULT_RUN_HISTORY_DAYS,
            ConfigError::BadRunHistory,
        )?;
        let bind = var("BIND").unwrap_or_else(|| DEFAULT_BIND.into());
        let metrics_bind = var("METRICS_BIND")
            .map(|address| parse_metrics_bind(&address, &bind))
            .transpose()?;
        let stripe_endpoint_rate = whole_number(
            var("STRIPE_ENDPOINT_RATE"),
            1..=1000,
            DEFAULT_STRIPE_ENDPOINT_RATE,
            ConfigError::BadEndpointRate,
        )?;
        let mail = var("MAIL_URL").map(|url| MailConfig {
            url: SecretString::from(url),
            from: var("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.into()),
        });
        if let Some(mail) = &mail {
            mail.check()?;
        }
        let customer_fields = match var("STRIPE_CUSTOMER_FIELDS") {
            Some(spec) => FieldMap::parse(&spec).map_err(ConfigError::BadFieldMap)?,
            None => FieldMap::default(),
        };
        let seconds = |name: &str, default: Duration| {
            whole_number(
                var(name),
                1..=3600,
                default.as_secs(),
                ConfigError::BadHttpTimeout(name.to_string()),
            )
            .map(Duration::from_secs)
        };
        let defaults = HttpTimeouts::default();
        let http_timeouts = HttpTimeouts {
            header: seconds("HTTP_HEADER_TIMEOUT", defaults.header)?,
            body: seconds("HTTP_BODY_TIMEOUT", defaults.body)?,
            idle: seconds("HTTP_IDLE_TIMEOUT", defaults.idle)?,
        };
        let register_reveals_accounts = match var("REGISTER_REVEALS_ACCOUNTS").as_deref() {
            None | Some("true") => true,
            Some("false") if mail.is_some() => false,
            Some(_) => return Err(ConfigError::BadRegisterReveals),
        };
        // Last, once every setting is known good: the only one whose reading
        // may write (a first start's key file).
        let app_key = app_key(var("APP_KEY").as_deref())?;
        Ok(Config {
            register_reveals_accounts,
            database_url,
            stripe_endpoint_rate,
            http_timeouts,
            customer_fields,
            mail,
            log_max_files,
            log_format,
            events_retention_days,
            stripe,
            webhook_secret: var("STRIPE_WEBHOOK_SECRET").map(SecretString::from),
            app_url: app_url.trim_end_matches('/').to_string(),
            app_key,
            bind,
            metrics_bind,
            run_history_days,
            log_dir: var("LOG_DIR")
                .unwrap_or_else(|| DEFAULT_LOG_DIR.into())
                .into(),
            job_posting: JobPosting::parse(var("JOB_POSTING_FEE"), var("JOB_POSTING_CURRENCY"))?,
            trusted_proxies,
            password_hash_concurrency,
            password_hasher,
            limits: Limits::default(),
            db_max_connections: crate::db::DEFAULT_MAX_CONNECTIONS,
        })
    }

    pub fn log_settings(&self) -> LogSettings<'_> {
        LogSettings {
            dir: &self.log_dir,
            max_files: self.log_max_files,
            format: self.log_format,
        }
    }

    /// Whether `X-Forwarded-For` from this peer is believed.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Cookies get the `Secure` flag when the app is served over https.
    pub fn secure_cookies(&self) -> bool {
        self.app_url.starts_with("https://")
    }

    /// `STRIPE_WEBHOOK_SECRET` may list several secrets, comma-separated, while
    /// one is rotated out.
    pub fn webhook_secrets(&self) -> Vec<SecretString> {
        self.webhook_secret
            .as_ref()
            .map(|secrets| {
                secrets
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(SecretString::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Only the schemes the app has a driver for, in a form its driver reads; a
/// typo such as `postgress://` is refused rather than taken as a SQLite file
/// name. Nothing is connected to or written. The error never quotes the URL:
/// it may hold a password.
pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    crate::db::check_url(url)
        .map(drop)
        .map_err(ConfigError::BadDatabaseUrl)
}

/// A whole-number setting within `range`, or `default` when it is unset.
fn whole_number<T: std::str::FromStr + PartialOrd>(
    value: Option<String>,
    range: std::ops::RangeInclusive<T>,
    default: T,
    invalid: ConfigError,
) -> Result<T, ConfigError> {
    match value {
        Some(text) => text
            .trim()
            .parse()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or(invalid),
        None => Ok(default),
    }
}

/// `METRICS_BIND`: an address and port, never `BIND`'s (nor any port of it on
/// every address).
fn parse_metrics_bind(address: &str, bind: &str) -> Result<SocketAddr, ConfigError> {
    let metrics: SocketAddr = address
        .trim()
        .parse()
        .map_err(|_| ConfigError::BadMetricsBind)?;
    let clashes = bind.parse::<SocketAddr>().is_ok_and(|public| {
        public.port() == metrics.port()
            && (public.ip() == metrics.ip()
                || public.ip().is_unspecified()
                || metrics.ip().is_unspecified())
    });
    match clashes {
        true => Err(ConfigError::BadMetricsBind),
        false => Ok(metrics),
    }
}

fn parse_trusted_proxies(list: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| ConfigError::BadTrustedProxy(item.to_string()))
        })
        .collect()
}

/// One hash at a time per core, less one core kept for serving everything else.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .clamp(1, 16)
}

#[cfg(test)]
mod tests;
