//! Settings with defaults of their own: the web server's deadlines, request
//! limits and the job-posting fee.

use std::time::Duration;

use super::{ConfigError, DEFAULT_JOB_POSTING_CURRENCY, DEFAULT_JOB_POSTING_FEE};

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
    pub(super) fn parse(
        fee: Option<String>,
        currency: Option<String>,
    ) -> Result<Self, ConfigError> {
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
