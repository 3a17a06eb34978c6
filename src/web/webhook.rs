//! `POST /stripe/webhook`: Stripe's signed events. The signature is checked against
//! every configured secret (several during a rotation); the event is then applied
//! by the customers service.
//!
//! The check is Stripe's scheme, done here: HMAC-SHA256 over `{t}.{body}` compared
//! in constant time with each `v1` of the `Stripe-Signature` header, and `t` within
//! 300 s. async-stripe's `Webhook::construct_event` does the same but then parses
//! the event with its own types, logging an ERROR for valid events it cannot
//! represent (`customer.deleted`) and a WARN for every other API version: noise
//! an operator grepping for ERROR would wade through.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac as _};
use secrecy::ExposeSecret as _;
use sha2::Sha256;

use super::AppState;
use crate::events::{EventError, EventOutcome, HANDLED_EVENTS, StripeEvent};
use crate::runs::report::RunError as _;

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
        crate::metrics::webhook_signature_failure();
        return reject("missing Stripe-Signature header");
    };
    if let Err(reason) = verify(payload, signature, &state) {
        crate::metrics::webhook_signature_failure();
        return reject(reason);
    }
    let event: StripeEvent = match serde_json::from_str(payload) {
        Ok(event) => event,
        Err(_) => return reject("signed body is not a Stripe event"),
    };
    let applied = state.events.apply_event(&event).await;
    crate::metrics::webhook_event(&event.type_, HANDLED_EVENTS, outcome_label(&applied));
    match applied {
        Ok(_) => (StatusCode::OK, "ok").into_response(),
        Err(EventError::FromTheFuture { created }) => {
            tracing::warn!(event_id = %event.id, created, "webhook refused: dated in the future");
            (StatusCode::BAD_REQUEST, "event dated in the future").into_response()
        }
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

/// The event's outcome as the metrics label it.
fn outcome_label(applied: &Result<EventOutcome, EventError>) -> &'static str {
    match applied {
        Ok(EventOutcome::Applied) => "applied",
        Ok(EventOutcome::Unchanged) => "unchanged",
        Ok(EventOutcome::Superseded) => "superseded",
        Ok(EventOutcome::Duplicate) => "duplicate",
        Ok(EventOutcome::Ignored) => "ignored",
        Err(EventError::FromTheFuture { .. }) => "refused",
        Err(_) => "failed",
    }
}

fn reject(reason: &'static str) -> Response {
    tracing::warn!(reason, "webhook rejected");
    (StatusCode::BAD_REQUEST, reason).into_response()
}

/// Stripe's tolerance for the signature's timestamp.
const TOLERANCE_SECONDS: i64 = 300;

/// Accepts the payload when its signature matches any configured secret within
/// Stripe's 300 s tolerance.
fn verify(payload: &str, signature: &str, state: &AppState) -> Result<(), &'static str> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let secrets = state.webhook_secrets.iter().map(|s| s.expose_secret());
    check_signature(payload, signature, secrets, now)
}

fn check_signature<'a>(
    payload: &str,
    header: &str,
    secrets: impl Iterator<Item = &'a str>,
    now: i64,
) -> Result<(), &'static str> {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => candidates.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let (Some(timestamp), false) = (timestamp, candidates.is_empty()) else {
        return Err("malformed Stripe-Signature header");
    };
    let signed = format!("{timestamp}.{payload}");
    let mut matched = false;
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(signed.as_bytes());
        matched |= candidates
            .iter()
            .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    }
    if !matched {
        return Err("signature does not match");
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err("signature timestamp is outside the 300 s tolerance");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_unit";

    fn header(payload: &str, secret: &str, t: i64) -> String {
        stripe_webhook::Webhook::generate_test_header(payload, secret, Some(t))
    }

    #[test]
    fn stripe_s_own_test_header_verifies_and_anything_else_does_not() {
        let payload = r#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = header(payload, SECRET, now);
        let check = |h: &str, at: i64| check_signature(payload, h, [SECRET].into_iter(), at);

        assert_eq!(check(&good, now), Ok(()));
        assert_eq!(check(&good, now + 300), Ok(()));
        assert_eq!(
            check(&good, now + 301),
            Err("signature timestamp is outside the 300 s tolerance")
        );
        let other = header(payload, "whsec_other", now);
        assert_eq!(check(&other, now), Err("signature does not match"));
        let altered = check_signature("{}", &good, [SECRET].into_iter(), now);
        assert_eq!(altered, Err("signature does not match"));
        for malformed in ["", "t=abc,v1=00", "v1=zz", "t=1"] {
            assert_eq!(
                check(malformed, now),
                Err("malformed Stripe-Signature header"),
                "{malformed}"
            );
        }
    }

    #[test]
    fn any_configured_secret_may_match() {
        let payload = "{}";
        let signed = header(payload, "whsec_old", 10);
        let secrets = ["whsec_new", "whsec_old"].into_iter();
        assert_eq!(check_signature(payload, &signed, secrets, 10), Ok(()));
    }
}
