//! Spawns the real app on port 0 against a fresh database and a Stripe stand-in,
//! and drives it like a browser: cookies, CSRF tokens, forms, redirects.

pub mod commands;
pub mod mail;
pub mod webhooks;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore as _, Jar};
use secrecy::SecretString;
use sqlx::Connection as _;
use stripe_sync::config::{Config, StripeConfig, generate_app_key};
use stripe_sync::context::Context;
use stripe_sync::customers::Customers;
use stripe_sync::db::{Db, users};
use stripe_sync::startup::App;
use stripe_sync::stripe::RetryPolicy;
use stripe_sync::telemetry::{self, Console};
use tokio::net::TcpListener;

use crate::stripe_fake::FakeStripe;

/// Fakes that the log check in `scripts/test` looks for after the suite.
pub const TEST_STRIPE_SECRET: &str = "sk_test_fake_suite_secret_0123456789";
/// A live-mode key, for runs that plan Stripe's live limits.
pub const LIVE_STRIPE_SECRET: &str = "sk_live_fake_suite_secret_0123456789";

/// The stand-in's limits for the suite: Stripe's two limiters, at the numbers
/// Stripe grants an account on request, so tests that run at `--rate 200` are
/// not slowed; commands plan 80% of the per-operation limit (`STRIPE_ENDPOINT_RATE`).
/// Tests of the published limits lower them ([`FakeStripe::set_stripe_limits`]).
const SUITE_GLOBAL_LIMIT: u32 = 1000;
const SUITE_ENDPOINT_LIMIT: u32 = 250;
const SUITE_ENDPOINT_RATE: &str = "200";
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// Every command of the binary.
pub const COMMANDS: &[&str] = &[
    "serve",
    "migrate",
    "user:create",
    "stripe:sync-customers",
    "stripe:replay-events",
    "stripe:webhook",
    "runs",
];

pub fn log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-logs")
}

fn init_logging() {
    static GUARD: OnceLock<Option<tracing_appender::non_blocking::WorkerGuard>> = OnceLock::new();
    GUARD.get_or_init(|| {
        let dir = log_dir();
        let settings = telemetry::LogSettings {
            dir: &dir,
            max_files: telemetry::DEFAULT_LOG_MAX_FILES,
            format: telemetry::LogFormat::Text,
        };
        telemetry::init(&settings, Console::Off).ok()
    });
}

/// Fast retries so fault tests take milliseconds, with a real per-attempt timeout.
pub fn test_retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        attempt_timeout: Duration::from_millis(800),
        total_timeout: Duration::from_secs(5),
    }
}

