//! Benchmark of `stripe-sync stripe:sync-customers` against the Stripe stand-in
//! with Stripe-like latency and a rate limit. Run it with
//!
//!     cargo bench --bench sync_customers [-- --users 2000 --rate 100 --latency-ms 250 --faults-percent 20]
//!
//! The faulty phase repeats the create with that share of calls meeting a 429, a
//! 500 before or after the call took effect, or a connection dropped before or
//! after it (target: ≥ 0.5 of R).
//!
//! It runs the release binary as an operator would and prints, per phase: users/s,
//! users/s ÷ R, Stripe calls made, 429s returned by the stand-in, and the peak RSS
//! of the sync process.

#[allow(dead_code)]
#[path = "../tests/api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../tests/api/stripe_fake.rs"]
mod stripe_fake;
mod support;

use std::process::Stdio;
use std::time::Duration;
use support::wait_for_peak_rss;

use helpers::{TestApp, spawn_app};
use serde_json::Value;
use stripe_sync::db::Db;
use stripe_sync::stripe::CustomerParams;
use stripe_sync::sync::payload_hash;

struct Settings {
    users: usize,
    rate: u32,
    latency_ms: u64,
    small: usize,
    large: usize,
    /// Share of calls that meet one of the five injected faults, in the faulty phase.
    faults: f64,
}

struct Measured {
    phase: String,
    users: u64,
    seconds: f64,
    calls: usize,
    rejected: usize,
    peak_rss_kib: i64,
}

fn settings() -> Settings {
    let mut settings = Settings {
        users: 2000,
        rate: 100,
        latency_ms: 250,
        small: 10_000,
        large: 100_000,
        faults: 0.2,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse().expect("a number after the flag");
        match pair[0].as_str() {
            "--users" => settings.users = value(),
            "--rate" => settings.rate = value() as u32,
            "--latency-ms" => settings.latency_ms = value() as u64,
            "--small" => settings.small = value(),
            "--large" => settings.large = value(),
            "--faults-percent" => settings.faults = value() as f64 / 100.0,
            _ => {}
        }
    }
    settings
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(run(&settings));
    print(&settings, &results);
}

async fn run(settings: &Settings) -> Vec<Measured> {
    let rate = settings.rate.to_string();
    let concurrency = (settings.rate as u64 * settings.latency_ms / 1000 * 2)
        .max(8)
        .to_string();
    let bulk = [
        "stripe:sync-customers",
        "--json",
        "--rate",
        &rate,
        "--concurrency",
        &concurrency,
    ];

    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    app.insert_users(settings.users).await;
    let mut results = vec![measure(&app, "create", &[&bulk[..], &["--create"]].concat()).await];
    app.execute("UPDATE users SET name = name || ' v2'").await;
    results.push(measure(&app, "update", &[&bulk[..], &["--update"]].concat()).await);
    results.push(measure(&app, "refresh", &[&bulk[..], &["--refresh"]].concat()).await);

    // A crash: a create run killed a third of the way, and a rerun right after. Its
    // time is the time from the crash to every user linked, waiting out the dead
    // run's claims included.
    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    app.insert_users(settings.users).await;
    let mut doomed = app
        .command(&[&bulk[..], &["--create"]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    while app.stripe.customers().len() < settings.users / 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.start_kill().expect("SIGKILL");
    doomed.wait().await.unwrap();
    results.push(
        measure(
            &app,
            "rerun after kill -9",
            &[&bulk[..], &["--create"]].concat(),
        )
        .await,
    );

    // The same create, with a share of calls going wrong the way the internet does.
    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    app.stripe.set_fault_rate(settings.faults);
    app.insert_users(settings.users).await;
    let phase = format!("create, {:.0}% faults", settings.faults * 100.0);
    results.push(measure(&app, &phase, &[&bulk[..], &["--create"]].concat()).await);

    for users in [settings.small, settings.large] {
        let app = spawn_app().await;
        app.stripe
            .set_latency(Duration::from_millis(settings.latency_ms));
        insert_synced_users(&app.db, users).await;
        let phase = format!("update, {users} unchanged");
        results.push(measure(&app, &phase, &[&bulk[..], &["--update"]].concat()).await);
    }
    results
}

/// Runs the release binary once and measures it.
async fn measure(app: &TestApp, phase: &str, args: &[&str]) -> Measured {
    let calls_before = app.stripe.total_calls();
    let rejected_before = app.stripe.rejected_for_rate();
    let mut command = app.command(args).into_std();
    let out = tempfile_path(phase);
    command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null());
    // Reaped below, which also reports this one process's own peak RSS (VmHWM).
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().expect("binary starts");
    let pid = child.id() as libc::pid_t;
    let peak_rss_kib = tokio::task::spawn_blocking(move || wait_for_peak_rss(pid))
        .await
        .unwrap();
    let report: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim())
        .unwrap_or_else(|e| panic!("{phase}: no JSON report ({e})"));
    assert_eq!(report["failed"], 0, "{phase}: {report}");
    assert_eq!(report["held"], 0, "{phase}: {report}");
    let users = ["created", "relinked", "updated", "refreshed", "unchanged"]
        .iter()
        .map(|key| report[key].as_u64().unwrap())
        .sum();
    Measured {
        phase: phase.to_string(),
        users,
        seconds: report["elapsed_seconds"].as_f64().unwrap(),
        calls: app.stripe.total_calls() - calls_before,
        rejected: app.stripe.rejected_for_rate() - rejected_before,
        peak_rss_kib,
    }
}

