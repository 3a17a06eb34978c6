//! Settings from the process environment and `.env`, with defaults that let a fresh
//! clone run. Secrets are typed so they cannot be printed by accident.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::password::PasswordScheme;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::db::DbKind;
use crate::telemetry::{LogFormat, LogSettings};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://storage/app.db";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_APP_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_LOG_DIR: &str = "storage/logs";
pub const DEFAULT_JOB_POSTING_FEE: i64 = 4900;
pub const DEFAULT_EVENTS_RETENTION_DAYS: u32 = 30;
/// Stripe allows 25 requests/s per operation (endpoint); a bulk run plans 80% of
/// it and leaves the rest to the web app's own calls on the same account.
pub const DEFAULT_STRIPE_ENDPOINT_RATE: u32 = 20;
pub const DEFAULT_JOB_POSTING_CURRENCY: &str = "usd";
const APP_KEY_FILE: &str = "storage/app.key";
/// Laravel's `APP_KEY` is `base64:` and 32 random bytes: the least accepted.
pub const APP_KEY_MIN_BYTES: usize = 32;
/// Generated keys, and what the cookie crate's signing keys take.
const SIGNING_KEY_BYTES: usize = 64;

/// Every setting with its default, for `--help`. A test holds it to `.env.example`.
pub const SETTINGS_HELP: &str = "\
Settings (from the environment, or .env in the working directory; the environment wins):
  DATABASE_URL               sqlite:..., postgres://... or mysql://...; other schemes are refused
                             [default: sqlite://storage/app.db, created if missing]
  STRIPE_SECRET              secret key (sk_... or rk_...) [default: none: Stripe actions say \"Stripe is not configured\"]
  STRIPE_KEY                 publishable key; accepted for a Laravel/Cashier .env, not used (no page loads Stripe.js)
  STRIPE_WEBHOOK_SECRET      signing secret(s) of the webhook endpoint, comma-separated while rotating
                             [default: none: POST /stripe/webhook answers 503]
  STRIPE_API_BASE            base URL of the Stripe API, for a local stand-in; a live key only over
                             https:// or to a loopback address [default: https://api.stripe.com]
  STRIPE_ENDPOINT_RATE       requests/s a bulk run plans per Stripe operation, for an account whose
                             limits Stripe raised [default: 20, 80% of Stripe's 25/s]
  APP_URL                    public base URL; https:// makes cookies Secure and adds HSTS [default: http://127.0.0.1:3000]
  APP_KEY                    base64 of 32+ random bytes, with or without Laravel's base64: prefix (a
                             Laravel app's key serves both); every instance needs the same
                             [default: generated into storage/app.key on first start]
  BIND                       listen address of serve [default: 127.0.0.1:3000]
  HTTP_HEADER_TIMEOUT        seconds a request's header block may take from its first byte [default: 10]
  HTTP_BODY_TIMEOUT          seconds a request's body may take to arrive [default: 30]
  HTTP_IDLE_TIMEOUT          seconds an idle keep-alive connection stays open [default: 60]
  LOG_DIR                    folder of the daily log files stripe-sync.YYYY-MM-DD.log [default: storage/logs]
  LOG_MAX_FILES              daily log files kept [default: 14]
  LOG_FORMAT                 text, or json for one JSON object a line (console and file) [default: text]
  TRUSTED_PROXIES            addresses or networks whose X-Forwarded-For names the client [default: none]
  PASSWORD_HASH_CONCURRENCY  password hashes computed at once [default: cores - 1, at least 1]
  PASSWORD_HASHER            argon2id, or bcrypt (cost 12, $2y$, as Laravel writes) for new and changed
                             passwords; both are verified either way
                             [default: bcrypt on a Laravel app's database, else argon2id]
  JOB_POSTING_FEE            job-posting fee in the currency's minor unit [default: 4900]
  JOB_POSTING_CURRENCY       its currency, an ISO code [default: usd]
  STRIPE_EVENTS_RETENTION_DAYS  days applied webhook events are remembered (replays older than
                             that are impossible: Stripe keeps events 30 days) [default: 30]
  RUST_LOG                   log filter [default: info,sqlx=warn,tower_sessions=warn,axum_login=warn]";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "DATABASE_URL must start with {} (it starts with {scheme:?})",
        crate::db::URL_SCHEMES
    )]
    BadDatabaseUrl { scheme: String },
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
    #[error("APP_KEY must be base64 of at least {APP_KEY_MIN_BYTES} random bytes")]
    BadAppKey,
    #[error("could not read or create {path}: {source}")]
    AppKeyFile {
        path: String,
        source: std::io::Error,
    },
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
}

/// The web server's deadlines for clients (seconds in the environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// A request's header block must arrive within this of its first byte.
    pub header: Duration,
    /// A request's body must arrive within this of the handler asking for it.
    pub body: Duration,
    /// A connection idle between requests is closed after this.
    pub idle: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// At most `max` hits per `window`, counted in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

/// The request limits every instance enforces together.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sign-in attempts for one account, counted before the password is checked.
    pub sign_in_per_account: Limit,
    /// Sign-in and registration attempts from one client address.
    pub sign_in_per_address: Limit,
    /// Actions that call Stripe (create, update, refresh, delete, portal, pay) per user.
    pub stripe_actions_per_user: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            sign_in_per_account: Limit {
                max: 5,
                window: Duration::from_secs(15 * 60),
            },
            sign_in_per_address: Limit {
                max: 100,
                window: Duration::from_secs(15 * 60),
            },
            stripe_actions_per_user: Limit {
                max: 20,
                window: Duration::from_secs(60),
            },
        }
    }
}

