//! A sign-in flood against the release binary: `POST /login` from many clients at
//! once for random emails, while a separate client keeps asking `/healthz`. Run it
//! with
//!
//!     cargo bench --bench login_flood [-- --parallel 500 --rounds 3]
//!
//! Two floods, each against a fresh `stripe-sync serve` process:
//! - one address: every attempt from 127.0.0.1 (the per-address limit answers);
//! - distributed: every attempt names its own client in `X-Forwarded-For` from a
//!   trusted proxy, so only the cap on password hashing stands between the flood
//!   and the server's memory.
//!
//! - hanging up: distributed, each client hanging up 20 ms after sending, before
//!   any answer; the hashes they asked for must not pile up behind them.
//!
//! For each it prints the answers by status, connections that failed (hung up, for
//! the third), the server's peak RSS, `/healthz` latency during the flood, its
//! hashing threads, and how long the server kept hashing after the last client
//! left (the work queued behind clients that hung up). Targets: peak RSS ≤ 200
//! MiB, `/healthz` p95 ≤ 250 ms, no failed connection, answers only 401/429/503,
//! hashing threads never more than the cap, and no more than a second of hashing
//! left after the flood.

// The suite reads and seeds the database with each driver's own SQL, on purpose
// (the app's queries go through src/db/dialect).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../tests/api/helpers/mod.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../tests/api/stripe_fake.rs"]
mod stripe_fake;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::{arg, wait_for_peak_rss};

use helpers::{TestApp, spawn_app};

struct Flood {
    name: &'static str,
    statuses: BTreeMap<u16, usize>,
    failed_connections: usize,
    peak_rss_kib: i64,
    healthz: Vec<Duration>,
    seconds: f64,
    /// Threads named `password-hash-*` in the server.
    hashing_threads: usize,
    /// Seconds the server kept burning CPU after the last client was done.
    hashing_after: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Clients {
    OneAddress,
    Distributed,
    HangingUp,
}

fn main() {
    let parallel = arg("--parallel", 500) as usize;
    let rounds = arg("--rounds", 3) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = spawn_app().await;
        let mut floods = Vec::new();
        for (name, clients) in [
            ("one address", Clients::OneAddress),
            ("distributed", Clients::Distributed),
            ("hanging up", Clients::HangingUp),
        ] {
            floods.push(flood(&app, name, clients, parallel, rounds).await);
        }
        print(&floods, parallel, rounds);
    });
}

