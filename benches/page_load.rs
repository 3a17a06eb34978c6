//! Load benchmark of the settings page against `/healthz`, under the same load in
//! one run. Run it with
//!
//!     cargo bench --bench page_load [-- --seconds 10 --concurrency 16]
//!
//! It signs a user in (with a linked customer, so the page has a snapshot to show),
//! then drives each path in turn with the same number of concurrent keep-alive
//! clients for the same time, and prints requests/s, p50 and p99 latency and the
//! ratio of the two rates. The settings page reads the session and the user and
//! renders a template; it never calls Stripe.

// The suite reads and seeds the database with each driver's own SQL, on purpose
// (the app's queries go through src/db/dialect).
#![allow(clippy::disallowed_methods)]

#[allow(dead_code)]
#[path = "../tests/api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../tests/api/stripe_fake.rs"]
mod stripe_fake;
mod support;

use std::time::{Duration, Instant};
use support::arg;

use helpers::spawn_app;

struct Load {
    path: &'static str,
    requests: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

fn main() {
    let seconds = arg("--seconds", 10);
    let concurrency = arg("--concurrency", 16) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = spawn_app().await;
        let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
        app.sync
            .create_customer(user_id)
            .await
            .expect("a linked customer");
        let page = browser.page("/settings/stripe").await;
        assert!(page.contains("Linked"), "signed in with a linked customer");
        let stripe_calls = app.stripe.total_calls();

        let mut results = Vec::new();
        for path in ["/healthz", "/settings/stripe"] {
            results.push(load(&browser, path, concurrency, Duration::from_secs(seconds)).await);
        }
        assert_eq!(
            app.stripe.total_calls(),
            stripe_calls,
            "the page never calls Stripe"
        );
        print(&results, concurrency);
    });
}

/// `concurrency` clients, each sending its next request as soon as the last is
/// answered, for `duration`. Every answer must be 200.
async fn load(
    browser: &helpers::Browser,
    path: &'static str,
    concurrency: usize,
    duration: Duration,
) -> Load {
    let url = format!("{}{path}", browser.base);
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = browser.client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = client.get(&url).send().await.expect("an answer");
                    assert_eq!(response.status(), 200, "{url}");
                    response.bytes().await.unwrap();
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |share: f64| {
        latencies[((latencies.len() as f64 * share) as usize).min(latencies.len() - 1)]
    };
    Load {
        path,
        requests: latencies.len(),
        seconds,
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn print(results: &[Load], concurrency: usize) {
    println!("\n{concurrency} concurrent keep-alive clients per path, one after the other\n");
    println!(
        "{:<18} {:>9} {:>10} {:>10} {:>10}",
        "path", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for load in results {
        println!(
            "{:<18} {:>9} {:>10.0} {:>10.2} {:>10.2}",
            load.path,
            load.requests,
            load.requests as f64 / load.seconds,
            load.p50.as_secs_f64() * 1000.0,
            load.p99.as_secs_f64() * 1000.0
        );
    }
    if let [health, page] = results {
        let ratio =
            (page.requests as f64 / page.seconds) / (health.requests as f64 / health.seconds);
        println!("\n/settings/stripe ÷ /healthz requests/s: {ratio:.2} (target ≥ 0.50)");
    }
}