/// What posting a job costs, fixed into each job when it is posted.
#[derive(Debug, Clone)]
pub struct JobPosting {
    /// In the currency's minor unit (cents for usd).
    pub fee: i64,
    /// Lower-case ISO code.
    pub currency: String,
}

impl Default for JobPosting {
    fn default() -> Self {
        JobPosting {
            fee: DEFAULT_JOB_POSTING_FEE,
            currency: DEFAULT_JOB_POSTING_CURRENCY.into(),
        }
    }
}

impl JobPosting {
    fn parse(fee: Option<String>, currency: Option<String>) -> Result<Self, ConfigError> {
        let fee = match fee {
            Some(fee) => fee
                .trim()
                .parse()
                .ok()
                .filter(|f: &i64| *f > 0)
                .ok_or(ConfigError::BadFee)?,
            None => DEFAULT_JOB_POSTING_FEE,
        };
        let currency = currency
            .unwrap_or_else(|| DEFAULT_JOB_POSTING_CURRENCY.into())
            .trim()
            .to_lowercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(ConfigError::BadCurrency);
        }
        Ok(JobPosting { fee, currency })
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
    /// Reads `.env` (when present) and then the environment, which wins.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());

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
        let app_key = match var("APP_KEY") {
            Some(encoded) => decode_app_key(&encoded)?,
            None => load_or_create_app_key(Path::new(APP_KEY_FILE))?,
        };
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
        let stripe_endpoint_rate = whole_number(
            var("STRIPE_ENDPOINT_RATE"),
            1..=1000,
            DEFAULT_STRIPE_ENDPOINT_RATE,
            ConfigError::BadEndpointRate,
        )?;
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
        Ok(Config {
            database_url,
            stripe_endpoint_rate,
            http_timeouts,
            log_max_files,
            log_format,
            events_retention_days,
            stripe,
            webhook_secret: var("STRIPE_WEBHOOK_SECRET").map(SecretString::from),
            app_url: app_url.trim_end_matches('/').to_string(),
            app_key,
            bind: var("BIND").unwrap_or_else(|| DEFAULT_BIND.into()),
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

    /// A key for one purpose, derived from `APP_KEY` (HKDF-SHA256 with a distinct
    /// label per purpose), so every instance with the same `APP_KEY` derives the
    /// same key and no purpose's key reveals another's.
    pub fn derived_key(&self, label: &str) -> [u8; 32] {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, self.app_key_bytes());
        let mut key = [0u8; 32];
        hkdf.expand(label.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// Key material for signing cookies (64 bytes), one key per `label` from any
    /// `APP_KEY`, short or long: HKDF-SHA256, as [`Config::derived_key`].
    pub fn signing_key(&self, label: &str) -> Vec<u8> {
        let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, self.app_key_bytes());
        let mut key = vec![0u8; SIGNING_KEY_BYTES];
        hkdf.expand(label.as_bytes(), &mut key)
            .expect("64 bytes is a valid HKDF-SHA256 output length");
        key
    }

    /// The key session cookies were signed with before each purpose had its own:
    /// a 64-byte or longer `APP_KEY` as it was (a shorter one was always
    /// stretched per purpose, as now). Such a cookie is still accepted, and
    /// signed anew, so sessions open at the upgrade stay open.
    pub fn legacy_session_key(&self) -> Option<Vec<u8>> {
        let key = self.app_key_bytes();
        (key.len() >= SIGNING_KEY_BYTES).then(|| key.to_vec())
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

    pub fn app_key_bytes(&self) -> &[u8] {
        self.app_key.expose_secret()
    }
}

/// Only the schemes the app has a driver for; anything else (a typo such as
/// `postgress://`) is refused rather than taken as a SQLite file name. The error
/// names the scheme only: the rest of the URL may hold a password.
pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    match DbKind::from_url(url) {
        Some(_) => Ok(()),
        None => Err(ConfigError::BadDatabaseUrl {
            scheme: url
                .split_once(':')
                .map_or(url, |(scheme, _)| scheme)
                .chars()
                .take(20)
                .collect(),
        }),
    }
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

fn decode_app_key(encoded: &str) -> Result<SecretBox<Vec<u8>>, ConfigError> {
    let encoded = encoded.trim().trim_start_matches("base64:");
    match BASE64.decode(encoded) {
        Ok(bytes) if bytes.len() >= APP_KEY_MIN_BYTES => Ok(SecretBox::new(Box::new(bytes))),
        _ => Err(ConfigError::BadAppKey),
    }
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

pub fn generate_app_key() -> Vec<u8> {
    let mut key = vec![0u8; SIGNING_KEY_BYTES];
    rand::fill(&mut key[..]);
    key
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_app_key_is_rejected() {
        assert!(matches!(
            decode_app_key(&BASE64.encode([1u8; 31])),
            Err(ConfigError::BadAppKey)
        ));
    }

    #[test]
    fn laravel_s_key_is_accepted_and_stretched_for_signing() {
        let laravel = format!("base64:{}", BASE64.encode([5u8; 32]));
        let mut config = config_with_key(decode_app_key(&laravel).unwrap());
        let cookies = config.signing_key("cookies");
        assert_eq!(cookies.len(), 64);
        assert_ne!(cookies, config.signing_key("csrf"), "one key per purpose");
        assert_ne!(&cookies[..32], &[5u8; 32][..]);
        assert_eq!(
            config.legacy_session_key(),
            None,
            "short keys were stretched"
        );
        config.app_key = decode_app_key(&BASE64.encode([7u8; 64])).unwrap();
        let cookies = config.signing_key("cookies");
        assert_ne!(cookies, vec![7u8; 64], "a long key is derived from too");
        assert_ne!(cookies, config.signing_key("csrf"), "one key per purpose");
        assert_eq!(config.legacy_session_key(), Some(vec![7u8; 64]));
    }

    fn config_with_key(app_key: SecretBox<Vec<u8>>) -> Config {
        Config {
            database_url: DEFAULT_DATABASE_URL.into(),
            stripe: None,
            webhook_secret: None,
            app_url: DEFAULT_APP_URL.into(),
            app_key,
            bind: DEFAULT_BIND.into(),
            log_dir: DEFAULT_LOG_DIR.into(),
            log_max_files: 1,
            log_format: LogFormat::Text,
            events_retention_days: DEFAULT_EVENTS_RETENTION_DAYS,
            job_posting: JobPosting::default(),
            trusted_proxies: Vec::new(),
            password_hash_concurrency: 1,
            password_hasher: None,
            limits: Limits::default(),
            db_max_connections: 1,
            stripe_endpoint_rate: DEFAULT_STRIPE_ENDPOINT_RATE,
            http_timeouts: HttpTimeouts::default(),
        }
    }

    #[test]
    fn the_password_hasher_is_one_of_two() {
        assert_eq!(
            PasswordScheme::parse("bcrypt"),
            Some(PasswordScheme::Bcrypt)
        );
        assert_eq!(
            PasswordScheme::parse(" Argon2id "),
            Some(PasswordScheme::Argon2id)
        );
        assert_eq!(PasswordScheme::parse("md5"), None);
    }

    #[test]
    fn a_64_byte_app_key_is_accepted_with_or_without_laravel_prefix() {
        let encoded = BASE64.encode([7u8; 64]);
        assert_eq!(decode_app_key(&encoded).unwrap().expose_secret().len(), 64);
        let prefixed = format!("base64:{encoded}");
        assert_eq!(decode_app_key(&prefixed).unwrap().expose_secret().len(), 64);
    }

    #[test]
    fn the_job_posting_fee_must_be_a_positive_amount_in_a_known_shape_of_currency() {
        let parse =
            |fee: &str, currency: &str| JobPosting::parse(Some(fee.into()), Some(currency.into()));
        assert!(matches!(parse("0", "usd"), Err(ConfigError::BadFee)));
        assert!(matches!(parse("49.00", "usd"), Err(ConfigError::BadFee)));
        assert!(matches!(
            parse("4900", "dollars"),
            Err(ConfigError::BadCurrency)
        ));
        let posting = parse("1500", " EUR ").unwrap();
        assert_eq!((posting.fee, posting.currency.as_str()), (1500, "eur"));
    }

    #[test]
    fn only_database_schemes_with_a_driver_are_accepted() {
        for good in [
            "sqlite://storage/app.db",
            "sqlite::memory:",
            "postgres://u@h/db",
            "postgresql://u@h/db",
        ] {
            assert!(check_database_url(good).is_ok(), "{good}");
        }
        for bad in [
            "postgress://u:secret@h/db",
            "mysqll://h/db",
            "storage/app.db",
        ] {
            let err = check_database_url(bad).unwrap_err().to_string();
            assert!(err.contains("sqlite:, postgres://"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn only_https_or_a_loopback_stand_in_is_private() {
        let stripe = |api_base: &str| StripeConfig {
            secret: SecretString::from("sk_live_x"),
            publishable_key: None,
            api_base: api_base.into(),
        };
        for private in [
            "https://api.stripe.com",
            "http://127.0.0.1:8420",
            "http://127.8.0.1/",
            "http://localhost:12111",
            "http://[::1]:9000/v1",
        ] {
            assert!(stripe(private).api_base_is_private(), "{private}");
        }
        for exposed in [
            "http://api.stripe.com",
            "http://10.0.0.5:8420",
            "http://127.0.0.1.evil.example",
            "http://127.0.0.1@evil.example",
            "ftp://127.0.0.1",
        ] {
            assert!(!stripe(exposed).api_base_is_private(), "{exposed}");
        }
    }

    #[test]
    fn whole_number_settings_must_be_in_range() {
        let parse = |value: Option<&str>| {
            whole_number(
                value.map(String::from),
                3..=3650,
                30u32,
                ConfigError::BadEventsRetention,
            )
        };
        assert_eq!(parse(None).unwrap(), 30);
        assert_eq!(parse(Some(" 7 ")).unwrap(), 7);
        for bad in ["2", "3651", "-1", "seven", ""] {
            assert!(
                matches!(parse(Some(bad)), Err(ConfigError::BadEventsRetention)),
                "{bad}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let proxies = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8,::1").unwrap();
        assert_eq!(proxies.len(), 3);
        assert!(proxies[1].contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
        assert!(matches!(
            parse_trusted_proxies("10.0.0.0/8,proxy.local"),
            Err(ConfigError::BadTrustedProxy(item)) if item == "proxy.local"
        ));
    }

    #[test]
    fn debug_output_never_shows_the_stripe_secret() {
        let stripe = StripeConfig {
            secret: SecretString::from("sk_test_do_not_print"),
            publishable_key: None,
            api_base: DEFAULT_STRIPE_API_BASE.into(),
        };
        assert!(!format!("{stripe:?}").contains("do_not_print"));
    }
}