async fn flood(
    app: &TestApp,
    name: &'static str,
    clients: Clients,
    parallel: usize,
    rounds: usize,
) -> Flood {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut command = app.command(&["serve"]).into_std();
    command
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // Reaped below, which also reports the server's own peak RSS (VmHWM).
    #[allow(clippy::zombie_processes)]
    let server = command.spawn().expect("server starts");
    let pid = server.id() as libc::pid_t;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(parallel)
        .build()
        .unwrap();
    let token = wait_for_login_page(&client, &base).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_healthz(base.clone(), flooding.clone()));
    let started = Instant::now();
    let mut statuses = BTreeMap::new();
    let mut failed_connections = 0;
    for round in 0..rounds {
        let mut attempts = tokio::task::JoinSet::new();
        for n in 0..parallel {
            let mut request = client.post(format!("{base}/login")).form(&[
                ("authenticity_token", token.as_str()),
                (
                    "email",
                    &format!("flood-{round}-{n}-{}@example.com", rand_u32()),
                ),
                ("password", "not-the-password"),
            ]);
            if clients == Clients::HangingUp {
                request = request.timeout(Duration::from_millis(20));
            }
            if clients != Clients::OneAddress {
                let forwarded = format!("10.{}.{}.{}", round, n / 250, n % 250 + 1);
                request = request.header("x-forwarded-for", forwarded);
            }
            attempts.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
        for answer in attempts.join_all().await {
            match answer {
                Ok(status) => *statuses.entry(status).or_default() += 1,
                Err(_) => failed_connections += 1,
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let hashing_after = busy_for(pid).await;
    let hashing_threads = hashing_threads(pid);
    flooding.store(false, Ordering::Relaxed);
    let mut healthz = sampler.await.unwrap();
    healthz.sort();

    // SAFETY: pid is our own child; SIGTERM asks serve for a graceful stop.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let peak_rss_kib = tokio::task::spawn_blocking(move || wait_for_peak_rss(pid))
        .await
        .unwrap();
    Flood {
        name,
        statuses,
        failed_connections,
        peak_rss_kib,
        healthz,
        seconds,
        hashing_threads,
        hashing_after,
    }
}

/// The server's CPU time so far (user and system), in clock ticks.
fn cpu_ticks(pid: libc::pid_t) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends with the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// How long the server keeps computing after the flood: until its CPU time stops
/// growing for half a second.
async fn busy_for(pid: libc::pid_t) -> f64 {
    let started = Instant::now();
    let mut last = cpu_ticks(pid);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(500) && started.elapsed().as_secs() < 120 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = cpu_ticks(pid);
        // A tick or two a poll is /healthz and the runtime, not hashing.
        if now > last + 2 {
            quiet_since = Instant::now();
        }
        last = now;
    }
    (started.elapsed() - quiet_since.elapsed()).as_secs_f64()
}

fn hashing_threads(pid: libc::pid_t) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|name| name.starts_with("password-hash"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn rand_u32() -> u32 {
    rand::random()
}

/// Waits until the server answers and returns the login form's token (its cookie
/// stays in the client).
async fn wait_for_login_page(client: &reqwest::Client, base: &str) -> String {
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/login")).send().await {
            let html = response.text().await.unwrap();
            let marker = "name=\"authenticity_token\" value=\"";
            let start = html.find(marker).expect("a form token") + marker.len();
            let end = html[start..].find('"').unwrap() + start;
            return html[start..end].to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start");
}

/// `/healthz` every 10 ms on its own connection while the flood lasts.
async fn sample_healthz(base: String, flooding: Arc<AtomicBool>) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    while flooding.load(Ordering::Relaxed) {
        let sent = Instant::now();
        let response = client.get(format!("{base}/healthz")).send().await;
        assert!(
            response.is_ok_and(|r| r.status() == 200),
            "/healthz answers"
        );
        latencies.push(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies
}

fn print(floods: &[Flood], parallel: usize, rounds: usize) {
    println!("\n{rounds} rounds of {parallel} parallel POST /login, random emails\n");
    println!(
        "{:<12} {:>8} {:>26} {:>8} {:>10} {:>10} {:>10} {:>8} {:>10}",
        "flood",
        "seconds",
        "answers by status",
        "failed",
        "peak MiB",
        "hz p50 ms",
        "hz p95 ms",
        "hashers",
        "after s"
    );
    for flood in floods {
        let at = |share: f64| {
            let i = ((flood.healthz.len() as f64 * share) as usize).min(flood.healthz.len() - 1);
            flood.healthz[i].as_secs_f64() * 1000.0
        };
        let answers: Vec<String> = flood
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}×{count}"))
            .collect();
        println!(
            "{:<12} {:>8.1} {:>26} {:>8} {:>10.1} {:>10.1} {:>10.1} {:>8} {:>10.1}",
            flood.name,
            flood.seconds,
            answers.join(" "),
            flood.failed_connections,
            flood.peak_rss_kib as f64 / 1024.0,
            at(0.50),
            at(0.95),
            flood.hashing_threads,
            flood.hashing_after,
        );
    }
    println!(
        "\ntargets: peak ≤ 200 MiB, /healthz p95 ≤ 250 ms, no failed connection (but the hung-up \
         ones), only 401/429/503, hashers ≤ PASSWORD_HASH_CONCURRENCY, ≤ 1 s hashing after"
    );
}
