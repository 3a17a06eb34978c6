//! Beside a Laravel app: a database shaped exactly as Laravel 11 and Cashier 15's
//! migrations leave it is adopted by `migrate`, and both apps keep working on it.

use reqwest::StatusCode;
use stripe_sync::db::{Db, users};

use crate::helpers::commands::{run_ok, stderr};
use crate::helpers::{
    StripeSetup, TestApp, count, fresh_database_url, spawn_app, spawn_app_customized, text_rows,
};

/// Laravel 11's default migrations and Cashier 15's, as their schema grammars
/// write them for SQLite.
const LARAVEL_SQLITE: &[&str] = &[
    r#"create table "migrations" ("id" integer primary key autoincrement not null, "migration" varchar not null, "batch" integer not null)"#,
    r#"create table "users" ("id" integer primary key autoincrement not null, "name" varchar not null, "email" varchar not null, "email_verified_at" datetime, "password" varchar not null, "remember_token" varchar, "created_at" datetime, "updated_at" datetime)"#,
    r#"create unique index "users_email_unique" on "users" ("email")"#,
    r#"create table "password_reset_tokens" ("email" varchar not null, "token" varchar not null, "created_at" datetime, primary key ("email"))"#,
    r#"create table "sessions" ("id" varchar not null, "user_id" integer, "ip_address" varchar, "user_agent" text, "payload" text not null, "last_activity" integer not null, primary key ("id"))"#,
    r#"create index "sessions_user_id_index" on "sessions" ("user_id")"#,
    r#"create index "sessions_last_activity_index" on "sessions" ("last_activity")"#,
    r#"create table "cache" ("key" varchar not null, "value" text not null, "expiration" integer not null, primary key ("key"))"#,
    r#"create table "cache_locks" ("key" varchar not null, "owner" varchar not null, "expiration" integer not null, primary key ("key"))"#,
    r#"create table "jobs" ("id" integer primary key autoincrement not null, "queue" varchar not null, "payload" text not null, "attempts" integer not null, "reserved_at" integer, "available_at" integer not null, "created_at" integer not null)"#,
    r#"create index "jobs_queue_index" on "jobs" ("queue")"#,
    r#"create table "job_batches" ("id" varchar not null, "name" varchar not null, "total_jobs" integer not null, "pending_jobs" integer not null, "failed_jobs" integer not null, "failed_job_ids" text not null, "options" text, "cancelled_at" integer, "created_at" integer not null, "finished_at" integer, primary key ("id"))"#,
    r#"create table "failed_jobs" ("id" integer primary key autoincrement not null, "uuid" varchar not null, "connection" text not null, "queue" text not null, "payload" text not null, "exception" text not null, "failed_at" datetime not null default CURRENT_TIMESTAMP)"#,
    r#"create unique index "failed_jobs_uuid_unique" on "failed_jobs" ("uuid")"#,
    r#"alter table "users" add column "stripe_id" varchar"#,
    r#"alter table "users" add column "pm_type" varchar"#,
    r#"alter table "users" add column "pm_last_four" varchar"#,
    r#"alter table "users" add column "trial_ends_at" datetime"#,
    r#"create index "users_stripe_id_index" on "users" ("stripe_id")"#,
    r#"create table "subscriptions" ("id" integer primary key autoincrement not null, "user_id" integer not null, "type" varchar not null, "stripe_id" varchar not null, "stripe_status" varchar not null, "stripe_price" varchar, "quantity" integer, "trial_ends_at" datetime, "ends_at" datetime, "created_at" datetime, "updated_at" datetime)"#,
    r#"create index "subscriptions_user_id_stripe_status_index" on "subscriptions" ("user_id", "stripe_status")"#,
    r#"create unique index "subscriptions_stripe_id_unique" on "subscriptions" ("stripe_id")"#,
    r#"create table "subscription_items" ("id" integer primary key autoincrement not null, "subscription_id" integer not null, "stripe_id" varchar not null, "stripe_product" varchar not null, "stripe_price" varchar not null, "quantity" integer, "created_at" datetime, "updated_at" datetime)"#,
    r#"create unique index "subscription_items_stripe_id_unique" on "subscription_items" ("stripe_id")"#,
];

