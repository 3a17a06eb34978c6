//! Load benchmark of the settings page against `/healthz`, under the same load in
//! one run. Run it with
//!
//!     cargo bench --bench page_load [-- --seconds 10 --concurrency 16]
//!
//! It signs a user in (with a linked customer, so the page has a snapshot to show),
//! then drives each path in turn with the same number of concurrent keep-alive
//! clients for the same time, and prints requests/s, p50 and p99 latency and the
//! ratio of the two rates. The settings page reads the session and the user and
//! renders a template; it never calls Stripe. Metrics are on, as in production
//! with `METRICS_BIND`: every request is recorded, and `/metrics` is scraped every
//! second while the load runs.

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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
        let metrics = stripe_sync::monitoring::install();
        let app = spawn_app().await;
        let (scraper, scrapes) = scrape_every_second(&app).await;
        let (browser, user_id) = app.signed_in_user("Ann", "ann@example.com").await;
        app.customers
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
        scraper.abort();
        let recorded = metrics.render();
        assert!(
            recorded.contains(r#"route="/settings/stripe",status="200""#),
            "the page's requests were recorded"
        );
        print(&results, concurrency);
        println!(
            "metrics on: every request recorded; /metrics scraped {} times meanwhile",
            scrapes.load(Ordering::Relaxed)
        );
    });
}

/// Serves `/metrics` for `app` on a listener of its own and scrapes it every
/// second, as Prometheus would, until the task is aborted.
async fn scrape_every_second(
    app: &helpers::TestApp,
) -> (tokio::task::JoinHandle<()>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let sources = stripe_sync::monitoring::scrape::Sources {
        db: app.db.clone(),
        hasher: stripe_sync::password::Hasher::new(
            1,
            stripe_sync::password::PasswordScheme::Argon2id,
        ),
    };
    let router =
        stripe_sync::monitoring::listener::router(stripe_sync::monitoring::install(), sources);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let scrapes = Arc::new(AtomicUsize::new(0));
    let counted = scrapes.clone();
    let scraper = tokio::spawn(async move {
        let client = reqwest::Client::new();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let text = client.get(&url).send().await.unwrap().text().await.unwrap();
            assert!(text.contains("stripe_sync_ready 1"), "{text}");
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    (scraper, scrapes)
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
