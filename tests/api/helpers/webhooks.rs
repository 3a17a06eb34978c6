//! Signed Stripe events, delivered to the app's webhook as Stripe delivers them.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stripe_webhook::Webhook;

use super::{StripeSetup, TestApp, spawn_app_customized};

/// The endpoint's signing secret, and the one it is rolling from.
pub const SECRET: &str = "whsec_test_current";

pub const OLD_SECRET: &str = "whsec_test_previous";

pub async fn post(app: &TestApp, payload: &str, signature: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/stripe/webhook", app.address))
        .header("content-type", "application/json")
        .body(payload.to_string());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request.send().await.unwrap()
}

pub async fn app_with_webhooks() -> TestApp {
    spawn_app_customized(StripeSetup::Fake, |config| {
        config.webhook_secret = Some(format!("{SECRET}, {OLD_SECRET}").into());
    })
    .await
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn event(id: &str, type_: &str, created: i64, object: Value) -> String {
    json!({
        "id": id, "object": "event", "type": type_, "created": created,
        "api_version": "2026-09-30.endive", "livemode": false,
        "data": {"object": object},
    })
    .to_string()
}

/// Delivers a signed event and insists on `200 OK` (a test that expects
/// nothing to happen must not pass because the delivery itself was refused).
pub async fn deliver(app: &TestApp, payload: &str) -> reqwest::Response {
    deliver_expecting(app, payload, StatusCode::OK).await
}

/// Delivers a signed event and insists on `status`.
pub async fn deliver_expecting(
    app: &TestApp,
    payload: &str,
    status: StatusCode,
) -> reqwest::Response {
    let signature = Webhook::generate_test_header(payload, SECRET, None);
    let response = post(app, payload, Some(&signature)).await;
    if response.status() != status {
        let got = response.status();
        let body = response.text().await.unwrap_or_default();
        panic!("delivery answered {got}, not {status}: {body}");
    }
    response
}
