//! Events and webhook endpoints.

use stripe_client_core::IdempotencyKey;
use stripe_core::event::ListEvent;
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, ListWebhookEndpoint,
    UpdateWebhookEndpoint,
};

use super::wire::{EndpointPage, EventPage};
use super::{Page, Segment, StripeFailure, StripeGateway, WebhookEndpoint};

impl StripeGateway {
    /// One page of the events of `type_` (every type when `None`) created in the
    /// segment's range, newest first, after its cursor.
    pub async fn list_events(
        &self,
        segment: &Segment,
        type_: Option<&str>,
    ) -> Result<Page<serde_json::Value>, StripeFailure> {
        let created = stripe_types::RangeQueryTs::Bounds(stripe_types::RangeBoundsTs {
            gte: Some(segment.gte),
            lt: Some(segment.lt),
            ..Default::default()
        });
        let mut request = ListEvent::new().created(created).limit(100);
        if let Some(type_) = type_ {
            request = request.type_(type_);
        }
        if let Some(after) = &segment.after {
            request = request.starting_after(after.as_str());
        }
        let page: EventPage = self.send_as("list events", None, &request).await?;
        let events = page
            .data
            .iter()
            .map(|event| {
                serde_json::from_str(&miniserde::json::to_string(event))
                    .map_err(|err| StripeFailure::unreadable("list events", &err.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok((events, page.has_more))
    }

    /// Every webhook endpoint of the account.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, StripeFailure> {
        let mut endpoints = Vec::new();
        loop {
            let mut request = ListWebhookEndpoint::new().limit(100);
            if let Some(last) = endpoints.last() {
                let last: &WebhookEndpoint = last;
                request = request.starting_after(last.id.as_str());
            }
            let page: EndpointPage = self
                .send_as("list webhook endpoints", None, &request)
                .await?;
            endpoints.extend(page.data);
            if !page.has_more {
                return Ok(endpoints);
            }
        }
    }

    /// Creates a webhook endpoint sending `events` to `url`, rendered in
    /// `api_version`; the answer carries the signing secret, once.
    pub async fn create_webhook_endpoint(
        &self,
        url: &str,
        events: &[&str],
        api_version: stripe_shared::ApiVersion,
        description: &str,
    ) -> Result<WebhookEndpoint, StripeFailure> {
        let events: Vec<CreateWebhookEndpointEnabledEvents> = events
            .iter()
            .map(|event| event.parse().expect("parsing an event type is infallible"))
            .collect();
        let request = CreateWebhookEndpoint::new(events, url)
            .api_version(api_version)
            .description(description);
        self.send_as(
            "create webhook endpoint",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }

    /// Disables an endpoint: Stripe keeps it but sends it nothing.
    pub async fn disable_webhook_endpoint(
        &self,
        id: &str,
    ) -> Result<WebhookEndpoint, StripeFailure> {
        let request = UpdateWebhookEndpoint::new(id).disabled(true);
        self.send_as(
            "disable webhook endpoint",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }
}
