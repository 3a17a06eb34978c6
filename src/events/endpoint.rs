//! The webhook endpoint in Stripe (Cashier's `cashier:webhook`): subscribed to
//! exactly the events the app handles, in the API version the app reads.

use super::HANDLED_EVENTS;
use super::{EventError, Events};
use crate::stripe::WebhookEndpoint;

/// What registering an endpoint for a URL came to.
#[derive(Debug)]
pub enum WebhookRegistration {
    /// Made now. `secret` is shown by Stripe this once; `disabled` says how the
    /// request to disable it went, when one was asked for.
    Created {
        endpoint: WebhookEndpoint,
        api_version: String,
        disabled: Option<Result<(), EventError>>,
    },
    /// An endpoint for the URL was there already; nothing was made. `missing`
    /// lists the handled events it does not send.
    Existing {
        endpoint: WebhookEndpoint,
        missing: Vec<&'static str>,
    },
}

impl Events {
    /// Creates the endpoint for `url` unless one exists (never a duplicate),
    /// then disables it when asked to.
    pub async fn register_webhook(
        &self,
        url: &str,
        disabled: bool,
    ) -> Result<WebhookRegistration, EventError> {
        let stripe = self.stripe()?;
        let endpoints = stripe.webhook_endpoints().await?;
        if let Some(existing) = endpoints
            .into_iter()
            .find(|endpoint| same_url(&endpoint.url, url))
        {
            let sends_all = existing.enabled_events.iter().any(|event| event == "*");
            let missing = HANDLED_EVENTS
                .iter()
                .copied()
                .filter(|handled| {
                    !sends_all && !existing.enabled_events.iter().any(|e| e == handled)
                })
                .collect();
            return Ok(WebhookRegistration::Existing {
                endpoint: existing,
                missing,
            });
        }
        let version = stripe_shared::version::VERSION;
        let endpoint = stripe
            .create_webhook_endpoint(url, HANDLED_EVENTS, version.clone(), "stripe-sync")
            .await?;
        tracing::info!(endpoint = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
        let disabled = match disabled {
            true => Some(
                stripe
                    .disable_webhook_endpoint(&endpoint.id)
                    .await
                    .map(drop)
                    .map_err(EventError::from),
            ),
            false => None,
        };
        Ok(WebhookRegistration::Created {
            endpoint,
            api_version: version.as_str().to_string(),
            disabled,
        })
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}