/// The same for PostgreSQL.
const LARAVEL_POSTGRES: &[&str] = &[
    r#"create table "migrations" ("id" serial not null primary key, "migration" varchar(255) not null, "batch" integer not null)"#,
    r#"create table "users" ("id" bigserial not null primary key, "name" varchar(255) not null, "email" varchar(255) not null, "email_verified_at" timestamp(0) without time zone null, "password" varchar(255) not null, "remember_token" varchar(100) null, "created_at" timestamp(0) without time zone null, "updated_at" timestamp(0) without time zone null)"#,
    r#"alter table "users" add constraint "users_email_unique" unique ("email")"#,
    r#"create table "password_reset_tokens" ("email" varchar(255) not null, "token" varchar(255) not null, "created_at" timestamp(0) without time zone null, primary key ("email"))"#,
    r#"create table "sessions" ("id" varchar(255) not null, "user_id" bigint null, "ip_address" varchar(45) null, "user_agent" text null, "payload" text not null, "last_activity" integer not null, primary key ("id"))"#,
    r#"create index "sessions_user_id_index" on "sessions" ("user_id")"#,
    r#"create index "sessions_last_activity_index" on "sessions" ("last_activity")"#,
    r#"create table "cache" ("key" varchar(255) not null, "value" text not null, "expiration" integer not null, primary key ("key"))"#,
    r#"create table "cache_locks" ("key" varchar(255) not null, "owner" varchar(255) not null, "expiration" integer not null, primary key ("key"))"#,
    r#"create table "jobs" ("id" bigserial not null primary key, "queue" varchar(255) not null, "payload" text not null, "attempts" smallint not null, "reserved_at" integer null, "available_at" integer not null, "created_at" integer not null)"#,
    r#"create index "jobs_queue_index" on "jobs" ("queue")"#,
    r#"create table "job_batches" ("id" varchar(255) not null, "name" varchar(255) not null, "total_jobs" integer not null, "pending_jobs" integer not null, "failed_jobs" integer not null, "failed_job_ids" text not null, "options" text null, "cancelled_at" integer null, "created_at" integer not null, "finished_at" integer null, primary key ("id"))"#,
    r#"create table "failed_jobs" ("id" bigserial not null primary key, "uuid" varchar(255) not null, "connection" text not null, "queue" text not null, "payload" text not null, "exception" text not null, "failed_at" timestamp(0) without time zone not null default CURRENT_TIMESTAMP)"#,
    r#"alter table "failed_jobs" add constraint "failed_jobs_uuid_unique" unique ("uuid")"#,
    r#"alter table "users" add column "stripe_id" varchar(255) null, add column "pm_type" varchar(255) null, add column "pm_last_four" varchar(4) null, add column "trial_ends_at" timestamp(0) without time zone null"#,
    r#"create index "users_stripe_id_index" on "users" ("stripe_id")"#,
    r#"create table "subscriptions" ("id" bigserial not null primary key, "user_id" bigint not null, "type" varchar(255) not null, "stripe_id" varchar(255) not null, "stripe_status" varchar(255) not null, "stripe_price" varchar(255) null, "quantity" integer null, "trial_ends_at" timestamp(0) without time zone null, "ends_at" timestamp(0) without time zone null, "created_at" timestamp(0) without time zone null, "updated_at" timestamp(0) without time zone null)"#,
    r#"create index "subscriptions_user_id_stripe_status_index" on "subscriptions" ("user_id", "stripe_status")"#,
    r#"alter table "subscriptions" add constraint "subscriptions_stripe_id_unique" unique ("stripe_id")"#,
    r#"create table "subscription_items" ("id" bigserial not null primary key, "subscription_id" bigint not null, "stripe_id" varchar(255) not null, "stripe_product" varchar(255) not null, "stripe_price" varchar(255) not null, "quantity" integer null, "created_at" timestamp(0) without time zone null, "updated_at" timestamp(0) without time zone null)"#,
    r#"alter table "subscription_items" add constraint "subscription_items_stripe_id_unique" unique ("stripe_id")"#,
];

