//! Settings from the process environment and `.env`, with defaults that let a fresh
//! clone run. Secrets are typed so they cannot be printed by accident.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretBox, SecretString};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://storage/app.db";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
pub const DEFAULT_APP_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_LOG_DIR: &str = "storage/logs";
pub const DEFAULT_JOB_POSTING_FEE: i64 = 4900;
pub const DEFAULT_JOB_POSTING_CURRENCY: &str = "usd";
const APP_KEY_FILE: &str = "storage/app.key";
/// The cookie crate's signing keys need at least 64 bytes of key material.
pub const APP_KEY_MIN_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
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
    pub job_posting: JobPosting,
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
        let app_key = match var("APP_KEY") {
            Some(encoded) => decode_app_key(&encoded)?,
            None => load_or_create_app_key(Path::new(APP_KEY_FILE))?,
        };
        let app_url = var("APP_URL").unwrap_or_else(|| DEFAULT_APP_URL.into());
        if !(app_url.starts_with("http://") || app_url.starts_with("https://")) {
            return Err(ConfigError::BadAppUrl);
        }
        Ok(Config {
            database_url: var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            stripe,
            webhook_secret: var("STRIPE_WEBHOOK_SECRET").map(SecretString::from),
            app_url: app_url.trim_end_matches('/').to_string(),
            app_key,
            bind: var("BIND").unwrap_or_else(|| DEFAULT_BIND.into()),
            log_dir: var("LOG_DIR")
                .unwrap_or_else(|| DEFAULT_LOG_DIR.into())
                .into(),
            job_posting: JobPosting::parse(var("JOB_POSTING_FEE"), var("JOB_POSTING_CURRENCY"))?,
        })
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
    let mut key = vec![0u8; APP_KEY_MIN_BYTES];
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
            decode_app_key(&BASE64.encode([1u8; 32])),
            Err(ConfigError::BadAppKey)
        ));
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
    fn debug_output_never_shows_the_stripe_secret() {
        let stripe = StripeConfig {
            secret: SecretString::from("sk_test_do_not_print"),
            publishable_key: None,
            api_base: DEFAULT_STRIPE_API_BASE.into(),
        };
        assert!(!format!("{stripe:?}").contains("do_not_print"));
    }
}