fn tempfile_path(phase: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.json", phase.replace([' ', ','], "_")))
}

/// Users already linked and pushed, written in bulk (no Stripe call, no argon2).
async fn insert_synced_users(db: &Db, count: usize) {
    let now = time::OffsetDateTime::now_utc();
    // `$query`: sqlx's, or on MySQL the app's, which binds numbered placeholders.
    macro_rules! insert_all {
        ($pool:expr, $query:path) => {{
            let mut tx = $pool.begin().await.unwrap();
            for n in 0..count {
                let params = CustomerParams {
                    name: format!("User {n}"),
                    email: format!("user{n}@example.com"),
                };
                $query(
                    "INSERT INTO users (name, email, password, stripe_id, stripe_synced_hash, \
                     stripe_synced_at, created_at, updated_at) VALUES ($1, $2, 'x', $3, $4, $5, $5, $5)",
                )
                .bind(&params.name)
                .bind(&params.email)
                .bind(format!("cus_bench{n:08}"))
                .bind(payload_hash(&params))
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    match db {
        Db::Sqlite(pool) => insert_all!(pool, sqlx::query),
        Db::Postgres(pool) => insert_all!(pool, sqlx::query),
        Db::Mysql(pool) => insert_all!(pool, stripe_sync::db::mysql::query),
    }
}

fn print(settings: &Settings, results: &[Measured]) {
    let rate = f64::from(settings.rate);
    println!(
        "\nstripe:sync-customers against the stand-in: R = {} requests/s, {} ms per call\n",
        settings.rate, settings.latency_ms
    );
    println!(
        "{:<26} {:>8} {:>9} {:>9} {:>10} {:>8} {:>6} {:>11}",
        "phase", "users", "seconds", "users/s", "users/s÷R", "calls", "429s", "peak RSS"
    );
    for m in results {
        let per_second = m.users as f64 / m.seconds.max(1e-9);
        // Against R only where the phase calls Stripe at all.
        let share = if m.calls == 0 {
            "-".to_string()
        } else {
            format!("{:.3}", per_second / rate)
        };
        println!(
            "{:<26} {:>8} {:>9.2} {:>9.1} {:>10} {:>8} {:>6} {:>8.1} MiB",
            m.phase,
            m.users,
            m.seconds,
            per_second,
            share,
            m.calls,
            m.rejected,
            m.peak_rss_kib as f64 / 1024.0
        );
    }
    if let [.., small, large] = results {
        println!(
            "\npeak RSS, {} users ÷ {} users: {:.2} (target ≤ 1.2)",
            large.users,
            small.users,
            large.peak_rss_kib as f64 / small.peak_rss_kib as f64
        );
    }
}