/// The same for MySQL and MariaDB (`default character set utf8mb4 collate
/// 'utf8mb4_unicode_ci'` after every `create table`, as Laravel's default
/// connection has it).
const LARAVEL_MYSQL: &[&str] = &[
    "create table `migrations` (`id` int unsigned not null auto_increment primary key, `migration` varchar(255) not null, `batch` int not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "create table `users` (`id` bigint unsigned not null auto_increment primary key, `name` varchar(255) not null, `email` varchar(255) not null, `email_verified_at` timestamp null, `password` varchar(255) not null, `remember_token` varchar(100) null, `created_at` timestamp null, `updated_at` timestamp null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `users` add unique `users_email_unique`(`email`)",
    "create table `password_reset_tokens` (`email` varchar(255) not null, `token` varchar(255) not null, `created_at` timestamp null, primary key (`email`)) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "create table `sessions` (`id` varchar(255) not null, `user_id` bigint unsigned null, `ip_address` varchar(45) null, `user_agent` text null, `payload` longtext not null, `last_activity` int not null, primary key (`id`)) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `sessions` add index `sessions_user_id_index`(`user_id`)",
    "alter table `sessions` add index `sessions_last_activity_index`(`last_activity`)",
    "create table `cache` (`key` varchar(255) not null, `value` mediumtext not null, `expiration` int not null, primary key (`key`)) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "create table `cache_locks` (`key` varchar(255) not null, `owner` varchar(255) not null, `expiration` int not null, primary key (`key`)) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "create table `jobs` (`id` bigint unsigned not null auto_increment primary key, `queue` varchar(255) not null, `payload` longtext not null, `attempts` tinyint unsigned not null, `reserved_at` int unsigned null, `available_at` int unsigned not null, `created_at` int unsigned not null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `jobs` add index `jobs_queue_index`(`queue`)",
    "create table `job_batches` (`id` varchar(255) not null, `name` varchar(255) not null, `total_jobs` int not null, `pending_jobs` int not null, `failed_jobs` int not null, `failed_job_ids` longtext not null, `options` mediumtext null, `cancelled_at` int null, `created_at` int not null, `finished_at` int null, primary key (`id`)) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "create table `failed_jobs` (`id` bigint unsigned not null auto_increment primary key, `uuid` varchar(255) not null, `connection` text not null, `queue` text not null, `payload` longtext not null, `exception` longtext not null, `failed_at` timestamp not null default CURRENT_TIMESTAMP) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `failed_jobs` add unique `failed_jobs_uuid_unique`(`uuid`)",
    "alter table `users` add `stripe_id` varchar(255) null, add `pm_type` varchar(255) null, add `pm_last_four` varchar(4) null, add `trial_ends_at` timestamp null",
    "alter table `users` add index `users_stripe_id_index`(`stripe_id`)",
    "create table `subscriptions` (`id` bigint unsigned not null auto_increment primary key, `user_id` bigint unsigned not null, `type` varchar(255) not null, `stripe_id` varchar(255) not null, `stripe_status` varchar(255) not null, `stripe_price` varchar(255) null, `quantity` int null, `trial_ends_at` timestamp null, `ends_at` timestamp null, `created_at` timestamp null, `updated_at` timestamp null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `subscriptions` add index `subscriptions_user_id_stripe_status_index`(`user_id`, `stripe_status`)",
    "alter table `subscriptions` add unique `subscriptions_stripe_id_unique`(`stripe_id`)",
    "create table `subscription_items` (`id` bigint unsigned not null auto_increment primary key, `subscription_id` bigint unsigned not null, `stripe_id` varchar(255) not null, `stripe_product` varchar(255) not null, `stripe_price` varchar(255) not null, `quantity` int null, `created_at` timestamp null, `updated_at` timestamp null) default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `subscription_items` add unique `subscription_items_stripe_id_unique`(`stripe_id`)",
];

/// Laravel's tables, as the app found them.
const LARAVEL_TABLES: &[&str] = &[
    "migrations",
    "users",
    "password_reset_tokens",
    "sessions",
    "cache",
    "cache_locks",
    "jobs",
    "job_batches",
    "failed_jobs",
    "subscriptions",
    "subscription_items",
];

const TAYLOR_PASSWORD: &str = "laravel-password";

/// Runs one statement; its `"quoted"` names in backquotes on MySQL.
async fn run_sql(db: &Db, sql: &str) {
    match db {
        Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        Db::Mysql(pool) => sqlx::raw_sql(&sql.replace('"', "`"))
            .execute(pool)
            .await
            .map(drop),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// A Laravel 11 + Cashier 15 database with rows in it, as a Laravel app that has
/// been running a while leaves it. Returns its URL.
async fn laravel_database() -> String {
    laravel_database_with(true).await
}

/// The same, with or without Cashier's migrations.
async fn laravel_database_with(cashier: bool) -> String {
    let url = fresh_database_url().await;
    let db = Db::connect(&url).await.unwrap();
    let ddl = match db {
        Db::Sqlite(_) => LARAVEL_SQLITE,
        Db::Postgres(_) => LARAVEL_POSTGRES,
        Db::Mysql(_) => LARAVEL_MYSQL,
    };
    let is_cashier = |statement: &str| {
        [
            "stripe_id",
            "pm_type",
            "pm_last_four",
            "trial_ends_at",
            "subscription",
        ]
        .iter()
        .any(|word| statement.contains(word))
    };
    for statement in ddl.iter().filter(|s| cashier || !is_cashier(s)) {
        run_sql(&db, statement).await;
    }
    // Hashed as Laravel's Hash::make does: bcrypt, cost 12, $2y$.
    let hash = bcrypt::hash_with_result(TAYLOR_PASSWORD, 12)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let rows = [
        "insert into migrations (migration, batch) values \
         ('0001_01_01_000000_create_users_table', 1), ('0001_01_01_000001_create_cache_table', 1), \
         ('0001_01_01_000002_create_jobs_table', 1), ('2019_05_03_000001_create_customer_columns', 1), \
         ('2019_05_03_000002_create_subscriptions_table', 1)"
            .to_string(),
        format!(
            "insert into users (name, email, password, remember_token, created_at, updated_at) values \
             ('Taylor', 'taylor@example.com', '{hash}', 'rememberme01', '2025-01-02 03:04:05', '2025-01-02 03:04:05'), \
             ('Abigail', 'abigail@example.com', '{hash}', null, '2025-02-03 04:05:06', '2025-02-03 04:05:06')"
        ),
        "insert into sessions (id, user_id, ip_address, user_agent, payload, last_activity) values \
         ('laravel-session-1', 1, '127.0.0.1', 'Mozilla/5.0', 'YToxOntzOjY6Il90b2tlbiI7fQ==', 1764300000)"
            .to_string(),
        "insert into cache (\"key\", value, expiration) values ('laravel_cache_config', 'i:1;', 1764400000)"
            .to_string(),
        "insert into subscriptions (user_id, type, stripe_id, stripe_status, stripe_price, quantity, created_at, updated_at) values \
         (2, 'default', 'sub_laravel1', 'active', 'price_monthly', 1, '2025-02-03 04:05:06', '2025-02-03 04:05:06')"
            .to_string(),
    ];
    for row in rows
        .iter()
        .filter(|row| cashier || !row.contains("subscriptions"))
    {
        run_sql(&db, row).await;
    }
    url
}

/// The columns of `users` Laravel and Cashier made.
const LARAVEL_USER_COLUMNS: &[&str] = &[
    "id",
    "name",
    "email",
    "email_verified_at",
    "password",
    "remember_token",
    "created_at",
    "updated_at",
    "stripe_id",
    "pm_type",
    "pm_last_four",
    "trial_ends_at",
];

/// Every column (name and type) and every row of Laravel's tables, as text;
/// with `only_laravel`, of `users` only the columns Laravel and Cashier made.
async fn laravel_state(url: &str, only_laravel: bool) -> String {
    let db = Db::connect(url).await.unwrap();
    let mut state = String::new();
    for table in LARAVEL_TABLES {
        let columns: Vec<(String, String)> = match &db {
            Db::Sqlite(pool) => {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(pool)
                    .await
                    .unwrap()
            }
            Db::Postgres(pool) => sqlx::query_as(
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT) \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1 ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(pool)
            .await
            .unwrap(),
            Db::Mysql(pool) => sqlx::query_as(
                "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) \
                 FROM information_schema.columns WHERE table_schema = DATABASE() \
                 AND table_name = ? ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(pool)
            .await
            .unwrap(),
        };
        let columns: Vec<(String, String)> = columns
            .into_iter()
            .filter(|(name, _)| {
                !only_laravel || *table != "users" || LARAVEL_USER_COLUMNS.contains(&name.as_str())
            })
            .collect();
        state.push_str(&format!("{table}: {columns:?}\n"));
        let laravel_columns: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let quote = if matches!(db, Db::Mysql(_)) { '`' } else { '"' };
        let select = laravel_columns
            .iter()
            .map(|c| format!("CAST({quote}{c}{quote} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {select} FROM {quote}{table}{quote} ORDER BY 1");
        let rows = text_rows(&db, &sql).await;
        state.push_str(&format!("{rows:?}\n"));
    }
    state
}

async fn migrate(app: &TestApp, url: &str) -> std::process::Output {
    app.command(&["migrate"])
        .env("DATABASE_URL", url)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn migrate_adopts_a_laravel_database_and_changes_nothing_of_laravel_s() {
    let url = laravel_database().await;
    let before = laravel_state(&url, true).await;
    let runner = spawn_app().await;

    let first = migrate(&runner, &url).await;

    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(
        laravel_state(&url, true).await,
        before,
        "no column or row of Laravel's changed"
    );
    let adopted = laravel_state(&url, false).await;
    assert!(
        adopted.contains("stripe_snapshot"),
        "our columns were added: {adopted}"
    );

    let second = migrate(&runner, &url).await;

    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        laravel_state(&url, false).await,
        adopted,
        "a second migrate changes nothing"
    );
}

#[tokio::test]
async fn a_laravel_user_signs_in_links_a_customer_and_posts_a_job_beside_laravel() {
    let url = laravel_database().await;
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
    })
    .await;
    let taylor = users::find_by_email(&app.db, "taylor@example.com")
        .await
        .unwrap()
        .expect("Laravel's user");
    let hash = taylor.password_hash.clone();
    assert!(hash.starts_with("$2y$12$"));

    let browser = app.browser();
    let signed_in = browser.login("taylor@example.com", TAYLOR_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let page = browser.press("create").await;
    assert!(page.contains("Linked"), "{page}");

    let taylor = app.user(taylor.id).await;
    assert!(taylor.stripe_id.is_some());
    assert_eq!(
        taylor.password_hash, hash,
        "the sign-in left Laravel's hash alone"
    );

    // A user registered here gets the hash Laravel writes.
    let (_, ann) = app.signed_in_user("Ann", "ann@example.com").await;
    let ann = app.user(ann).await;
    assert!(
        ann.password_hash.starts_with("$2y$12$"),
        "{}",
        ann.password_hash
    );

    let fields = [
        ("form_token", "0b4c3c6e-3f58-4f64-9a0e-5d1c2b7a8e90"),
        ("title", "Laravel and Rust Engineer"),
        ("company", "Artisans"),
        ("description", "Work on both sides of the same database."),
    ];
    let posted = browser.post_form("/jobs/new", &fields).await;
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(count(&app.db, "SELECT COUNT(*) FROM job_postings").await, 1);
    assert_eq!(
        count(&app.db, "SELECT COUNT(*) FROM jobs").await,
        0,
        "Laravel's queue untouched"
    );

    let report = run_ok(&app, &["stripe:sync-customers", "--create"]).await;
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(
        count(
            &app.db,
            "SELECT COUNT(*) FROM users WHERE stripe_id IS NULL"
        )
        .await,
        0,
        "everyone linked"
    );
}

#[tokio::test]
async fn a_payments_table_of_the_laravel_app_s_own_stops_migrate_and_nothing_changes() {
    let url = laravel_database().await;
    let db = Db::connect(&url).await.unwrap();
    run_sql(
        &db,
        "create table payments (id integer primary key, order_ref varchar(255) not null, total integer not null)",
    )
    .await;
    let before = laravel_state(&url, false).await;
    let runner = spawn_app().await;

    let output = migrate(&runner, &url).await;

    assert_ne!(output.status.code(), Some(0));
    let said = stderr(&output);
    assert!(said.contains("a payments table exists already"), "{said}");
    assert!(
        said.contains("user_id, job_id, checkout_session_id"),
        "{said}"
    );
    assert_eq!(laravel_state(&url, false).await, before, "nothing changed");
}

#[tokio::test]
async fn times_written_to_laravel_s_columns_read_back_in_laravel_s_format() {
    let url = laravel_database().await;
    // Laravel's PostgreSQL columns are `timestamp without time zone`: what lands
    // there depends on the session's zone. A database whose default zone is not
    // UTC (+05:45) catches a write that leans on the default.
    if let Db::Postgres(_) = Db::connect(&url).await.unwrap() {
        let name = url.rsplit('/').next().unwrap();
        let admin = Db::connect(&url.replace(name, "test")).await.unwrap();
        run_sql(
            &admin,
            &format!("ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kathmandu'"),
        )
        .await;
    }
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
    })
    .await;
    let (_, ann) = app.signed_in_user("Ann", "ann@example.com").await;

    let sql = format!("SELECT CAST(created_at AS TEXT) FROM users WHERE id = {ann}");
    let created = text_rows(&app.db, &sql).await[0][0].clone().unwrap();

    // Eloquent reads `Y-m-d H:i:s`.
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    assert!(
        time::PrimitiveDateTime::parse(&created, &format).is_ok(),
        "{created}"
    );
    // In UTC, as Laravel writes it with its default `app.timezone`.
    let written = time::PrimitiveDateTime::parse(&created, &format)
        .unwrap()
        .assume_utc();
    let off_by = (time::OffsetDateTime::now_utc() - written).abs();
    assert!(off_by < time::Duration::minutes(5), "{created}");
    if matches!(app.db, Db::Postgres(_)) {
        let zone = text_rows(&app.db, "SHOW timezone").await;
        assert_eq!(
            zone[0][0].as_deref(),
            Some("UTC"),
            "the app's sessions are UTC"
        );
    }
    if matches!(app.db, Db::Mysql(_)) {
        let zone = text_rows(&app.db, "SELECT @@session.time_zone").await;
        assert_eq!(
            zone[0][0].as_deref(),
            Some("+00:00"),
            "each connection keeps UTC"
        );
    }
}

/// Column names of a table, sorted.
async fn column_names(url: &str, table: &str) -> Vec<String> {
    let db = Db::connect(url).await.unwrap();
    let mut names = stripe_sync::db::dialect::catalog::columns(&db, table)
        .await
        .unwrap();
    names.sort();
    names
}

#[tokio::test]
async fn an_adopted_database_has_the_shape_a_fresh_one_gets() {
    let adopted = laravel_database().await;
    let fresh = fresh_database_url().await;
    let runner = spawn_app().await;
    for url in [&adopted, &fresh] {
        let output = migrate(&runner, url).await;
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    }

    for table in [
        "users",
        "job_postings",
        "payments",
        "job_checkout_sessions",
        "stripe_events",
        "rate_limits",
        "stripe_event_checkpoints",
        "stripe_sync_runs",
    ] {
        let names = column_names(&adopted, table).await;
        assert!(!names.is_empty(), "{table} exists");
        assert_eq!(names, column_names(&fresh, table).await, "{table}");
    }
    // The columns hot queries look rows up by (the lease heartbeat every 5 s in
    // every process, refunds, event pruning) are indexed on both.
    for url in [&adopted, &fresh] {
        for (table, column) in [
            ("users", "stripe_lease_holder"),
            ("payments", "payment_intent_id"),
            ("stripe_events", "created"),
        ] {
            assert!(is_indexed(url, table, column).await, "{table}.{column}");
        }
    }
}

/// Whether an index starts with `column` of `table`, from the database's catalog.
async fn is_indexed(url: &str, table: &str, column: &str) -> bool {
    let db = Db::connect(url).await.unwrap();
    let sql = match db {
        Db::Sqlite(_) => format!(
            "SELECT COUNT(*) FROM sqlite_master m, pragma_index_info(m.name) i \
             WHERE m.type = 'index' AND m.tbl_name = '{table}' AND i.seqno = 0 \
               AND i.name = '{column}'"
        ),
        Db::Postgres(_) => format!(
            "SELECT COUNT(*) FROM pg_index x \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] \
             WHERE x.indrelid = '{table}'::regclass AND a.attname = '{column}'"
        ),
        Db::Mysql(_) => format!(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = '{table}' \
               AND column_name = '{column}' AND seq_in_index = 1"
        ),
    };
    count(&db, &sql).await > 0
}

#[tokio::test]
async fn two_laravel_users_with_one_customer_stop_migrate_and_nothing_changes() {
    let url = laravel_database().await;
    let db = Db::connect(&url).await.unwrap();
    run_sql(&db, "update users set stripe_id = 'cus_shared'").await;
    let before = laravel_state(&url, false).await;
    let runner = spawn_app().await;

    let output = migrate(&runner, &url).await;

    assert_ne!(output.status.code(), Some(0));
    let said = stderr(&output);
    assert!(
        said.contains("same customer id for more than one user (cus_shared)"),
        "{said}"
    );
    assert_eq!(laravel_state(&url, false).await, before, "nothing changed");
}

#[tokio::test]
async fn without_cashier_migrate_adds_cashier_s_columns_too() {
    let url = laravel_database_with(false).await;
    assert!(
        !column_names(&url, "users")
            .await
            .contains(&"stripe_id".to_string())
    );
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
    })
    .await;

    let names = column_names(&url, "users").await;
    for cashier in ["stripe_id", "pm_type", "pm_last_four", "trial_ends_at"] {
        assert!(names.contains(&cashier.to_string()), "{cashier}: {names:?}");
    }
    let browser = app.browser();
    let signed_in = browser.login("taylor@example.com", TAYLOR_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert!(browser.press("create").await.contains("Linked"));
}

#[tokio::test]
async fn an_adoption_cut_short_before_it_was_recorded_is_finished_by_the_next_migrate() {
    let url = laravel_database().await;
    let before = laravel_state(&url, true).await;
    // What a run killed after adding its first columns leaves (on MySQL, whose
    // DDL cannot be rolled back, all of them go in one statement).
    let db = Db::connect(&url).await.unwrap();
    run_sql(
        &db,
        "alter table users add column stripe_snapshot TEXT NULL",
    )
    .await;
    run_sql(
        &db,
        "alter table users add column stripe_lease_expires BIGINT NULL",
    )
    .await;
    let runner = spawn_app().await;

    let output = migrate(&runner, &url).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(laravel_state(&url, true).await, before);
    let fresh = fresh_database_url().await;
    let output = migrate(&runner, &fresh).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        column_names(&url, "users").await,
        column_names(&fresh, "users").await
    );
}

