//! The shapes of what is sent to Stripe and read back, beyond async-stripe's own.

use std::collections::{BTreeMap, HashMap};

use stripe_shared::Customer;

/// The fields a create sends; fixed with its idempotency key. `fields` holds the
/// mapped fields beyond name and email that have a value (absent from params
/// fixed before they were synced).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomerParams {
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl CustomerParams {
    /// Every field sent, name and email included, by key.
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut values = self.fields.clone();
        values.insert("name".into(), self.name.clone());
        values.insert("email".into(), self.email.clone());
        values
    }
}

/// What a Checkout Session is made of.
pub struct CheckoutParams<'a> {
    pub customer: &'a str,
    pub client_reference_id: &'a str,
    pub metadata: HashMap<String, String>,
    pub item_name: &'a str,
    /// In the currency's minor unit.
    pub amount: i64,
    pub currency: &'a str,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// The two fields we read of a Checkout or billing portal session.
#[derive(Debug, Clone, miniserde::Deserialize)]
pub struct SessionLink {
    pub id: String,
    pub url: Option<String>,
}

/// The fields of a Checkout Session the success page reads back from Stripe.
#[derive(Debug, Clone, miniserde::Deserialize)]
pub struct CheckoutState {
    pub id: String,
    pub payment_status: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    /// An id (never expanded here).
    pub payment_intent: Option<String>,
}

impl CheckoutState {
    /// "no_payment_required" counts as paid: there is nothing left to pay.
    pub fn paid(&self) -> bool {
        matches!(
            self.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        )
    }
}

/// One page of the Events API, each event as its raw JSON: the reader takes only
/// the fields it uses, so a field Stripe adds or drops never fails a page.
#[derive(miniserde::Deserialize)]
pub(super) struct EventPage {
    pub(super) data: Vec<miniserde::json::Value>,
    pub(super) has_more: bool,
}

/// A webhook endpoint as Stripe describes it. Stripe shows `secret` only in the
/// answer to the create.
#[derive(Clone, miniserde::Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub status: String,
    pub enabled_events: Vec<String>,
    pub api_version: Option<String>,
    pub secret: Option<String>,
}

/// The signing secret never reaches a log line.
impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(miniserde::Deserialize)]
pub(super) struct EndpointPage {
    pub(super) data: Vec<WebhookEndpoint>,
    pub(super) has_more: bool,
}

/// A customer as retrieve finds it: real Stripe answers a deleted customer with 200
/// and `deleted: true`, some stand-ins with 404; both mean the same to us.
pub enum CustomerLookup {
    Found(Box<Customer>),
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Deleted,
    NotFound,
}
