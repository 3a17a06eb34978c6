//! `stripe-sync stripe:webhook --url URL`: creates the webhook endpoint in Stripe
//! (Cashier's `cashier:webhook`), subscribed to exactly the events the app
//! handles, rendered in the API version the app reads, and prints the signing
//! secret once. An endpoint for the same URL is reported, never duplicated.

use super::CliError;
use crate::config::Config;
use crate::events::{EventError, Events, HANDLED_EVENTS, WebhookRegistration};
use crate::startup::App;
use crate::stripe::WebhookEndpoint;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where Stripe sends events: this app's /stripe/webhook, such as
    /// https://app.example.com/stripe/webhook
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// Create the endpoint disabled; enable it in the Dashboard when the app is ready
    #[arg(long)]
    pub disabled: bool,
}

pub async fn run(config: Config, args: Args) -> Result<(), CliError> {
    check_url(&args.url)?;
    let app = App::build(config).await?;
    let registration = Events::new(app.context)
        .register_webhook(&args.url, args.disabled)
        .await
        .map_err(|err| match err {
            EventError::NotConfigured => super::report::stripe_not_configured(),
            err => CliError::failed("Stripe", err),
        })?;
    match registration {
        WebhookRegistration::Existing { endpoint, missing } => report_existing(&endpoint, &missing),
        WebhookRegistration::Created {
            endpoint,
            api_version,
            disabled,
        } => {
            report_created(&endpoint, &api_version);
            if let Some(disabled) = disabled {
                disabled.map_err(|err| {
                    CliError::failed(
                        format!(
                            "the endpoint was created enabled; disabling {}",
                            endpoint.id
                        ),
                        err,
                    )
                })?;
                println!(
                    "The endpoint is disabled: enable it in the Dashboard when the app is ready."
                );
            }
        }
    }
    Ok(())
}

fn report_created(endpoint: &WebhookEndpoint, api_version: &str) {
    println!(
        "Created webhook endpoint {} for {} (API version {api_version}, {} event types).",
        endpoint.id,
        endpoint.url,
        HANDLED_EVENTS.len()
    );
    match &endpoint.secret {
        Some(secret) => println!(
            "Stripe shows its signing secret only now. Add this line to .env:\n\n\
             STRIPE_WEBHOOK_SECRET={secret}\n"
        ),
        None => println!(
            "Stripe did not return a signing secret: copy it from the Dashboard (Developers → \
             Webhooks → the endpoint) into STRIPE_WEBHOOK_SECRET."
        ),
    }
}

fn report_existing(existing: &WebhookEndpoint, missing: &[&str]) {
    println!(
        "A webhook endpoint for {} exists already: {} ({}). Nothing was created.",
        existing.url, existing.id, existing.status
    );
    println!(
        "Stripe shows a signing secret only when an endpoint is created: copy it from the \
         Dashboard (Developers → Webhooks → the endpoint) into STRIPE_WEBHOOK_SECRET."
    );
    if !missing.is_empty() {
        println!(
            "It does not send {}: add them to the endpoint in the Dashboard.",
            missing.join(", ")
        );
    }
}

/// An absolute http(s) URL with a host.
fn check_url(url: &str) -> Result<(), CliError> {
    let bad = || {
        CliError::Usage(format!(
            "--url must be an absolute https:// URL such as \
             https://app.example.com/stripe/webhook (got {url:?})"
        ))
    };
    let uri: axum::http::Uri = url.parse().map_err(|_| bad())?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https" | "http"), Some(host)) if !host.is_empty() => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_are_taken() {
        assert!(check_url("https://app.example.com/stripe/webhook").is_ok());
        assert!(check_url("http://127.0.0.1:8080/stripe/webhook").is_ok());
        for bad in [
            "",
            "/stripe/webhook",
            "app.example.com/stripe/webhook",
            "ftp://x/y",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_handled_event_is_one_stripe_knows() {
        use stripe_misc::webhook_endpoint::CreateWebhookEndpointEnabledEvents;
        for event in HANDLED_EVENTS {
            let parsed: CreateWebhookEndpointEnabledEvents = event.parse().unwrap();
            assert!(
                !matches!(parsed, CreateWebhookEndpointEnabledEvents::Unknown(_)),
                "{event}"
            );
        }
    }
}