#[tokio::test]
async fn a_customer_deleted_in_stripe_cancels_its_user_s_cashier_subscriptions() {
    let url = laravel_database().await;
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
        config.webhook_secret = Some("whsec_test_current".to_string().into());
    })
    .await;
    run_sql(
        &app.db,
        "insert into subscriptions (user_id, type, stripe_id, stripe_status, stripe_price, quantity, trial_ends_at, created_at, updated_at) values \
         (1, 'default', 'sub_laravel_taylor', 'active', 'price_monthly', 1, null, '2025-01-02 03:04:05', '2025-01-02 03:04:05')",
    )
    .await;
    run_sql(
        &app.db,
        "update subscriptions set trial_ends_at = '2030-01-01 00:00:00' where stripe_id = 'sub_laravel1'",
    )
    .await;
    let abigail = users::find_by_email(&app.db, "abigail@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let customer = app.customers.create_customer(abigail).await.unwrap();
    let before = time::OffsetDateTime::now_utc().unix_timestamp();

    let deleted = crate::helpers::webhooks::event(
        "evt_deleted_abigail",
        "customer.deleted",
        crate::helpers::webhooks::now(),
        serde_json::json!({"id": customer.stripe_id(), "object": "customer", "deleted": true}),
    );
    crate::helpers::webhooks::deliver(&app, &deleted).await;

    let rows = text_rows(
        &app.db,
        "SELECT stripe_id, stripe_status, CAST(ends_at AS TEXT), CAST(trial_ends_at AS TEXT) \
         FROM subscriptions ORDER BY user_id DESC",
    )
    .await;
    assert_eq!(rows.len(), 2);
    let (abigails, taylors) = (&rows[0], &rows[1]);
    assert_eq!(abigails[0].as_deref(), Some("sub_laravel1"));
    assert_eq!(
        abigails[1].as_deref(),
        Some("canceled"),
        "as Cashier marks it"
    );
    assert_eq!(abigails[3], None, "the trial skipped, as Cashier does");
    let ends_at = abigails[2].clone().expect("ends_at set");
    let ends_at = time::PrimitiveDateTime::parse(
        &ends_at[..19],
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap_or_else(|err| panic!("{ends_at}: {err}"))
    .assume_utc()
    .unix_timestamp();
    assert!(
        (before - 2..=before + 60).contains(&ends_at),
        "ends now, in UTC: {ends_at} vs {before}"
    );
    assert_eq!(
        taylors[1].as_deref(),
        Some("active"),
        "another user's subscription untouched"
    );
    assert_eq!(app.user(abigail).await.stripe_id, None, "unlinked");
}

#[tokio::test]
async fn mapped_fields_sync_with_the_laravel_app_s_own_columns() {
    let url = laravel_database().await;
    let db = Db::connect(&url).await.unwrap();
    // The Laravel app's own migration: `$table->string('phone')->nullable()`.
    let add = match db {
        Db::Sqlite(_) => r#"alter table "users" add column "phone" varchar"#,
        Db::Postgres(_) => r#"alter table "users" add column "phone" varchar(255) null"#,
        Db::Mysql(_) => r#"alter table "users" add "phone" varchar(255) null"#,
    };
    run_sql(&db, add).await;
    run_sql(
        &db,
        "update users set phone = '+1 555 0100' where email = 'taylor@example.com'",
    )
    .await;
    let map = stripe_sync::fields::FieldMap::parse("phone=phone").unwrap();
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
        config.customer_fields = map;
    })
    .await;
    let taylor = users::find_by_email(&app.db, "taylor@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;

    let customer = app.customers.create_customer(taylor).await.unwrap();

    let customer = app.stripe.customer(customer.stripe_id()).unwrap();
    assert_eq!(customer.fields["phone"], "+1 555 0100");
    assert_eq!(
        text_rows(
            &app.db,
            "SELECT phone FROM users WHERE email = 'taylor@example.com'"
        )
        .await,
        vec![vec![Some("+1 555 0100".to_string())]],
        "Laravel's column untouched"
    );
}

#[tokio::test]
async fn a_password_changed_here_on_a_laravel_database_is_bcrypt_2y_and_laravel_verifies_it() {
    let url = laravel_database().await;
    let app = spawn_app_customized(StripeSetup::Fake, |config| {
        config.database_url = url.clone();
    })
    .await;
    let browser = app.browser();
    browser.login("taylor@example.com", TAYLOR_PASSWORD).await;

    let response = browser
        .post_form(
            "/settings/password",
            &[
                ("current_password", TAYLOR_PASSWORD),
                ("password", "a-long-password"),
                ("password_confirmation", "a-long-password"),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let taylor = users::find_by_email(&app.db, "taylor@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        taylor.password_hash.starts_with("$2y$12$"),
        "as Laravel writes it: {}",
        &taylor.password_hash[..7]
    );
    assert!(bcrypt::verify("a-long-password", &taylor.password_hash).unwrap());
    let remember = text_rows(
        &app.db,
        "SELECT remember_token FROM users WHERE email = 'taylor@example.com'",
    )
    .await;
    assert_eq!(
        remember,
        vec![vec![None]],
        "Laravel's remember-me cookie ends too"
    );
}
