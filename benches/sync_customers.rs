//! Benchmark of `stripe-sync stripe:sync-customers` against the Stripe stand-in
//! with Stripe-like latency and a rate limit. Run it with
//!
//!     cargo bench --bench sync_customers [-- --users 2000 --rate 100 --latency-ms 250 --faults-percent 20
//!                                          --real-users 600 --real-latency-ms 100 --refresh-users 100000]
//!
//! Part one: one rate limit R (`--rate R --endpoint-rate R`). The faulty phase
//! repeats the create with that share of calls meeting a 429, a 500 before or
//! after the call took effect, or a connection dropped before or after it
//! (target: ≥ 0.5 of R).
//!
//! Part two: Stripe's real limits (100 requests/s global, 25/s per operation), a
//! live key and no rate settings, as an operator runs it: the run plans 20/s per
//! operation. Targets: `--create` and `--update` ≥ 0.95 of 20/s with ≤ 1% of
//! calls refused; `--create --update` over half new and half changed users ≥ 0.95
//! of 40/s; `--refresh` and `--check` ≥ 500 users/s; `--refresh` of 100,000 users
//! in under 3 minutes.
//!
//! Part three: a raised limit on an ordinary disk. `--high-users` (100,000) new
//! users created at `--rate 1000 --endpoint-rate 1000` against a stand-in that
//! answers at once: the database's commits are the bound. Target ≥ 0.95 of the
//! rate; it reports, per user, the server's waits for the disk (PostgreSQL's WAL
//! syncs, MariaDB's `Innodb_os_log_fsyncs`) or, with `--count-fsyncs` on SQLite, the fsyncs of
//! the sync process (run under `strace`, which slows it: the rate of that run is
//! not the figure).
//!
//! Part four: reads at Stripe's limits at 100 and 400 ms per call, and a
//! simulated 1,000,000-customer refresh ([`reads`]).
//!
//! `--part one|limits|high|reads|memory` runs one part only.
//!
//! It runs the release binary as an operator would and prints, per phase: users/s,
//! users/s ÷ the planned rate, Stripe calls made, 429s returned by the stand-in
//! (and their share of calls), and the peak RSS of the sync process.

// The suite reads and seeds the database with each driver's own SQL, on purpose
// (the app's queries go through src/db/dialect).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../tests/api/helpers/mod.rs"]
mod helpers;
#[path = "sync_customers/reads.rs"]
mod reads;
#[allow(dead_code)]
#[path = "../tests/api/stripe_fake.rs"]
mod stripe_fake;
mod support;

use std::process::Stdio;
use std::time::Duration;
use support::wait_for_peak_rss;

use helpers::{TestApp, spawn_app};
use serde_json::Value;
use stripe_sync::customers::payload_hash;
use stripe_sync::db::Db;
use stripe_sync::stripe::CustomerParams;

struct Settings {
    users: usize,
    rate: u32,
    latency_ms: u64,
    small: usize,
    large: usize,
    /// Share of calls that meet one of the five injected faults, in the faulty phase.
    faults: f64,
    /// Users of the phases under Stripe's real limits, and their latency.
    real_users: usize,
    real_latency_ms: u64,
    /// Users of the large `--refresh` under Stripe's real limits.
    refresh_users: usize,
    /// Users and rate of part three.
    high_users: usize,
    high_rate: u32,
    /// Linked customers of part four, and the simulated account's.
    read_users: usize,
    simulated_customers: usize,
    /// Linked customers of the largest `--refresh` of the memory part.
    memory_users: usize,
    /// The part to run alone, if one is named.
    part: Option<String>,
    /// Part three under `strace`, counting the sync process's fsyncs.
    count_fsyncs: bool,
}

struct Measured {
    phase: String,
    users: u64,
    seconds: f64,
    calls: usize,
    rejected: usize,
    peak_rss_kib: i64,
    /// Requests/s the phase plans for its users (R, 20 or 40), if it is paced.
    planned: Option<f64>,
}

