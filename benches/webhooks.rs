//! Benchmark of Stripe's side of the sync: webhooks applied from their payloads.
//! Run it with
//!
//!     cargo bench --bench webhooks [-- --users 2000 --events 5000 --concurrency 16]
//!
//! Phase 1, echoes: `stripe:sync-customers --update` (release binary, R = 100/s)
//! renames every user while the stand-in delivers each `customer.updated` it makes
//! to the app as a signed webhook, as Stripe does. Printed: Stripe calls in total
//! ÷ users (target ≤ 1.01: the pushes, and nothing for their echoes).
//!
//! Phase 2, throughput: `--events` signed `customer.updated` webhooks, each
//! renaming its customer in Stripe's dashboard (so each is stored, never a no-op),
//! posted by `--concurrency` clients to the app on the configured database
//! (SQLite unless DATABASE_URL says otherwise). Printed: events/s (target ≥ 1,500 on
//! SQLite) and the Stripe calls they made (target 0).

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

use std::time::Instant;

use serde_json::{Value, json};
use support::arg;

use helpers::{StripeSetup, TestApp, count, spawn_app_customized};

const SECRET: &str = "whsec_bench";

fn main() {
    let users = arg("--users", 2000) as usize;
    let events = arg("--events", 5000) as usize;
    let concurrency = arg("--concurrency", 16) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let app = spawn_app_customized(StripeSetup::Fake, |config| {
            config.webhook_secret = Some(SECRET.to_string().into());
        })
        .await;
        let database = app.customers.database_kind();
        app.insert_users(users).await;
        run(&app, &["stripe:sync-customers", "--create", "--rate", "100"]).await;

        // Phase 1: a bulk update with its echoes delivered.
        app.execute("UPDATE users SET name = name || ' v2'").await;
        app.stripe
            .deliver_webhooks_to(&format!("{}/stripe/webhook", app.address), SECRET);
        let before = app.stripe.total_calls();
        let started = Instant::now();
        run(&app, &["stripe:sync-customers", "--update", "--rate", "100"]).await;
        let delivered = TestApp::eventually(|| async {
            count(&app.db, "SELECT COUNT(*) FROM stripe_events").await >= users as i64
        })
        .await;
        assert!(delivered, "every echo reached the app");
        let seconds = started.elapsed().as_secs_f64();
        let calls = app.stripe.total_calls() - before;
        println!("\nPhase 1, {users} users renamed by --update, echoes delivered ({database})");
        println!(
            "  Stripe calls {calls} = {:.3} per user (target ≤ 1.01), {seconds:.1} s",
            calls as f64 / users as f64
        );

        // Phase 2: webhook throughput.
        let payloads = renames(&app, events);
        let before = app.stripe.total_calls();
        let started = Instant::now();
        post_all(&app, payloads, concurrency).await;
        let seconds = started.elapsed().as_secs_f64();
        let calls = app.stripe.total_calls() - before;
        println!("\nPhase 2, {events} signed customer.updated webhooks, {concurrency} clients ({database})");
        println!(
            "  {:.0} events/s (target ≥ 1500 on SQLite), Stripe calls {calls} (target 0)",
            events as f64 / seconds
        );
    });
}

async fn run(app: &TestApp, args: &[&str]) {
    let output = app.run(args).await;
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `n` events, each a newer rename of one of the customers (round robin), in
/// the shape of the stand-in's own `customer.updated`.
fn renames(app: &TestApp, n: usize) -> Vec<String> {
    let latest: Vec<Value> = app
        .stripe
        .events()
        .into_iter()
        .filter(|event| event["type"] == "customer.updated")
        .collect();
    let base = time::OffsetDateTime::now_utc().unix_timestamp() + 10;
    (0..n)
        .map(|i| {
            let template = &latest[i % latest.len()];
            let round = (i / latest.len()) as i64;
            let mut object = template["data"]["object"].clone();
            object["name"] = json!(format!("Renamed {i}"));
            json!({
                "id": format!("evt_bench_{i}"), "object": "event", "type": "customer.updated",
                "created": base + round, "livemode": false, "api_version": "2026-09-30.endive",
                "data": {"object": object, "previous_attributes": {"name": template["data"]["object"]["name"]}},
            })
            .to_string()
        })
        .collect()
}

async fn post_all(app: &TestApp, payloads: Vec<String>, concurrency: usize) {
    let url = format!("{}/stripe/webhook", app.address);
    let queue = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        payloads,
    )));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, url) = (queue.clone(), url.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                loop {
                    let Some(payload) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let signature =
                        stripe_webhook::Webhook::generate_test_header(&payload, SECRET, None);
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("stripe-signature", signature)
                        .body(payload)
                        .send()
                        .await
                        .expect("an answer");
                    assert_eq!(response.status(), 200);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}