/// Every row a query returns, each column as text (the query casts them, as
/// `CAST(… AS TEXT)`: MySQL's name for that type, `CHAR`, is put in for it).
pub async fn text_rows(db: &Db, sql: &str) -> Vec<Vec<Option<String>>> {
    match db {
        Db::Mysql(pool) => sqlx::query(&sql.replace(" AS TEXT)", " AS CHAR)"))
            .fetch_all(pool)
            .await
            .map(|rows| rows.iter().map(texts).collect()),
        Db::Sqlite(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .map(|rows| rows.iter().map(texts).collect()),
        Db::Postgres(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .map(|rows| rows.iter().map(texts).collect()),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// The one number a query (a `COUNT(*)`, say) returns.
pub async fn count(db: &Db, sql: &str) -> i64 {
    match db {
        Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        Db::Mysql(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// A row's columns as text (the query casts them), read alike on every driver.
fn texts<R>(row: &R) -> Vec<Option<String>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (0..row.len()).map(|i| row.try_get(i).unwrap()).collect()
}

/// A fresh database for one test: a SQLite file, or a new PostgreSQL or MySQL
/// database on the server `DATABASE_URL` names when it is such a URL.
pub async fn fresh_database_url() -> String {
    let name = format!("stripe_sync_test_{}", uuid::Uuid::new_v4().simple());
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("mysql") || url.starts_with("mariadb") => {
            let url = url.replacen("mariadb://", "mysql://", 1);
            let mut conn = sqlx::MySqlConnection::connect(&url)
                .await
                .expect("connect to mysql");
            sqlx::raw_sql(&format!("CREATE DATABASE `{name}`"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (server, _) = url.rsplit_once('/').expect("mysql url has a database");
            format!("{server}/{name}")
        }
        Ok(url) if url.starts_with("postgres") => {
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("connect to postgres");
            sqlx::query(&format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (server, _) = url.rsplit_once('/').expect("postgres url has a database");
            format!("{server}/{name}")
        }
        _ => {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-dbs");
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}/{name}.db", dir.display())
        }
    }
}

pub enum StripeSetup {
    Fake,
    Unconfigured,
    At(String),
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub stripe: FakeStripe,
    /// What the instance's services are built on.
    pub context: Context,
    pub customers: Customers,
    pub db: Db,
    /// The instance's `APP_KEY`, shared by any further instance of the same app.
    pub app_key: Vec<u8>,
    api_base: Option<String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(StripeSetup::Fake).await
}

pub async fn spawn_app_with(setup: StripeSetup) -> TestApp {
    spawn_app_customized(setup, |_| {}).await
}

/// The suite's settings for one instance.
fn test_config(database_url: &str, api_base: Option<String>, app_key: &[u8]) -> Config {
    Config {
        database_url: database_url.to_string(),
        stripe: api_base.map(|api_base| StripeConfig {
            secret: SecretString::from(TEST_STRIPE_SECRET),
            publishable_key: None,
            api_base,
        }),
        webhook_secret: None,
        app_url: "http://127.0.0.1".into(),
        app_key: secrecy::SecretBox::new(Box::new(app_key.to_vec())),
        bind: "127.0.0.1:0".into(),
        metrics_bind: None,
        run_history_days: stripe_sync::config::DEFAULT_RUN_HISTORY_DAYS,
        log_dir: log_dir(),
        log_max_files: telemetry::DEFAULT_LOG_MAX_FILES,
        log_format: telemetry::LogFormat::Text,
        events_retention_days: stripe_sync::config::DEFAULT_EVENTS_RETENTION_DAYS,
        job_posting: Default::default(),
        trusted_proxies: Vec::new(),
        // Debug builds hash slowly; room for a test's parallel sign-ins.
        password_hash_concurrency: 4,
        password_hasher: None,
        limits: Default::default(),
        db_max_connections: stripe_sync::db::DEFAULT_MAX_CONNECTIONS,
        stripe_endpoint_rate: stripe_sync::config::DEFAULT_STRIPE_ENDPOINT_RATE,
        http_timeouts: Default::default(),
        customer_fields: Default::default(),
        mail: None,
        register_reveals_accounts: true,
    }
}

/// Spawns the app with settings changed from the suite's defaults.
pub async fn spawn_app_customized(
    setup: StripeSetup,
    customize: impl FnOnce(&mut Config),
) -> TestApp {
    init_logging();
    let stripe = FakeStripe::start().await;
    stripe.set_limits(SUITE_GLOBAL_LIMIT, SUITE_ENDPOINT_LIMIT);
    let api_base = match &setup {
        StripeSetup::Fake => Some(stripe.url.clone()),
        StripeSetup::Unconfigured => None,
        StripeSetup::At(url) => Some(url.clone()),
    };
    let database_url = fresh_database_url().await;
    let mut config = test_config(&database_url, api_base.clone(), &generate_app_key());
    customize(&mut config);
    spawn_instance(config, stripe, api_base).await
}

async fn spawn_instance(config: Config, stripe: FakeStripe, api_base: Option<String>) -> TestApp {
    let app_key = config.app_key_bytes().to_vec();
    let database_url = config.database_url.clone();
    let app = App::build_with_retry(config, test_retry_policy())
        .await
        .expect("app builds");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (context, customers) = (app.context.clone(), app.customers.clone());
    let server = tokio::spawn(app.serve(listener));
    TestApp {
        address,
        database_url,
        stripe,
        db: context.db.clone(),
        context,
        customers,
        app_key,
        api_base,
        server,
    }
}

impl TestApp {
    /// Another instance of the same app, as behind a load balancer or after a
    /// deploy: its own process state, the same database, `APP_KEY` and stand-in.
    pub async fn another_instance(&self, customize: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = test_config(&self.database_url, self.api_base.clone(), &self.app_key);
        customize(&mut config);
        spawn_instance(config, self.stripe.clone(), self.api_base.clone()).await
    }

    /// Stops this instance's server, as a restart would.
    pub fn stop(&self) {
        self.server.abort();
    }

    /// The `stripe-sync` binary with this app's database and Stripe stand-in.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let app_key = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_stripe-sync"));
        command
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("STRIPE_SECRET", TEST_STRIPE_SECRET)
            .env("STRIPE_API_BASE", &self.stripe.url)
            .env("APP_KEY", app_key)
            .env("LOG_DIR", log_dir())
            .env("RUST_LOG", "warn,stripe_sync=info")
            .env("STRIPE_ENDPOINT_RATE", SUITE_ENDPOINT_RATE)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// The binary as an operator runs it against Stripe's published limits (the
    /// stand-in lowered to them): a live key, no rate settings.
    pub fn command_at_stripe_limits(&self, args: &[&str]) -> tokio::process::Command {
        self.stripe.set_stripe_limits();
        let mut command = self.command(args);
        command
            .env("STRIPE_SECRET", LIVE_STRIPE_SECRET)
            .env_remove("STRIPE_ENDPOINT_RATE");
        command
    }

    /// Runs the binary to the end.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().await.expect("binary runs")
    }

    /// Runs the binary to the end with `input` on its standard input.
    pub async fn run_with_input(&self, args: &[&str], input: &str) -> std::process::Output {
        use tokio::io::AsyncWriteExt as _;
        let mut child = self
            .command(args)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("binary runs");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
        drop(stdin);
        child.wait_with_output().await.unwrap()
    }

    /// Users made straight in the database (no password anyone knows).
    pub async fn insert_users(&self, count: usize) -> Vec<i64> {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let email = format!("user{n}@example.com");
            let user = users::NewUser {
                name: &format!("User {n}"),
                email: &email,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$not-a-real-hash",
            };
            ids.push(
                users::insert(&self.db, user, time::OffsetDateTime::now_utc())
                    .await
                    .unwrap(),
            );
        }
        ids
    }

    /// Runs one statement on the test database, for arranging states that only
    /// time or a crash would otherwise produce.
    pub async fn execute(&self, sql: &str) {
        match &self.db {
            Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
            Db::Mysql(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }

    /// Adds columns to `users`, as a Laravel app's own migration would:
    /// (name, SQL type and constraints).
    pub async fn add_user_columns(&self, columns: &[(&str, &str)]) {
        let statements: Vec<String> = columns
            .iter()
            .map(|(name, type_)| format!("ALTER TABLE users ADD COLUMN {name} {type_}"))
            .collect();
        self.execute(&statements.join(";\n")).await;
    }

    /// Links each user to a customer made on Stripe's side, straight in the
    /// database (no call), as a `--create` long ago would have, with nothing
    /// pushed since (`--update` has work to do).
    pub async fn link_in_database(&self, ids: &[i64], customers: &[String]) {
        let statements: Vec<String> = ids
            .iter()
            .zip(customers)
            .map(|(id, customer)| {
                format!("UPDATE users SET stripe_id = '{customer}' WHERE id = {id}")
            })
            .collect();
        for chunk in statements.chunks(100) {
            self.execute(&chunk.join(";\n")).await;
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::at(&self.address)
    }

    /// A browser with a freshly registered, signed-in user; returns the user's id.
    pub async fn signed_in_user(&self, name: &str, email: &str) -> (Browser, i64) {
        let browser = self.browser();
        let response = browser.register(name, email).await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "registration redirects"
        );
        let user = users::find_by_email(&self.db, email)
            .await
            .unwrap()
            .expect("registered");
        (browser, user.id)
    }

    /// A signed-in user whose customer the customers service created at the stand-in:
    /// the browser, the user's id and the customer's id.
    pub async fn linked_user(&self) -> (Browser, i64, String) {
        let (browser, user_id) = self.signed_in_user("Ann", "ann@example.com").await;
        let created = self
            .customers
            .create_customer(user_id)
            .await
            .expect("created");
        (browser, user_id, created.stripe_id().to_string())
    }

    /// Polls `check` until it holds (at most about ten seconds).
    pub async fn eventually<F, Fut>(check: F) -> bool
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..100 {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// `count` users, each with a customer made for them and then given a new
    /// default card in Stripe: an event that costs a replay one retrieve.
    pub async fn users_with_new_cards(&self, count: usize) -> Vec<i64> {
        let ids = self.insert_users(count).await;
        for id in &ids {
            let customer = self.customers.create_customer(*id).await.unwrap();
            self.stripe
                .set_default_card(customer.stripe_id(), "visa", "4242");
        }
        ids
    }

    /// How many of `ids` have a card stored.
    pub async fn with_card(&self, ids: &[i64]) -> usize {
        let mut set = 0;
        for id in ids {
            set += usize::from(self.user(*id).await.pm_type.is_some());
        }
        set
    }

    pub async fn user(&self, id: i64) -> users::User {
        users::find(&self.db, id)
            .await
            .unwrap()
            .expect("user exists")
    }
}

pub struct Browser {
    pub base: String,
    jar: Arc<Jar>,
    pub client: reqwest::Client,
    token: Mutex<Option<String>>,
}

impl Browser {
    /// A browser with no cookies yet, for the site at `base`.
    pub fn at(base: &str) -> Browser {
        let jar = Arc::new(Jar::default());
        Browser {
            base: base.to_string(),
            jar: jar.clone(),
            client: reqwest::Client::builder()
                .cookie_provider(jar)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            token: Mutex::new(None),
        }
    }

    /// The same browser (cookies, form token) pointed at another instance.
    pub fn on(&self, app: &TestApp) -> Browser {
        Browser {
            base: app.address.clone(),
            jar: self.jar.clone(),
            client: self.client.clone(),
            token: Mutex::new(self.token.lock().unwrap().clone()),
        }
    }

    /// Posts the same form `count` times at once (one form token, as from tabs of
    /// one browser) and returns the statuses, in no particular order.
    pub async fn post_form_at_once(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        count: usize,
    ) -> Vec<StatusCode> {
        let token = self.csrf_token().await;
        let mut form: Vec<(String, String)> = vec![("authenticity_token".into(), token.clone())];
        form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut posts = tokio::task::JoinSet::new();
        for _ in 0..count {
            let request = self.client.post(format!("{}{path}", self.base)).form(&form);
            posts.spawn(async move { request.send().await.unwrap().status() });
        }
        posts.join_all().await
    }

    /// The value of one cookie the site has set in this browser.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| value.to_string())
        })
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// GETs a page that must render, and returns its HTML.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let html = response.text().await.unwrap();
        if let Some(token) = csrf_token_in(&html) {
            *self.token.lock().unwrap() = Some(token);
        }
        html
    }

    /// The CSRF token a form on the site would carry.
    pub async fn csrf_token(&self) -> String {
        if let Some(token) = self.token.lock().unwrap().clone() {
            return token;
        }
        let html = self.page("/login").await;
        csrf_token_in(&html).expect("login page carries a csrf token")
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut form: Vec<(&str, &str)> = vec![("authenticity_token", token.as_str())];
        form.extend_from_slice(fields);
        self.post_raw(path, &form).await
    }

    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        // A new session (signing in or out) makes the forms of earlier pages stale,
        // as their tokens are sealed to the session: the next post loads a page.
        let new_session = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|cookie| {
                let cookie = cookie.to_str().unwrap_or_default();
                cookie.starts_with("stripe_sync_session=")
                    || cookie.starts_with("__Host-stripe_sync_session=")
            });
        if new_session {
            *self.token.lock().unwrap() = None;
        }
        response
    }

    pub async fn register(&self, name: &str, email: &str) -> reqwest::Response {
        let fields = [
            ("name", name),
            ("email", email),
            ("password", PASSWORD),
            ("password_confirmation", PASSWORD),
        ];
        self.post_form("/register", &fields).await
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// Presses one of the buttons on `/settings/stripe` and returns the page the
    /// redirect leads to (with its flash message).
    pub async fn press(&self, action: &str) -> String {
        let response = self
            .post_form(&format!("/settings/stripe/{action}"), &[])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "POST {action} redirects"
        );
        assert_eq!(location(&response), "/settings/stripe");
        self.page("/settings/stripe").await
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

fn csrf_token_in(html: &str) -> Option<String> {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// An address no other test uses: localstripe and the mail server are shared by
/// the whole run.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Polls `check` every 10 ms until it holds; fails the test, naming `what`, when
/// it has not within `within` (a wait with no end hangs instead of failing).
pub async fn wait_until<F, Fut>(what: &str, within: Duration, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {within:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether any log file holds `needle` (a secret that must never be there), read
/// once every line logged before the call is written: the file writer flushes in
/// the background, in order, so a marker logged now and seen in the file means
/// nothing logged earlier is still on its way.
pub async fn logs_hold(needle: &str) -> bool {
    let marker = format!("log-flushed-{}", uuid::Uuid::new_v4().simple());
    tracing::info!(marker = %marker, "test marker");
    log_line_containing(&[&marker]).await;
    log_lines().any(|line| line.contains(needle))
}

/// Every line of the log files, as they are now.
fn log_lines() -> impl Iterator<Item = String> {
    std::fs::read_dir(log_dir())
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            text.lines().map(str::to_string).collect::<Vec<_>>()
        })
}

/// Waits (5 s at most, then fails the test) for a line in the log files that
/// contains every needle; the file writer flushes in the background.
pub async fn log_line_containing(needles: &[&str]) -> String {
    let what = format!("a log line with {needles:?}");
    let found = || log_lines().find(|line| needles.iter().all(|n| line.contains(n)));
    wait_until(&what, Duration::from_secs(5), || async {
        found().is_some()
    })
    .await;
    found().expect("seen a moment ago")
}

/// Asserts the response's status and returns its body.
pub async fn body(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status, "{}", response.url());
    response.text().await.unwrap()
}

/// What a group of tests needs from outside the suite.
#[derive(Clone, Copy, Debug)]
pub enum Needs {
    /// localstripe, at `LOCALSTRIPE_URL` (`scripts/test` starts it).
    Localstripe,
    /// `chromedriver` and Chromium on the PATH (`scripts/test` installs them).
    Chromium,
    /// Prometheus and promtool on the PATH (`scripts/test` installs Debian's).
    Prometheus,
    /// A real SMTP server at `SMTP_TEST_URL` keeping what it receives in the
    /// maildir `SMTP_TEST_MAILDIR` (`scripts/test` starts aiosmtpd).
    Smtp,
    /// `systemd-analyze` on the PATH (Debian's systemd package), for the units.
    SystemdAnalyze,
}

/// Whether a test must be skipped because what it needs is missing: plain
/// `cargo test` skips it with one printed line; under `scripts/test`
/// (`STRIPE_SYNC_TESTS_REQUIRE_ALL=1`) a missing need fails the test instead.
pub fn skip_without(needs: Needs) -> bool {
    let (present, missing) = match needs {
        Needs::Localstripe => (
            std::env::var_os("LOCALSTRIPE_URL").is_some(),
            "LOCALSTRIPE_URL is not set (scripts/test starts localstripe)",
        ),
        Needs::Chromium => (
            on_path("chromedriver") && (on_path("chromium") || on_path("chromium-browser")),
            "chromedriver or chromium is not installed (scripts/test installs them)",
        ),
        Needs::Prometheus => (
            on_path("prometheus") && on_path("promtool"),
            "prometheus or promtool is not installed (scripts/test installs them)",
        ),
        Needs::Smtp => (
            std::env::var_os("SMTP_TEST_URL").is_some()
                && std::env::var_os("SMTP_TEST_MAILDIR").is_some(),
            "SMTP_TEST_URL is not set (scripts/test starts aiosmtpd)",
        ),
        Needs::SystemdAnalyze => (
            on_path("systemd-analyze"),
            "systemd-analyze is not installed (Debian's systemd package)",
        ),
    };
    if present {
        return false;
    }
    if std::env::var_os("STRIPE_SYNC_TESTS_REQUIRE_ALL").is_some() {
        panic!("{missing}");
    }
    println!("skipped: {missing}");
    true
}

/// Whether an executable of that name is on the PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
