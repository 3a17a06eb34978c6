//! What `--help` says of the settings.

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
  STRIPE_CUSTOMER_FIELDS     more customer fields to sync, as stripe_field=users_column pairs, comma-separated:
                             phone, description, preferred_locales, address.line1|line2|city|state|
                             postal_code|country, shipping.name, shipping.phone, shipping.address.*,
                             metadata.KEY; name and email always sync [default: none]
  MAIL_URL                   SMTP server for password-reset mail: smtps://user:pass@host:465,
                             smtp://user:pass@host:587?tls=required, or smtp://host:25 for a local relay
                             [default: none: /forgot-password says to ask an operator]
  MAIL_FROM                  sender of that mail [default: stripe-sync <noreply@localhost>]
  REGISTER_REVEALS_ACCOUNTS  false: /register answers \"check your mail\" whether or not the email has an
                             account, the rest by mail (needs MAIL_URL) [default: true]
  APP_URL                    public base URL; https:// makes cookies Secure and adds HSTS [default: http://127.0.0.1:3000]
  APP_KEY                    base64 of 32+ random bytes, with or without Laravel's base64: prefix (a
                             Laravel app's key serves both); every instance needs the same
                             [default: generated into storage/app.key on first start]
  BIND                       listen address of serve [default: 127.0.0.1:3000]
  METRICS_BIND               listen address of serve's Prometheus /metrics, apart from BIND (keep it
                             private: 127.0.0.1:9464, or an address only Prometheus reaches)
                             [default: none: no metrics listener]
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
  RUN_HISTORY_DAYS           days the history of bulk runs (stripe-sync runs) is kept [default: 90]
  RUST_LOG                   log filter [default: info,sqlx=warn,tower_sessions=warn,axum_login=warn]";
