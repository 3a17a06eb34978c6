//! `stripe-sync stripe:webhook --url URL`: the endpoint is made once, with exactly
//! the events the app handles, and its secret is printed once.

use stripe_sync::events::HANDLED_EVENTS;

use crate::helpers::commands::stderr;
use crate::helpers::{log_dir, spawn_app};

const URL: &str = "https://app.example.com/stripe/webhook";

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[tokio::test]
async fn creates_the_endpoint_once_and_prints_its_secret_once() {
    let app = spawn_app().await;

    let output = app.run(&["stripe:webhook", "--url", URL]).await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let endpoints = app.stripe.webhook_endpoints();
    assert_eq!(endpoints.len(), 1);
    let endpoint = &endpoints[0];
    assert_eq!(endpoint["url"], URL);
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(endpoint["api_version"], "2026-09-30.endive");
    let mut events: Vec<&str> = endpoint["enabled_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    events.sort_unstable();
    let mut handled = HANDLED_EVENTS.to_vec();
    handled.sort_unstable();
    assert_eq!(events, handled, "exactly the events the app handles");
    let printed = stdout(&output);
    let line = printed
        .lines()
        .find(|line| line.starts_with("STRIPE_WEBHOOK_SECRET=whsec_"))
        .unwrap_or_else(|| panic!("the .env line: {printed}"))
        .to_string();
    let secret = line.trim_start_matches("STRIPE_WEBHOOK_SECRET=");

    let again = app.run(&["stripe:webhook", "--url", URL]).await;

    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(app.stripe.webhook_endpoints().len(), 1, "not duplicated");
    assert!(
        stdout(&again).contains("exists already"),
        "{}",
        stdout(&again)
    );
    assert!(!stdout(&again).contains("whsec_"));
    // The secret reaches the operator's terminal, never a log file.
    for entry in std::fs::read_dir(log_dir()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        assert!(!text.contains(secret), "the signing secret reached a log");
    }
}

#[tokio::test]
async fn disabled_creates_the_endpoint_disabled() {
    let app = spawn_app().await;

    let output = app
        .run(&["stripe:webhook", "--url", URL, "--disabled"])
        .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(app.stripe.webhook_endpoints()[0]["status"], "disabled");
    assert!(stdout(&output).contains("STRIPE_WEBHOOK_SECRET=whsec_"));
}

#[tokio::test]
async fn an_endpoint_made_elsewhere_for_the_url_is_reported_with_what_it_lacks() {
    let app = spawn_app().await;
    app.stripe
        .insert_webhook_endpoint(URL, &["customer.updated", "customer.deleted"]);

    // The same URL with a trailing slash is the same endpoint.
    let output = app
        .run(&["stripe:webhook", "--url", &format!("{URL}/")])
        .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(app.stripe.webhook_endpoints().len(), 1, "not duplicated");
    let printed = stdout(&output);
    assert!(printed.contains("exists already"), "{printed}");
    assert!(
        printed.contains("does not send payment_method.attached"),
        "{printed}"
    );
    assert!(printed.contains("charge.refunded"), "{printed}");
}

#[tokio::test]
async fn a_url_that_is_not_absolute_is_refused() {
    let app = spawn_app().await;

    let output = app
        .run(&["stripe:webhook", "--url", "/stripe/webhook"])
        .await;

    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("absolute https:// URL"));
    assert!(app.stripe.webhook_endpoints().is_empty());
}