fn settings() -> Settings {
    let mut settings = Settings {
        users: 2000,
        rate: 100,
        latency_ms: 250,
        small: 10_000,
        large: 100_000,
        faults: 0.2,
        real_users: 600,
        real_latency_ms: 100,
        refresh_users: 100_000,
        high_users: 100_000,
        high_rate: 1000,
        read_users: 40_000,
        simulated_customers: 1_000_000,
        memory_users: 1_000_000,
        part: None,
        count_fsyncs: std::env::args().any(|arg| arg == "--count-fsyncs"),
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
            "--real-users" => settings.real_users = value(),
            "--real-latency-ms" => settings.real_latency_ms = value() as u64,
            "--refresh-users" => settings.refresh_users = value(),
            "--high-users" => settings.high_users = value(),
            "--high-rate" => settings.high_rate = value() as u32,
            "--read-users" => settings.read_users = value(),
            "--simulated-customers" => settings.simulated_customers = value(),
            "--memory-users" => settings.memory_users = value(),
            "--part" => settings.part = Some(pair[1].clone()),
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
    let part = |name: &str| settings.part.as_deref().is_none_or(|part| part == name);
    let one_limit = match part("one") {
        true => runtime.block_on(run(&settings)),
        false => Vec::new(),
    };
    let stripe_limits = match part("limits") {
        true => runtime.block_on(run_at_stripe_limits(&settings)),
        false => Vec::new(),
    };
    let high = part("high").then(|| runtime.block_on(run_at_a_raised_limit(&settings)));
    let reads = part("reads").then(|| {
        let measured = runtime.block_on(reads::run(&settings));
        let latency = Duration::from_millis(400);
        let simulated = [reads::Layout::Even, reads::Layout::Growing]
            .map(|layout| reads::simulate(settings.simulated_customers, layout, latency));
        (measured, simulated)
    });
    let memory = part("memory").then(|| runtime.block_on(reads::memory(&settings)));
    print(&settings, &one_limit, &stripe_limits);
    if let Some((measured, simulated)) = reads {
        reads::print(&measured, &simulated);
    }
    if let Some(measured) = memory {
        reads::print_memory(&measured);
    }
    if let Some((measured, durable)) = high {
        println!(
            "\nA raised limit: --rate {0} --endpoint-rate {0}, a stand-in answering at once\n",
            settings.high_rate
        );
        print_table(std::slice::from_ref(&measured));
        println!("{durable}");
    }
}

/// Part three: `--create` of many new users at a raised limit, the stand-in
/// answering at once; with what the database made durable per user.
async fn run_at_a_raised_limit(settings: &Settings) -> (Measured, String) {
    let rate = settings.high_rate.to_string();
    let args = [
        "stripe:sync-customers",
        "--json",
        "--create",
        "--rate",
        &rate,
        "--endpoint-rate",
        &rate,
    ];
    // The stand-in enforces the account's raised limit, globally and per
    // operation (the suite's default is 250/s per operation).
    let app = spawn_app().await;
    app.stripe
        .set_limits(settings.high_rate, settings.high_rate);
    insert_new_users(&app.db, settings.high_users).await;
    let before = server_fsyncs(&app.db).await;
    let mut command = app.command(&args);
    let fsyncs = tempfile_path("raised limit fsyncs").with_extension("strace");
    let counted = settings.count_fsyncs && matches!(app.db, Db::Sqlite(_)) && which("strace");
    if counted {
        // Only fsync and fdatasync stop the process (seccomp-bpf): the run's
        // pace is its own.
        let mut traced = tokio::process::Command::new("strace");
        traced
            .args([
                "-f",
                "--seccomp-bpf",
                "-c",
                "-e",
                "trace=fsync,fdatasync",
                "-o",
            ])
            .arg(&fsyncs)
            .arg(command.as_std().get_program())
            .args(command.as_std().get_args());
        for (key, value) in command.as_std().get_envs() {
            match value {
                Some(value) => traced.env(key, value),
                None => traced.env_remove(key),
            };
        }
        command = traced;
    }
    let phase = format!("create, {} users", settings.high_users);
    let planned = Some(f64::from(settings.high_rate));
    let measured = measure_commands(&app, &phase, vec![(command, "")], planned).await;
    let per_user = |count: u64| count as f64 / measured.users.max(1) as f64;
    let durable = match (&app.db, before) {
        (Db::Sqlite(_), _) if counted => {
            let summary = std::fs::read_to_string(&fsyncs).unwrap_or_default();
            format!(
                "fsyncs per user (the sync process, strace): {:.3}",
                per_user(syscalls(&summary))
            )
        }
        (Db::Sqlite(_), _) => {
            "fsyncs per user: - (--count-fsyncs, with strace installed)".to_string()
        }
        (_, Some(before)) => {
            let after = server_fsyncs(&app.db).await.unwrap_or(before);
            format!("server fsyncs per user: {:.3}", per_user(after - before))
        }
        _ => String::new(),
    };
    (measured, durable)
}

/// New users, none linked, written in one transaction.
async fn insert_new_users(db: &Db, users: usize) {
    let rows = (0..users).map(|n| vec![format!("User {n}"), format!("user{n}@example.com")]);
    let sql = "INSERT INTO users (name, email, password, created_at, updated_at) \
               VALUES ($1, $2, 'x', $3, $3)";
    insert_rows(db, sql, rows).await;
}

/// How often the server has waited for the disk so far: PostgreSQL's WAL syncs
/// (`pg_stat_wal`, the whole server's), MariaDB's `Innodb_os_log_fsyncs`; none on
/// SQLite (strace counts the process's own).
async fn server_fsyncs(db: &Db) -> Option<u64> {
    match db {
        Db::Sqlite(_) => None,
        Db::Postgres(pool) => {
            // Backends report their counts when idle for a moment.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let _ = sqlx::query("SELECT pg_stat_force_next_flush()")
                .execute(pool)
                .await;
            let sql = "SELECT wal_sync FROM pg_stat_wal";
            let syncs: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.ok()?;
            Some(syncs as u64)
        }
        Db::Mysql(pool) => {
            let sql = "SHOW GLOBAL STATUS LIKE 'Innodb_os_log_fsyncs'";
            let (_, value): (String, String) = stripe_sync::db::dialect::mysql::query_as(sql)
                .fetch_one(pool)
                .await
                .ok()?;
            value.parse().ok()
        }
    }
}

fn which(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The calls counted in an `strace -c` summary: its `total` line's fourth
/// column (`% time`, `seconds`, `usecs/call`, `calls`).
fn syscalls(summary: &str) -> u64 {
    summary
        .lines()
        .find(|line| line.trim_end().ends_with("total"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|calls| calls.parse().ok())
        .unwrap_or(0)
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
        "--endpoint-rate",
        &rate,
        "--concurrency",
        &concurrency,
    ];
    let r = Some(f64::from(settings.rate));

    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    app.insert_users(settings.users).await;
    let mut results = vec![measure_one(&app, "create", &bulk, ("--create", ""), r).await];
    app.execute("UPDATE users SET name = name || ' v2'").await;
    results.push(measure_one(&app, "update", &bulk, ("--update", ""), r).await);
    // Refresh reads list pages now: not paced at R, so no ratio to R.
    results.push(measure_one(&app, "refresh", &bulk, ("--refresh", ""), None).await);

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
    results.push(measure_one(&app, "rerun after kill -9", &bulk, ("--create", ""), r).await);

    // The same create, with a share of calls going wrong the way the internet does.
    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    app.stripe.set_fault_rate(settings.faults);
    app.insert_users(settings.users).await;
    let phase = format!("create, {:.0}% faults", settings.faults * 100.0);
    results.push(measure_one(&app, &phase, &bulk, ("--create", ""), r).await);

    // Five mapped fields (STRIPE_CUSTOMER_FIELDS): create with them, then an
    // update where one field changed for every user (only it is sent).
    let app = spawn_app().await;
    app.stripe
        .set_latency(Duration::from_millis(settings.latency_ms));
    app.stripe.set_rate_limit(settings.rate);
    add_field_columns(&app).await;
    app.insert_users(settings.users).await;
    app.execute(
        "UPDATE users SET phone = '+1 555 0100', line1 = '1 Main St', city = 'Springfield', \
         country = 'US', team = 'red'",
    )
    .await;
    results.push(measure_one(&app, "create, five fields", &bulk, ("--create", FIELDS), r).await);
    app.execute("UPDATE users SET city = 'Shelbyville'").await;
    results.push(measure_one(&app, "update, five fields", &bulk, ("--update", FIELDS), r).await);
    let app = spawn_app().await;
    add_field_columns(&app).await;
    let customers = (0..settings.small).map(|n| format!("cus_bench{n:08}"));
    insert_users_with_fields(&app.db, customers).await;
    let phase = format!("update, {} unch., 5 fields", settings.small);
    results.push(measure_one(&app, &phase, &bulk, ("--update", FIELDS), None).await);

    for users in [settings.small, settings.large] {
        let app = spawn_app().await;
        app.stripe
            .set_latency(Duration::from_millis(settings.latency_ms));
        insert_synced_users(&app.db, (0..users).map(|n| format!("cus_bench{n:08}"))).await;
        let phase = format!("update, {users} unchanged");
        results.push(measure_one(&app, &phase, &bulk, ("--update", ""), None).await);
    }
    results
}

/// Part two: Stripe's published limits, a live key, no rate settings.
async fn run_at_stripe_limits(settings: &Settings) -> Vec<Measured> {
    let latency = Duration::from_millis(settings.real_latency_ms);
    let (users, half) = (settings.real_users, settings.real_users / 2);
    let sync = |flags: &[&'static str]| [&["stripe:sync-customers", "--json"][..], flags].concat();
    let endpoint = Some(20.0);

    let app = spawn_app().await;
    app.stripe.set_latency(latency);
    app.insert_users(users).await;
    let mut results = vec![measure(&app, "create", &sync(&["--create"]), endpoint).await];
    app.execute("UPDATE users SET name = name || ' v2'").await;
    results.push(measure(&app, "update", &sync(&["--update"]), endpoint).await);
    results.push(measure(&app, "refresh (list pages)", &sync(&["--refresh"]), None).await);
    results.push(measure(&app, "check", &sync(&["--check"]), None).await);

    // Half new users, half linked ones not yet pushed: both endpoints at once.
    let app = spawn_app().await;
    app.stripe.set_latency(latency);
    let ids = app.insert_users(users).await;
    let customers = app
        .stripe
        .insert_customers(users - half, Some(&ids[half..]));
    app.link_in_database(&ids[half..], &customers).await;
    let phase = format!("create + update, {half} each");
    results.push(measure(&app, &phase, &sync(&["--create", "--update"]), Some(40.0)).await);

    let app = spawn_app().await;
    app.stripe.set_latency(latency);
    let customers = app.stripe.insert_customers(settings.refresh_users, None);
    insert_synced_users(&app.db, customers.into_iter()).await;
    let phase = format!("refresh, {} users", settings.refresh_users);
    results.push(measure(&app, &phase, &sync(&["--refresh"]), None).await);

    // Two processes on one database share the account's plan.
    let app = spawn_app().await;
    app.stripe.set_latency(latency);
    app.insert_users(users).await;
    let args = sync(&["--create"]);
    let phase = "two --create runs at once";
    results.push(measure_runs(&app, phase, &args, endpoint, 2).await);
    results
}

/// Runs the release binary once and measures it. `planned` is the rate the
/// phase's users are paced at, if they are.
async fn measure(app: &TestApp, phase: &str, args: &[&str], planned: Option<f64>) -> Measured {
    measure_runs(app, phase, args, planned, 1).await
}

/// The five fields the field phases map, beside name and email.
const FIELDS: &str = "phone=phone,address.line1=line1,address.city=city,address.country=country,\
                      metadata.team=team";

async fn add_field_columns(app: &TestApp) {
    let text = "VARCHAR(255) NULL";
    let columns = ["phone", "line1", "city", "country", "team"].map(|name| (name, text));
    app.add_user_columns(&columns).await;
}

/// One run of part one: the bulk arguments and one action flag, with `fields`
/// as `STRIPE_CUSTOMER_FIELDS` ([`FIELDS`], or none: "").
async fn measure_one(
    app: &TestApp,
    phase: &str,
    bulk: &[&str],
    (flag, fields): (&str, &str),
    planned: Option<f64>,
) -> Measured {
    let args = [bulk, &[flag]].concat();
    let command = app.command(&args);
    measure_commands(app, phase, vec![(command, fields)], planned).await
}

/// Runs `runs` copies of the release binary at once and measures them together:
/// the users all handled, in the time of the slowest.
async fn measure_runs(
    app: &TestApp,
    phase: &str,
    args: &[&str],
    planned: Option<f64>,
    runs: usize,
) -> Measured {
    let commands = (0..runs)
        .map(|_| (app.command_at_stripe_limits(args), ""))
        .collect();
    measure_commands(app, phase, commands, planned).await
}

/// Starts every command at once (each with its `STRIPE_CUSTOMER_FIELDS`) and
/// measures them together.
async fn measure_commands(
    app: &TestApp,
    phase: &str,
    commands: Vec<(tokio::process::Command, &str)>,
    planned: Option<f64>,
) -> Measured {
    let calls_before = app.stripe.total_calls();
    let rejected_before = app.stripe.rejected_for_rate();
    let mut children = Vec::new();
    for (run, (mut command, fields)) in commands.into_iter().enumerate() {
        command.env("STRIPE_CUSTOMER_FIELDS", fields);
        children.push(run_once(command, tempfile_path(&format!("{phase} {run}"))));
    }
    let mut measured = Measured {
        phase: phase.to_string(),
        users: 0,
        seconds: 0.0,
        calls: 0,
        rejected: 0,
        peak_rss_kib: 0,
        planned,
    };
    for child in children {
        let (report, peak_rss_kib, wall) = child.await.expect("run measured");
        measured.users += users_handled(phase, &report);
        measured.seconds = measured
            .seconds
            .max(report["elapsed_seconds"].as_f64().unwrap_or(wall));
        measured.peak_rss_kib = measured.peak_rss_kib.max(peak_rss_kib);
    }
    measured.calls = app.stripe.total_calls() - calls_before;
    measured.rejected = app.stripe.rejected_for_rate() - rejected_before;
    measured
}

/// Starts the command at once; the future gives its JSON report, its own peak
/// RSS and its wall time.
fn run_once(
    command: tokio::process::Command,
    out: std::path::PathBuf,
) -> tokio::task::JoinHandle<(Value, i64, f64)> {
    let mut command = command.into_std();
    command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(out.with_extension("err")).unwrap());
    let started = std::time::Instant::now();
    // Reaped below, which also reports this one process's own peak RSS (VmHWM).
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().expect("binary starts");
    let pid = child.id() as libc::pid_t;
    tokio::task::spawn_blocking(move || {
        let peak_rss_kib = wait_for_peak_rss(pid);
        let wall = started.elapsed().as_secs_f64();
        let report = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim())
            .unwrap_or_else(|e| panic!("{}: no JSON report ({e}); see its .err", out.display()));
        (report, peak_rss_kib, wall)
    })
}

/// Users a run handled, after checking that none failed: `--check` reports drift
/// (none expected here) and links checked.
fn users_handled(phase: &str, report: &Value) -> u64 {
    if let Some(listed) = report.get("listed") {
        assert_eq!(report["failed"], 0, "{phase}: {report}");
        return listed.as_u64().unwrap();
    }
    if let Some(checked) = report.get("links_checked") {
        assert_eq!(report["drift"], serde_json::json!([]), "{phase}: {report}");
        return checked.as_u64().unwrap();
    }
    assert_eq!(report["failed"], 0, "{phase}: {report}");
    assert_eq!(report["held"], 0, "{phase}: {report}");
    ["created", "relinked", "updated", "refreshed", "unchanged"]
        .iter()
        .map(|key| report[key].as_u64().unwrap())
        .sum()
}

fn tempfile_path(phase: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.json", phase.replace([' ', ','], "_")))
}

/// Users already linked to `customers` and pushed, written in bulk (no Stripe
/// call, no argon2), as before fields were synced: no base, no snapshot.
async fn insert_synced_users(db: &Db, customers: impl Iterator<Item = String>) {
    let rows = customers.enumerate().map(|(n, customer)| {
        let params = CustomerParams {
            name: format!("User {n}"),
            email: format!("user{n}@example.com"),
            fields: Default::default(),
        };
        let hash = payload_hash(&params);
        vec![params.name, params.email, customer, hash]
    });
    let sql = "INSERT INTO users (name, email, password, stripe_id, stripe_synced_hash, \
               stripe_synced_at, created_at, updated_at) VALUES ($1, $2, 'x', $3, $4, $5, $5, $5)";
    insert_rows(db, sql, rows).await;
}

/// Users linked to `customers` whose five mapped fields, base and last copy of
/// Stripe's side all agree, written in bulk: `--update` has nothing to do.
async fn insert_users_with_fields(db: &Db, customers: impl Iterator<Item = String>) {
    let rows = customers.enumerate().map(|(n, customer)| {
        let values = serde_json::json!({
            "name": format!("User {n}"), "email": format!("user{n}@example.com"),
            "phone": format!("+1 555 {n:05}"), "address.line1": format!("{n} Main St"),
            "address.city": "Springfield", "address.country": "US",
            "metadata.team": format!("t{}", n % 10),
        });
        let snapshot = serde_json::json!({
            "state": "present", "id": customer, "name": values["name"],
            "email": values["email"], "created": 1_764_300_000, "livemode": false,
            "default_payment_method": null, "card": null, "metadata_user_id": n.to_string(),
            "delinquent": false, "fields": values,
        });
        let text = |key: &str| values[key].as_str().unwrap().to_string();
        vec![
            text("name"),
            text("email"),
            customer,
            snapshot.to_string(),
            values.to_string(),
            text("phone"),
            text("address.line1"),
            text("metadata.team"),
        ]
    });
    let sql = "INSERT INTO users (name, email, password, stripe_id, stripe_snapshot, \
               stripe_base, phone, line1, city, country, team, created_at, updated_at) \
               VALUES ($1, $2, 'x', $3, $4, $5, $6, $7, 'Springfield', 'US', $8, $9, $9)";
    insert_rows(db, sql, rows).await;
}

/// Runs `sql` once a row in one transaction: the row's texts, then the time now.
async fn insert_rows(db: &Db, sql: &str, rows: impl Iterator<Item = Vec<String>>) {
    let now = time::OffsetDateTime::now_utc();
    // `$query`: sqlx's, or on MySQL the app's, which binds numbered placeholders.
    macro_rules! insert_all {
        ($pool:expr, $query:path) => {{
            let mut tx = $pool.begin().await.unwrap();
            for row in rows {
                let mut query = $query(sql);
                for text in &row {
                    query = query.bind(text);
                }
                query.bind(now).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }};
    }
    match db {
        Db::Sqlite(pool) => insert_all!(pool, sqlx::query),
        Db::Postgres(pool) => insert_all!(pool, sqlx::query),
        Db::Mysql(pool) => insert_all!(pool, stripe_sync::db::dialect::mysql::query),
    }
}

fn print(settings: &Settings, one_limit: &[Measured], stripe_limits: &[Measured]) {
    if !one_limit.is_empty() {
        print_one_limit(settings, one_limit);
    }
    if stripe_limits.is_empty() {
        return;
    }
    println!(
        "\nUnder Stripe's real limits (100 requests/s global, 25/s per operation), a live key, \
         no rate settings, {} ms per call\n",
        settings.real_latency_ms
    );
    print_table(stripe_limits);
}

fn print_one_limit(settings: &Settings, one_limit: &[Measured]) {
    println!(
        "\nstripe:sync-customers against the stand-in: one limit, R = {} requests/s, {} ms per call\n",
        settings.rate, settings.latency_ms
    );
    print_table(one_limit);
    if let [.., small, large] = one_limit {
        println!(
            "\npeak RSS, {} users ÷ {} users: {:.2} (target ≤ 1.2)",
            large.users,
            small.users,
            large.peak_rss_kib as f64 / small.peak_rss_kib as f64
        );
    }
}

fn print_table(results: &[Measured]) {
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>8} {:>12} {:>8} {:>6} {:>8} {:>11}",
        "phase",
        "users",
        "seconds",
        "users/s",
        "planned",
        "÷ planned",
        "calls",
        "429s",
        "refused",
        "peak RSS"
    );
    for m in results {
        let per_second = m.users as f64 / m.seconds.max(1e-9);
        // Against the plan only where the phase is paced and calls Stripe at all.
        let (planned, share) = match m.planned {
            Some(planned) if m.calls > 0 => (
                format!("{planned:.0}"),
                format!("{:.3}", per_second / planned),
            ),
            _ => ("-".to_string(), "-".to_string()),
        };
        println!(
            "{:<28} {:>8} {:>9.2} {:>9.1} {:>8} {:>12} {:>8} {:>6} {:>7.2}% {:>7.1} MiB",
            m.phase,
            m.users,
            m.seconds,
            per_second,
            planned,
            share,
            m.calls,
            m.rejected,
            100.0 * m.rejected as f64 / m.calls.max(1) as f64,
            m.peak_rss_kib as f64 / 1024.0
        );
    }
}
