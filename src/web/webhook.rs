//! `POST /stripe/webhook`: Stripe's signed events. The signature is checked with
//! async-stripe against every configured secret (several during a rotation); the
//! event is then applied by the sync service.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use stripe_webhook::{Webhook, WebhookError};

use super::AppState;
use crate::sync::events::StripeEvent;

pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if state.webhook_secrets.is_empty() {
        tracing::warn!("webhook refused: STRIPE_WEBHOOK_SECRET is not set");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook endpoint is not configured",
        )
            .into_response();
    }
    let Ok(payload) = std::str::from_utf8(&body) else {
        return reject("body is not UTF-8");
    };
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return reject("missing Stripe-Signature header");
    };
    if let Err(reason) = verify(payload, signature, &state) {
        return reject(reason);
    }
    let event: StripeEvent = match serde_json::from_str(payload) {
        Ok(event) => event,
        Err(_) => return reject("signed body is not a Stripe event"),
    };
    match state.sync.apply_event(&event).await {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(err) => {
            tracing::error!(
                event_id = %event.id,
                event_type = %event.type_,
                request_id = err.request_id(),
                error = %err,
                "webhook event failed; Stripe will retry it"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, "event not applied").into_response()
        }
    }
}

fn reject(reason: &'static str) -> Response {
    tracing::warn!(reason, "webhook rejected");
    (StatusCode::BAD_REQUEST, reason).into_response()
}

/// Accepts the payload when its signature matches any configured secret within
/// Stripe's 300 s tolerance. async-stripe checks the signature before it parses
/// the event, so a failure to parse means the signature held.
fn verify(payload: &str, signature: &str, state: &AppState) -> Result<(), &'static str> {
    let mut stale = false;
    for secret in state.webhook_secrets.iter() {
        match Webhook::construct_event(payload, signature, secret.expose_secret()) {
            Ok(_) | Err(WebhookError::BadParse(_)) => return Ok(()),
            Err(WebhookError::BadTimestamp(_)) => stale = true,
            Err(WebhookError::BadHeader(_)) => return Err("malformed Stripe-Signature header"),
            Err(_) => {}
        }
    }
    Err(if stale {
        "signature timestamp is outside the 300 s tolerance"
    } else {
        "signature does not match"
    })
}
