//! Checkout Sessions and billing portal sessions.

use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    ProductData, RetrieveCheckoutSession,
};
use stripe_client_core::IdempotencyKey;
use stripe_shared::CheckoutSessionMode;

use super::{
    CheckoutParams, CheckoutState, FailureKind, SessionLink, StripeFailure, StripeGateway,
};

impl StripeGateway {
    /// A Checkout Session in payment mode for one line item, under the caller's
    /// idempotency key (whose parameters the caller keeps fixed).
    pub async fn create_checkout_session(
        &self,
        checkout: &CheckoutParams<'_>,
        idempotency_key: &str,
    ) -> Result<SessionLink, StripeFailure> {
        let rejected = |detail: String| StripeFailure {
            kind: FailureKind::Rejected { message: None },
            operation: "create checkout session",
            status: None,
            request_id: None,
            detail,
            retryable: false,
        };
        let currency = checkout
            .currency
            .parse::<stripe_types::Currency>()
            .map_err(|_| rejected(format!("unknown currency {}", checkout.currency)))?;
        let key = IdempotencyKey::new(idempotency_key).map_err(|e| rejected(e.to_string()))?;
        let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price.unit_amount = Some(checkout.amount);
        price.product_data = Some(ProductData::new(checkout.item_name));
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price_data = Some(price);
        item.quantity = Some(1);
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(checkout.customer)
            .client_reference_id(checkout.client_reference_id)
            .metadata(checkout.metadata.clone())
            .line_items(vec![item])
            .success_url(checkout.success_url)
            .cancel_url(checkout.cancel_url);
        self.send_as("create checkout session", Some(key), &request)
            .await
    }

    /// A Checkout Session as Stripe has it now.
    pub async fn retrieve_checkout_session(
        &self,
        id: &str,
    ) -> Result<CheckoutState, StripeFailure> {
        let request = RetrieveCheckoutSession::new(id);
        self.send_as("retrieve checkout session", None, &request)
            .await
    }

    /// A billing portal session for the customer, returning to `return_url`.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
    ) -> Result<SessionLink, StripeFailure> {
        let request = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        self.send_as(
            "create billing portal session",
            Some(IdempotencyKey::new_uuid_v4()),
            &request,
        )
        .await
    }
}
